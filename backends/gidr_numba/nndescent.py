"""Approximate k nearest neighbours by NN-descent, in numba: cached, parallel, deterministic.

The algorithm is Dong, Charikar and Li's NN-descent (WWW 2011) started from a
random-projection forest, as in pynndescent:

1. **RP forest.** Each tree splits a node's points by the hyperplane that bisects two of
   them drawn at random, until a leaf holds at most ``leaf_size`` points. The trees are
   grown level by level, all at once: one pass over the data in storage order computes
   every point's side in every tree, so each row is read once per level, not once per
   tree. Every pair of points sharing a leaf is offered to both points' heaps.
2. **Renumbering.** Points are renumbered in the leaf order of the first tree, so that
   neighbours have nearby numbers and the rows and heaps of one local join sit close
   together in memory.
3. **Heaps.** Point i keeps its ``k`` best neighbours in a max-heap ordered by the pair
   ``(squared distance, index)``, with a "new" flag per entry.
4. **Local joins.** Each iteration samples, for every point u, at most
   ``max_candidates`` new and old candidates among its neighbours and reverse neighbours
   (random priorities), and offers each pair (p, q) of candidates (new-new, new-old) to
   the heaps of p and q. It stops after ``n_iters`` iterations or when at most
   ``delta * n * k`` heap entries changed.
5. The final k neighbours get their distances recomputed in float64 from the input and
   each row is sorted by ``(distance, index)``.

Determinism whatever the thread count: every random choice comes from the counter-based
hash of :mod:`gidr_numba.random` (a pure function of the seed and of what it decides);
parallel loops write disjoint places (leaves of one tree are disjoint; heap updates are
applied by owner blocks of points, each scanning the updates in one fixed order), so the
sequence of operations on every heap does not depend on the number of threads. Heaps
keep "the k smallest distinct (key, index) pairs offered", and the number of changed
entries is that of the entries that entered during the iteration and are still there
(flagged as they enter), not of the pushes.

Memory (``n`` points, ``k`` searched neighbours, ``c`` candidates): the float32 search rows,
9 ``n k`` bytes of heaps, 8 ``n c`` of candidate lists, and the candidates' priorities for
at most :data:`CANDIDATE_BLOCK_POINTS` points at a time (16 ``c`` bytes each); at the end
16 ``n k`` bytes of results (int64 indices, float64 distances).

The search distance is the squared Euclidean distance in float32 of the input (centred and
scaled by a power of two in float64 when its values are extreme or offset, see
:func:`_search_data`; the final distances are then restored in the caller's units). Its kernels are the only ones compiled
with ``fastmath={"reassoc"}`` (see :func:`gidr_numba.neighbors.squared_distance`).
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from gidr_numba.neighbors import (
    check_n_neighbors,
    cosine_from_dot,
    distances_from,
    dot,
    heap_push,
    heap_push_flagged,
    sort_pairs,
    unit_rows,
)
from gidr.progress import StepProgress
from gidr_reference.neighbors import euclidean_conditioning, restore_distances
from gidr_numba.random import counter_hash, mix

__all__ = ["nndescent_knn", "default_n_trees", "default_n_iters", "default_leaf_size", "default_max_candidates",
           "METRICS", "first_tree_levels"]

#: Metrics of the ``nndescent`` neighbors stage.
METRICS = ("euclidean", "cosine")

# Purposes mixed into the seed, so that trees, fill-ins and candidate samples draw
# independent streams from the same user seed.
_PURPOSE_TREE = 0x7265657472
_PURPOSE_FILL = 0x6C6C6966
_PURPOSE_SAMPLE = 0x656C706D6173
_NO_KEY = np.uint64(0xFFFFFFFFFFFFFFFF)
#: The flag of a heap entry that entered during the current iteration's updates ("new" too).
_ENTERED = 2

#: Heaps hold at least this many neighbours (then cut to k): small heaps explore too little.
MIN_SEARCH_NEIGHBORS = 15
#: Euclidean search rows are conditioned when the data's largest magnitude is outside
#: ``[2**-SEARCH_EXPONENT, 2**SEARCH_EXPONENT]`` (float32 squares and their sums stay normal) ...
SEARCH_EXPONENT = 40
#: ... or exceeds ``2**OFFSET_EXPONENT`` times the widest column range (an offset that leaves
#: fewer than 16 of float32's 24 bits to the differences).
OFFSET_EXPONENT = 8
#: Most points whose local joins are generated before the updates are applied.
CHUNK_SIZE = 8192
#: Most candidate pairs buffered at once (12 bytes each); fewer points per chunk when
#: ``max_candidates`` is large. Chunking changes the speed only, never the result.
UPDATE_BUFFER_PAIRS = 2**22
#: Most points whose candidates are drawn at once: their priorities (16 bytes per point and
#: candidate) are the only per-point arrays of the draw, so bounding them keeps 2 x 60 of
#: them per point (1.6 GB at 10,000,000 points with 20 candidates) out of the peak, for one
#: more scan of the neighbour lists per block. Blocking changes the speed only.
CANDIDATE_BLOCK_POINTS = 1 << 20
#: Tree levels split by hyperplanes; deeper nodes (pathological data) are halved.
MAX_HYPERPLANE_LEVELS = 48


def default_n_trees(n_samples: int) -> int:
    """Trees of the RP forest: ``max(3, min(8, round(log10 n)))``."""
    return max(3, min(8, int(round(math.log10(max(n_samples, 2))))))


def default_leaf_size(n_neighbors: int) -> int:
    """Largest leaf of the RP trees: ``max(60, 4 k)``, at most 256."""
    return min(256, max(60, 4 * n_neighbors))


def default_max_candidates(search_neighbors: int) -> int:
    """Candidates sampled per point and iteration: ``min(60, max(20, k_search))``."""
    return min(60, max(20, search_neighbors))


def default_n_iters(n_samples: int) -> int:
    """pynndescent's rule: ``max(5, round(log2 n))`` iterations (usually stopped early)."""
    return max(5, int(round(math.log2(max(n_samples, 2)))))


