"""Contract of the neighbors stage.

Capabilities (class attributes; the pipeline and ``transform`` ask for them, never for a
stage's name):

``accepts``
    the input kinds the stage reads: ``"dense"`` (an ndarray), ``"sparse"`` (a scipy
    sparse matrix, searched without densifying), ``"precomputed"`` (a square distance
    matrix, a :class:`~gidr.types.KNNGraph` or an ``(indices, distances)`` pair),
    ``"distributed"`` (a row-chunked ``dask.array.Array``, read on the Dask workers and never
    gathered whole: the ``gidr_dask`` backend's stages).
``answers_queries``
    whether :meth:`Neighbors.build_index` returns an index that finds, for new points,
    their nearest training points (``transform`` needs it).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from gidr.stages.base import Stage
from gidr.types import Context, KNNGraph
from gidr.validation import Described, GidrValueError, format_error

__all__ = ["Neighbors", "NeighborsIndex", "INPUT_KINDS", "MAX_DENSIFIED_CELLS", "input_kind", "is_dask_array",
           "graph_without_self", "check_graph_arrays"]

#: Input kinds a neighbors stage may declare in ``accepts``.
INPUT_KINDS = ("dense", "sparse", "precomputed", "distributed")
#: A sparse input of at most this many cells is densified for a stage that reads dense data only.
MAX_DENSIFIED_CELLS = 50_000_000


def is_dask_array(X: Any) -> bool:
    """Whether ``X`` is a ``dask.array.Array`` (checked without importing dask)."""
    cls = type(X)
    return cls.__name__ == "Array" and cls.__module__.startswith("dask.array") and hasattr(X, "chunks")


def input_kind(X: Any) -> str:
    """``"distributed"`` for a Dask array, ``"sparse"`` for a scipy sparse matrix,
    ``"precomputed"`` for a KNNGraph or an ``(indices, distances)`` pair, else ``"dense"``."""
    import scipy.sparse as sp

    if is_dask_array(X):
        return "distributed"
    if sp.issparse(X):
        return "sparse"
    if isinstance(X, KNNGraph) or (isinstance(X, tuple) and len(X) == 2):
        return "precomputed"
    return "dense"


class NeighborsIndex(ABC):
    """A fitted neighbours search over the training points (from :meth:`Neighbors.build_index`).

    A query's answer for one point never depends on the other points queried with it, so
    queries split into chunks (and across workers) freely.
    """

    @abstractmethod
    def query(self, X_new: np.ndarray, n_neighbors: int) -> KNNGraph:
        """The ``n_neighbors`` nearest training points of each row of ``X_new``.

        Parameters
        ----------
        X_new : ndarray of shape (n_new, n_features)
        n_neighbors : int
            At most the number of training points.

        Returns
        -------
        KNNGraph
            ``indices`` of shape (n_new, n_neighbors) into the training points, sorted by
            increasing (true) distance, ties by index; a new point identical to a training
            point has it as its first neighbour, at distance 0.
        """


class Neighbors(Stage):
    """Find the k nearest neighbours of every point, self excluded.

    Implementations must return neighbours sorted by increasing distance, exclude the
    point itself (duplicates of a point are ordinary neighbours at distance 0), and
    report true distances (never squared, never square-rooted twice).
    """

    kind = "neighbors"
    #: Input kinds this stage reads (see the module docstring).
    accepts: ClassVar[frozenset[str]] = frozenset({"dense"})
    #: Whether :meth:`build_index` answers queries for new points.
    answers_queries: ClassVar[bool] = False
    #: Bytes per input value of a working copy the search makes (NN-descent searches a float32
    #: copy: 4); the memory estimate before a run counts it (:mod:`gidr.memory`).
    copy_bytes_per_value: ClassVar[int] = 0

    @abstractmethod
    def compute(self, X: np.ndarray, n_neighbors: int, ctx: Context) -> KNNGraph:
        """Return the kNN graph.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Or another input kind the stage declares in :attr:`accepts`.
        n_neighbors : int
            k, already clamped to ``n_samples - 1`` by the pipeline.
        ctx : Context
        """

    def select(self, X: Any, n_samples: int, registry, backend: str) -> "Neighbors":
        """The stage that computes the graph of ``X`` (``n_samples`` rows): ``self`` here;
        a selecting stage (``neighbors="auto"``) returns the stage it chose."""
        return self

    def init_data(self, X: Any, init: Stage, ctx: Context) -> Any:
        """What the init stage ``init`` gets as ``X``: the data matrix when it is an ndarray this
        stage read as dense data, else None. A stage that reads distributed data overrides it
        to hand an init that declares ``needs_data`` a reduction computed on the workers
        (the ``gidr_dask`` stages: the data's top principal-component scores)."""
        return X if isinstance(X, np.ndarray) and "dense" in self.accepts else None

    def build_index(self, X: Any, graph: KNNGraph, ctx: Context) -> NeighborsIndex:
        """An index over the training data ``X`` (whose graph is ``graph``) that answers
        queries for new points. Stages that declare ``answers_queries`` override it."""
        raise GidrValueError(format_error(
            f"The neighbors stage for transform ({self.describe()}, backend '{self.backend}')",
            "a stage that answers queries for new points", "one that does not",
            "Fit with neighbors='exact', 'nndescent' or 'pynndescent' (or 'auto') to transform new data."))


def check_graph_arrays(indices: Any, distances: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, distances)`` of a user's kNN graph as arrays: 2-D, of one shape, integer indices
    (each error names ``what``, e.g. "The precomputed kNN graph")."""
    indices, distances = np.asarray(indices), np.asarray(distances)
    if indices.ndim != 2 or indices.shape != distances.shape:
        raise GidrValueError(format_error(f"{what}'s indices and distances", "2-D arrays of the same shape",
                                          f"shapes {indices.shape} and {distances.shape}"))
    if indices.dtype.kind not in "iu":
        raise GidrValueError(format_error(f"{what}'s indices", "an integer array", f"dtype {indices.dtype}",
                                          "Convert them with indices.astype(np.int64)."))
    return indices, distances


def graph_without_self(indices: Any, distances: Any, n_samples: int, n_neighbors: int,
                       what: str = "The 'precomputed_knn' parameter") -> KNNGraph:
    """A kNN graph in umap-learn's convention (each row lists the point itself, usually first, and
    may mark missing neighbours with index -1) as gidr's: the point and the missing entries
    dropped, each row sorted by ``(distance, index)``, its first ``n_neighbors`` kept.

    Parameters
    ----------
    indices : array-like of shape (n_samples, m), int
    distances : array-like of shape (n_samples, m)
    n_samples : int
        The number of rows of the data the graph describes.
    n_neighbors : int
        Neighbours (besides the point) each row must keep.
    what : str
        How errors name the graph.

    Returns
    -------
    KNNGraph
        Of shape (n_samples, n_neighbors), new arrays (the caller's are not modified).

    Raises
    ------
    GidrValueError
        For arrays of the wrong kind or shape, indices out of ``[-1, n_samples)``, negative or
        non-finite distances of listed neighbours, a neighbour listed twice, or a row with fewer
        than ``n_neighbors`` neighbours besides the point.
    """
    indices, distances = check_graph_arrays(indices, distances, what)
    if distances.dtype.kind not in "iuf":
        raise GidrValueError(format_error(f"{what}'s distances", "a float array", f"dtype {distances.dtype}"))
    if indices.shape[0] != n_samples:
        raise GidrValueError(format_error(f"The number of rows of {what[0].lower() + what[1:]}",
                                          f"{n_samples} (the rows of X)", indices.shape[0],
                                          "Pass the graph of the data you fit."))
    indices, distances = indices.astype(np.int64), distances.astype(np.float64)
    if np.any((indices < -1) | (indices >= n_samples)):
        raise GidrValueError(format_error(f"{what}'s indices", f"in [0, {n_samples}) (or -1 for a missing "
                                          "neighbour)", "out-of-range values"))
    missing = indices < 0
    if not np.all(np.isfinite(distances[~missing])) or np.any(distances[~missing] < 0):
        raise GidrValueError(format_error(f"{what}'s distances", "finite and non-negative",
                                          "negative, NaN or infinite values"))
    ordered = np.sort(np.where(missing, -1 - np.arange(indices.shape[1]), indices), axis=1)
    repeated = np.any(ordered[:, 1:] == ordered[:, :-1], axis=1)
    if np.any(repeated):
        raise GidrValueError(format_error(f"{what}'s indices", "distinct neighbours in each row",
                                          f"a repeated neighbour in row {int(np.flatnonzero(repeated)[0])}"))
    dropped = missing | (indices == np.arange(n_samples)[:, None])
    short = np.flatnonzero((~dropped).sum(axis=1) < n_neighbors)
    if len(short):
        raise GidrValueError(format_error(
            f"The neighbours in each row of {what[0].lower() + what[1:]}",
            f"at least {n_neighbors} besides the point itself",
            Described(f"fewer in {len(short)} row(s), the first row {int(short[0])}"),
            "Compute more neighbours, or lower n_neighbors."))
    keys = np.where(dropped, np.inf, distances)
    order = np.lexsort((np.where(dropped, np.iinfo(np.int64).max, indices), keys), axis=-1)[:, :n_neighbors]
    return KNNGraph(np.take_along_axis(indices, order, axis=1), np.take_along_axis(distances, order, axis=1))
