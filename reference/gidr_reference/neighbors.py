"""Exact and precomputed k-nearest-neighbour graphs, in plain NumPy/SciPy.

Conventions (binding for every neighbors backend):

* the point itself is excluded *by index*; duplicates of a point are ordinary
  neighbours at distance 0;
* each row is sorted by ``(distance, index)``, so ties are broken by the smaller index
  and the graph is fully deterministic;
* distances are the true metric values (never squared, never square-rooted twice).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist

from gidr.stages.neighbors import NeighborsIndex, check_graph_arrays
from gidr.types import KNNGraph
from gidr.validation import Described, GidrValueError, format_error
from gidr_reference import distances as extra

__all__ = [
    "METRICS",
    "EXACT_METRICS",
    "prepare_metric",
    "pairwise_distances",
    "select_neighbors",
    "exact_knn",
    "knn_from_distance_matrix",
    "check_knn_graph",
    "exact_query",
    "ExactIndex",
    "nearest_columns",
    "PrecomputedQueries",
    "Conditioning",
    "euclidean_conditioning",
    "stable_euclidean",
    "restore_distances",
    "unit_rows",
]

#: Metrics every exact neighbours implementation knows (the reference, numba and Dask's).
METRICS = ("euclidean", "manhattan", "chebyshev", "cosine", "correlation")
#: Metrics of the ``exact`` neighbors stage of the reference and numba backends: also
#: umap-learn's of :mod:`gidr_reference.distances` (a function ``metric(x, y)`` too).
EXACT_METRICS = METRICS + extra.EXTRA_METRICS

_SCIPY_NAMES = {"euclidean": "euclidean", "manhattan": "cityblock", "chebyshev": "chebyshev"}

#: Memory budget (number of float64 entries) of one block of the distance matrix.
_BLOCK_ENTRIES = 2**22


def prepare_metric(X: np.ndarray, metric, metric_kwds, name: str = "The data X") -> dict:
    """The metric's parameters checked and completed (:func:`gidr_reference.distances.check_metric_kwds`)
    and the rows ``X`` checked for it (:func:`~gidr_reference.distances.check_metric_data`; a
    function metric is called on two rows)."""
    if isinstance(metric, str) and metric not in EXACT_METRICS:
        raise GidrValueError(format_error("The metric", "one of " + ", ".join(map(repr, EXACT_METRICS)) +
                                          " or a function metric(x, y) -> float", metric))
    kwds = extra.check_metric_kwds(metric, metric_kwds, "the neighbours stage")
    extra.check_metric_data(X, metric, kwds, name)
    if not isinstance(metric, str):
        extra.check_callable_metric(metric, X)
    return kwds


def pairwise_distances(A: np.ndarray, B: np.ndarray, metric="euclidean", metric_kwds=None) -> np.ndarray:
    """Distances between the rows of ``A`` and the rows of ``B``.

    ``euclidean``: ``sqrt(sum_f (a_f - b_f)^2)``; ``manhattan``: ``sum_f |a_f - b_f|``;
    ``chebyshev``: ``max_f |a_f - b_f|``; ``cosine``: ``1 - a.b / (|a| |b|)``;
    ``correlation``: cosine of the row-centred vectors. For cosine and correlation a zero
    vector is at distance 0 from another zero vector and 1 from anything else (the
    pynndescent convention), and rounding below 0 is clipped to 0. The metrics of
    :data:`gidr_reference.distances.EXTRA_METRICS` and function metrics are computed by
    :func:`gidr_reference.distances.extra_distances`.

    Parameters
    ----------
    A : ndarray of shape (n_a, n_features)
    B : ndarray of shape (n_b, n_features)
    metric : str or callable
        One of :data:`EXACT_METRICS`, or a function ``metric(x, y) -> float``.
    metric_kwds : dict, optional
        The metric's parameters (``p``, ``V``, ``VI``), checked by :func:`prepare_metric`.

    Returns
    -------
    D : ndarray of shape (n_a, n_b), float64
    """
    if not isinstance(metric, str) or metric in extra.EXTRA_METRICS:
        return extra.extra_distances(A, B, metric, extra.check_metric_kwds(metric, metric_kwds, "the metric"))
    if metric in _SCIPY_NAMES:
        return cdist(A, B, metric=_SCIPY_NAMES[metric])
    if metric not in ("cosine", "correlation"):
        raise GidrValueError(format_error("The metric", "one of " + ", ".join(map(repr, EXACT_METRICS)), metric))
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    U_a, zero_a = unit_rows(A, centred=metric == "correlation")
    U_b, zero_b = unit_rows(B, centred=metric == "correlation")
    D = 1.0 - U_a @ U_b.T
    np.clip(D, 0.0, 2.0, out=D)
    D[zero_a[:, None] != zero_b[None, :]] = 1.0
    D[zero_a[:, None] & zero_b[None, :]] = 0.0
    return D


def select_neighbors(D: np.ndarray, rows: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_neighbors`` smallest entries of each row of a distance block, self excluded.

    Row ``r`` of ``D`` holds the distances from point ``rows[r]`` to every point; column
    ``rows[r]`` (the point itself) is skipped whatever its value. Candidates are sorted by
    ``(distance, index)``.

    Parameters
    ----------
    D : ndarray of shape (n_rows, n_samples)
    rows : ndarray of shape (n_rows,), int
        The global index of each row.
    n_neighbors : int
        k, at most ``n_samples - 1``.

    Returns
    -------
    indices : ndarray of shape (n_rows, k), int64
    distances : ndarray of shape (n_rows, k), float64
    """
    D = np.array(D, dtype=np.float64)  # a copy: the self entry is overwritten below
    D[np.arange(len(rows)), rows] = np.inf
    k = n_neighbors
    # The k-th smallest value bounds the candidates; every tie at that value is kept so
    # that the tie-break by index below sees all of them.
    kth = np.partition(D, k - 1, axis=1)[:, k - 1]
    indices = np.empty((len(rows), k), dtype=np.int64)
    distances = np.empty((len(rows), k), dtype=np.float64)
    for r in range(len(rows)):
        candidates = np.flatnonzero(D[r] <= kth[r])
        candidates = candidates[candidates != rows[r]]  # by index, also when the others are inf
        order = np.lexsort((candidates, D[r, candidates]))[:k]
        indices[r] = candidates[order]
        distances[r] = D[r, candidates[order]]
    return indices, distances