# ---------------------------------------------------------------------- RP forest
@njit(cache=True, parallel=True)
def _make_planes(data, perm, nodes, keys, planes, offsets):
    """Hyperplane of each active node: normal ``x_a - x_b``, through their midpoint.

    ``nodes[s] = (tree, lo, hi)``: the node's points are ``perm[tree, lo:hi]``; a and b
    are two distinct of them drawn with the node's key.
    """
    for s in prange(nodes.shape[0]):
        tree, lo, hi = nodes[s, 0], nodes[s, 1], nodes[s, 2]
        first = np.int64(mix(keys[s] ^ np.uint64(1)) % np.uint64(hi - lo))
        second = np.int64(mix(keys[s] ^ np.uint64(2)) % np.uint64(hi - lo - 1))
        if second >= first:
            second += 1
        a, b = perm[tree, lo + first], perm[tree, lo + second]
        offset = np.float32(0.0)
        for f in range(data.shape[1]):
            planes[s, f] = data[a, f] - data[b, f]
            offset += planes[s, f] * np.float32(0.5) * (data[a, f] + data[b, f])
        offsets[s] = offset


@njit(cache=True, parallel=True)
def _compute_sides(data, node_of, planes, offsets, keys, sides):
    """``sides[t, i]``: 0 when point i lies on the positive side of its node's hyperplane in
    tree t, else 1 (a point exactly on it draws its side with the hash). One pass over the
    rows in storage order serves every tree."""
    n_trees = node_of.shape[0]
    for i in prange(data.shape[0]):
        for t in range(n_trees):
            s = node_of[t, i]
            if s < 0:
                continue
            margin = dot(planes[s], data[i]) - offsets[s]
            if margin == 0:
                sides[t, i] = np.uint8(mix(keys[s] ^ np.uint64(i + 3)) & np.uint64(1))
            else:
                sides[t, i] = 0 if margin > 0 else 1


