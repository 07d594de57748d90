"""Queries for new points: exact (BLAS blocks) and on the NN-descent graph.

Both answer, for each new point, its ``k`` nearest *training* points, sorted by
``(distance, index)``, true distances; nothing is excluded (a new point equal to a
training point has it first, at distance 0). A point's answer never depends on the other
points queried with it: every search runs on its own, so queries split into chunks and
threads freely, and the bits do not depend on the number of threads.

Exact (:func:`exact_query`)
    The blocks of :func:`gidr_numba.neighbors.exact_knn`, with the query rows against the
    training rows: Euclidean from BLAS products, each row's candidates within the rounding
    bound of its k-th refined exactly (``sum_f (x_f - y_f)^2``, SciPy's ``cdist`` value);
    cosine and correlation from BLAS products of unit rows; Manhattan and Chebyshev from
    ``cdist``; the other metrics of :data:`~gidr_reference.neighbors.EXACT_METRICS` and jitted
    function metrics as in the fit. The same graph as :func:`gidr_reference.neighbors.exact_query`.

On the NN-descent graph (:class:`GraphSearch`), as pynndescent's ``query`` does it:
    1. the query descends the first random-projection tree of the fit's forest (rebuilt
       from the fit's seed: :func:`gidr_numba.nndescent.first_tree_levels`); the points of
       its leaf are the first candidates;
    2. best-first search on the search graph (the fit's kNN graph plus its reverse edges,
       at most ``2 k`` per point, nearest first): the nearest unexpanded candidate is
       expanded while its squared distance is below ``(1 + epsilon)`` times the k-th best
       found so far; each training point is evaluated at most once (a visited set);
    3. the k best get their true float64 distances, sorted by ``(distance, index)``.
    The search distance is the float32 squared Euclidean distance of the fit's search rows
    (unit rows for cosine), as in :mod:`gidr_numba.nndescent`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from gidr.stages.neighbors import NeighborsIndex
from gidr.types import KNNGraph
from gidr.validation import GidrValueError, format_error
from gidr_numba.neighbors import (cosine_from_dot, dot, exact_squared_distance, heap_push, nearest_rows, sort_pairs,
                                  squared_distance, unit_rows)
from gidr_reference.neighbors import prepare_metric, restore_distances

__all__ = ["exact_query", "check_query", "search_graph", "GraphSearch", "DEFAULT_EPSILON", "QUERY_BLOCK"]

#: Search bound of :class:`GraphSearch`: candidates within ``(1 + epsilon)`` times the
#: squared distance of the current k-th best are expanded.
DEFAULT_EPSILON = 0.1
#: Queries per task of the parallel search (each task allocates one visited set).
QUERY_BLOCK = 128


def check_query(X_new: np.ndarray, n_train: int, n_features: int, n_neighbors: int) -> None:
    """Raise :class:`GidrValueError` unless ``X_new`` has ``n_features`` columns and
    ``1 <= n_neighbors <= n_train``."""
    if X_new.ndim != 2 or X_new.shape[1] != n_features:
        raise GidrValueError(format_error("The query points", f"a 2-D array with {n_features} columns (as the "
                                          "training data)", f"shape {X_new.shape}"))
    if not 1 <= n_neighbors <= n_train:
        raise GidrValueError(format_error("The number of neighbours of a query", f"an int in [1, {n_train}] "
                                          "(the number of training points)", n_neighbors))


# ---------------------------------------------------------------------- exact
def exact_query(X_train: np.ndarray, X_new: np.ndarray, n_neighbors: int, metric="euclidean",
                metric_kwds=None) -> KNNGraph:
    """The ``n_neighbors`` nearest training rows of every row of ``X_new``, by brute force.

    ``knn(q) = the k indices j with the smallest (d(x_q, x_j), j)``, as
    :func:`gidr_reference.neighbors.exact_query` (see the module docstring for how).

    Parameters
    ----------
    X_train : ndarray of shape (n_train, n_features)
    X_new : ndarray of shape (n_new, n_features)
    n_neighbors : int
        k, in ``[1, n_train]``.
    metric : str or callable
        One of :data:`~gidr_reference.neighbors.EXACT_METRICS`, or a numba-jitted function.
    metric_kwds : dict, optional
        The metric's parameters, as in the fit.

    Returns
    -------
    KNNGraph
        Indices into the training rows and distances, of shape (n_new, k).
    """
    X_train = np.ascontiguousarray(X_train, dtype=np.float64)
    X_new = np.ascontiguousarray(X_new, dtype=np.float64)
    check_query(X_new, X_train.shape[0], X_train.shape[1], n_neighbors)
    kwds = prepare_metric(X_new, metric, metric_kwds, "The query points")
    return nearest_rows(X_train, X_new, n_neighbors, metric, exclude_self=False, metric_kwds=kwds)


# ---------------------------------------------------------------------- search graph
@njit(cache=True)
def _reverse_lists(indices):
    """CSR of the reverse edges: ``sources[indptr[j]:indptr[j + 1]]`` are the points listing j,
    with the column ``slots`` where they list it."""
    n, k = indices.shape
    indptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        for m in range(k):
            indptr[indices[i, m] + 1] += 1
    for j in range(n):
        indptr[j + 1] += indptr[j]
    fill = indptr[:-1].copy()
    sources = np.empty(n * k, dtype=np.int64)
    slots = np.empty(n * k, dtype=np.int64)
    for i in range(n):
        for m in range(k):
            j = indices[i, m]
            sources[fill[j]] = i
            slots[fill[j]] = m
            fill[j] += 1
    return indptr, sources, slots


@njit(cache=True, parallel=True)
def _merge_lists(indices, distances, reverse, out_index):
    """Row i of ``out_index`` gets the ``max_degree`` smallest distinct ``(distance, j)`` among
    i's neighbours and the points that list i, sorted; missing entries stay ``n``."""
    indptr, sources, slots = reverse
    n, k = indices.shape
    width = out_index.shape[1]
    for i in prange(n):
        keys = np.full(width, np.inf)
        index = np.full(width, n, dtype=np.int64)
        for m in range(k):
            heap_push(keys, index, distances[i, m], indices[i, m])
        for e in range(indptr[i], indptr[i + 1]):
            source = sources[e]
            heap_push(keys, index, distances[source, slots[e]], source)
        sort_pairs(keys, index)
        out_index[i] = index


