"""FFT-interpolated repulsion in numba: the estimate of :mod:`gidr_reference.fft`, 1-D and 2-D.

The grid (:func:`gidr_reference.fft.interpolation_grid`), the kernel tables at the lattice
offsets and the three steps are the reference's; here

* the points' boxes, nodes and Lagrange weights are found in parallel over points
  (:func:`locate`);
* charges go to the nodes in parallel over rows of boxes (:func:`spread`): the points are
  sorted by box (a stable sort, so each box lists its points in index order) and the row of
  boxes with first box index ``r`` is the only writer of the nodes with first node index in
  ``[r p, (r + 1) p)``; every node therefore sums its contributions in point order, whatever
  the number of threads;
* the kernel tables come from the loss's jitted ``repulsion`` (:mod:`gidr_numba.forces`),
  evaluated in parallel at the lattice offsets;
* the convolutions are ``scipy.fft`` real FFTs on ``numba.get_num_threads()`` workers (each
  1-D transform is computed whole by one worker: the bits do not depend on the count);
* the potentials go back to the points and the interpolated self terms ``K~_ii`` are found
  in parallel over points, each point writing its own entries; totals are NumPy sums in a
  fixed order.

The result is bit-identical whatever the number of threads.
"""
from __future__ import annotations

import numba
import numpy as np
import scipy.fft
from numba import prange, types

from gidr.types import RepulsionSums
from gidr_numba.forces import PARAMS_TYPE, REPULSION_TYPE, call_repulsion, compile_twice, is_marker, kernel_argument
from gidr_reference.fft import MAX_DIMENSIONS, InterpolationGrid, interpolation_grid

__all__ = ["MAX_DIMENSIONS", "locate", "spread", "gather", "self_interactions", "kernel_tables", "fft_repulsion"]

_f8 = types.float64
#: Points per parallel task in :func:`locate` (scratch arrays are allocated per chunk).
_CHUNK = 256
#: Rows of the table: phi_0, phi_1, w, w^2.
_W, _W2 = 2, 3