@njit(cache=True, parallel=True)
def _partition(perm, sides, nodes, halve, mids):
    """Stable partition of each active node's range of ``perm`` by side; ``mids[s]`` gets the
    split position. A split that leaves one side empty (or ``halve``) cuts the range in two
    halves instead."""
    for s in prange(nodes.shape[0]):
        tree, lo, hi = nodes[s, 0], nodes[s, 1], nodes[s, 2]
        if halve:
            mids[s] = lo + (hi - lo) // 2
            continue
        right = np.empty(hi - lo, dtype=perm.dtype)
        n_left, n_right = 0, 0
        for pos in range(lo, hi):
            p = perm[tree, pos]
            if sides[tree, p] == 0:
                perm[tree, lo + n_left] = p
                n_left += 1
            else:
                right[n_right] = p
                n_right += 1
        perm[tree, lo + n_left:hi] = right[:n_right]
        mids[s] = lo + n_left if 0 < n_left < hi - lo else lo + (hi - lo) // 2


@njit(cache=True, parallel=True)
def _assign(perm, node_of, nodes, ids):
    """``node_of[tree, p] = ids[s]`` for the points p of node s: the active node holding p,
    or -1 once p is in a leaf."""
    for s in prange(nodes.shape[0]):
        tree, lo, hi = nodes[s, 0], nodes[s, 1], nodes[s, 2]
        for pos in range(lo, hi):
            node_of[tree, perm[tree, pos]] = ids[s]


@njit(cache=True)
def _child_keys(keys):
    """Keys of the two children of each node (left, then right)."""
    out = np.empty(2 * keys.shape[0], dtype=np.uint64)
    for s in range(keys.shape[0]):
        out[2 * s] = mix(keys[s] ^ np.uint64(0x4C))
        out[2 * s + 1] = mix(keys[s] ^ np.uint64(0x52))
    return out


def _build_forest(data: np.ndarray, seed: int, n_trees: int, leaf_size: int, levels: list | None = None):
    """RP forest grown level by level across all trees.

    ``levels``, when given, receives one ``(nodes, is_leaf, planes, offsets)`` per level:
    every node of the level, which of them are leaves, and the hyperplanes of the others
    (None on a halved level or when all are leaves), for :func:`first_tree_levels`. It changes
    nothing in the forest.

    Returns
    -------
    perm : ndarray of shape (n_trees, n_samples), int32
        Each tree's points in leaf order.
    leaves : ndarray of shape (n_leaves, 3), int64
        ``(tree, lo, hi)`` of every leaf, sorted by tree then position.
    """
    n = data.shape[0]
    perm = np.tile(np.arange(n, dtype=np.int32), (n_trees, 1))
    node_of = np.zeros((n_trees, n), dtype=np.int32)
    sides = np.zeros((n_trees, n), dtype=np.uint8)
    nodes = np.stack([np.arange(n_trees), np.zeros(n_trees, np.int64), np.full(n_trees, n)], axis=1)
    keys = np.array([counter_hash(seed, _PURPOSE_TREE, t, 0) for t in range(n_trees)], dtype=np.uint64)
    leaves, level = [], 0
    while len(nodes):
        is_leaf = nodes[:, 2] - nodes[:, 1] <= leaf_size
        ids = np.full(len(nodes), -1, dtype=np.int32)
        ids[~is_leaf] = np.arange(np.count_nonzero(~is_leaf), dtype=np.int32)
        _assign(perm, node_of, nodes, ids)
        leaves.append(nodes[is_leaf])
        level_nodes = nodes
        nodes, keys = nodes[~is_leaf], keys[~is_leaf]
        halve = level >= MAX_HYPERPLANE_LEVELS
        planes = offsets = None
        if len(nodes) and not halve:
            planes = np.empty((len(nodes), data.shape[1]), dtype=np.float32)
            offsets = np.empty(len(nodes), dtype=np.float32)
            _make_planes(data, perm, nodes, keys, planes, offsets)
            _compute_sides(data, node_of, planes, offsets, keys, sides)
        if levels is not None:
            levels.append((level_nodes, is_leaf, planes, offsets))
        if not len(nodes):
            break
        mids = np.empty(len(nodes), dtype=np.int64)
        _partition(perm, sides, nodes, halve, mids)
        children = np.empty((2 * len(nodes), 3), dtype=np.int64)
        children[:, 0] = np.repeat(nodes[:, 0], 2)
        children[0::2, 1], children[0::2, 2] = nodes[:, 1], mids
        children[1::2, 1], children[1::2, 2] = mids, nodes[:, 2]
        nodes, keys, level = children, _child_keys(keys), level + 1
    leaves = np.concatenate(leaves)
    return perm, leaves[np.lexsort((leaves[:, 1], leaves[:, 0]))]


