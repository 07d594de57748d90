"""FFT-interpolated repulsion in numba: the estimate of :mod:`gidr_reference.fft`, 1-D and 2-D.

The grid (:func:`gidr_reference.fft.interpolation_grid`, here over the two corners of the
bounding box that :func:`bounding_box` finds), the kernel tables at the lattice offsets and
the three steps are the reference's; here

* the points are sorted by box with a counting sort (:func:`sort_by_box`: stable, so each
  box lists its points in index order), and the boxes are cut into runs holding about equal
  numbers of points, one parallel task each (a fixed number of tasks, whatever the threads);
* every node lies inside one box, so each box sums its points' charges into its own
  ``p^d`` nodes and writes them (:func:`spread`): a node's sum runs over its box's points
  in index order (the reference's ``bincount`` order), whatever the number of threads;
* the sum of the interpolated self terms ``K~_ii`` needs no pass of its own: with
  ``C_k(g) = sum_{|a - b| = g} l_a(t_k) l_b(t_k)`` (``t``: the point's place in its box),
  ``K~_ii = sum_g K(delta g) prod_k C_k(g_k)`` over the gaps ``g`` between local nodes, so
  :func:`spread` accumulates ``sum_i prod_k C_k(g_k)`` per task (``p^d`` numbers) and each
  total's self term is one dot product with its kernel at the gaps;
* the kernel tables come from the loss's jitted ``repulsion`` (:mod:`gidr_numba.forces`),
  evaluated in parallel at the lattice offsets; kernels with equal tables (t-SNE's
  ``phi_0 = w^2``) are transformed once, a kernel's spectrum is a type-I DCT that is kept
  halved (:func:`kernel_spectrum`) and read mirrored;
* the convolutions are ``scipy.fft`` real FFTs on ``numba.get_num_threads()`` workers (each
  1-D transform is computed whole by one worker: the bits do not depend on the count),
  transforms of the arrays in place where scipy allows it; the totals' pair sums come from
  the spectra (:func:`grid_sum`), not from more transforms;
* the potentials go back to the points, one box at a time, straight from the inverse
  transform's output (:func:`gather`); each point writes its own entries.

A point's Lagrange weights are computed in :func:`spread` and again in :func:`gather` by one
inlined helper (:func:`_axis_weights`): cheaper than storing them. The result is
bit-identical whatever the number of threads.
"""
from __future__ import annotations

import numba
import numpy as np
import scipy.fft
from numba import prange, types

from gidr.types import RepulsionSums
from gidr_numba.forces import PARAMS_TYPE, REPULSION_TYPE, call_repulsion, compile_twice, is_marker, kernel_argument
from gidr_reference.fft import MAX_DIMENSIONS, InterpolationGrid, interpolation_grid

__all__ = ["MAX_DIMENSIONS", "bounding_box", "sort_by_box", "spread", "gather", "grid_sum", "kernel_tables",
           "kernel_spectrum", "fft_repulsion"]

_f8 = types.float64
#: Parallel tasks of :func:`spread` and :func:`gather`: runs of boxes holding about ``n / _TASKS``
#: points each (more tasks than threads, for balance; the bits do not depend on the count).
_TASKS = 64
#: Rows of the table: phi_0, phi_1, w, w^2.
_W, _W2 = 2, 3


@numba.njit(cache=True)
def bounding_box(Y, out):
    """``out[0] = Y.min(axis=0)``, ``out[1] = Y.max(axis=0)``; False when ``Y`` holds a NaN or an infinity."""
    for k in range(Y.shape[1]):
        out[0, k] = out[1, k] = Y[0, k]
    finite = True
    for i in range(Y.shape[0]):
        for k in range(Y.shape[1]):
            y = Y[i, k]
            if not np.isfinite(y):
                finite = False
            out[0, k] = min(out[0, k], y)
            out[1, k] = max(out[1, k], y)
    return finite


@numba.njit(cache=True, inline="always")
def _box_coordinate(y, lower, box_width, n_boxes):
    """``(index, t)``: the box along one axis (clipped to the grid) and the position in it."""
    scaled = (y - lower) / box_width
    index = min(max(np.floor(scaled), 0.0), n_boxes - 1.0)
    return index, scaled - index


