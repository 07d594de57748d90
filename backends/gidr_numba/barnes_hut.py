"""Barnes-Hut repulsion in numba: a quadtree (2-D) / octree (3-D) in flat arrays.

The tree is the one of :mod:`gidr_reference.barnes_hut`, rebuilt at every call: points
are sorted by their Morton code (cell coordinates at level ``depth`` of the square root
cell ``[lo, lo + width)^d``, bits interleaved), so every cell is a contiguous range of the
sorted points. A cell is split into its ``2^d`` children until it holds one point, or
only points with equal codes (duplicates). Chains of cells with a single child are
collapsed to their smallest cell: a larger cell with the same points and centre of mass
would be summarized only where the smaller one is too, so the interactions (and the
result) are those of the reference tree. Each cell therefore has at least two children
and the tree at most ``2 n - 1`` nodes, built in O(n log n).

Traversal, for every point ``i`` in parallel (``prange``; each point writes only its own
output row), depth first from the root::

    cell summarized  if  width / sqrt(D(y_i, centre of mass)) < theta  and y_i not in it
        -> count * phi(D) (y_i - com) to the channels; count * w(D), count * w(D)^2 to the totals
    leaf otherwise   -> every point j != i of the leaf, exactly
    else             -> its children

The totals are per-point partial sums, added in point order afterwards, so the result is
bit-identical whatever the number of threads. ``theta = 0`` never summarizes: exact.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange, types

from gidr.types import RepulsionSums
from gidr_numba.forces import PARAMS_TYPE, REPULSION_TYPE, compile_twice, is_marker, kernel_argument
from gidr_numba.repulsion import CHUNK, add_interaction, n_chunks, store_point

__all__ = ["MAX_DIMENSIONS", "tree_depth", "build_tree", "barnes_hut_repulsion"]

#: The largest embedding dimension the tree supports (octree).
MAX_DIMENSIONS = 3


def tree_depth(n_components: int) -> int:
    """Number of levels below the root: Morton codes of ``depth * d <= 63`` bits (at most 30)."""
    return min(63 // n_components, 30)


@numba.njit(cache=True)
def _morton_codes(Y, depth):
    """Interleaved cell coordinates of each point at level ``depth``, and the root cell."""
    n, d = Y.shape
    lo = np.empty(d)
    width = 0.0
    for k in range(d):
        lo[k] = Y[:, k].min()
        width = max(width, Y[:, k].max() - lo[k])
    top = 2.0**depth - 1.0
    codes = np.zeros(n, dtype=np.uint64)
    for i in range(n):
        code = np.uint64(0)
        for k in range(d):
            cell = 0.0
            if width > 0.0:
                cell = min(max(np.floor((Y[i, k] - lo[k]) * (2.0**depth / width)), 0.0), top)
            bits = np.uint64(cell)
            for bit in range(depth):
                code |= ((bits >> np.uint64(bit)) & np.uint64(1)) << np.uint64(bit * d + k)
        codes[i] = code
    return codes, width


@numba.njit(cache=True)
def _common_level(first, last, depth, d):
    """Deepest level whose cell holds both codes (``first != last``)."""
    x = first ^ last
    p = 63
    while (x >> np.uint64(p)) & np.uint64(1) == 0:
        p -= 1
    return depth - p // d - 1


@numba.njit(cache=True)
def _prefix_end(codes, start, stop, shift, key):
    """First index in ``[start, stop)`` whose code prefix exceeds ``key`` (binary search)."""
    lo, hi = start, stop
    while lo < hi:
        mid = (lo + hi) // 2
        if (codes[mid] >> shift) <= key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True)
def _new_node(codes, depth, d, start, stop, level):
    """``(level, is_leaf)`` of the cell over ``codes[start:stop]`` created at ``level``.

    A leaf (one point, or equal codes) stays at ``level``; any other cell is moved down
    its chain of single children, to the deepest level whose cell still holds every point.
    """
    if stop - start == 1 or codes[start] == codes[stop - 1]:
        return level, True
    return _common_level(codes[start], codes[stop - 1], depth, d), False


@numba.njit(cache=True)
def build_tree(Y, depth):
    """Build the tree over ``Y`` (n >= 1 points, d <= 3), nodes numbered breadth first.

    Returns
    -------
    order : ndarray of int64, shape (n,)
        Point indices sorted by Morton code; node ``v`` holds ``order[start[v]:stop[v]]``.
    start, stop, first_child, n_children : ndarray of int64, shape (n_nodes,)
    is_leaf : ndarray of bool, shape (n_nodes,)
    width : ndarray of shape (n_nodes,)
        Side of each cell: ``root_width / 2^level``.
    center_of_mass : ndarray of shape (n_nodes, d)
    """
    n, d = Y.shape
    codes, root_width = _morton_codes(Y, depth)
    order = np.argsort(codes, kind="mergesort")
    codes = codes[order]
    cap = 2 * n
    start = np.zeros(cap, dtype=np.int64)
    stop = np.zeros(cap, dtype=np.int64)
    level = np.zeros(cap, dtype=np.int64)
    is_leaf = np.zeros(cap, dtype=np.bool_)
    first_child = np.zeros(cap, dtype=np.int64)
    n_children = np.zeros(cap, dtype=np.int64)
    stop[0] = n
    level[0], is_leaf[0] = _new_node(codes, depth, d, 0, n, 0)
    n_nodes, v = 1, 0
    while v < n_nodes:
        if not is_leaf[v]:
            shift = np.uint64(d * (depth - level[v] - 1))
            first_child[v] = n_nodes
            s = start[v]
            while s < stop[v]:
                e = _prefix_end(codes, s, stop[v], shift, codes[s] >> shift)
                start[n_nodes], stop[n_nodes] = s, e
                level[n_nodes], is_leaf[n_nodes] = _new_node(codes, depth, d, s, e, level[v] + 1)
                n_nodes += 1
                s = e
            n_children[v] = n_nodes - first_child[v]
        v += 1
    width = np.empty(n_nodes)
    for v in range(n_nodes):
        width[v] = root_width / 2.0 ** level[v]
    center_of_mass = _centers_of_mass(Y, order, start[:n_nodes], stop[:n_nodes], is_leaf[:n_nodes],
                                      first_child[:n_nodes], n_children[:n_nodes])
    return (order, start[:n_nodes], stop[:n_nodes], is_leaf[:n_nodes], first_child[:n_nodes],
            n_children[:n_nodes], width, center_of_mass)


@numba.njit(cache=True)
def _centers_of_mass(Y, order, start, stop, is_leaf, first_child, n_children):
    """Sums bottom-up (children are numbered after their parent), then divide by counts."""
    n_nodes, d = start.size, Y.shape[1]
    total = np.zeros((n_nodes, d))
    for v in range(n_nodes - 1, -1, -1):
        if is_leaf[v]:
            for pos in range(start[v], stop[v]):
                for k in range(d):
                    total[v, k] += Y[order[pos], k]
        else:
            for child in range(first_child[v], first_child[v] + n_children[v]):
                for k in range(d):
                    total[v, k] += total[child, k]
    for v in range(n_nodes):
        for k in range(d):
            total[v, k] /= stop[v] - start[v]
    return total


_TREE = (types.int64[::1], types.int64[::1], types.int64[::1], types.boolean[::1], types.int64[::1],
         types.int64[::1], types.float64[::1], types.float64[:, ::1])
_TRAVERSE_SIGNATURE = types.void(types.float64[:, ::1], types.Tuple(_TREE), REPULSION_TYPE, types.float64,
                                 types.float64, PARAMS_TYPE, types.float64, types.float64[:, :, ::1],
                                 types.float64[:, ::1])


@numba.njit(cache=True, inline="always")
def _traverse_point(Y, t, order, start, stop, is_leaf, first_child, n_children, width, com, repulsion, a, b, params,
                    theta, stack, acc, diff, out, totals):
    """Point ``order[t]``'s walk down the tree (inlined into :func:`_traverse`; arrays are
    passed one by one: writes to arrays unpacked from a tuple inside an inlined function were
    lost in a test)."""
    d = Y.shape[1]
    i = order[t]  # node v holds y_i when start[v] <= t < stop[v]
    acc[:] = 0.0
    sum_w = sum_w2 = 0.0
    stack[0] = 0
    top = 1
    while top > 0:
        top -= 1
        v = stack[top]
        D = 0.0
        for k in range(d):
            D += (Y[i, k] - com[v, k]) * (Y[i, k] - com[v, k])
        if not (start[v] <= t < stop[v]) and width[v] < theta * np.sqrt(D):
            count = float(stop[v] - start[v])
            w = add_interaction(Y, i, com, v, count, repulsion, a, b, params, acc, diff)
            sum_w += count * w
            sum_w2 += count * w * w
        elif is_leaf[v]:
            for position in range(start[v], stop[v]):
                if position != t:
                    w = add_interaction(Y, i, Y, order[position], 1.0, repulsion, a, b, params, acc, diff)
                    sum_w += w
                    sum_w2 += w * w
        else:
            for child in range(first_child[v] + n_children[v] - 1, first_child[v] - 1, -1):
                stack[top] = child
                top += 1
    store_point(i, acc, sum_w, sum_w2, out, totals)


def _traverse(Y, tree, repulsion, a, b, params, theta, out, totals):
    """Write every point's channels into ``out`` and its sums of w, w^2 into ``totals``.

    ``repulsion`` is a built-in loss's marker or a force function (:func:`kernel_argument`).
    Points are visited in tree order, so that neighbouring points walk the same cells.
    ``b == 1`` is passed on as the literal 1.0, so that the compiler drops ``D^b`` (see
    :func:`gidr_numba.gdr._gather_sampled_kernel`).
    """
    order, start, stop, is_leaf, first_child, n_children, width, com = tree
    n, d = Y.shape
    stack_size = 64 * 2**d  # > 1 + (depth + 1) (2^d - 1): the pushes along one path
    for chunk in prange(n_chunks(n)):
        stack, acc, diff = np.empty(stack_size, dtype=np.int64), np.empty((2, d)), np.empty(d)
        for t in range(chunk * CHUNK, min(n, (chunk + 1) * CHUNK)):
            if b == 1.0:
                _traverse_point(Y, t, order, start, stop, is_leaf, first_child, n_children, width, com, repulsion,
                                a, 1.0, params, theta, stack, acc, diff, out, totals)
            else:
                _traverse_point(Y, t, order, start, stop, is_leaf, first_child, n_children, width, com, repulsion,
                                a, b, params, theta, stack, acc, diff, out, totals)


_traverse_markers, _traverse_functions = compile_twice(_traverse, _TRAVERSE_SIGNATURE)


def barnes_hut_repulsion(
    Y: np.ndarray, repulsion, a: float, b: float, params: tuple, n_channels: int, theta: float
) -> RepulsionSums:
    """Barnes-Hut estimate of the repulsion sums (see the module docstring).

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components), n_components <= 3
    repulsion : numba function
        ``repulsion(D, a, b, params) -> (phi_0, phi_1, w)`` (:mod:`gidr_numba.forces`).
    a, b : float
    params : tuple of float
        The loss's own parameters.
    n_channels : int
        1 or 2: the number of channels returned.
    theta : float
        Opening angle; 0 is exact.

    Returns
    -------
    RepulsionSums
        ``channels`` of shape (n_channels, n_samples, n_components).
    """
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    n, d = Y.shape
    if d > MAX_DIMENSIONS:
        raise ValueError(f"Barnes-Hut supports at most {MAX_DIMENSIONS} dimensions; got {d}")
    out = np.zeros((n_channels, n, d))
    totals = np.zeros((n, 2))
    if n == 0:
        return RepulsionSums(channels=out, sum_w=0.0, sum_w2=0.0)
    tree = build_tree(Y, tree_depth(d))
    argument = kernel_argument(repulsion)
    traverse = _traverse_markers if is_marker(argument) else _traverse_functions
    traverse(Y, tree, argument, float(a), float(b), params, float(theta), out, totals)
    return RepulsionSums(channels=out, sum_w=float(totals[:, 0].sum()), sum_w2=float(totals[:, 1].sum()))
