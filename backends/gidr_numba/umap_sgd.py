"""umap-learn's SGD in numba: edges sampled in proportion to p, parallel and deterministic.

The schedule is the reference's (:func:`gidr_reference.optimizers.umap_sgd`): stored entry
``e`` of P is due at epoch ``t`` when its next sampling time is ``<= t + 1``, and is then
scheduled ``max(P) / p_e`` epochs later. With ``lr = learning_rate (1 - t / n_epochs)`` and
``clip`` bounding each coordinate to ``±max_step``, processing a due edge ``e = (i, j)``
is umap-learn's::

    y_i -= lr clip(attraction(D_ij, 1) (y_i - y_j))            (and y_j towards y_i, below)
    for s in 0 .. n_negative - 1:
        k = negative_sample(seed, t, i, slot = e * n_negative + s, n)
        y_i += lr clip(phi_0(D_ik) (y_i - y_k))                 (skipped when D_ik == 0)

Order of the updates. umap-learn applies each update at once, in a serial loop (seeded) or
a racy parallel one; the reference batches an epoch's updates at the epoch-start Y. Here
points are processed in parallel (``prange``) and each one owns its moves:

* point ``i`` walks its row of P and applies its own updates at once (each sees the
  previous ones: ``y_i`` is current), against the other points' epoch-start positions. The
  walk starts at an entry drawn for the point and the epoch and goes forwards or backwards
  (a coin from the same hash), wrapping around. Walked in column order, the last pulls of
  every epoch came from the highest-numbered neighbours, so where the numbering follows
  space (input sorted by class or by a coordinate, or :mod:`gidr.locality`'s Z-order)
  every point drifted the same way: on Fashion-MNIST 70,000 with the default 300 epochs,
  renumbered along the Z-curve, 100-NN accuracy / V-measure fell from 0.786 / 0.622 (the
  caller's numbering) to 0.768 / 0.446; with 200 epochs, sorted by the first coordinate of
  the start, from 0.780 / 0.624 (a random numbering) to 0.760 / 0.475. A
  random start alone left the bias (a cycle of the same neighbours; on a raster-numbered
  grid the mean move of the points was 0.77 of their mean move length, against 0.04 when
  numbered at random); with the random direction too it is 0.04 either way;
  the ``n_negative`` pushes of one due edge are evaluated at the same ``y_i`` (the one after
  the edge's pull) and their clipped sum applied together. Applying them one by one chained
  every negative sample's distance behind the previous sample's ``pow``: 18.0 s against
  13.6 s for the 200 epochs of Fashion-MNIST 70,000 (2 cores), with the same 100-NN
  accuracy (0.710 either way, the fraction of the 100 embedding neighbours that share the
  label) and V-measure (0.620, 0.623);
* the pull that symmetric attraction gives ``y_i`` when umap-learn processes a due entry
  ``(j, i)`` is applied by point ``i`` itself, evaluated with its own pull towards ``j``
  (so, when both entries are due, the own pull counts twice: one attraction evaluation
  instead of two); entries ``(j, i)`` with no stored ``(i, j)`` are evaluated after its row.

An epoch is one parallel pass (:func:`sgd_points`): point ``i`` reads the epoch-start
positions, writes only its row of the output, and marks its own entries due for the next
epoch; the position buffers and the flag arrays are swapped between epochs. Every draw is a
counter hash, so the result is the same bits whatever the number of threads.

The coefficients. ``attraction(D, 1)`` and ``phi_0(D)`` depend on ``D`` alone; with UMAP's
fitted ``b`` each costs a ``pow``, which was 60 % of the epoch (Fashion-MNIST 70,000, 100
epochs on 2 threads: 10.2-10.7 s, against 4.1 s with ``b = 1`` where the power is compiled
out). With ``force_table`` (the optimizer's default) both are read from
:mod:`gidr_reference.force_table`'s table where it holds ``D`` (relative error below 1e-4), by
:mod:`gidr_numba.force_table`, with the reference's bits; see
``docs/results/umap-sgd-table.md`` for the time and the layout's quality with and without it.

Measured earlier, with the pushes applied one by one (70 000 Fashion-MNIST points, 200
epochs, quiet 2-core machine): 15.7 s against 24.8 s for the same updates in umap-learn's
serial order and 15.2 s for umap-learn's own parallel loop; 15-NN accuracy 0.786, 0.786 and
0.782.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit, prange, types

from gidr_numba.forces import (ATTRACTION_TYPE, PARAMS_TYPE, REPULSION_TYPE, LossKernels, call_attraction,
                               call_repulsion, compile_twice,
                               kernel_arguments)
from gidr_numba import force_table
from gidr_numba.gdr import DRAW_BATCH, POINT_BLOCK, csr_arrays, draw_batch, report, threads_for
from gidr_numba.random import below, epoch_key, mix, row_key
from gidr_reference import force_table as reference_table

__all__ = ["mark_due", "sgd_points", "epochs_per_sample", "reverse_entries", "unmatched_transpose", "umap_sgd"]

_f8, _i8 = types.float64, types.int64
_ROWS_TYPE = types.Tuple((_i8[::1], types.int32[::1], _i8[::1]))
_SCHEDULE_TYPE = types.Tuple((types.boolean[::1], types.boolean[::1], _f8[::1], _f8[::1], _f8))
_SGD_POINTS_SIGNATURE = types.void(
    _f8[:, ::1], _f8[:, ::1], _ROWS_TYPE, _ROWS_TYPE, _SCHEDULE_TYPE, ATTRACTION_TYPE, REPULSION_TYPE,
    types.Tuple((_f8, _f8, PARAMS_TYPE)), types.Tuple((types.uint64, _i8)), types.Tuple((_f8, _f8, types.boolean)),
    types.Tuple((_f8[::1], _f8[::1])))


@njit(cache=True)
def _clip(x, bound):
    return min(max(x, -bound), bound)


@njit(cache=True)
def _mark_row(indptr, i, period, next_time, now, due):
    """Row ``i``: ``due[e] = next_time[e] <= now``; due entries advance ``next_time`` by ``period``."""
    for e in range(indptr[i], indptr[i + 1]):
        due[e] = next_time[e] <= now
        if due[e]:
            next_time[e] += period[e]


@njit(cache=True, parallel=True)
def mark_due(indptr, period, next_time, now, due):
    """:func:`_mark_row` for every row (in place on ``next_time`` and ``due``)."""
    for i in prange(indptr.shape[0] - 1):
        _mark_row(indptr, i, period, next_time, now, due)

#: The slot hashed for the walk of a row: above every negative draw's slot (``e * n_negative + s``).
_ROW_WALK_SLOT = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True, inline="always")
def _row_walk(point_key, length):
    """How point ``i`` walks its row of P in this epoch: ``(first, step)``, the entry it starts
    at (uniform in ``[0, length)``) and the direction, forwards (``1``) or backwards (``-1``)
    with probability 1/2, wrapping around (see the module docstring)."""
    if length <= 1:
        return 0, 1
    h = mix(point_key ^ _ROW_WALK_SLOT)
    return np.int64(below(h, length)), 1 if (mix(h) & np.uint64(1)) == np.uint64(0) else -1


@njit(cache=True, inline="always")
def _next_position(position, step, length):
    position += step
    if position == length:
        return 0
    if position < 0:
        return length - 1
    return position


@njit(cache=True, inline="always")
def _attraction(attraction, D, kernel_params, table):
    """``attraction(D, 1)``, from the force table where it has ``D`` (:mod:`gidr_numba.force_table`)."""
    if table.size > 0 and force_table.inside(D):
        return force_table.interpolate(table, D)
    a, b, params = kernel_params
    return call_attraction(attraction, D, 1.0, a, b, params)[0]


@njit(cache=True, inline="always")
def _repulsion(repulsion, D, kernel_params, table):
    """``phi_0(D)``, from the force table where it has ``D``."""
    if table.size > 0 and force_table.inside(D):
        return force_table.interpolate(table, D)
    a, b, params = kernel_params
    return call_repulsion(repulsion, D, a, b, params)[0]


@njit(cache=True)
def _pull_2d(y0, y1, x0, x1, attraction, kernel_params, step, times, table):
    """``y`` moved by ``-times * lr * clip(attraction(D, 1) (y - x))``."""
    learning_rate, max_step, _ = step
    d0 = y0 - x0
    d1 = y1 - x1
    coefficient = _attraction(attraction, d0 * d0 + d1 * d1, kernel_params, table)
    y0 = y0 - times * (learning_rate * _clip(coefficient * d0, max_step))
    return y0, y1 - times * (learning_rate * _clip(coefficient * d1, max_step))


@njit(cache=True)
def _pull(Y, i, x, attraction, kernel_params, step, times, table):
    """:func:`_pull_2d` for any number of components, in place on ``Y[i]``."""
    learning_rate, max_step, _ = step
    D = 0.0
    for c in range(Y.shape[1]):
        diff = Y[i, c] - x[c]
        D += diff * diff
    coefficient = _attraction(attraction, D, kernel_params, table)
    for c in range(Y.shape[1]):
        Y[i, c] = Y[i, c] - times * (learning_rate * _clip(coefficient * (Y[i, c] - x[c]), max_step))


@njit(cache=True)
def _point_2d(Y, previous, i, rows, transpose, due, attraction, repulsion, kernel_params, draws, step, buffer,
              tables):
    """Every update of point ``i`` in one epoch, from ``previous[i]`` into ``Y[i]``, in registers."""
    indptr, indices, reverse = rows
    t_indptr, t_indices, t_entry = transpose
    key, n_negative = draws
    learning_rate, max_step, symmetric_attraction = step
    n = Y.shape[0]
    point_key = row_key(key, i)
    y0, y1 = previous[i, 0], previous[i, 1]
    start, length = indptr[i], indptr[i + 1] - indptr[i]
    position, walk = _row_walk(point_key, length)
    for _ in range(length):
        e = start + position
        position = _next_position(position, walk, length)
        j = indices[e]
        partner = symmetric_attraction and reverse[e] >= 0 and due[reverse[e]]
        if due[e] or partner:
            times = 1.0 + (due[e] and partner)
            y0, y1 = _pull_2d(y0, y1, previous[j, 0], previous[j, 1], attraction, kernel_params, step, times, tables[0])
        if not due[e]:
            continue
        for first in range(0, n_negative, DRAW_BATCH):
            count = min(DRAW_BATCH, n_negative - first)
            draw_batch(point_key, i, e * n_negative + first, count, n, 0, buffer)
            push0 = 0.0
            push1 = 0.0
            for s in range(count):
                k = buffer[s]
                d0 = y0 - previous[k, 0]
                d1 = y1 - previous[k, 1]
                D = d0 * d0 + d1 * d1
                if D == 0.0:
                    continue
                phi = _repulsion(repulsion, D, kernel_params, tables[1])
                push0 += learning_rate * _clip(phi * d0, max_step)
                push1 += learning_rate * _clip(phi * d1, max_step)
            y0 += push0
            y1 += push1
    if symmetric_attraction:
        for t in range(t_indptr[i], t_indptr[i + 1]):
            if due[t_entry[t]]:
                j = t_indices[t]
                y0, y1 = _pull_2d(y0, y1, previous[j, 0], previous[j, 1], attraction, kernel_params, step, 1.0,
                                  tables[0])
    Y[i, 0] = y0
    Y[i, 1] = y1


@njit(cache=True)
def _point_any(Y, previous, i, rows, transpose, due, attraction, repulsion, kernel_params, draws, step, buffer,
               push, tables):
    """:func:`_point_2d` for any number of components (the same arithmetic, so the same bits)."""
    indptr, indices, reverse = rows
    t_indptr, t_indices, t_entry = transpose
    key, n_negative = draws
    learning_rate, max_step, symmetric_attraction = step
    n, d = Y.shape
    point_key = row_key(key, i)
    for c in range(d):
        Y[i, c] = previous[i, c]
    start, length = indptr[i], indptr[i + 1] - indptr[i]
    position, walk = _row_walk(point_key, length)
    for _ in range(length):
        e = start + position
        position = _next_position(position, walk, length)
        j = indices[e]
        partner = symmetric_attraction and reverse[e] >= 0 and due[reverse[e]]
        if due[e] or partner:
            _pull(Y, i, previous[j], attraction, kernel_params, step, 1.0 + (due[e] and partner), tables[0])
        if not due[e]:
            continue
        for first in range(0, n_negative, DRAW_BATCH):
            count = min(DRAW_BATCH, n_negative - first)
            draw_batch(point_key, i, e * n_negative + first, count, n, 0, buffer)
            for c in range(d):
                push[c] = 0.0
            for s in range(count):
                k = buffer[s]
                D = 0.0
                for c in range(d):
                    diff = Y[i, c] - previous[k, c]
                    D += diff * diff
                if D == 0.0:
                    continue
                phi = _repulsion(repulsion, D, kernel_params, tables[1])
                for c in range(d):
                    push[c] += learning_rate * _clip(phi * (Y[i, c] - previous[k, c]), max_step)
            for c in range(d):
                Y[i, c] = Y[i, c] + push[c]
    if symmetric_attraction:
        for t in range(t_indptr[i], t_indptr[i + 1]):
            if due[t_entry[t]]:
                _pull(Y, i, previous[t_indices[t]], attraction, kernel_params, step, 1.0, tables[0])


def _sgd_points_kernel(Y, previous, rows, transpose, schedule, attraction, repulsion, kernel_params, draws, step,
                       tables):
    """Body of :func:`sgd_points` (compiled twice: see :func:`gidr_numba.forces.compile_twice`)."""
    due, due_next, period, next_time, next_now = schedule
    # unpacked here and rebuilt in the loop: a nested tuple captured by a prange body is refused
    # by numba's parallel wrapper ("scalar type ... given for non scalar argument")
    a, b, params = kernel_params
    n = Y.shape[0]
    for block in prange((n + POINT_BLOCK - 1) // POINT_BLOCK):
        buffer = np.empty(DRAW_BATCH, dtype=np.int64)  # the draws of one edge, hashed before they are read
        push = np.empty(Y.shape[1])  # their summed moves
        for i in range(block * POINT_BLOCK, min(n, (block + 1) * POINT_BLOCK)):
            if Y.shape[1] == 2:
                _point_2d(Y, previous, i, rows, transpose, due, attraction, repulsion, (a, b, params), draws, step,
                          buffer, tables)
            else:
                _point_any(Y, previous, i, rows, transpose, due, attraction, repulsion, (a, b, params), draws, step,
                           buffer, push, tables)
            _mark_row(rows[0], i, period, next_time, next_now, due_next)


_sgd_points_markers, _sgd_points_functions = compile_twice(_sgd_points_kernel, _SGD_POINTS_SIGNATURE)


def sgd_points(Y, previous, rows, transpose, schedule, attraction, repulsion, kernel_params, draws, step,
               tables) -> None:
    """One epoch's updates of every point (see the module docstring), and the next epoch's due entries.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components), float64
        Output: row ``i`` is written by point ``i`` only.
    previous : ndarray of shape (n_samples, n_components)
        The epoch-start positions (each point starts from its own row).
    rows : tuple (indptr, indices, reverse)
        CSR structure of P, and ``reverse[e]``: the position of entry ``(j, i)`` for
        ``e = (i, j)``, or -1 (:func:`reverse_entries`).
    transpose : tuple (indptr, indices, entry)
        Per point ``i``, the entries ``(j, i)`` of P without a stored ``(i, j)``
        (:func:`unmatched_transpose`): ``indices`` holds ``j``, ``entry`` their positions.
    schedule : tuple (due, due_next, period, next_time, next_now)
        This epoch's due entries (read); ``due_next`` receives the next epoch's, marked with
        ``next_now = epoch + 2`` by :func:`_mark_row` (which advances ``next_time``) once the
        point's row is done: the two flag arrays are swapped between epochs.
    attraction, repulsion : numba functions
        The loss's force functions (see :mod:`gidr_numba.forces`).
    kernel_params : tuple (a, b, params)
        The kernel's a, b and the loss's own parameters (float64 array).
    draws : tuple (key, n_negative)
        ``epoch_key(seed, epoch)`` and the negatives per processed edge.
    step : tuple (learning_rate, max_step, symmetric_attraction)
    tables : tuple (attraction, repulsion) of float64 arrays
        :class:`gidr_reference.force_table.ForceTable`'s values (both empty: exact coefficients).
    """
    (attraction, repulsion), markers = kernel_arguments(attraction, repulsion)
    kernel = _sgd_points_markers if markers else _sgd_points_functions
    kernel(Y, previous, rows, transpose, schedule, attraction, repulsion, kernel_params, draws, step, tables)


def epochs_per_sample(p: np.ndarray) -> np.ndarray:
    """``max(p) / p`` per stored entry (``inf`` for stored zeros and for values so small that
    the period overflows: never processed)."""
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return p.copy()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return p.max() / p


def _entry_rows(indptr: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))


def reverse_entries(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """For every stored entry ``e = (i, j)``, the position of ``(j, i)``, or -1 (int64, shape (nnz,))."""
    n = len(indptr) - 1
    rows, cols = _entry_rows(indptr), np.asarray(indices, dtype=np.int64)
    if cols.size == 0:
        return np.empty(0, dtype=np.int64)
    keys = rows * n + cols
    order = np.argsort(keys, kind="stable")
    wanted = cols * n + rows
    found_at = np.minimum(np.searchsorted(keys[order], wanted), len(keys) - 1)
    return np.where(keys[order][found_at] == wanted, order[found_at], -1).astype(np.int64)


def unmatched_transpose(indptr: np.ndarray, indices: np.ndarray, reverse: np.ndarray):
    """``(indptr, indices, entry)``: for each point ``i``, the entries ``(j, i)`` with no ``(i, j)``."""
    n = len(indptr) - 1
    unmatched = np.flatnonzero(reverse < 0)
    T = sp.csr_matrix((unmatched.astype(np.float64) + 1.0, (np.asarray(indices)[unmatched],
                                                            _entry_rows(indptr)[unmatched])), shape=(n, n))
    T.sort_indices()
    return (T.indptr.astype(np.int64), T.indices.astype(np.int32), T.data.astype(np.int64) - 1)


def _density_field(affinities, ctx, symmetric_attraction: bool, max_step: float, data: np.ndarray):
    """densMAP's :class:`~gidr_numba.densmap.DensityField` for this loop (None without the term):
    the expectation of umap-learn's per-edge updates, each clipped to ``±max_step``, an edge
    being processed ``p_e / max(P)`` times an epoch."""
    target = affinities.density
    if target is None:
        return None
    from gidr_numba.densmap import DensityField

    return DensityField(affinities.P, target, ctx.a, ctx.b, weight=target.force_weight(symmetric_attraction),
                        bound=float(max_step), rate_scale=1.0 / float(data.max()))


def umap_sgd(Y0, affinities, loss, ctx, monitor, *, kernels: LossKernels, n_negative: int,
             symmetric_attraction: bool,
             learning_rate: float, max_step: float, n_epochs: int, force_table: bool = False) -> np.ndarray:
    """umap-learn's loop (see the module docstring); returns a new array.

    Parameters
    ----------
    Y0 : ndarray of shape (n_samples, n_components)
        Not modified.
    affinities : Affinities
    loss : Loss
        Unnormalized KL (only used for the monitor's loss estimate).
    ctx : Context
    monitor : Monitor
        Reported the estimate of :func:`gidr_numba.gdr.estimate_loss`.
    kernels : LossKernels
        Unnormalized KL's: ``attraction(D, 1)`` and ``phi_0`` are umap-learn's coefficients.
    n_negative : int
    symmetric_attraction : bool
    learning_rate, max_step : float
    n_epochs : int
    force_table : bool
        Interpolate the coefficients on the reference's table when ``ctx.b != 1``
        (:mod:`gidr_reference.force_table`; the reference twin reads the same one).

    Returns
    -------
    Y : ndarray of shape (n_samples, n_components)
    """
    Y = np.array(Y0, dtype=np.float64, order="C")
    graph = csr_arrays(affinities.P)
    indptr, indices, data = graph
    if data.size == 0 or Y.shape[0] < 2:
        return Y
    reverse = reverse_entries(indptr, indices)
    rows, transpose = (indptr, indices, reverse), unmatched_transpose(indptr, indices, reverse)
    period = epochs_per_sample(data)
    next_time, due, due_next = period.copy(), np.zeros(data.size, dtype=np.bool_), np.zeros(data.size, dtype=np.bool_)
    mark_due(indptr, period, next_time, 1.0, due)
    out = np.empty_like(Y)
    kernel_params = (float(ctx.a), float(ctx.b), kernels.params)
    wanted = reference_table.wanted(ctx, force_table)
    tables = tuple(reference_table.build(loss, ctx) if wanted else reference_table.EMPTY)
    density = _density_field(affinities, ctx, symmetric_attraction, max_step, data)
    density_forces = np.empty_like(Y)
    with threads_for(data.size * (1 + int(n_negative))):
        for epoch in range(n_epochs):
            step = (float(learning_rate * (1.0 - epoch / n_epochs)), float(max_step), bool(symmetric_attraction))
            sgd_points(out, Y, rows, transpose, (due, due_next, period, next_time, float(epoch + 2)),
                       kernels.attraction, kernels.repulsion, kernel_params,
                       (np.uint64(epoch_key(ctx.seed, epoch)), int(n_negative)), step, tables)
            if density is not None and density.target.active_at(epoch, n_epochs):
                out -= step[0] * density(Y, density_forces)  # at the epoch-start Y, like the reference
            Y, out, due, due_next = out, Y, due_next, due
            if report(monitor, epoch, n_epochs, loss, affinities, Y, ctx):
                break
    return Y