def search_graph(graph: KNNGraph, max_degree: int) -> tuple[np.ndarray, np.ndarray]:
    """The fit's kNN graph with its reverse edges: each point's ``max_degree`` nearest.

    Edge ``(i, j)`` of the graph gives ``j`` to ``i`` and ``i`` to ``j``; each point keeps
    its distinct neighbours sorted by ``(distance, index)``, at most ``max_degree``.

    Parameters
    ----------
    graph : KNNGraph
        Of shape (n_train, k), indices into the training points.
    max_degree : int

    Returns
    -------
    indptr : ndarray of shape (n_train + 1,), int64
    indices : ndarray of shape (nnz,), int32
    """
    indices = np.ascontiguousarray(graph.indices, dtype=np.int64)
    distances = np.ascontiguousarray(graph.distances, dtype=np.float64)
    n = indices.shape[0]
    merged = np.empty((n, int(max_degree)), dtype=np.int64)
    _merge_lists(indices, distances, _reverse_lists(indices), merged)
    valid = merged < n
    indptr = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int64)
    return indptr, merged[valid].astype(np.int32)


# ---------------------------------------------------------------------- graph search
def _flat_tree(perm: np.ndarray, levels: list, n_features: int):
    """``(left, plane, lo, hi, planes, offsets, perm)``: the tree of
    :func:`gidr_numba.nndescent.first_tree_levels` in breadth-first order.

    Node ``v``'s children are ``left[v]`` and ``left[v] + 1`` (``left[v] = -1``: a leaf,
    holding ``perm[lo[v]:hi[v]]``); ``plane[v]`` is its row of ``planes`` (-1: none).
    """
    starts = np.concatenate([[0], np.cumsum([len(level[0]) for level in levels])])
    left, plane, lo, hi, planes, offsets, n_planes = [], [], [], [], [], [], 0
    for depth, (nodes, is_leaf, level_planes, level_offsets) in enumerate(levels):
        rank = np.cumsum(~is_leaf) - 1
        left.append(np.where(is_leaf, -1, starts[min(depth + 1, len(levels))] + 2 * rank))
        plane.append(np.where(~is_leaf & (level_planes is not None), n_planes + rank, -1))
        lo.append(nodes[:, 1])
        hi.append(nodes[:, 2])
        if level_planes is not None:
            planes.append(level_planes)
            offsets.append(level_offsets)
            n_planes += len(level_planes)
    planes = np.concatenate(planes) if planes else np.zeros((1, n_features), np.float32)
    offsets = np.concatenate(offsets) if offsets else np.zeros(1, np.float32)
    as_int = [np.ascontiguousarray(np.concatenate(part), dtype=np.int64) for part in (left, plane, lo, hi)]
    return (*as_int, np.ascontiguousarray(planes, np.float32), np.ascontiguousarray(offsets, np.float32),
            np.ascontiguousarray(perm, np.int32))