def exact_knn(X: np.ndarray, n_neighbors: int, metric="euclidean", metric_kwds=None) -> KNNGraph:
    """Brute-force k nearest neighbours of every row of ``X``, self excluded.

    ``knn(i) = the k indices j != i with the smallest (d(x_i, x_j), j)``, computed in
    blocks of rows so that memory stays O(block * n_samples).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_neighbors : int
        k, in ``[1, n_samples - 1]``.
    metric : str or callable
        One of :data:`EXACT_METRICS`, or a function ``metric(x, y) -> float``.
    metric_kwds : dict, optional
        The metric's parameters (:func:`prepare_metric`).

    Returns
    -------
    KNNGraph
        int64 indices and float64 distances of shape (n_samples, k).
    """
    X = original = np.asarray(X, dtype=np.float64)
    n_samples = X.shape[0]
    _check_n_neighbors(n_neighbors, n_samples)
    metric_kwds = prepare_metric(X, metric, metric_kwds)
    conditioning = euclidean_conditioning(X) if metric == "euclidean" else None
    if conditioning is not None:
        X = conditioning.apply(X)
    block = max(1, _BLOCK_ENTRIES // max(n_samples, 1))
    indices = np.empty((n_samples, n_neighbors), dtype=np.int64)
    distances = np.empty((n_samples, n_neighbors), dtype=np.float64)
    for start in range(0, n_samples, block):
        rows = np.arange(start, min(start + block, n_samples))
        D = pairwise_distances(X[rows], X, metric, metric_kwds)
        if conditioning is not None:
            _stable_where_overflowed(D, X[rows], X)
        indices[rows], distances[rows] = select_neighbors(D, rows, n_neighbors)
    if conditioning is not None:
        restore_distances(indices, distances, original, original, conditioning.scale)
    return KNNGraph(indices, distances)


def knn_from_distance_matrix(D: np.ndarray, n_neighbors: int) -> KNNGraph:
    """k nearest neighbours read off a square distance matrix, self (the diagonal) excluded.

    Parameters
    ----------
    D : ndarray of shape (n_samples, n_samples)
        ``D[i, j]`` is the distance from i to j: finite and non-negative. The diagonal is
        ignored; the matrix need not be symmetric (row i gives the neighbours of i).
    n_neighbors : int

    Returns
    -------
    KNNGraph
    """
    D = np.asarray(D)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise GidrValueError(format_error("The precomputed distance matrix X", "a square 2-D array", D))
    D = D.astype(np.float64, copy=False)
    if not np.all(np.isfinite(D)):
        raise GidrValueError(format_error("The precomputed distance matrix X", "finite", "NaN or infinite values",
                                          "Replace them with large finite distances."))
    if np.any(D < 0):
        raise GidrValueError(format_error("The precomputed distance matrix X",
                                          "a matrix of positive or zero distances",
                                          Described(f"{int(np.count_nonzero(D < 0))} negative value(s)")))
    _check_n_neighbors(n_neighbors, D.shape[0])
    block = max(1, _BLOCK_ENTRIES // D.shape[0])
    indices = np.empty((D.shape[0], n_neighbors), dtype=np.int64)
    distances = np.empty((D.shape[0], n_neighbors), dtype=np.float64)
    for start in range(0, D.shape[0], block):
        rows = np.arange(start, min(start + block, D.shape[0]))
        indices[rows], distances[rows] = select_neighbors(D[rows], rows, n_neighbors)
    return KNNGraph(indices, distances)


def check_knn_graph(graph: Any, n_neighbors: int) -> KNNGraph:
    """Validate a user's kNN graph and return its first ``n_neighbors`` columns.

    Each row is re-sorted by ``(distance, index)`` (a stable, deterministic order) before
    the first k columns are taken. Rejected, each with its own message: mismatched or
    non-2-D shapes, non-integer indices, indices out of ``[0, n_samples)``, a point listed
    as its own neighbour, a neighbour listed twice in one row, negative or non-finite
    distances, and fewer than ``n_neighbors`` columns.

    Parameters
    ----------
    graph : KNNGraph or tuple (indices, distances)
        Both arrays of shape (n_samples, m).
    n_neighbors : int
        k required by the similarity stage.

    Returns
    -------
    KNNGraph
        A new graph (the caller's arrays are not modified) of shape (n_samples, k).
    """
    if isinstance(graph, tuple) and len(graph) == 2:
        graph = KNNGraph(np.asarray(graph[0]), np.asarray(graph[1]))
    what = "The precomputed kNN graph"
    if not isinstance(graph, KNNGraph):
        raise GidrValueError(format_error(what, "a KNNGraph, an (indices, distances) tuple or a square distance "
                                          "matrix", type(graph).__name__))
    indices, distances = check_graph_arrays(graph.indices, graph.distances, what)
    n_samples, n_columns = indices.shape
    _check_graph_values(indices.astype(np.int64), distances.astype(np.float64), what)
    if n_columns < n_neighbors:
        raise GidrValueError(format_error(
            f"The number of neighbour columns of {what[0].lower() + what[1:]}",
            f"at least {n_neighbors} (the n_neighbors of the similarity stage, or floor(3 * perplexity) for "
            "similarity 'tsne')", n_columns,
            "Compute more neighbours, or lower the similarity's 'n_neighbors' (umap) or 'perplexity' (tsne)."))
    indices = indices.astype(np.int64)
    distances = distances.astype(np.float64)
    order = np.lexsort((indices, distances), axis=-1)[:, :n_neighbors]
    return KNNGraph(np.take_along_axis(indices, order, axis=1).copy(),
                    np.take_along_axis(distances, order, axis=1).copy())


def _check_graph_values(indices: np.ndarray, distances: np.ndarray, what: str) -> None:
    n_samples = indices.shape[0]
    if np.any((indices < 0) | (indices >= n_samples)):
        bad = int(np.flatnonzero(np.any((indices < 0) | (indices >= n_samples), axis=1))[0])
        raise GidrValueError(format_error(f"{what}'s indices", f"in [0, {n_samples}) (n_samples)",
                                          f"out-of-range values, the first in row {bad}",
                                          "Missing neighbours (-1) are not supported."))
    is_self = indices == np.arange(n_samples)[:, None]
    if np.any(is_self):
        bad = int(np.flatnonzero(is_self.any(axis=1))[0])
        raise GidrValueError(format_error(f"{what}'s indices", "neighbours other than the point itself",
                                          f"row {bad} listing point {bad} itself",
                                          "Drop the column that holds each point itself (often the first)."))
    ordered = np.sort(indices, axis=1)
    repeated = np.any(ordered[:, 1:] == ordered[:, :-1], axis=1)
    if np.any(repeated):
        raise GidrValueError(format_error(f"{what}'s indices", "distinct neighbours in each row",
                                          f"a repeated neighbour in row {int(np.flatnonzero(repeated)[0])}"))
    if not np.all(np.isfinite(distances)) or np.any(distances < 0):
        raise GidrValueError(format_error(f"{what}'s distances", "finite and non-negative",
                                          "negative, NaN or infinite values"))


def _check_n_neighbors(n_neighbors: int, n_samples: int) -> None:
    if not 1 <= n_neighbors <= n_samples - 1:
        raise GidrValueError(format_error("The number of neighbours", f"an int in [1, {n_samples - 1}] "
                                          "(n_samples - 1)", n_neighbors))


# ---------------------------------------------------------------------- queries (transform)
def exact_query(X_train: np.ndarray, X_new: np.ndarray, n_neighbors: int, metric="euclidean",
                metric_kwds=None) -> KNNGraph:
    """The ``n_neighbors`` nearest training rows of every row of ``X_new``, by brute force.

    ``knn(q) = the k indices j with the smallest (d(x_q, x_j), j)``: nothing is excluded (a
    new point equal to a training point has it first, at distance 0); blocks of query rows
    keep memory at O(block * n_train).

    Parameters
    ----------
    X_train : ndarray of shape (n_train, n_features)
    X_new : ndarray of shape (n_new, n_features)
    n_neighbors : int
        k, in ``[1, n_train]``.
    metric : str or callable
        One of :data:`EXACT_METRICS`, or a function ``metric(x, y) -> float``.
    metric_kwds : dict, optional
        The metric's parameters (:func:`prepare_metric`).

    Returns
    -------
    KNNGraph
        Indices into the training rows and distances, of shape (n_new, k).
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    X_new = np.asarray(X_new, dtype=np.float64)
    n_train = X_train.shape[0]
    if X_new.ndim != 2 or X_new.shape[1] != X_train.shape[1]:
        raise GidrValueError(format_error("The query points", f"a 2-D array with {X_train.shape[1]} columns (as the "
                                          "training data)", f"shape {X_new.shape}"))
    if not 1 <= n_neighbors <= n_train:
        raise GidrValueError(format_error("The number of neighbours of a query", f"an int in [1, {n_train}] "
                                          "(the number of training points)", n_neighbors))
    metric_kwds = prepare_metric(X_new, metric, metric_kwds, "The query points")
    original_train, original_new = X_train, X_new
    conditioning = euclidean_conditioning(X_train, X_new) if metric == "euclidean" else None
    if conditioning is not None:
        X_train, X_new = conditioning.apply(X_train), conditioning.apply(X_new)
    block = max(1, _BLOCK_ENTRIES // max(n_train, 1))
    indices = np.empty((len(X_new), n_neighbors), dtype=np.int64)
    distances = np.empty((len(X_new), n_neighbors), dtype=np.float64)
    for start in range(0, len(X_new), block):
        D = pairwise_distances(X_new[start:start + block], X_train, metric, metric_kwds)
        if conditioning is not None:
            _stable_where_overflowed(D, X_new[start:start + block], X_train)
        indices[start:start + block], distances[start:start + block] = nearest_columns(D, n_neighbors)
    if conditioning is not None:
        restore_distances(indices, distances, original_new, original_train, conditioning.scale)
    return KNNGraph(indices, distances)


def nearest_columns(D: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_neighbors`` smallest entries of each row of a query-by-training distance block,
    sorted by ``(distance, index)``; nothing is excluded.

    Returns
    -------
    indices : ndarray of shape (n_rows, k), int64
    distances : ndarray of shape (n_rows, k), float64
    """
    kth = np.partition(D, n_neighbors - 1, axis=1)[:, n_neighbors - 1]
    indices = np.empty((len(D), n_neighbors), dtype=np.int64)
    distances = np.empty((len(D), n_neighbors), dtype=np.float64)
    for r in range(len(D)):
        candidates = np.flatnonzero(D[r] <= kth[r])
        order = np.lexsort((candidates, D[r, candidates]))[:n_neighbors]
        indices[r] = candidates[order]
        distances[r] = D[r, candidates[order]]
    return indices, distances


class PrecomputedQueries(NeighborsIndex):
    """Queries given as distances: each query row holds its distances to every training point
    (umap-learn's ``transform`` after ``metric="precomputed"``); its k smallest are its neighbours.
    Infinite entries (distances a sparse matrix did not store) are never chosen."""

    def query(self, X_new: np.ndarray, n_neighbors: int) -> KNNGraph:
        D = np.asarray(X_new, dtype=np.float64)
        short = np.flatnonzero(np.count_nonzero(np.isfinite(D), axis=1) < n_neighbors)
        if len(short):
            raise GidrValueError(format_error(
                "The distances of each new point to the training points", f"at least {n_neighbors} finite values "
                "per row (the fit's number of neighbours)", Described(f"fewer in row {int(short[0])}"),
                "Store more distances per row of the sparse matrix."))
        return KNNGraph(*nearest_columns(D, n_neighbors))


class ExactIndex(NeighborsIndex):
    """Brute-force queries against the training rows with a backend's ``query(X_train, X_new,
    k, metric, metric_kwds)`` function (:func:`exact_query` here)."""

    def __init__(self, X_train: np.ndarray, metric, query_function=exact_query, metric_kwds=None):
        self.X_train, self.metric, self._query = X_train, metric, query_function
        self.metric_kwds = dict(metric_kwds or {})

    def query(self, X_new: np.ndarray, n_neighbors: int) -> KNNGraph:
        return self._query(self.X_train, X_new, n_neighbors, self.metric, self.metric_kwds)


# ---------------------------------------------------------------------- extreme values
#: Float64 Euclidean paths use data as given while its largest magnitude lies in
#: ``[2**-SAFE_EXPONENT_FLOAT64, 2**SAFE_EXPONENT_FLOAT64]``: then no square, sum of
#: squares or Gram entry over- or underflows (for fewer than 2**400 features).
SAFE_EXPONENT_FLOAT64 = 250
#: Rows whose largest magnitude lies outside ``[2**-UNIT_ROW_EXPONENT, 2**UNIT_ROW_EXPONENT]``
#: are scaled by a power of two before their norm is taken (cosine, correlation).
UNIT_ROW_EXPONENT = 400


class Conditioning:
    """``X -> (X - centre) * scale``: per-column (lower) medians, one power-of-two scale.

    A common shift and one global scale keep every Euclidean distance ratio, hence the
    neighbour order; the scale is a power of two, so that ``distance / scale`` gives back
    the caller's units without rounding. The scale is ``2**-e`` with ``2**(e-1) <= q < 2**e``,
    ``q`` the 99th percentile of the rows' largest centred magnitude (robust to up to 1 %
    outlier rows, which may stay huge after scaling; the kernels see them clipped to
    ``+-clip`` and their true distances are recomputed by :func:`stable_euclidean`).
    """

    def __init__(self, X: np.ndarray, clip: float):
        X = np.asarray(X, dtype=np.float64)
        # the lower median: an element of each column, so never an overflowed average
        self.centre = np.quantile(X, 0.5, axis=0, method="lower")
        with np.errstate(over="ignore"):
            spread = np.abs(X * 0.5 - self.centre * 0.5).max(axis=1) * 2.0
        q = float(np.percentile(spread, 99, method="lower")) if spread.size else 0.0
        q = q if q > 0 else float(spread.max(initial=0.0))
        self.scale = math.ldexp(1.0, -math.frexp(q)[1]) if q > 0 else 1.0
        self.clip = float(clip)

    def apply(self, X: np.ndarray) -> np.ndarray:
        """``(X - centre) * scale`` in float64 (by halves, so that no difference overflows),
        clipped to ``+-2**600``: finite, so no kernel meets ``inf - inf``; squares of such
        entries overflow to inf and :func:`restore_distances` recomputes them."""
        halves = np.asarray(X, dtype=np.float64) * 0.5 - self.centre * 0.5
        with np.errstate(over="ignore"):
            return np.clip(halves * (2.0 * self.scale), -2.0**600, 2.0**600)

    def clipped(self, Xs: np.ndarray) -> np.ndarray:
        """Conditioned rows with every entry clipped to ``[-clip, clip]``."""
        return np.clip(Xs, -self.clip, self.clip)


def euclidean_conditioning(X: np.ndarray, *others: np.ndarray, safe_exponent: int = SAFE_EXPONENT_FLOAT64,
                           offset_exponent: int | None = None, clip: float = 2.0**400) -> Conditioning | None:
    """The :class:`Conditioning` of ``X`` when its values demand one, else None (data used as given).

    The rule: condition when the largest magnitude of ``X`` (or of ``others``, e.g. query
    rows) is outside ``[2**-safe_exponent, 2**safe_exponent]`` (and not 0), or, with
    ``offset_exponent``, when it exceeds ``2**offset_exponent`` times the widest column
    range of ``X`` (a common offset that would eat the float32 digits of the differences).
    Ordinary data (digits, Fashion-MNIST) is never conditioned, so its results keep their bits.
    """
    X = np.asarray(X)
    if X.size == 0:
        return None
    lo, hi = X.min(axis=0).astype(np.float64), X.max(axis=0).astype(np.float64)
    largest = max(float(np.abs(lo).max()), float(np.abs(hi).max()),
                  *(float(np.abs(np.asarray(o, dtype=np.float64)).max(initial=0.0)) for o in others))
    if largest == 0:
        return None
    extreme = not 2.0**-safe_exponent <= largest <= 2.0**safe_exponent
    if offset_exponent is not None and not extreme:
        with np.errstate(over="ignore"):
            width = float((hi - lo).max())
        extreme = largest > 2.0**offset_exponent * width
    return Conditioning(X, clip) if extreme else None


def stable_euclidean(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Row-wise ``|a_r - b_r|`` without intermediate over- or underflow.

    ``d = 2 m sqrt(sum_f (h_f / m)^2)`` with ``h = a/2 - b/2`` and ``m`` the power of two
    just above ``max_f |h_f|``: inf only when the distance itself exceeds float64.
    """
    H = np.asarray(A, dtype=np.float64) * 0.5 - np.asarray(B, dtype=np.float64) * 0.5
    largest = np.abs(H).max(axis=1) if H.shape[1] else np.zeros(len(H))
    exponent = np.frexp(largest)[1]
    scaled = np.ldexp(H, -exponent[:, None])
    with np.errstate(over="ignore"):
        return np.ldexp(2.0 * np.sqrt(np.einsum("ij,ij->i", scaled, scaled)), exponent)


def _stable_where_overflowed(D: np.ndarray, A: np.ndarray, B: np.ndarray) -> None:
    """Replace the infinite entries of a Euclidean block ``D`` (an overflowed square) by
    :func:`stable_euclidean` of their rows, in place."""
    rows, cols = np.nonzero(np.isinf(D))
    if rows.size:
        D[rows, cols] = stable_euclidean(A[rows], B[cols])


def restore_distances(indices: np.ndarray, distances: np.ndarray, X_query: np.ndarray, X_train: np.ndarray,
                      scale: float, sort: bool = True) -> np.ndarray:
    """Distances of conditioned rows back in the caller's units, in place.

    ``distances / scale``; entries that are not finite or above ``2**500`` in the conditioned
    units (a square overflowed in the kernels, or a clipped row) are recomputed from the caller's rows by :func:`stable_euclidean` and their rows re-sorted
    by ``(distance, index)``. Raises :class:`GidrValueError` when a true distance exceeds float64.
    """
    rows, cols = np.nonzero(~(distances <= 2.0**500))  # inf, or involving a row clipped at 2**600
    with np.errstate(over="ignore"):
        distances /= scale
    if rows.size:
        distances[rows, cols] = stable_euclidean(X_query[rows], X_train[indices[rows, cols]])
        if not np.all(np.isfinite(distances[rows, cols])):
            raise GidrValueError(
                "The data X has Euclidean distances beyond the float64 range (about 1.8e308), so they "
                "cannot be returned; rescale your data (e.g. divide X by its largest absolute value).")
        for r in np.unique(rows) if sort else ():
            order = np.lexsort((indices[r], distances[r]))
            indices[r], distances[r] = indices[r][order], distances[r][order]
    return distances


def unit_rows(X: np.ndarray, centred: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rows divided by their norm (zero rows stay zero), centred first for correlation.

    Rows of extreme magnitude (see :data:`UNIT_ROW_EXPONENT`) are first scaled by a power of
    two, so that their norm neither overflows nor underflows; other rows are untouched.

    Returns
    -------
    U : ndarray of shape (n_samples, n_features), float64
    zero : ndarray of shape (n_samples,), bool
    """
    X = np.asarray(X, dtype=np.float64)
    if centred:
        X = X - X.mean(axis=1, keepdims=True)
    largest = np.abs(X).max(axis=1) if X.size else np.zeros(len(X))
    extreme = (largest > 2.0**UNIT_ROW_EXPONENT) | ((largest > 0) & (largest < 2.0**-UNIT_ROW_EXPONENT))
    if extreme.any():
        X = X.copy()
        X[extreme] = np.ldexp(X[extreme], -np.frexp(largest[extreme])[1][:, None])
    norms = np.linalg.norm(X, axis=1)
    zero = norms == 0
    return X / np.where(zero, 1.0, norms)[:, None], zero