@numba.njit(cache=True, parallel=True)
def _box_indices(Y, frame, out):
    lower, center, box_width, n_boxes = frame
    for i in prange(Y.shape[0]):
        flat = 0
        for k in range(Y.shape[1]):
            index, _ = _box_coordinate(Y[i, k], lower[k], box_width, n_boxes)
            flat = flat * n_boxes + np.int64(index)
        out[i] = flat


@numba.njit(cache=True)
def _counting_sort(keys, n_keys, n_tasks, order, start, tasks):
    counts = np.zeros(n_keys + 1, dtype=np.int64)
    for i in range(keys.size):
        counts[keys[i] + 1] += 1
    for b in range(n_keys):
        counts[b + 1] += counts[b]
    start[:] = counts
    for i in range(keys.size):
        order[counts[keys[i]]] = i
        counts[keys[i]] += 1
    b = 0
    for task in range(n_tasks):  # tasks[task]: the first box of the run holding points from task * n / n_tasks
        while start[b + 1] * n_tasks <= task * keys.size and b < n_keys - 1:
            b += 1
        tasks[task] = b
    tasks[0], tasks[n_tasks] = 0, n_keys


def sort_by_box(Y: np.ndarray, frame: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, box_start, tasks)``: the points sorted by flat box index (axis 0 slowest), stably.

    Box ``b`` holds ``order[box_start[b]:box_start[b + 1]]`` (in index order); task ``t`` the
    boxes ``tasks[t]:tasks[t + 1]``, runs that cover every box, about ``n / _TASKS`` points each.
    """
    n, d = Y.shape
    n_boxes_total = frame[3] ** d
    box = np.empty(n, dtype=np.int64)
    _box_indices(Y, frame, box)
    n_tasks = max(1, min(_TASKS, n_boxes_total))
    order, box_start, tasks = (np.empty(n, dtype=np.int64), np.empty(n_boxes_total + 1, dtype=np.int64),
                               np.empty(n_tasks + 1, dtype=np.int64))
    _counting_sort(box, n_boxes_total, n_tasks, order, box_start, tasks)
    return order, box_start, tasks


@numba.njit(cache=True, inline="always")
def _axis_weights(Y, i, frame, lagrange, out):
    """``out[k, a] = l_a(t_k)``: point ``i``'s Lagrange weights along each axis, shape (d, p).

    ``lagrange = (x, scale)``: the node positions ``x_m = (m + 1/2) / p`` in a box and
    ``scale[a] = 1 / prod_{m != a} (x_a - x_m)``, so ``l_a(t) = scale[a] prod_{m != a} (t - x_m)``.
    """
    lower, center, box_width, n_boxes = frame
    x, scale = lagrange
    for k in range(Y.shape[1]):
        _, t = _box_coordinate(Y[i, k], lower[k], box_width, n_boxes)
        for a in range(x.size):
            value = scale[a]
            for m in range(x.size):
                if m != a:
                    value *= t - x[m]
            out[k, a] = value


@numba.njit(cache=True, inline="always")
def _outer(weights, a0):
    """The first axis's factor of a local node's weight: ``weights[0, a0]`` in 2-D, 1 in 1-D (where
    the local nodes are indexed ``(0, a)``)."""
    return weights[0, a0] if weights.shape[0] == 2 else 1.0


@numba.njit(cache=True, inline="always")
def _gap_weights(axis_weights, out):
    """``out[k, g] = C_k(g) = sum_{|a - b| = g} l_a(t_k) l_b(t_k)``, shape (d, p)."""
    d, p = axis_weights.shape
    out[:] = 0.0
    for k in range(d):
        for a in range(p):
            for b in range(p):
                out[k, abs(a - b)] += axis_weights[k, a] * axis_weights[k, b]


@numba.njit(cache=True, parallel=True)
def spread(Y, boxes, frame, lagrange, out):
    """Charges to nodes, and the gap moments of the self terms.

    Writes ``out = (grid, moments)``: ``grid[q, n_0, n_1] = sum_j L_n(y_j) q_j`` for ``q`` in
    ``(1, y_1 - c_1, .., y_d - c_d)`` (``c``: the grid's center), shape (d + 1, N, N)
    ((2, 1, N) in 1-D), every entry; ``moments[task, g_0, g_1] = sum_j C_0(g_0) C_1(g_1)`` over the task's points
    (:func:`_gap_weights`; ``(n_tasks, 1, p)`` in 1-D), so that ``sum_j K~_jj`` is
    ``sum_g K(delta g) moments.sum(0)[g]``. ``boxes``: :func:`sort_by_box`'s arrays;
    ``frame``: ``(lower, center, box_width, n_boxes)``; ``lagrange``: see :func:`_axis_weights`.
    """
    order, box_start, tasks = boxes
    center, n_boxes = frame[1], frame[3]
    grid, moments = out
    n, d = Y.shape
    p, p_outer = lagrange[0].size, moments.shape[1]
    for task in prange(tasks.size - 1):
        weights, gaps = np.empty((d, p)), np.empty((d, p))
        sums, charges = np.empty((d + 1, p_outer, p)), np.empty(d + 1)
        charges[0] = 1.0
        moments[task] = 0.0
        for b in range(tasks[task], tasks[task + 1]):
            sums[:] = 0.0
            for s in range(box_start[b], box_start[b + 1]):
                i = order[s]
                _axis_weights(Y, i, frame, lagrange, weights)
                for k in range(d):
                    charges[k + 1] = Y[i, k] - center[k]
                for a0 in range(p_outer):
                    outer = _outer(weights, a0)
                    for a1 in range(p):
                        weight = outer * weights[d - 1, a1]
                        for q in range(d + 1):
                            sums[q, a0, a1] += weight * charges[q]
                _gap_weights(weights, gaps)
                for g0 in range(p_outer):
                    outer = _outer(gaps, g0)
                    for g1 in range(p):
                        moments[task, g0, g1] += outer * gaps[d - 1, g1]
            row, column = (b // n_boxes) * p, (b % n_boxes) * p  # the box's first node
            for q in range(d + 1):
                for a0 in range(p_outer):
                    for a1 in range(p):
                        grid[q, row + a0, column + a1] = sums[q, a0, a1]


@numba.njit(cache=True, parallel=True)
def gather(Y, boxes, frame, lagrange, potentials, out):
    """The channels at the points: ``out[c, i] = (y_i - center) S_c[1]_i - S_c[y - center]_i``,
    shape (n_channels, n, d), every entry written.

    ``potentials``: ``(phi, slot)``, ``phi`` (n_kernels, d + 1, N, N) ((n_kernels, d + 1, 1, N)
    in 1-D; any strides) the potentials of the charges of :func:`spread` at the nodes for each
    distinct channel kernel, ``slot[c]`` channel ``c``'s kernel; the other arguments as
    :func:`spread`'s. A point's potential is interpolated axis by axis:
    ``sum_(a_0) l_(a_0)(t_0) sum_(a_1) l_(a_1)(t_1) Phi(n_a)``.
    """
    order, box_start, tasks = boxes
    center, n_boxes = frame[1], frame[3]
    phi, slot = potentials
    n, d = Y.shape
    p = lagrange[0].size
    p_outer = p if d == 2 else 1
    for task in prange(tasks.size - 1):
        weights = np.empty((d, p))
        near, at_point = np.empty((phi.shape[0], d + 1, p_outer, p)), np.empty((phi.shape[0], d + 1))
        for b in range(tasks[task], tasks[task + 1]):
            if box_start[b] == box_start[b + 1]:
                continue
            row, column = (b // n_boxes) * p, (b % n_boxes) * p  # the box's first node
            for kernel in range(phi.shape[0]):
                for q in range(d + 1):
                    for a0 in range(p_outer):
                        for a1 in range(p):
                            near[kernel, q, a0, a1] = phi[kernel, q, row + a0, column + a1]
            for s in range(box_start[b], box_start[b + 1]):
                i = order[s]
                _axis_weights(Y, i, frame, lagrange, weights)
                for kernel in range(phi.shape[0]):
                    for q in range(d + 1):
                        total = 0.0
                        for a0 in range(p_outer):
                            inner = 0.0
                            for a1 in range(p):
                                inner += weights[d - 1, a1] * near[kernel, q, a0, a1]
                            total += _outer(weights, a0) * inner
                        at_point[kernel, q] = total
                for c in range(slot.size):
                    for k in range(d):
                        out[c, i, k] = (Y[i, k] - center[k]) * at_point[slot[c], 0] - at_point[slot[c], k + 1]


@numba.njit(cache=True, inline="always")
def _mirrored(f, n_rows, n_half):
    """The row of a half spectrum (``n_half`` rows) that holds row ``f`` of ``n_rows``: ``f`` or ``n_rows - f``
    (as int64: a ``prange`` index is unsigned, and mixed with a signed integer it would become a float)."""
    f = np.int64(f)
    return f if f < n_half else np.int64(n_rows) - f


@numba.njit(cache=True)
def _grid_sum(charge_spectrum, half):
    total = 0.0
    last = half.shape[1] - 1
    for r in range(charge_spectrum.shape[0]):
        row, kernel = 0.0, half[_mirrored(r, charge_spectrum.shape[0], half.shape[0])]
        for f in range(half.shape[1]):
            z = charge_spectrum[r, f]
            power = (z.real * z.real + z.imag * z.imag) * kernel[f]
            row += power if f == 0 or f == last else 2.0 * power
        total += row
    return total


def _as_rows(spectrum: np.ndarray) -> np.ndarray:
    """A (1-D or 2-D) spectrum as a 2-D array of rows (one row in 1-D)."""
    return np.ascontiguousarray(spectrum).reshape(-1, spectrum.shape[-1])


def grid_sum(charge_spectrum: np.ndarray, spectrum: np.ndarray) -> float:
    """``sum_b G(n_b) Phi(n_b)``, ``Phi`` the convolution of the charges ``G`` with the kernel,
    from the spectra alone (Parseval): ``(1 / M) sum_f |G^(f)|^2 K^(f)`` over the ``M = (2 N)^d``
    frequencies, the half spectrum's inner columns counted twice; ``spectrum`` is
    :func:`kernel_spectrum`'s (its first axis halved)."""
    columns = spectrum.shape[-1]
    total = _grid_sum(_as_rows(charge_spectrum), _as_rows(spectrum))
    return float(total / (2 * (columns - 1)) ** spectrum.ndim)


@numba.njit(cache=True, parallel=True)
def _multiply(charge_spectra, half, out):
    """``out[q, r, f] = charge_spectra[q, r, f] * K^(r, f)``, ``K^`` given by its half ``half``
    (:func:`_mirrored`); ``out`` may be ``charge_spectra``."""
    n_rows = charge_spectra.shape[1]
    for r in prange(n_rows):
        kernel = half[_mirrored(r, n_rows, half.shape[0])]
        for q in range(charge_spectra.shape[0]):
            for f in range(half.shape[1]):
                out[q, r, f] = charge_spectra[q, r, f] * kernel[f]


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


def kernel_spectrum(table: np.ndarray, workers: int = 1) -> np.ndarray:
    """The real FFT of :func:`gidr_reference.fft.circulant` ``(table)``, ``N + 1`` rows per axis.

    The circulant column is even in every axis, so its DFT is real and even (row ``k`` equals
    row ``2 N - k``), and it is the type-I DCT of the table extended by the (zero) entry at
    offset ``N``: the ``rfftn`` layout's first ``N + 1`` entries along every axis (the rest
    are read mirrored, :func:`_mirrored`). Four times fewer operations than the FFT of the
    ``(2 N)^d`` column.
    """
    N, d = table.shape[0], table.ndim
    padded = np.zeros((N + 1,) * d)
    padded[(slice(0, N),) * d] = table
    return scipy.fft.dctn(padded, type=1, workers=workers)


def _forward(charges: np.ndarray, workers: int) -> np.ndarray:
    """``rfftn`` of each charge grid ``charges[q]`` ((N,) * d) zero-padded to ``(2 N)^d``: the
    last axis first, on the ``N^(d-1)`` rows that are not padding."""
    N = charges.shape[-1]
    spectrum = scipy.fft.rfft(charges, n=2 * N, axis=-1, workers=workers)
    for axis in range(1, charges.ndim - 1):
        spectrum = scipy.fft.fft(spectrum, n=2 * N, axis=axis, workers=workers)
    return spectrum


def _inverse(spectrum: np.ndarray, N: int, workers: int) -> np.ndarray:
    """The inverse of :func:`_forward` cut to the first ``N`` nodes per axis (``spectrum`` is
    overwritten): the last axis last, on the ``N^(d-1)`` rows that are kept."""
    keep = (slice(None),) + (slice(0, N),) * (spectrum.ndim - 2)
    for axis in range(1, spectrum.ndim - 1):
        spectrum = scipy.fft.ifft(spectrum, axis=axis, workers=workers, overwrite_x=True)
    return scipy.fft.irfft(spectrum[keep], n=2 * N, axis=-1, workers=workers, overwrite_x=True)[..., :N]


def _lagrange(p: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, scale)`` of :func:`_axis_weights`: the ``p`` node positions in a box and the
    inverse products ``1 / prod_{m != a} (x_a - x_m)``."""
    x = (np.arange(p) + 0.5) / p
    gaps = x[:, None] - x[None, :]
    np.fill_diagonal(gaps, 1.0)
    return x, 1.0 / np.prod(gaps, axis=1)


def _potentials(charge_spectra: np.ndarray, spectra: dict, kernels: list, N: int, workers: int) -> np.ndarray:
    """The potentials (len(kernels), d + 1, N, N) ((.., 1, N) in 1-D) of each kernel, a view of the
    inverse transform's output when there is one kernel; ``charge_spectra`` is overwritten."""
    d_plus_1 = charge_spectra.shape[0]
    rows = charge_spectra.reshape(d_plus_1, -1, charge_spectra.shape[-1])
    out = []
    for position, k in enumerate(kernels):
        product = charge_spectra if position == len(kernels) - 1 else np.empty_like(charge_spectra)
        _multiply(rows, _as_rows(spectra[k]), product.reshape(rows.shape))
        potential = _inverse(product, N, workers)
        out.append(potential if potential.ndim == 3 else potential[:, None, :])
    return out[0][None] if len(out) == 1 else np.stack(out)


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
    corners = np.empty((2, d))
    if not bounding_box(Y, corners):
        raise ValueError("FFT-interpolated repulsion needs a finite embedding; Y holds NaN or infinite values")
    grid = interpolation_grid(corners, n_interpolation_points, min_boxes, max_box_width)
    N, p = grid.n_nodes, grid.n_interpolation_points
    frame = (np.ascontiguousarray(grid.lower), np.ascontiguousarray(grid.center), float(grid.box_width),
             int(grid.n_boxes))
    lagrange = _lagrange(p)
    boxes = sort_by_box(Y, frame)
    rows = N if d == 2 else 1
    grid_charges, moments = np.empty((d + 1, rows, N)), np.empty((boxes[2].size - 1, p if d == 2 else 1, p))
    spread(Y, boxes, frame, lagrange, (grid_charges, moments))

    workers = numba.get_num_threads()
    charge_spectra = _forward(grid_charges.reshape((d + 1,) + (N,) * d), workers)
    tables = kernel_tables(grid, d, repulsion, a, b, params)
    used = list(range(n_channels)) + [_W, _W2]
    distinct = {k: next(j for j in used if np.array_equal(tables[j], tables[k])) for k in used}
    spectra = {k: kernel_spectrum(tables[k], workers) for k in set(distinct.values())}
    pairs = [grid_sum(charge_spectra[0], spectra[distinct[k]]) for k in (_W, _W2)]
    kernels = sorted({distinct[c] for c in range(n_channels)})
    potentials = _potentials(charge_spectra, spectra, kernels, N, workers)
    slot = np.array([kernels.index(distinct[c]) for c in range(n_channels)], dtype=np.int64)
    channels = np.empty((n_channels, n, d))
    gather(Y, boxes, frame, lagrange, (potentials, slot), channels)
    moments = moments.sum(axis=0)
    self_w, self_w2 = (float(np.sum(tables[k][(slice(0, p),) * d].reshape(moments.shape) * moments))
                       for k in (_W, _W2))
    return RepulsionSums(channels=channels, sum_w=pairs[0] - self_w, sum_w2=pairs[1] - self_w2)