@njit(cache=True)
def _leaf_of(tree, x):
    """The leaf of ``tree`` that row ``x`` falls in: the first child when ``plane . x - offset > 0``
    (the side the fit sends its points with a positive margin), else the second; halved nodes
    send every query to the first."""
    left, plane, _, _, planes, offsets, _ = tree
    node = 0
    while left[node] >= 0:
        p = plane[node]
        if p >= 0 and not (dot(planes[p], x) - offsets[p] > 0):
            node = left[node] + 1
        else:
            node = left[node]
    return node


@njit(cache=True)
def _dot64(x, y):
    """``sum_f x_f y_f`` accumulated in float64, in feature order (rows of any float dtype)."""
    total = 0.0
    for f in range(x.shape[0]):
        total += np.float64(x[f]) * np.float64(y[f])
    return total


@njit(cache=True)
def _queue_push(dist, index, size, d, j):
    """Push ``(d, j)`` on the min-heap ``dist[:size]``, ``index[:size]``; return the new size."""
    pos = size
    while pos > 0:
        parent = (pos - 1) >> 1
        if dist[parent] < d or (dist[parent] == d and index[parent] < j):
            break
        dist[pos] = dist[parent]
        index[pos] = index[parent]
        pos = parent
    dist[pos] = d
    index[pos] = j
    return size + 1


@njit(cache=True)
def _queue_pop(dist, index, size):
    """Remove the root of the min-heap; return the new size."""
    size -= 1
    d, j = dist[size], index[size]
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and (dist[child + 1] < dist[child]
                                 or (dist[child + 1] == dist[child] and index[child + 1] < index[child])):
            child += 1
        if dist[child] > d or (dist[child] == d and index[child] > j):
            break
        dist[pos] = dist[child]
        index[pos] = index[child]
        pos = child
    dist[pos] = d
    index[pos] = j
    return size


@njit(cache=True)
def _visit(data, x, j, scratch, n_touched):
    """Mark ``j`` visited; return its squared search distance to ``x`` and the new count."""
    visited, touched = scratch[0], scratch[1]
    visited[j] = 1
    touched[n_touched] = j
    return squared_distance(x, data[j]), n_touched + 1


@njit(cache=True)
def _search_one(data, graph, tree, x, bound_scale, scratch, queue, best):
    """Best-first search for one query row ``x``; ``best = (keys, index)`` gets its k best.
    Returns the number of points visited (listed in ``scratch[1]``)."""
    indptr, indices = graph
    lo, hi, perm = tree[2], tree[3], tree[6]
    visited = scratch[0]
    queue_dist, queue_index = queue
    keys, index = best
    n = data.shape[0]
    keys[:] = np.inf
    index[:] = n
    leaf = _leaf_of(tree, x)
    n_touched, size = 0, 0
    for pos in range(lo[leaf], hi[leaf]):
        j = perm[pos]
        d, n_touched = _visit(data, x, j, scratch, n_touched)
        heap_push(keys, index, d, j)
        size = _queue_push(queue_dist, queue_index, size, d, j)
    while size > 0:
        d, c = queue_dist[0], queue_index[0]
        size = _queue_pop(queue_dist, queue_index, size)
        if d > bound_scale * keys[0]:
            break
        for e in range(indptr[c], indptr[c + 1]):
            j = indices[e]
            if visited[j]:
                continue
            d, n_touched = _visit(data, x, j, scratch, n_touched)
            if d < bound_scale * keys[0]:
                heap_push(keys, index, d, j)
                size = _queue_push(queue_dist, queue_index, size, d, j)
    for j in range(n):  # fewer than k reachable (tiny or disconnected graphs): scan in order
        if index[0] < n:
            break
        if not visited[j]:
            d, n_touched = _visit(data, x, j, scratch, n_touched)
            heap_push(keys, index, d, j)
    return n_touched


