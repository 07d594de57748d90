"""Reference Barnes-Hut repulsion: a 2-D quadtree / 3-D octree (1-D: binary tree).

The tree is rebuilt at every call over a square (cubic) root cell ``[lo, lo + width)^d``
around the points. A cell at level ``l`` has side ``width / 2^l``; it is split into its
``2^d`` equal children until it holds one point, or only points that share a cell at
the finest level (duplicates), or the finest level is reached.

Traversal, for every point ``i`` and starting at the root (ratio as in the brief)::

    cell used as one point  if  cell_width / sqrt(D(y_i, centre of mass)) < theta
                            and the cell does not contain y_i
        -> count * phi(D) (y_i - com) to the channels, count * w(D), count * w(D)^2 to the totals
    leaf otherwise          -> every point j != i of the leaf, exactly (duplicates of y_i give
                               a zero vector and w(0) = 1)
    internal otherwise      -> visit its children

A cell that contains ``y_i`` always has ``width / sqrt(D) >= 1 / sqrt(d)``, so the
"does not contain" clause only matters for ``theta >= 1/sqrt(d)``: there it keeps ``i``
from repelling itself. With ``theta = 0`` no cell is summarized and the result is exact.

Implementation: points are sorted by their Morton code (cell coordinates at the finest
level, bits interleaved), so every cell is a contiguous range of the sorted points and the
tree is built one level at a time with array operations. The traversal advances all
(point, cell) pairs of one level together (a vectorised frontier).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from gidr.types import RepulsionSums
from gidr_reference.repulsion import accumulate_pairs

__all__ = ["QuadTree", "build_tree", "barnes_hut_repulsion", "MAX_DIMENSIONS"]

#: The largest embedding dimension the tree supports (octree).
MAX_DIMENSIONS = 3


@dataclass(frozen=True)
class QuadTree:
    """A 2^d-ary space-partitioning tree over ``n`` points; nodes are numbered level by level.

    Attributes
    ----------
    order : ndarray of int, shape (n,)
        Point indices sorted by Morton code: node ``v`` holds ``order[start[v]:stop[v]]``.
    rank : ndarray of int, shape (n,)
        Inverse of ``order``: the position of each point in the sorted order.
    start, stop : ndarray of int, shape (n_nodes,)
    width : ndarray of float, shape (n_nodes,)
        Side length of each cell.
    center_of_mass : ndarray of shape (n_nodes, d)
    is_leaf : ndarray of bool, shape (n_nodes,)
    first_child, n_children : ndarray of int, shape (n_nodes,)
        Children of ``v`` are nodes ``first_child[v] .. first_child[v] + n_children[v] - 1``.
    children : ndarray of int, shape (n_nodes, 2^d)
        The same, as a table padded with -1.
    """

    order: np.ndarray
    rank: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    width: np.ndarray
    center_of_mass: np.ndarray
    is_leaf: np.ndarray
    first_child: np.ndarray
    n_children: np.ndarray
    children: np.ndarray

    @property
    def count(self) -> np.ndarray:
        """Number of points in each cell."""
        return self.stop - self.start


def _morton_codes(Y: np.ndarray, depth: int) -> tuple[np.ndarray, float]:
    """Interleaved cell coordinates at level ``depth`` of the root cell, and its width."""
    n, d = Y.shape
    lo = Y.min(axis=0)
    width = float((Y.max(axis=0) - lo).max())
    if width > 0:
        cells = np.floor((Y - lo) / width * 2.0**depth)
        cells = np.clip(cells, 0, 2**depth - 1).astype(np.uint64)
    else:
        cells = np.zeros((n, d), dtype=np.uint64)
    codes = np.zeros(n, dtype=np.uint64)
    one = np.uint64(1)
    for bit in range(depth):
        for k in range(d):
            codes |= ((cells[:, k] >> np.uint64(bit)) & one) << np.uint64(bit * d + k)
    return codes, width


def _ranges(first: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand ranges ``first[r] .. first[r] + counts[r] - 1``: return (r, value) per element."""
    which = np.repeat(np.arange(counts.size), counts)
    offset = np.arange(which.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return which, first[which] + offset


def build_tree(Y: np.ndarray) -> QuadTree:
    """Build the tree over ``Y`` (shape (n_samples, d), d <= 3), one level at a time."""
    n, d = Y.shape
    depth = min(63 // d, 30)
    codes, root_width = _morton_codes(Y, depth)
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    cumulative = np.vstack([np.zeros((1, d)), np.cumsum(Y[order], axis=0)])
    start, stop = np.array([0]), np.array([n])
    levels = []
    for level in range(depth + 1):
        count = stop - start
        leaf = (count == 1) | (codes[start] == codes[stop - 1]) | (level == depth)
        levels.append((start, stop, level, leaf))
        internal_start, internal_stop = start[~leaf], stop[~leaf]
        if internal_start.size == 0:
            break
        # Children: the runs of equal code prefixes at the next level inside internal cells.
        prefix = codes >> np.uint64(d * (depth - level - 1))
        boundary = np.flatnonzero(np.r_[True, prefix[1:] != prefix[:-1]])
        parent = np.searchsorted(internal_start, boundary, side="right") - 1
        inside = (parent >= 0) & (boundary < internal_stop[np.maximum(parent, 0)])
        child_stop = np.r_[boundary[1:], n]
        start, stop = boundary[inside], child_stop[inside]
    return _assemble(levels, order, cumulative, root_width)


def _assemble(levels, order, cumulative, root_width) -> QuadTree:
    """Number the nodes level by level and link each internal node to its children."""
    start = np.concatenate([lv[0] for lv in levels])
    stop = np.concatenate([lv[1] for lv in levels])
    is_leaf = np.concatenate([lv[3] for lv in levels])
    width = np.concatenate([np.full(lv[0].size, root_width / 2.0**lv[2]) for lv in levels])
    count = stop - start
    center_of_mass = (cumulative[stop] - cumulative[start]) / count[:, None]
    first_child = np.zeros(start.size, dtype=np.int64)
    n_children = np.zeros(start.size, dtype=np.int64)
    offset = 0
    for (lv_start, _, _, lv_leaf), nxt in zip(levels[:-1], levels[1:]):
        parents = offset + np.flatnonzero(~lv_leaf)
        next_offset = offset + lv_start.size
        # children arrive sorted, grouped by parent: count them per parent
        owner = np.searchsorted(lv_start[~lv_leaf], nxt[0], side="right") - 1
        counts = np.bincount(owner, minlength=parents.size)
        n_children[parents] = counts
        first_child[parents] = next_offset + np.cumsum(counts) - counts
        offset = next_offset
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    slots = np.arange(2 ** center_of_mass.shape[1])
    children = np.where(slots < n_children[:, None], first_child[:, None] + slots, -1)
    return QuadTree(order=order, rank=rank, start=start, stop=stop, width=width,
                    center_of_mass=center_of_mass, is_leaf=is_leaf,
                    first_child=first_child, n_children=n_children, children=children)


def barnes_hut_repulsion(
    Y: np.ndarray, phi: Callable[[np.ndarray], np.ndarray], weight: Callable[[np.ndarray], np.ndarray],
    theta: float
) -> RepulsionSums:
    """Barnes-Hut estimate of the repulsion sums (see the module docstring).

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components), n_components <= 3
    phi : callable
        ``phi(D) -> ndarray of shape D.shape + (n_channels,)``.
    weight : callable
        The loss's kernel ``w(D)``.
    theta : float
        Opening angle; 0 is exact.

    Returns
    -------
    RepulsionSums
    """
    n, d = Y.shape
    if d > MAX_DIMENSIONS:
        raise ValueError(f"Barnes-Hut supports at most {MAX_DIMENSIONS} dimensions; got {d}")
    tree = build_tree(Y)
    owner, source, count = _interactions(tree, Y, theta)
    # sources 0 .. n-1 are points, n + v is the centre of mass of node v
    positions = np.vstack([Y, tree.center_of_mass])
    vector = Y[owner] - positions[source]
    D = np.einsum("ij,ij->i", vector, vector)
    channels = accumulate_pairs(n, owner, vector, D, phi, count)
    w = weight(D)
    return RepulsionSums(channels=channels, sum_w=float((count * w).sum()),
                         sum_w2=float((count * w * w).sum()))


def _interactions(tree: QuadTree, Y: np.ndarray, theta: float):
    """Walk all (point, cell) pairs level by level; return every interaction used.

    Returns ``(owner, source, weight)``: the point acted on, what acts on it (a point index
    ``j < n``, or ``n + v`` for the centre of mass of node ``v``), and the number of points
    the source stands for.
    """
    n = Y.shape[0]
    count = tree.count
    # width / sqrt(D) < theta  <=>  (width / theta)^2 < D, without dividing by D = 0
    threshold = (tree.width / theta) ** 2 if theta > 0 else np.full(count.size, np.inf)
    # a cell holding y_i is never summarized; only checked where it could be (theta >= 1/sqrt(d))
    check_contains = theta * theta * Y.shape[1] >= 1
    point, node = np.arange(n), np.zeros(n, dtype=np.int64)
    found = []
    while point.size:
        vector = Y[point] - tree.center_of_mass[node]
        summarize = threshold[node] < np.einsum("ij,ij->i", vector, vector)
        if check_contains:
            rank = tree.rank[point]
            summarize &= (rank < tree.start[node]) | (rank >= tree.stop[node])
        found.append((point[summarize], n + node[summarize], count[node[summarize]]))
        rest = ~summarize
        leaf = rest & tree.is_leaf[node]
        found.append(_leaf_interactions(tree, point[leaf], node[leaf]))
        opened = rest & ~leaf
        node = tree.children[node[opened]]  # (pairs, 2^d), -1 where a quadrant is empty
        point = np.broadcast_to(point[opened][:, None], node.shape)
        present = node >= 0
        point, node = point[present], node[present]
    owner, source, weight = (np.concatenate(parts) for parts in zip(*found))
    return owner, source, weight.astype(np.float64)


def _leaf_interactions(tree: QuadTree, point: np.ndarray, node: np.ndarray):
    """Point-by-point interactions of each point with the points of a leaf, itself excluded."""
    which, position = _ranges(tree.start[node], tree.count[node])
    owner, other = point[which], tree.order[position]
    keep = owner != other
    return owner[keep], other[keep], np.ones(int(keep.sum()), dtype=np.int64)