@njit(cache=True, parallel=True)
def _init_from_leaves(data, dist, index, flag, perm, leaves, tree_start):
    """Offer every pair of points sharing a leaf to both heaps, tree after tree.

    ``leaves[tree_start[t]:tree_start[t + 1]]`` are the leaves of tree t; they are
    disjoint, so the parallel loop over them never writes the same heap twice at once.
    """
    for t in range(perm.shape[0]):
        for leaf in prange(tree_start[t], tree_start[t + 1]):
            lo, hi = leaves[leaf, 1], leaves[leaf, 2]
            members = perm[t, lo:hi]
            distances = np.empty(hi - lo, dtype=np.float32)
            for a in range(hi - lo):
                p = members[a]
                distances_from(data, p, members, a + 1, hi - lo, distances)
                for b in range(a + 1, hi - lo):
                    q = members[b]
                    heap_push_flagged(dist[p], index[p], flag[p], distances[b], q)
                    heap_push_flagged(dist[q], index[q], flag[q], distances[b], p)


@njit(cache=True, parallel=True)
def _fill_random(data, dist, index, flag, seed):
    """Complete heaps that still hold empty slots (index -1) with random points.

    Up to ``4 k`` hashed draws per point, then a scan of all points: every heap ends
    full when ``k <= n - 1``.
    """
    n, k = index.shape
    for i in prange(n):
        for attempt in range(4 * k + n):
            if index[i, 0] >= 0:
                break
            if attempt < 4 * k:
                j = np.int64(counter_hash(seed, _PURPOSE_FILL, i, attempt) % np.uint64(n))
            else:
                j = attempt - 4 * k
            if j != i:
                d = np.float32(0.0)
                for f in range(data.shape[1]):
                    d += (data[i, f] - data[j, f]) ** 2
                heap_push_flagged(dist[i], index[i], flag[i], d, j)


# ---------------------------------------------------------------------- NN-descent
@njit(cache=True, parallel=True)
def _build_candidates(index, flag, seed, iteration, new_index, new_key, old_index, old_key, first, n_blocks):
    """Sample the new and old candidates of points ``first .. first + len(new_key) - 1``
    among their neighbours and reverse neighbours.

    Candidate j of point i gets the priority ``hash(seed, iteration, min(i, j), max(i, j))``
    (the same from both ends of an edge); each point keeps the ``max_candidates`` smallest.
    The priorities of the points in hand sit in ``new_key`` and ``old_key`` (row ``i - first``),
    their candidates in rows ``i`` of ``new_index`` and ``old_index``. Point blocks are owned
    by one task each, so no two tasks write one candidate heap, and each heap receives its
    offers in the order of the scan over ``index``, whatever ``n_blocks`` (the number of
    threads) and however many points are in hand: both change only the speed.
    """
    n, k = index.shape
    size = new_key.shape[0]
    for block in prange(n_blocks):
        lo, hi = first + block * size // n_blocks, first + (block + 1) * size // n_blocks
        new_index[lo:hi] = -1
        new_key[lo - first:hi - first] = _NO_KEY
        old_index[lo:hi] = -1
        old_key[lo - first:hi - first] = _NO_KEY
        for i in range(n):
            own_i = lo <= i < hi
            for m in range(k):
                j = index[i, m]
                if j < 0:
                    continue
                own_j = lo <= j < hi
                if not (own_i or own_j):
                    continue
                key = counter_hash(seed, iteration, min(i, j), max(i, j))
                if flag[i, m]:
                    if own_i:
                        heap_push(new_key[i - first], new_index[i], key, j)
                    if own_j:
                        heap_push(new_key[j - first], new_index[j], key, i)
                else:
                    if own_i:
                        heap_push(old_key[i - first], old_index[i], key, j)
                    if own_j:
                        heap_push(old_key[j - first], old_index[j], key, i)