@numba.njit(cache=True, parallel=True)
def locate(Y, lower, box_width, n_boxes, p, box, nodes, weights):
    """Each point's box, the flat indices of its box's ``p^d`` nodes and their weights.

    Writes ``box`` (n,) (flat box index, axis 0 slowest), ``nodes`` and ``weights``
    (n, p^d), as :func:`gidr_reference.fft.locate` returns them.
    """
    n, d = Y.shape
    n_nodes = n_boxes * p
    n_local = nodes.shape[1]
    for chunk in prange((n + _CHUNK - 1) // _CHUNK):
        axis_weights, first_node = np.empty((d, p)), np.empty(d, dtype=np.int64)
        for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
            flat_box = 0
            for k in range(d):
                scaled = (Y[i, k] - lower[k]) / box_width
                index = min(max(np.floor(scaled), 0.0), n_boxes - 1.0)
                t = scaled - index
                for a in range(p):
                    value = 1.0
                    for m in range(p):
                        if m != a:
                            value *= (t - (m + 0.5) / p) / ((a + 0.5) / p - (m + 0.5) / p)
                    axis_weights[k, a] = value
                first_node[k] = np.int64(index) * p
                flat_box = flat_box * n_boxes + np.int64(index)
            box[i] = flat_box
            for local in range(n_local):
                rest, stride, node, weight = local, n_local, 0, 1.0
                for k in range(d):
                    stride //= p
                    digit = rest // stride
                    rest -= digit * stride
                    node = node * n_nodes + first_node[k] + digit
                    weight *= axis_weights[k, digit]
                nodes[i, local] = node
                weights[i, local] = weight


@numba.njit(cache=True, parallel=True)
def spread(order, box_start, boxes_per_row, nodes, weights, charges, out):
    """``out[q, node] = sum_j L_node(y_j) charges[j, q]`` (``out`` zeroed, shape (n_charges, N^d)).

    ``order`` lists the points sorted by box (stably), box ``b`` holding
    ``order[box_start[b]:box_start[b + 1]]``; one task per row of ``boxes_per_row`` boxes.
    """
    n_rows = (box_start.size - 1) // boxes_per_row
    for row in prange(n_rows):
        for b in range(row * boxes_per_row, (row + 1) * boxes_per_row):
            for s in range(box_start[b], box_start[b + 1]):
                i = order[s]
                for local in range(nodes.shape[1]):
                    node = nodes[i, local]
                    for q in range(charges.shape[1]):
                        out[q, node] += weights[i, local] * charges[i, q]


@numba.njit(cache=True, parallel=True)
def gather(nodes, weights, potentials, out):
    """``out[c, i] = sum_a L_a(y_i) potentials[c, node_a]`` over the nodes of ``i``'s box."""
    for i in prange(nodes.shape[0]):
        for c in range(potentials.shape[0]):
            total = 0.0
            for local in range(nodes.shape[1]):
                total += potentials[c, nodes[i, local]] * weights[i, local]
            out[c, i] = total


@numba.njit(cache=True, parallel=True)
def self_interactions(weights, gap, table, out):
    """``out[i] = sum_a sum_b L_a(y_i) L_b(y_i) table[gap[a, b]]``: the interpolated kernel
    between a point and itself (``gap``: flat index of the offset between local nodes)."""
    n_local = weights.shape[1]
    for i in prange(weights.shape[0]):
        total = 0.0
        for a in range(n_local):
            inner = 0.0
            for b in range(n_local):
                inner += table[gap[a, b]] * weights[i, b]
            total += weights[i, a] * inner
        out[i] = total


_TABLES_SIGNATURE = types.void(_f8[::1], REPULSION_TYPE, _f8, _f8, PARAMS_TYPE, _f8[:, ::1])


def _tables_kernel(D, repulsion, a, b, params, out):
    """``out[:, j] = (phi_0, phi_1, w, w^2)`` at ``D[j]``."""
    for j in prange(D.size):
        phi_0, phi_1, w = call_repulsion(repulsion, D[j], a, b, params)
        out[0, j] = phi_0
        out[1, j] = phi_1
        out[_W, j] = w
        out[_W2, j] = w * w


_tables_markers, _tables_functions = compile_twice(_tables_kernel, _TABLES_SIGNATURE)


def kernel_tables(grid: InterpolationGrid, d: int, repulsion, a: float, b: float, params: tuple) -> np.ndarray:
    """``(phi_0, phi_1, w, w^2)`` at the nonnegative lattice offsets: shape (4,) + (N,) * d."""
    N = grid.n_nodes
    steps = (grid.spacing * np.arange(N)) ** 2
    D = steps if d == 1 else (steps[:, None] + steps[None, :]).ravel()
    out = np.empty((4, D.size))
    argument = kernel_argument(repulsion)
    kernel = _tables_markers if is_marker(argument) else _tables_functions
    kernel(np.ascontiguousarray(D), argument, float(a), float(b), params, out)
    return out.reshape((4,) + (N,) * d)


def _local_gaps(p: int, d: int, N: int) -> np.ndarray:
    """Flat index, in a table of ``N`` offsets per axis, of the offset between local nodes a, b."""
    local = np.indices((p,) * d).reshape(d, -1)
    gap = np.abs(local[:, :, None] - local[:, None, :])
    flat = np.zeros(gap.shape[1:], dtype=np.int64)
    for k in range(d):
        flat = flat * N + gap[k]
    return flat


def kernel_spectrum(table: np.ndarray) -> np.ndarray:
    """The real FFT (``rfftn`` layout) of :func:`gidr_reference.fft.circulant` ``(table)``.

    The circulant column is even in every axis, so its DFT is real and is the type-I DCT of
    the table extended by the (zero) entry at offset ``N``; the axes but the last are then
    mirrored, ``k -> 2 N - k``, to the full length ``2 N``. Four times fewer operations than
    the FFT of the ``(2 N)^d`` column.
    """
    N, d = table.shape[0], table.ndim
    padded = np.zeros((N + 1,) * d)
    padded[(slice(0, N),) * d] = table
    cosine = scipy.fft.dctn(padded, type=1)
    mirror = np.concatenate([np.arange(N + 1), np.arange(N - 1, 0, -1)])
    for axis in range(d - 1):
        cosine = np.take(cosine, mirror, axis=axis)
    return cosine


def _forward(charges: np.ndarray, workers: int) -> np.ndarray:
    """``rfftn`` of each charge grid ``charges[q]`` ((N,) * d) zero-padded to ``(2 N)^d``: the
    last axis first, on the ``N^(d-1)`` rows that are not padding."""
    N = charges.shape[-1]
    spectrum = scipy.fft.rfft(charges, n=2 * N, axis=-1, workers=workers)
    for axis in range(1, charges.ndim - 1):
        spectrum = scipy.fft.fft(spectrum, n=2 * N, axis=axis, workers=workers)
    return spectrum


def _inverse(spectrum: np.ndarray, N: int, workers: int) -> np.ndarray:
    """The inverse of :func:`_forward` cut to the first ``N`` nodes per axis: the last axis
    last, on the ``N^(d-1)`` rows that are kept."""
    keep = (slice(None),) + (slice(0, N),) * (spectrum.ndim - 2)
    for axis in range(1, spectrum.ndim - 1):
        spectrum = scipy.fft.ifft(spectrum, axis=axis, workers=workers)
    return scipy.fft.irfft(spectrum[keep], n=2 * N, axis=-1, workers=workers)[..., :N]


def grid_sum(charge_spectrum: np.ndarray, spectrum: np.ndarray) -> float:
    """``sum_b G(n_b) Phi(n_b)``, ``Phi`` the convolution of the charges ``G`` with the kernel,
    from the spectra alone (Parseval): ``(1 / M) sum_f |G^(f)|^2 K^(f)`` over the ``M = (2 N)^d``
    frequencies, the half spectrum's inner columns counted twice."""
    N2 = 2 * (spectrum.shape[-1] - 1)
    power = charge_spectrum.real ** 2 + charge_spectrum.imag ** 2
    column_weight = np.full(spectrum.shape[-1], 2.0)
    column_weight[[0, -1]] = 1.0
    return float(np.sum(power * spectrum * column_weight) / N2 ** spectrum.ndim)


def fft_repulsion(Y: np.ndarray, repulsion, a: float, b: float, params: tuple, n_channels: int, *,
                  n_interpolation_points: int = 3, min_boxes: int = 50, max_box_width: float = 1.0
                  ) -> RepulsionSums:
    """FFT-interpolated estimate of the repulsion sums (:func:`gidr_reference.fft.fft_repulsion`).

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components), n_components <= 2
    repulsion : numba function
        ``repulsion(D, a, b, params) -> (phi_0, phi_1, w)`` (:mod:`gidr_numba.forces`).
    a, b : float
    params : tuple of float
        The loss's own parameters.
    n_channels : int
        1 or 2: the number of channels returned.
    n_interpolation_points, min_boxes : int
    max_box_width : float
        The grid's parameters (:func:`gidr_reference.fft.interpolation_grid`).

    Returns
    -------
    RepulsionSums
    """
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    n, d = Y.shape
    if d > MAX_DIMENSIONS:
        raise ValueError(f"FFT-interpolated repulsion supports at most {MAX_DIMENSIONS} dimensions; got {d}")
    if n < 2:
        return RepulsionSums(channels=np.zeros((n_channels, n, d)), sum_w=0.0, sum_w2=0.0)
    grid = interpolation_grid(Y, n_interpolation_points, min_boxes, max_box_width)
    N, p = grid.n_nodes, grid.n_interpolation_points
    box, nodes, weights = np.empty(n, dtype=np.int64), np.empty((n, p**d), dtype=np.int64), np.empty((n, p**d))
    locate(Y, np.ascontiguousarray(grid.lower), float(grid.box_width), grid.n_boxes, p, box, nodes, weights)
    order = np.argsort(box, kind="stable")
    box_start = np.concatenate([[0], np.cumsum(np.bincount(box, minlength=grid.n_boxes**d))])
    relative = Y - grid.center
    charges = np.column_stack([np.ones(n), relative])
    grid_charges = np.zeros((d + 1, N**d))
    spread(order, box_start, grid.n_boxes ** (d - 1), nodes, weights, charges, grid_charges)

    workers = numba.get_num_threads()
    charge_spectra = _forward(grid_charges.reshape((d + 1,) + (N,) * d), workers)
    tables = kernel_tables(grid, d, repulsion, a, b, params)
    used = list(range(n_channels)) + [_W, _W2]
    distinct = {k: next(j for j in used if np.array_equal(tables[j], tables[k])) for k in used}
    spectra = {k: kernel_spectrum(tables[k]) for k in set(distinct.values())}
    potentials = {}
    for k in sorted({distinct[c] for c in range(n_channels)}):
        full = _inverse(spectra[k] * charge_spectra, N, workers)
        for charge in range(d + 1):
            potentials[k, charge] = full[charge].ravel()
    channels = np.empty((n_channels, n, d))
    at_points = np.empty((d + 1, n))
    for c in range(n_channels):
        gather(nodes, weights, np.stack([potentials[distinct[c], q] for q in range(d + 1)]), at_points)
        channels[c] = relative * at_points[0][:, None] - at_points[1:].T
    gaps = _local_gaps(p, d, N)
    self_terms = np.empty(n)
    totals = []
    for k in (_W, _W2):
        pairs = grid_sum(charge_spectra[0], spectra[distinct[k]])
        self_interactions(weights, gaps, np.ascontiguousarray(tables[k]).ravel(), self_terms)
        totals.append(pairs - float(self_terms.sum()))
    return RepulsionSums(channels=channels, sum_w=totals[0], sum_w2=totals[1])
