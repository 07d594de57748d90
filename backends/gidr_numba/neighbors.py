"""Exact k nearest neighbours, and the distance and heap kernels the kNN code shares.

The exact graph follows the reference's conventions (:mod:`gidr_reference.neighbors`):
the point itself is excluded by index, each row is sorted by ``(distance, index)``, and
distances are true metric values. It is computed in blocks of rows, so memory stays
O(block * n_samples):

* ``euclidean``: squared distances from BLAS, ``|x_i|^2 + |x_j|^2 - 2 x_i . x_j``,
  select each row's candidates; since that formula loses digits to cancellation, every
  candidate within its rounding bound of the k-th one is recomputed exactly as
  ``sum_f (x_if - x_jf)^2`` (the reference's value) before the final choice. The result
  is the reference's graph, found at BLAS speed. Data of extreme magnitude is first
  conditioned as in the reference (:func:`gidr_reference.neighbors.euclidean_conditioning`:
  median-centred, scaled by a power of two, clipped for the Gram product only) and its
  distances restored in the caller's units (:func:`~gidr_reference.neighbors.restore_distances`).
* ``cosine`` and ``correlation``: ``1 - u_i . u_j`` of unit (centred) rows from BLAS,
  clipped to [0, 2], zero rows at distance 0 from zero rows and 1 from the others:
  the reference's formula, operation for operation.
* ``manhattan`` and ``chebyshev``: SciPy's ``cdist`` per block, as in the reference.
* ``seuclidean``, ``mahalanobis`` and ``hellinger``: the Euclidean path on mapped rows,
  :func:`gidr_reference.distances.euclidean_rows` (``x / sqrt(V)``, ``x W`` with ``W W^T = VI``,
  ``[sqrt(x / |x|_1), 0] / sqrt(2)``): the reference's formulas to rounding (hellinger's bit
  for bit: the reference measures the same rows).
* ``jaccard`` and ``haversine``: the reference's NumPy formulas per block (jaccard's shared
  counts from a BLAS product of 0/1 rows, exact).
* ``minkowski`` and function metrics (``@numba.njit`` ``metric(x, y)``): a parallel numba
  kernel per block (:func:`minkowski_block`, :func:`function_block`).

Each row's k best are chosen in parallel (numba ``prange`` over the rows of a block)
with a bounded max-heap ordered by ``(distance, index)``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload
from scipy.spatial.distance import cdist

from gidr.types import KNNGraph
from gidr.validation import GidrValueError, format_error
from gidr_reference.distances import EUCLIDEAN_MAPPED, euclidean_rows, extra_distances
from gidr_reference.neighbors import (
    EXACT_METRICS,
    METRICS,
    euclidean_conditioning,
    prepare_metric,
    restore_distances,
    unit_rows,
)

__all__ = ["METRICS", "EXACT_METRICS", "exact_knn", "check_n_neighbors", "unit_rows", "minkowski_block",
           "function_block"]

#: Memory budget (number of float64 entries) of one block of the distance matrix
#: (the reference's value, so that both backends hand BLAS the same blocks).
BLOCK_ENTRIES = 2**22
_UNIT_ROUNDOFF = 2.0**-53


# ---------------------------------------------------------------------- distances
@njit(cache=True, fastmath={"reassoc"})
def squared_distance(x, y):
    """``sum_f (x_f - y_f)^2`` of float32 rows (the summation order is left to LLVM's vectorizer).

    The only flag is ``reassoc``: no NaN or infinity assumptions. The value is a fixed
    function of the two rows, and symmetric bit for bit since ``(a - b)^2 == (b - a)^2``.
    """
    total = np.float32(0.0)
    for f in range(x.shape[0]):
        diff = x[f] - y[f]
        total += diff * diff
    return total


@njit(cache=True, fastmath={"reassoc"})
def four_squared_distances(x, y0, y1, y2, y3):
    """Squared distances from float32 row ``x`` to four rows at once (``x`` is read once)."""
    s0 = s1 = s2 = s3 = np.float32(0.0)
    for f in range(x.shape[0]):
        v = x[f]
        t0 = v - y0[f]
        t1 = v - y1[f]
        t2 = v - y2[f]
        t3 = v - y3[f]
        s0 += t0 * t0
        s1 += t1 * t1
        s2 += t2 * t2
        s3 += t3 * t3
    return s0, s1, s2, s3


@njit(cache=True)
def distances_from(data, p, members, first, stop, out):
    """``out[b] = |x_p - x_members[b]|^2`` for ``b`` in ``[first, stop)``, four at a time."""
    b = first
    while b + 4 <= stop:
        out[b], out[b + 1], out[b + 2], out[b + 3] = four_squared_distances(
            data[p], data[members[b]], data[members[b + 1]], data[members[b + 2]], data[members[b + 3]])
        b += 4
    while b < stop:
        out[b] = squared_distance(data[p], data[members[b]])
        b += 1


@njit(cache=True, fastmath={"reassoc"})
def dot(x, y):
    """``sum_f x_f y_f`` of float32 rows (summation order left to the vectorizer)."""
    total = np.float32(0.0)
    for f in range(x.shape[0]):
        total += x[f] * y[f]
    return total


@njit(cache=True)
def exact_squared_distance(x, y):
    """``sum_f (x_f - y_f)^2`` in float64, summed in feature order (SciPy's ``cdist`` value)."""
    total = 0.0
    for f in range(x.shape[0]):
        diff = np.float64(x[f]) - np.float64(y[f])
        total += diff * diff
    return total


@njit(cache=True)
def cosine_from_dot(dot_value, zero_i, zero_j):
    """The reference's cosine distance of unit (or zero) rows from their dot product."""
    if zero_i or zero_j:
        return 0.0 if zero_i == zero_j else 1.0
    return min(max(1.0 - dot_value, 0.0), 2.0)


# ---------------------------------------------------------------------- heaps
@njit(cache=True)
def comes_after(key_a, index_a, key_b, index_b):
    """Whether ``(key_a, index_a)`` comes after ``(key_b, index_b)`` (the heaps' total order)."""
    return key_a > key_b or (key_a == key_b and index_a > index_b)


@njit(cache=True)
def heap_push(keys, index, key, j):
    """Offer ``(key, j)`` to a full bounded max-heap (root = worst); return True if kept.

    Rejected when not better than the root or when ``j`` is already in the heap. Empty
    slots hold a sentinel that comes after every real entry. The heap ends up holding
    the k smallest distinct offers, whatever the order of the offers.
    """
    if not comes_after(keys[0], index[0], key, j):
        return False
    for m in range(index.shape[0]):
        if index[m] == j:
            return False
    size, pos = index.shape[0], 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and comes_after(keys[child + 1], index[child + 1], keys[child], index[child]):
            child += 1
        if not comes_after(keys[child], index[child], key, j):
            break
        keys[pos] = keys[child]
        index[pos] = index[child]
        pos = child
    keys[pos] = key
    index[pos] = j
    return True


@njit(cache=True)
def heap_push_flagged(keys, index, flag, key, j, mark=1):
    """:func:`heap_push` for NN-descent's heaps, which carry a flag per entry: ``mark`` (non-zero:
    "new") for the entry kept."""
    if not comes_after(keys[0], index[0], key, j):
        return False
    for m in range(index.shape[0]):
        if index[m] == j:
            return False
    size, pos = index.shape[0], 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and comes_after(keys[child + 1], index[child + 1], keys[child], index[child]):
            child += 1
        if not comes_after(keys[child], index[child], key, j):
            break
        keys[pos] = keys[child]
        index[pos] = index[child]
        flag[pos] = flag[child]
        pos = child
    keys[pos] = key
    index[pos] = j
    flag[pos] = mark
    return True


@njit(cache=True)
def sort_pairs(keys, index):
    """Sort ``(keys, index)`` in place by ``(key, index)`` (insertion sort: k is small)."""
    for m in range(1, keys.shape[0]):
        key, j = keys[m], index[m]
        pos = m
        while pos > 0 and comes_after(keys[pos - 1], index[pos - 1], key, j):
            keys[pos] = keys[pos - 1]
            index[pos] = index[pos - 1]
            pos -= 1
        keys[pos] = key
        index[pos] = j


# ---------------------------------------------------------------------- exact kNN kernels
# One set of kernels serves the fit (query rows = the training rows, each point skipped as its
# own neighbour: ``exclude_self``) and transform's queries (new rows against the training rows).
@njit(cache=True, parallel=True)
def _select_euclidean(X_train, X_new, gram, sq_train, sq_new, start, exclude_self, out_index, out_dist):
    """k nearest training rows of query rows ``start..start+len(gram)-1`` from their Gram block,
    refined exactly.

    Pass 1 keeps the k best approximate squared distances ``a_ij``; every j with
    ``a_ij <= a_(k) + 2 B_i`` (``B_i`` bounds the rounding error of ``a_i.``) may belong
    to the exact k best, so pass 2 recomputes those exactly and keeps the k best.
    """
    n, n_features = X_train.shape
    k = out_index.shape[1]
    gamma = 4.0 * (n_features + 4) * _UNIT_ROUNDOFF
    largest = sq_train.max()
    for r in prange(gram.shape[0]):
        i = start + r
        keys = np.full(k, np.inf)
        index = np.full(k, n, dtype=np.int64)
        for j in range(n):
            if not (exclude_self and j == i):
                heap_push(keys, index, sq_new[i] + sq_train[j] - 2.0 * gram[r, j], j)
        limit = keys[0] + 2.0 * gamma * (sq_new[i] + largest)
        keys[:] = np.inf
        index[:] = n
        for j in range(n):
            if not (exclude_self and j == i) and sq_new[i] + sq_train[j] - 2.0 * gram[r, j] <= limit:
                heap_push(keys, index, exact_squared_distance(X_new[i], X_train[j]), j)
        sort_pairs(keys, index)
        for m in range(k):
            out_index[i, m] = index[m]
            out_dist[i, m] = math.sqrt(keys[m])


@njit(cache=True, parallel=True)
def _select_cosine(gram, zero_train, zero_new, start, exclude_self, out_index, out_dist):
    """k nearest by cosine distance ``1 - u_i . u_j`` of unit rows (see :func:`cosine_from_dot`)."""
    n = gram.shape[1]
    k = out_index.shape[1]
    for r in prange(gram.shape[0]):
        i = start + r
        keys = np.full(k, np.inf)
        index = np.full(k, n, dtype=np.int64)
        for j in range(n):
            if not (exclude_self and j == i):
                heap_push(keys, index, cosine_from_dot(gram[r, j], zero_new[i], zero_train[j]), j)
        sort_pairs(keys, index)
        out_index[i] = index
        out_dist[i] = keys


@njit(cache=True, parallel=True)
def _select_rows(D, start, exclude_self, out_index, out_dist):
    """k smallest entries of each row of a query-by-training distance block."""
    n = D.shape[1]
    k = out_index.shape[1]
    for r in prange(D.shape[0]):
        i = start + r
        keys = np.full(k, np.inf)
        index = np.full(k, n, dtype=np.int64)
        for j in range(n):
            if not (exclude_self and j == i):
                heap_push(keys, index, D[r, j], j)
        sort_pairs(keys, index)
        out_index[i] = index
        out_dist[i] = keys


@njit(cache=True, parallel=True)
def minkowski_block(A, B, p, out):
    """``out[r, j] = (sum_f |a_rf - b_jf|^p)^(1/p)``, rows of ``A`` in parallel."""
    inverse = 1.0 / p
    for r in prange(A.shape[0]):
        for j in range(B.shape[0]):
            total = 0.0
            for f in range(A.shape[1]):
                total += abs(A[r, f] - B[j, f]) ** p
            out[r, j] = total ** inverse


def distance_of(value):
    """The distance a jitted function metric returned: the value, or the first entry of a
    ``(distance, gradient)`` tuple (umap-learn's gradient metrics); resolved by type at compile time."""
    return value


@overload(distance_of)
def _distance_of(value):
    if isinstance(value, types.BaseTuple):
        return lambda value: value[0]
    return lambda value: value


@njit(cache=True, parallel=True)
def function_block(metric, A, B, out):
    """``out[r, j] = metric(a_r, b_j)`` (its distance) for a jitted function metric, rows of ``A``
    in parallel."""
    for r in prange(A.shape[0]):
        for j in range(B.shape[0]):
            out[r, j] = distance_of(metric(A[r], B[j]))


def _distance_block(A: np.ndarray, B: np.ndarray, metric, kwds: dict) -> np.ndarray:
    """The distance block of the metrics that neither BLAS path serves (see the module docstring)."""
    if metric in ("manhattan", "chebyshev"):
        return cdist(A, B, metric="cityblock" if metric == "manhattan" else metric)
    if metric in ("jaccard", "haversine"):
        return extra_distances(A, B, metric, kwds)
    out = np.empty((A.shape[0], B.shape[0]), dtype=np.float64)
    if metric == "minkowski":
        minkowski_block(A, B, float(kwds["p"]), out)
    else:
        function_block(metric, A, B, out)
    return out


def nearest_rows(X_train: np.ndarray, X_new: np.ndarray, n_neighbors: int, metric,
                 exclude_self: bool, metric_kwds: dict | None = None) -> KNNGraph:
    """The ``n_neighbors`` nearest rows of ``X_train`` for every row of ``X_new``, by blocks of
    BLAS products (O(block * n_train) memory), ties broken by index.

    The fit passes ``X_new = X_train`` and ``exclude_self=True`` (row i is not its own
    neighbour); transform's queries pass new rows and False. Both arrays are float64 and
    C-contiguous; the metric is one of :data:`EXACT_METRICS` or a jitted function, and
    ``metric_kwds`` its checked parameters (:func:`gidr_reference.neighbors.prepare_metric`,
    by the callers).
    """
    kwds = metric_kwds or {}
    same = X_new is X_train
    if metric in EUCLIDEAN_MAPPED:
        X_train = euclidean_rows(X_train, metric, kwds)
        X_new = X_train if same else euclidean_rows(X_new, metric, kwds)
        metric = "euclidean"
    n_train, n_new = X_train.shape[0], X_new.shape[0]
    indices = np.empty((n_new, n_neighbors), dtype=np.int64)
    distances = np.empty((n_new, n_neighbors), dtype=np.float64)
    block = max(1, BLOCK_ENTRIES // n_train)
    original_train, original_new, conditioning = X_train, X_new, None
    if metric in ("cosine", "correlation"):
        U_train, zero_train = unit_rows(X_train, centred=metric == "correlation")
        U_new, zero_new = (U_train, zero_train) if same else unit_rows(X_new, centred=metric == "correlation")
    elif metric == "euclidean":
        conditioning = euclidean_conditioning(X_train) if same else euclidean_conditioning(X_train, X_new)
        if conditioning is not None:  # exact rows conditioned; the Gram rows also clipped
            X_train = conditioning.apply(X_train)
            X_new = X_train if same else conditioning.apply(X_new)
            G_train = conditioning.clipped(X_train)
            G_new = G_train if same else conditioning.clipped(X_new)
        else:
            G_train, G_new = X_train, X_new
        sq_train = np.einsum("ij,ij->i", G_train, G_train)
        sq_new = sq_train if same else np.einsum("ij,ij->i", G_new, G_new)
    for start in range(0, n_new, block):
        stop = min(start + block, n_new)
        if metric == "euclidean":
            _select_euclidean(X_train, X_new, G_new[start:stop] @ G_train.T, sq_train, sq_new, start, exclude_self,
                              indices, distances)
        elif metric in ("cosine", "correlation"):
            _select_cosine(U_new[start:stop] @ U_train.T, zero_train, zero_new, start, exclude_self, indices,
                           distances)
        else:
            _select_rows(_distance_block(X_new[start:stop], X_train, metric, kwds), start, exclude_self, indices,
                         distances)
    if conditioning is not None:
        restore_distances(indices, distances, original_new, original_train, conditioning.scale)
    return KNNGraph(indices, distances)


def check_n_neighbors(n_neighbors: int, n_samples: int) -> None:
    """Raise :class:`GidrValueError` unless ``1 <= n_neighbors <= n_samples - 1``."""
    if not 1 <= n_neighbors <= n_samples - 1:
        raise GidrValueError(format_error("The number of neighbours", f"an int in [1, {n_samples - 1}] "
                                          "(n_samples - 1)", n_neighbors))


def exact_knn(X: np.ndarray, n_neighbors: int, metric="euclidean", metric_kwds=None) -> KNNGraph:
    """Brute-force k nearest neighbours of every row of ``X``, self excluded.

    ``knn(i) = the k indices j != i with the smallest (d(x_i, x_j), j)``, as in
    :func:`gidr_reference.neighbors.exact_knn` (see the module docstring for how).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_neighbors : int
        k, in ``[1, n_samples - 1]``.
    metric : str or callable
        One of :data:`EXACT_METRICS`, or a numba-jitted function ``metric(x, y) -> float``.
    metric_kwds : dict, optional
        The metric's parameters (``p``, ``V``, ``VI``).

    Returns
    -------
    KNNGraph
        int64 indices and float64 distances of shape (n_samples, k).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    kwds = prepare_metric(X, metric, metric_kwds)
    check_n_neighbors(n_neighbors, X.shape[0])
    return nearest_rows(X, X, n_neighbors, metric, exclude_self=True, metric_kwds=kwds)