@njit(cache=True, parallel=True)
def _clear_sampled_flags(index, flag, new_index):
    """Entries picked as new candidates lose their "new" flag (after every point's candidates
    are drawn: the draws read the flags)."""
    n, k = index.shape
    for i in prange(n):
        for m in range(k):
            if flag[i, m]:
                for c in range(new_index.shape[1]):
                    if new_index[i, c] == index[i, m]:
                        flag[i, m] = 0
                        break


@njit(cache=True)
def _pair_slots(n_candidates):
    """Most pairs one point's local join can produce: new-new plus new-old."""
    return n_candidates * (n_candidates - 1) // 2 + n_candidates * n_candidates


@njit(cache=True, parallel=True)
def _local_join(data, dist, new_index, old_index, start, stop, updates, counts):
    """Distances of the candidate pairs of points ``start..stop-1`` (new-new, new-old).

    Pairs that could enter a heap (distance not above the current worst of p or q) are
    written to the slots of their point u in ``updates = (out_p, out_q, out_d)``;
    nothing is written to the heaps here.
    """
    out_p, out_q, out_d = updates
    n_candidates = new_index.shape[1]
    slots = _pair_slots(n_candidates)
    for u in prange(start, stop):
        members = np.empty(2 * n_candidates, dtype=np.int32)
        distances = np.empty(2 * n_candidates, dtype=np.float32)
        n_new = 0
        for c in range(n_candidates):
            if new_index[u, c] >= 0:
                members[n_new] = new_index[u, c]
                n_new += 1
        n_all = n_new
        for c in range(n_candidates):
            if old_index[u, c] >= 0:
                members[n_all] = old_index[u, c]
                n_all += 1
        base, count = (u - start) * slots, 0
        for a in range(n_new):
            p = members[a]
            distances_from(data, p, members, a + 1, n_all, distances)
            for b in range(a + 1, n_all):
                q, d = members[b], distances[b]
                if q != p and (d <= dist[p, 0] or d <= dist[q, 0]):
                    out_p[base + count] = p
                    out_q[base + count] = q
                    out_d[base + count] = d
                    count += 1
        counts[u - start] = count


@njit(cache=True, parallel=True)
def _apply_updates(dist, index, flag, updates, counts, slots, n_blocks):
    """Offer every joined pair to the heaps of p and q; each task owns a block of points.

    ``updates`` is ``(out_p, out_q, out_d)`` from :func:`_local_join`.
    """
    out_p, out_q, out_d = updates
    n = index.shape[0]
    for block in prange(n_blocks):
        lo, hi = block * n // n_blocks, (block + 1) * n // n_blocks
        for u in range(counts.shape[0]):
            base = u * slots
            for s in range(base, base + counts[u]):
                p, q, d = out_p[s], out_q[s], out_d[s]
                if lo <= p < hi:
                    heap_push_flagged(dist[p], index[p], flag[p], d, q, _ENTERED)
                if lo <= q < hi:
                    heap_push_flagged(dist[q], index[q], flag[q], d, p, _ENTERED)


