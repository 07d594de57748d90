"""Reference FFT-interpolated repulsion (the method of FIt-SNE, Linderman et al. 2019), 1-D and 2-D.

The sums to estimate are kernel sums ``S_K[q]_i = sum_j K(y_i - y_j) q_j`` of scalar kernels
``K(D)`` of the squared distance, with charges ``q`` in ``{1, y_(:, 1), ..., y_(:, d)}``::

    channels[c, i] = sum_{j != i} phi_c(D_ij) (y_i - y_j) = y_i S_phi_c[1]_i - S_phi_c[y]_i
    sum_w          = sum_i S_w[1]_i - (self terms),      sum_w2 likewise with the kernel w^2

(``j = i`` adds ``K(0) (y_i - y_i) = 0`` to the channels, whatever ``K``).

Interpolation grid. The embedding's bounding box, with square boxes of side
``h = span / n_boxes`` (``span``: the largest side of the bounding box), is cut into
``n_boxes`` boxes per axis, ``n_boxes = max(min_boxes, ceil(span / max_box_width))`` rounded
up to a product of 2, 3 and 5 (fast FFT sizes). Each box holds ``p = n_interpolation_points``
equispaced nodes per axis at ``(k + 1/2) h / p``, ``k = 0 .. p-1`` (never on its border), so
that all ``N = n_boxes p`` nodes per axis form one lattice of spacing ``delta = h / p``.
Point ``j`` in a box, at box coordinates ``t`` in ``[0, 1]^d``, stands for the nodes ``a`` of
its box with the tensor-product Lagrange weights ``L_a(y_j) = prod_k l_(a_k)(t_k)``::

    l_k(t) = prod_{m != k} (t - x_m) / (x_k - x_m),      x_m = (m + 1/2) / p

and the kernel between two points is replaced by its interpolant on the nodes::

    K(y_i - y_j) ~ K~_ij = sum_a sum_b L_a(y_i) K(n_a - n_b) L_b(y_j)

Three steps then give every ``S_K[q]`` in O(n p^d + M log M), ``M = (2 N)^d``:

1. charges to nodes:   ``G_q(n_b) = sum_j L_b(y_j) q_j``
2. nodes to nodes:     ``Phi_q(n_a) = sum_b K(n_a - n_b) G_q(n_b)``, a convolution with the
   kernel's values at the lattice offsets ``delta (a - b)``, ``|a_k - b_k| < N``, evaluated
   by FFT after embedding that Toeplitz matrix in a circulant one of size ``2 N`` per axis
3. nodes to points:    ``S_K[q]_i = sum_a L_a(y_i) Phi_q(n_a)``

The totals are grid sums, ``sum_i S_K[1]_i = sum_b G_1(n_b) Phi_1(n_b)``, less the
interpolated self terms ``K~_ii`` (computed exactly for each point from its box's nodes),
so ``sum_w = sum_{i != j} K~_ij``. Kernels whose tables at the lattice offsets are equal
(t-SNE's ``phi_0 = w^2``) are transformed once.

Accuracy. The error is that of interpolating ``K`` on boxes of side ``h <= max_box_width``:
small for kernels smooth on that scale, such as t-SNE's Student-t. Measured at the defaults
``p = 3``, ``min_boxes = 50``, ``max_box_width = 1`` on 2,000 clustered points of span 80:
relative L2 error of the channels 1.7e-2 .. 1.9e-2 in 2-D (3e-2 .. 4e-2 in 1-D), of
``sum_w`` below 1e-4, of ``sum_w2`` below 1e-3 (openTSNE's FFT gradient: 2.1e-2 on the same
kind of points); halving ``max_box_width`` divides the channel error by 7 to 11 (see
``tests/reference/test_fft.py`` for the bounds). Kernels that vary on a scale below ``h`` are
not resolved: UMAP's unnormalized KL channel ``2b / ((epsilon + D)(1 + a D^b))``, a softened
``1/D``, has a peak of width ``sqrt(epsilon)`` at ``D = 0`` (forces off by a factor of 50).
:func:`resolution_error` measures this on the kernel itself, and the ``fft`` stage refuses a
loss whose kernels it cannot resolve (above :data:`MAX_RESOLUTION_ERROR`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from gidr.types import RepulsionSums

__all__ = ["MAX_DIMENSIONS", "MAX_RESOLUTION_ERROR", "resolution_error", "InterpolationGrid", "fast_size", "interpolation_grid", "lagrange_weights",
           "locate", "kernel_tables", "circulant", "self_interactions", "fft_repulsion"]

#: The largest embedding dimension the grid supports.
MAX_DIMENSIONS = 2

#: Largest :func:`resolution_error` of a kernel the stage accepts. t-SNE's kernels give
#: 0.05 (w) and 0.11 (w^2), the Student-t with dof 0.5 0.15, the Frobenius loss's 0.16;
#: UMAP's unnormalized channel 0.94 (its forces come out 50 times too large or small).
MAX_RESOLUTION_ERROR = 0.5

Channels = Callable[[np.ndarray], np.ndarray]


def resolution_error(kernel: Callable[[np.ndarray], np.ndarray], box_width: float, p: int) -> float:
    """How well ``p`` nodes per box of side ``box_width`` resolve ``kernel(D)`` near ``D = 0``.

    The radial profile ``f(r) = kernel(r^2)`` is interpolated, as the grid does along one axis,
    on the two boxes ``[-h, 0]`` and ``[0, h]`` next to a point (``h = box_width``, nodes at
    ``(k + 1/2) h / p``); the result is the largest error there over the largest ``|f|`` (0 for a
    kernel that vanishes there). A peak narrower than a box gives a value near 1.
    """
    t = np.linspace(0.0, 1.0, 129)
    lagrange = lagrange_weights(t, p)
    nodes = (np.arange(p) + 0.5) / p
    worst = scale = 0.0
    for lower in (-box_width, 0.0):
        exact = np.asarray(kernel((lower + t * box_width) ** 2), dtype=np.float64)
        approx = lagrange @ np.asarray(kernel((lower + nodes * box_width) ** 2), dtype=np.float64)
        worst = max(worst, float(np.max(np.abs(exact - approx))))
        scale = max(scale, float(np.max(np.abs(exact))))
    return worst / scale if scale > 0 else 0.0


@dataclass(frozen=True)
class InterpolationGrid:
    """Boxes and interpolation nodes over the embedding's bounding box.

    Attributes
    ----------
    lower : ndarray of shape (n_components,)
        Lower corner of the grid (the bounding box's).
    box_width : float
        Side ``h`` of every (square) box.
    n_boxes : int
        Boxes per axis.
    n_interpolation_points : int
        Nodes per box and axis, ``p``.
    """

    lower: np.ndarray
    box_width: float
    n_boxes: int
    n_interpolation_points: int

    @property
    def n_nodes(self) -> int:
        """Nodes per axis, ``N = n_boxes * p``."""
        return self.n_boxes * self.n_interpolation_points

    @property
    def spacing(self) -> float:
        """Distance between neighbouring nodes, ``delta = h / p``."""
        return self.box_width / self.n_interpolation_points

    @property
    def center(self) -> np.ndarray:
        """Middle of the grid: charges are taken relative to it (smaller cancellation)."""
        return self.lower + 0.5 * self.n_boxes * self.box_width


def fast_size(n: int) -> int:
    """The smallest integer ``>= n`` (and ``>= 1``) with no prime factor above 5."""
    m = max(int(n), 1)
    while True:
        rest = m
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return m
        m += 1


def interpolation_grid(Y: np.ndarray, n_interpolation_points: int, min_boxes: int,
                       max_box_width: float) -> InterpolationGrid:
    """The grid over ``Y`` (shape (n_samples, d), n_samples >= 1), see the module docstring.

    ``n_boxes = fast_size(max(min_boxes, ceil(span / max_box_width)))``, ``h = span / n_boxes``;
    all points identical (``span = 0``): ``h = max_box_width / n_boxes`` (any width is exact).
    """
    lower = Y.min(axis=0)
    span = float((Y.max(axis=0) - lower).max())
    n_boxes = fast_size(max(int(min_boxes), int(np.ceil(span / max_box_width))))
    width = span / n_boxes if span > 0 else max_box_width / n_boxes
    return InterpolationGrid(lower=lower, box_width=width, n_boxes=n_boxes,
                             n_interpolation_points=int(n_interpolation_points))


def lagrange_weights(t: np.ndarray, p: int) -> np.ndarray:
    """``l_k(t) = prod_{m != k} (t - x_m) / (x_k - x_m)``, ``x_m = (m + 1/2) / p``.

    Parameters
    ----------
    t : ndarray of shape (m,)
        Positions inside the box, in ``[0, 1]``.
    p : int

    Returns
    -------
    ndarray of shape (m, p)
    """
    nodes = (np.arange(p) + 0.5) / p
    weights = np.ones((t.size, p))
    for k in range(p):
        for m in range(p):
            if m != k:
                weights[:, k] *= (t - nodes[m]) / (nodes[k] - nodes[m])
    return weights


def locate(Y: np.ndarray, grid: InterpolationGrid) -> tuple[np.ndarray, np.ndarray]:
    """Each point's nodes and their Lagrange weights.

    Returns
    -------
    nodes : ndarray of int, shape (n_samples, p^d)
        Flat indices (C order, ``N`` nodes per axis) of the nodes of the point's box.
    weights : ndarray of shape (n_samples, p^d)
        ``L_a(y_j)`` for those nodes.
    """
    n, d = Y.shape
    p, N = grid.n_interpolation_points, grid.n_nodes
    scaled = (Y - grid.lower) / grid.box_width
    box = np.clip(np.floor(scaled), 0, grid.n_boxes - 1).astype(np.int64)
    nodes, weights = np.zeros((n, 1), dtype=np.int64), np.ones((n, 1))
    for k in range(d):  # outer product over axes, axis 0 slowest (C order)
        axis_nodes = box[:, k, None] * p + np.arange(p)
        axis_weights = lagrange_weights(scaled[:, k] - box[:, k], p)
        nodes = (nodes[:, :, None] * N + axis_nodes[:, None, :]).reshape(n, -1)
        weights = (weights[:, :, None] * axis_weights[:, None, :]).reshape(n, -1)
    return nodes, weights


def _offsets(grid: InterpolationGrid, d: int, extent: int) -> np.ndarray:
    """Squared lengths ``D`` of the lattice offsets ``delta (i_1, .., i_d)``, ``0 <= i_k < extent``:
    an array of shape ``(extent,) * d``."""
    steps = (grid.spacing * np.arange(extent)) ** 2
    D = np.zeros((extent,) * d)
    for k in range(d):
        D = D + steps.reshape((1,) * k + (extent,) + (1,) * (d - k - 1))
    return D


def kernel_tables(phi: Channels, weight: Callable[[np.ndarray], np.ndarray], D: np.ndarray) -> list[np.ndarray]:
    """``[phi_0(D), .., phi_(C-1)(D), w(D), w(D)^2]``, each of ``D``'s shape."""
    channels = np.asarray(phi(D), dtype=np.float64)
    w = np.asarray(weight(D), dtype=np.float64)
    return [channels[..., c] for c in range(channels.shape[-1])] + [w, w * w]


def circulant(table: np.ndarray) -> np.ndarray:
    """The first column of the circulant embedding, ``(2 N)^d``, of a kernel given at the
    nonnegative offsets ``table[i_1, .., i_d] = K(delta (i_1, .., i_d))``, ``0 <= i_k < N``:
    entry ``j_k`` holds offset ``j_k`` for ``j_k < N`` and ``j_k - 2 N`` above ``N``; entry
    ``N`` (an offset that never occurs) is 0."""
    N = table.shape[0]
    index = np.concatenate([np.arange(N), [0], np.arange(N - 1, 0, -1)])
    out = table[np.ix_(*([index] * table.ndim))].copy()
    for k in range(table.ndim):
        out[(slice(None),) * k + (N,)] = 0.0
    return out


def self_interactions(weights: np.ndarray, table: np.ndarray, p: int, d: int) -> np.ndarray:
    """``K~_ii = sum_a sum_b L_a(y_i) L_b(y_i) K(n_a - n_b)`` over the nodes of ``i``'s box.

    Parameters
    ----------
    weights : ndarray of shape (n_samples, p^d)
        From :func:`locate`.
    table : ndarray of shape (extent,) * d, extent >= p
        The kernel at the nonnegative lattice offsets.
    """
    local = np.indices((p,) * d).reshape(d, -1)  # node a's position in its box, per axis
    gap = np.abs(local[:, :, None] - local[:, None, :])  # (d, p^d, p^d)
    pair_kernel = table[tuple(gap)]
    return np.einsum("ia,ab,ib->i", weights, pair_kernel, weights)


def fft_repulsion(Y: np.ndarray, phi: Channels, weight: Callable[[np.ndarray], np.ndarray], *,
                  n_interpolation_points: int = 3, min_boxes: int = 50, max_box_width: float = 1.0
                  ) -> RepulsionSums:
    """FFT-interpolated estimate of the repulsion sums (see the module docstring).

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components), n_components <= 2
    phi : callable
        ``phi(D) -> ndarray of shape D.shape + (n_channels,)``.
    weight : callable
        The loss's kernel ``w(D)``.
    n_interpolation_points : int
        Lagrange nodes per box and axis, ``p``.
    min_boxes : int
        Fewest boxes per axis.
    max_box_width : float
        Largest box side (more boxes are used when the embedding is wider).

    Returns
    -------
    RepulsionSums
    """
    n, d = Y.shape
    if d > MAX_DIMENSIONS:
        raise ValueError(f"FFT-interpolated repulsion supports at most {MAX_DIMENSIONS} dimensions; got {d}")
    n_channels = np.asarray(phi(np.zeros(1))).shape[-1]
    if n < 2:
        return RepulsionSums(channels=np.zeros((n_channels, n, d)), sum_w=0.0, sum_w2=0.0)
    grid = interpolation_grid(Y, n_interpolation_points, min_boxes, max_box_width)
    N, p = grid.n_nodes, grid.n_interpolation_points
    nodes, weights = locate(Y, grid)
    relative = Y - grid.center
    charges = np.column_stack([np.ones(n), relative])  # q = 1, y_1, .., y_d
    grid_charges = [np.bincount(nodes.ravel(), weights=(weights * charges[:, q, None]).ravel(),
                                minlength=N**d).reshape((N,) * d) for q in range(d + 1)]
    shape, axes = (2 * N,) * d, tuple(range(d))
    charge_spectra = [np.fft.rfftn(g, s=shape, axes=axes) for g in grid_charges]
    tables = kernel_tables(phi, weight, _offsets(grid, d, N))
    potentials = {}  # (kernel index, charge) -> potential at the nodes, shape (N,) * d

    def potential(k: int, q: int) -> np.ndarray:
        first = next(j for j in range(k + 1) if np.array_equal(tables[j], tables[k]))  # equal tables: once
        if (first, q) not in potentials:
            if (first, "spectrum") not in potentials:
                potentials[first, "spectrum"] = np.fft.rfftn(circulant(tables[first]))
            full = np.fft.irfftn(potentials[first, "spectrum"] * charge_spectra[q], s=shape, axes=axes)
            potentials[first, q] = full[(slice(0, N),) * d]
        return potentials[first, q]

    channels = np.empty((n_channels, n, d))
    for c in range(n_channels):
        at_points = [np.sum(potential(c, q).ravel()[nodes] * weights, axis=1) for q in range(d + 1)]
        channels[c] = relative * at_points[0][:, None] - np.column_stack(at_points[1:])
    totals = []
    for k in (n_channels, n_channels + 1):  # w, w^2
        pairs = float(np.sum(grid_charges[0] * potential(k, 0)))
        totals.append(pairs - float(self_interactions(weights, tables[k], p, d).sum()))
    return RepulsionSums(channels=channels, sum_w=totals[0], sum_w2=totals[1])
