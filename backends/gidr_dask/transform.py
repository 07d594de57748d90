"""``transform`` of a Dask array on the workers.

The fitted model (pipeline, result and training rows) is put on every worker once
(``Client.scatter(..., broadcast=True)``) and each chunk of new points is embedded by
:func:`gidr.transform.transform_new_points` on the worker that holds it. Each worker builds the
neighbours index over the training rows once, on its first chunk, and keeps it with the
model. A point's result depends only on its own row (its neighbours, weights and random
draws), so it is the single-machine ``transform``'s, bit for bit, whatever the chunking and
the number of workers.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

from gidr.stages.neighbors import is_dask_array
from gidr.validation import GidrValueError, check_dask_array, format_error
from gidr_dask._runtime import current_client, require_dask, using_scheduler, worker_threads

__all__ = ["FittedModel", "transform", "embed_blocks", "LOADS"]

#: How many times this process has unpickled a :class:`FittedModel` (what a test reads on
#: each worker to see that the model was sent once, not once per chunk).
LOADS = {"count": 0}


class FittedModel:
    """What a worker needs to embed new points: the fitted pipeline, its result on the
    training rows ``X_train`` (in memory), and the number of epochs of ``transform``.

    ``fixed`` optionally maps global row numbers to positions that are returned as they
    are (the landmark route's fitted points): ``(sorted rows, their positions)``.
    """

    def __init__(self, pipeline, result, X_train: np.ndarray, n_epochs: int | None = None, fixed=None):
        self.pipeline, self.result, self.n_epochs = pipeline, result, n_epochs
        self.X_train = np.asarray(X_train)
        self.fixed = fixed
        self._index = None
        self._lock = threading.Lock()

    @property
    def n_components(self) -> int:
        return int(np.shape(self.result.embedding)[1])

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_index"], state["_lock"] = None, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()
        LOADS["count"] += 1

    def index(self):
        """The neighbours index over the training rows, built on first use (once per process)."""
        with self._lock:
            if self._index is None:
                from gidr.transform import build_index

                self._index = build_index(self.pipeline, self.result, self.X_train)
            return self._index

    def embed(self, rows: np.ndarray, offset: int = 0) -> np.ndarray:
        """Positions of ``rows`` (global row numbers from ``offset``)."""
        from gidr.transform import transform_new_points

        out = np.empty((len(rows), self.n_components))
        todo = np.ones(len(rows), dtype=bool)
        if self.fixed is not None:
            ids, positions = self.fixed
            lo, hi = np.searchsorted(ids, [offset, offset + len(rows)])
            out[ids[lo:hi] - offset] = positions[lo:hi]
            todo[ids[lo:hi] - offset] = False
        if todo.any():
            out[todo] = transform_new_points(self.pipeline, self.result, self.X_train, rows[todo], self.n_epochs,
                                             index=self.index())
        return out


def _embed_block(block, model: FittedModel, block_info=None) -> np.ndarray:
    from gidr_dask.knn import _checked_rows

    offset = int(block_info[0]["array-location"][0][0]) if block_info else 0
    with worker_threads():
        return model.embed(_checked_rows(block, offset), offset)


def embed_blocks(X, model: FittedModel, scheduler: Any = None):
    """The lazy Dask array of ``model.embed`` over the row chunks of ``X`` (the model scattered
    to every worker once when a distributed client is current)."""
    require_dask("a distributed transform")
    X = check_dask_array(X, min_samples=1)
    client = current_client() if scheduler is None else None
    if scheduler is not None:
        with using_scheduler(scheduler) as client:
            return _map(X, model, client)
    return _map(X, model, client)


def _map(X, model, client):
    argument = model if client is None else client.scatter(model, broadcast=True, hash=False)
    return X.map_blocks(_embed_block, argument, dtype=np.float64, chunks=(X.chunks[0], (model.n_components,)),
                        meta=np.empty((0, 0)))


def transform(estimator, X, *, n_epochs: int | None = None, scheduler: Any = None):
    """Embed the rows of the Dask array ``X`` into ``estimator``'s fitted embedding, on the
    workers; returns a lazy Dask array of shape (n_rows, n_components), float64.

    ``estimator`` is a fitted :class:`gidr.GDR`, :class:`gidr.UMAP` or :class:`gidr.TSNE`;
    its training rows are gathered on the client (once) and sent to each worker with it.
    """
    if not is_dask_array(X):
        raise GidrValueError(format_error("The input X of a distributed transform", "a dask.array.Array",
                                          type(X).__name__, "Call estimator.transform(X) for in-memory data."))
    X_train = estimator._training_rows()
    if X.ndim == 2 and X.shape[1] != X_train.shape[1]:
        raise GidrValueError(f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
                             f"{X_train.shape[1]} features as input (as in fit). Pass data with the same columns "
                             "as the training data.")
    model = FittedModel(estimator.pipeline_, estimator.result_, X_train, n_epochs)
    return embed_blocks(X, model, scheduler)