@njit(cache=True, parallel=True)
def _count_changes(flag):
    """Number of heap entries that entered in this iteration (flag :data:`_ENTERED`), which
    become plain new entries (flag 1) for the next one.

    An entry that entered and was pushed out again in the same iteration is not counted: it
    is not in the heap. This is the number of entries not in the heap before the iteration
    (counted without a copy of the heaps, 4 bytes per point and neighbour), except for an
    entry pushed out and offered again in the same iteration with a distance smaller in its
    last bit (the four-at-a-time and the one-at-a-time kernels may sum in different orders),
    which counts as entered: it happens on data with many exact duplicates."""
    n, k = flag.shape
    total = 0
    for i in prange(n):
        changed = 0
        for m in range(k):
            if flag[i, m] == _ENTERED:
                flag[i, m] = 1
                changed += 1
        total += changed
    return total


@njit(cache=True, fastmath={"reassoc"})
def _final_distance(x, y):
    """``sqrt(sum_f (x_f - y_f)^2)`` accumulated in float64."""
    total = 0.0
    for f in range(x.shape[0]):
        diff = np.float64(x[f]) - np.float64(y[f])
        total += diff * diff
    return math.sqrt(total)


@njit(cache=True, fastmath={"reassoc"})
def _dot64(x, y):
    total = 0.0
    for f in range(x.shape[0]):
        total += x[f] * y[f]
    return total


@njit(cache=True, parallel=True)
def _finalize(X, zero, order, index, out_index, out_dist):
    """True float64 distances of the final neighbours, each row sorted by (distance, index).

    ``index`` is in the search numbering; ``order[new] = original`` maps it back to the
    rows of ``X`` and of the outputs. With cosine, ``X`` holds unit rows and ``zero``
    flags the zero rows; with Euclidean ``zero`` is empty.
    """
    n, k = index.shape
    cosine = zero.shape[0] > 0
    for local in prange(n):
        i = order[local]
        for m in range(k):
            j = order[index[local, m]]
            out_index[i, m] = j
            if cosine:
                out_dist[i, m] = cosine_from_dot(_dot64(X[i], X[j]), zero[i], zero[j])
            else:
                out_dist[i, m] = _final_distance(X[i], X[j])
        sort_pairs(out_dist[i], out_index[i])


# ---------------------------------------------------------------------- driver
def _search_data(X: np.ndarray, metric: str):
    """The float32 rows to search, the rows (and zero-row flags) for exact distances, and the
    :class:`~gidr_reference.neighbors.Conditioning` applied (None when the data is used as given).

    Cosine works on unit rows (zero rows stay zero): their squared Euclidean distance is
    ``2 (1 - cos)``, which orders neighbours like the cosine distance. Euclidean data is
    conditioned in float64 before the float32 cast when its values demand it (the rule of
    :func:`~gidr_reference.neighbors.euclidean_conditioning`: largest magnitude outside
    ``[2**-40, 2**39]``, or above :data:`OFFSET_EXPONENT` binary orders of magnitude times
    the widest column range): median-centred, scaled by a power of two set by the rows'
    99th-percentile magnitude, search rows clipped to ``+-2**40`` (so that no float32
    square overflows); ordinary data is cast as it is.
    """
    conditioning = None
    if metric == "cosine":
        X, zero = unit_rows(X, centred=False)
    else:
        X = np.asarray(X) if np.asarray(X).dtype in (np.float32, np.float64) else np.asarray(X, np.float64)
        zero = np.zeros(0, dtype=bool)
        conditioning = euclidean_conditioning(X, safe_exponent=SEARCH_EXPONENT, offset_exponent=OFFSET_EXPONENT,
                                              clip=2.0**SEARCH_EXPONENT)
    if conditioning is None:
        X = np.ascontiguousarray(X)
        return np.ascontiguousarray(X, dtype=np.float32), X, zero, None
    X = np.ascontiguousarray(conditioning.apply(X))
    return np.ascontiguousarray(conditioning.clipped(X), dtype=np.float32), X, zero, conditioning


