"""The landmark route, for more points than one machine can optimize: fit on a sample, embed
the rest on the workers.

1. ``n_landmarks`` rows are drawn by global row number from the seed (by default as many as
   the memory model allows on the client, at most :data:`DEFAULT_MAX_LANDMARKS`) and
   gathered on the client;
2. the pipeline embeds them there (any preset, any stage);
3. every other row is embedded by the distributed ``transform`` against that fit
   (:func:`gidr_dask.transform.embed_blocks`); landmarks keep their fitted positions;
4. optionally (``refine_epochs``), when all points fit on the client, a final pass of a few
   epochs over all of them, from those positions, on the distributed kNN graph.

Steps 1 to 3 give the same bits whatever the chunking and the number of workers: the sample
depends on the seed and the number of rows only, the fit runs on one machine, and each
transformed point's result depends only on its own row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gidr.memory import FIXED_BYTES, available_bytes, estimate_bytes
from gidr.stages.neighbors import is_dask_array
from gidr.validation import check_dask_array, resolve_seed
from gidr_dask._runtime import require_dask, using_scheduler

__all__ = ["landmark_embedding", "LandmarkResult", "default_n_landmarks", "DEFAULT_MAX_LANDMARKS"]

#: The largest sample the route fits by default (the fit's time grows with it).
DEFAULT_MAX_LANDMARKS = 200_000
#: Share of the client's available memory the fit may take.
CLIENT_SHARE = 0.5


@dataclass
class LandmarkResult:
    """What :func:`landmark_embedding` returns.

    Attributes
    ----------
    embedding : dask.array.Array or ndarray of shape (n_samples, n_components)
        Lazy (computed on the workers when asked) unless ``refine_epochs`` or
        ``compute=True`` computed it.
    landmarks : ndarray of int64
        The sorted global row numbers of the fitted sample.
    fit : gidr.types.Result
        The pipeline's result on the landmarks.
    refined : gidr.types.Result or None
        The final pass's result over all points (``refine_epochs > 0``).
    """

    embedding: Any
    landmarks: np.ndarray
    fit: Any
    refined: Any = None


def default_n_landmarks(n_samples: int, n_features: int, n_neighbors: int, n_components: int) -> int:
    """The most rows whose fit the memory model lets the client hold (their data in float64
    plus the run's estimate within :data:`CLIENT_SHARE` of the available memory), at most
    :data:`DEFAULT_MAX_LANDMARKS` and ``n_samples``."""
    cap = min(int(n_samples), DEFAULT_MAX_LANDMARKS)
    available = available_bytes()
    if available is None:
        return cap
    per_point = estimate_bytes(1, n_features, n_neighbors, n_components) - FIXED_BYTES + 8 * n_features
    return max(2, min(cap, int(max(0, CLIENT_SHARE * available - FIXED_BYTES) // per_point)))


def landmark_embedding(X, preset: str = "gdr-umap", *, n_landmarks: int | None = None, refine_epochs: int = 0,
                       transform_epochs: int | None = None, random_state: Any = None, scheduler: Any = None,
                       compute: bool = False, **overrides: Any) -> LandmarkResult:
    """Embed a Dask array too large for one machine's optimizer (see the module docstring).

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
    preset : str
        The pipeline fitted on the landmarks (with ``overrides``, as in
        :meth:`gidr.Pipeline.from_preset`).
    n_landmarks : int, optional
        Rows fitted; default :func:`default_n_landmarks`.
    refine_epochs : int
        Epochs of a final pass over all points on the client (0: none).
    transform_epochs : int, optional
        Epochs of each transformed point; default ``transform``'s.
    random_state : int, optional
    scheduler : None, str or distributed.Client
        Where to compute (see :func:`gidr_dask._runtime.using_scheduler`).
    compute : bool
        Return the embedding computed (an ndarray on the client) instead of lazy.
    """
    require_dask("the landmark route")
    import gidr
    from gidr_dask.knn import _checked_rows
    from gidr_dask.transform import FittedModel, embed_blocks

    if not is_dask_array(X):
        import dask.array as da

        X = da.from_array(np.asarray(X), chunks=(max(1, -(-len(X) // 4)), -1))
    X = check_dask_array(X)
    n, d = X.shape
    seed = resolve_seed(0 if random_state is None else random_state)
    pipeline = gidr.Pipeline.from_preset(preset, random_state=seed, **overrides)
    k = int(pipeline.stages["similarity"].n_neighbors_required(n))
    components = int(pipeline.config["pipeline"].get("n_components", 2))
    m = int(n_landmarks) if n_landmarks else default_n_landmarks(n, d, k, components)
    m = max(2, min(m, n))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x6C616E64]))  # "land"
    chosen = np.sort(rng.choice(n, m, replace=False)).astype(np.int64)
    with using_scheduler(scheduler):
        sample = _checked_rows(X[chosen].compute(), 0, "X (the landmark sample)")
        fit = pipeline.run(sample)
        model = FittedModel(pipeline, fit, sample, transform_epochs,
                            fixed=(chosen, np.asarray(fit.embedding, dtype=np.float64)))
        embedding = embed_blocks(X, model, scheduler=None)
        refined = None
        if refine_epochs:
            start = np.asarray(embedding.compute())
            refined = pipeline.replace(init=start, n_epochs=int(refine_epochs)).run(X)
            embedding = refined.embedding
        elif compute:
            embedding = np.asarray(embedding.compute())
    return LandmarkResult(embedding=embedding, landmarks=chosen, fit=fit, refined=refined)