@njit(cache=True, parallel=True)
def _search(data, graph, tree, queries, bound_scale, exact, out_index, out_dist):
    """:func:`_search_one` for every query row, then true distances sorted by (distance, index).

    ``exact = (train_rows, query_rows, zero_train, zero_query)``: the rows for the final
    distances (unit rows and zero flags for cosine; empty flags for Euclidean). Tasks own
    blocks of :data:`QUERY_BLOCK` queries and clear what they visited after each one.
    """
    train_rows, query_rows, zero_train, zero_query = exact
    cosine = zero_train.shape[0] > 0
    n, k = data.shape[0], out_index.shape[1]
    n_blocks = (queries.shape[0] + QUERY_BLOCK - 1) // QUERY_BLOCK
    for block in prange(n_blocks):
        scratch = (np.zeros(n, dtype=np.uint8), np.empty(n, dtype=np.int32))
        queue = (np.empty(n, dtype=np.float32), np.empty(n, dtype=np.int32))
        keys = np.empty(k, dtype=np.float32)
        index = np.empty(k, dtype=np.int32)
        distances = np.empty(k)
        for q in range(block * QUERY_BLOCK, min((block + 1) * QUERY_BLOCK, queries.shape[0])):
            n_touched = _search_one(data, graph, tree, queries[q], bound_scale, scratch, queue, (keys, index))
            for t in range(n_touched):
                scratch[0][scratch[1][t]] = 0
            for m in range(k):
                j = index[m]
                if cosine:
                    distances[m] = cosine_from_dot(_dot64(query_rows[q], train_rows[j]), zero_query[q], zero_train[j])
                else:
                    distances[m] = math.sqrt(exact_squared_distance(query_rows[q], train_rows[j]))
                out_index[q, m] = j
            sort_pairs(distances, out_index[q])
            out_dist[q] = distances


class GraphSearch(NeighborsIndex):
    """Queries on the fit's NN-descent graph (see the module docstring).

    Parameters
    ----------
    X_train : ndarray of shape (n_train, n_features)
        The training data of the fit.
    graph : KNNGraph
        The fit's kNN graph of ``X_train``.
    seed : int
        The seed the fit gave :func:`gidr_numba.nndescent.nndescent_knn`.
    metric : {"euclidean", "cosine"}
    leaf_size : int
        The fit's leaf size.
    epsilon : float
        Search bound (:data:`DEFAULT_EPSILON`).
    max_degree : int, optional
        Neighbours per point in the search graph; default ``2 k``.
    """

    def __init__(self, X_train: np.ndarray, graph: KNNGraph, seed: int, *, metric: str, leaf_size: int,
                 epsilon: float = DEFAULT_EPSILON, max_degree: int | None = None):
        from gidr_numba.nndescent import _search_data, first_tree_levels

        self.metric, self.epsilon = metric, float(epsilon)
        self.data, self.rows, self.zero, self.conditioning = _search_data(X_train, metric)
        self.original = np.asarray(X_train)
        self.n_features = self.rows.shape[1]
        perm, levels = first_tree_levels(self.data, seed, leaf_size)
        self.tree = _flat_tree(perm, levels, self.data.shape[1])
        self.graph = search_graph(graph, max_degree or 2 * graph.n_neighbors)

    def _query_rows(self, X_new: np.ndarray):
        """Query rows transformed as the fit's search rows: float32 search rows, exact rows, zero flags."""
        if self.metric == "cosine":
            rows, zero = unit_rows(X_new, centred=False)
        else:
            rows = np.asarray(X_new) if np.asarray(X_new).dtype in (np.float32, np.float64) \
                else np.asarray(X_new, np.float64)
            zero = np.zeros(0, dtype=bool)
        if self.conditioning is None:
            rows = np.ascontiguousarray(rows)
            return np.ascontiguousarray(rows, dtype=np.float32), rows, zero
        rows = np.ascontiguousarray(self.conditioning.apply(rows))
        return np.ascontiguousarray(self.conditioning.clipped(rows), dtype=np.float32), rows, zero

    def query(self, X_new: np.ndarray, n_neighbors: int) -> KNNGraph:
        """The ``n_neighbors`` nearest training points of each row of ``X_new`` (approximately).

        Returns
        -------
        KNNGraph
            Of shape (n_new, n_neighbors), true distances, rows sorted by (distance, index).
        """
        X_new = np.asarray(X_new)
        check_query(X_new, self.data.shape[0], self.n_features, n_neighbors)
        queries, rows, zero = self._query_rows(X_new)
        indices = np.empty((len(queries), n_neighbors), dtype=np.int64)
        distances = np.empty((len(queries), n_neighbors), dtype=np.float64)
        _search(self.data, self.graph, self.tree, queries, np.float32(1.0 + self.epsilon),
                (self.rows, rows, self.zero, zero), indices, distances)
        if self.conditioning is not None:
            restore_distances(indices, distances, X_new, self.original, self.conditioning.scale)
        return KNNGraph(indices, distances)