def nndescent_knn(
    X: np.ndarray,
    n_neighbors: int,
    seed: int,
    *,
    metric: str = "euclidean",
    n_trees: int | None = None,
    n_iters: int | None = None,
    leaf_size: int | None = None,
    max_candidates: int | None = None,
    delta: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Approximate kNN graph by NN-descent (see the module docstring).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_neighbors : int
        k, in ``[1, n_samples - 1]``; the point itself is never its own neighbour. The
        search keeps ``max(k, 15)`` neighbours per point (at most ``n - 1``) and returns
        the k nearest of them.
    seed : int
        Non-negative; the result is a pure function of (X, k, seed, parameters).
    metric : {"euclidean", "cosine"}
    n_trees, n_iters, leaf_size : int or None
        Defaults: :func:`default_n_trees`, :func:`default_n_iters`,
        :func:`default_leaf_size`. ``n_trees = 0`` starts from random neighbours.
    max_candidates : int or None
        New (and old) candidates sampled per point and iteration; default
        :func:`default_max_candidates`.
    delta : float
        Stop when at most ``delta * n * k`` heap entries changed in an iteration.

    Returns
    -------
    indices : ndarray of shape (n_samples, k), int64
    distances : ndarray of shape (n_samples, k), float64
        True distances, each row sorted by (distance, index).
    info : dict
        ``n_iters`` run and ``changes`` per iteration.
    """
    data, exact_rows, zero, conditioning = _search_data(X, metric)
    n, k = data.shape[0], int(n_neighbors)
    check_n_neighbors(k, n)
    search_k = min(n - 1, max(k, MIN_SEARCH_NEIGHBORS))
    seed = int(seed) & 0x7FFFFFFFFFFFFFFF
    n_trees = default_n_trees(n) if n_trees is None else int(n_trees)
    n_iters = default_n_iters(n) if n_iters is None else int(n_iters)
    leaf_size = default_leaf_size(search_k) if leaf_size is None else max(int(leaf_size), 2)
    max_candidates = default_max_candidates(search_k) if max_candidates is None else int(max_candidates)

    order, data, forest = _renumbered_forest(data, seed, n_trees, leaf_size,
                                             owned=not np.may_share_memory(data, X))
    dist, index, flag = _initial_graph(data, seed, search_k, forest)
    del forest
    changes = _descend(data, dist, index, flag, seed, n_iters, max_candidates, delta)
    out_index = np.empty((n, search_k), dtype=np.int64)
    out_dist = np.empty((n, search_k), dtype=np.float64)
    _finalize(exact_rows, zero, order, index, out_index, out_dist)
    if conditioning is not None:
        restore_distances(out_index, out_dist, np.asarray(X, dtype=np.float64), np.asarray(X, dtype=np.float64),
                          conditioning.scale)
    info = {"n_iters": len(changes), "changes": changes}
    return np.ascontiguousarray(out_index[:, :k]), np.ascontiguousarray(out_dist[:, :k]), info


def _renumbered_forest(data: np.ndarray, seed: int, n_trees: int, leaf_size: int, owned: bool = False):
    """Build the RP forest and renumber the points in the leaf order of its first tree.

    ``owned``: ``data`` is this search's own copy, renumbered in place (else a renumbered copy
    is made, and the caller's array is left alone).

    Returns
    -------
    order : ndarray of shape (n_samples,), int32
        ``order[new] = original``.
    data : ndarray of shape (n_samples, n_features), float32, rows in the new order
    forest : tuple or None
        ``(perm, leaves, tree_start)`` in the new numbering, for :func:`_init_from_leaves`.
    """
    n = data.shape[0]
    if n_trees == 0:
        return np.arange(n, dtype=np.int32), data, None
    perm, leaves = _build_forest(data, seed, n_trees, leaf_size)
    order = perm[0].copy()
    rank = np.empty(n, dtype=np.int32)
    rank[order] = np.arange(n, dtype=np.int32)
    tree_start = np.searchsorted(leaves[:, 0], np.arange(n_trees + 1))
    if owned:
        _permute_rows(data, order)  # in place: a second copy of the data would double the peak
    else:
        data = np.ascontiguousarray(data[order])
    return order, data, (rank[perm], leaves, tree_start)


@njit(cache=True)
def _permute_rows(data, order):
    """``data[:] = data[order]`` in place, by following the permutation's cycles (one row of scratch)."""
    n = data.shape[0]
    done = np.zeros(n, dtype=np.bool_)
    row = np.empty(data.shape[1], dtype=data.dtype)
    for start in range(n):
        if done[start]:
            continue
        row[:] = data[start]
        i = start
        while True:
            done[i] = True
            j = order[i]
            if j == start:
                data[i] = row
                break
            data[i] = data[j]
            i = j


def _initial_graph(data: np.ndarray, seed: int, k: int, forest):
    """Heaps filled from the forest's leaves (when given), completed with random points."""
    n = data.shape[0]
    dist = np.full((n, k), np.inf, dtype=np.float32)
    index = np.full((n, k), -1, dtype=np.int32)
    flag = np.zeros((n, k), dtype=np.uint8)
    if forest is not None:
        _init_from_leaves(data, dist, index, flag, *forest)
    _fill_random(data, dist, index, flag, seed)
    return dist, index, flag


def _descend(data, dist, index, flag, seed, n_iters, max_candidates, delta) -> list[int]:
    """Run the NN-descent iterations in place; return the number of changes per iteration."""
    n, k = index.shape
    new_index = np.empty((n, max_candidates), dtype=np.int32)
    old_index = np.empty((n, max_candidates), dtype=np.int32)
    block = min(n, CANDIDATE_BLOCK_POINTS)
    new_key = np.empty((block, max_candidates), dtype=np.uint64)
    old_key = np.empty((block, max_candidates), dtype=np.uint64)
    slots = int(_pair_slots(max_candidates))
    chunk = min(n, CHUNK_SIZE, max(64, UPDATE_BUFFER_PAIRS // slots))
    updates = (np.empty(chunk * slots, dtype=np.int32), np.empty(chunk * slots, dtype=np.int32),
               np.empty(chunk * slots, dtype=np.float32))
    counts = np.empty(chunk, dtype=np.int64)
    sample_seed = int(mix(np.uint64(seed) ^ np.uint64(_PURPOSE_SAMPLE))) & 0x7FFFFFFFFFFFFFFF
    n_blocks = numba.get_num_threads()
    changes: list[int] = []
    progress = StepProgress("neighbors", "NN-descent iteration", n_iters, may_stop_early=True)
    stop_at = delta * n * k
    for iteration in range(n_iters):
        for first in range(0, n, block):
            size = min(block, n - first)
            _build_candidates(index, flag, sample_seed, iteration, new_index, new_key[:size], old_index,
                              old_key[:size], first, n_blocks)
        _clear_sampled_flags(index, flag, new_index)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            _local_join(data, dist, new_index, old_index, start, stop, updates, counts)
            _apply_updates(dist, index, flag, updates, counts[: stop - start], slots, n_blocks)
        changes.append(int(_count_changes(flag)))
        progress.report(iteration + 1, f"{changes[-1]:,} changes; stops at {int(stop_at):,} or fewer")
        if changes[-1] <= stop_at:
            break
    return changes



# ---------------------------------------------------------------------- queries
def first_tree_levels(data: np.ndarray, seed: int, leaf_size: int):
    """Tree 0 of the forest :func:`nndescent_knn` grows from ``data`` (its float32 search
    rows) and ``seed``, level by level, for the queries of :mod:`gidr_numba.query`.

    Returns
    -------
    perm : ndarray of shape (n_samples,), int32
        The points in the tree's leaf order.
    levels : list of (nodes, is_leaf, planes, offsets)
        As recorded by :func:`_build_forest`.
    """
    levels: list = []
    perm, _ = _build_forest(data, int(seed) & 0x7FFFFFFFFFFFFFFF, 1, max(int(leaf_size), 2), levels)
    return perm[0].copy(), levels
