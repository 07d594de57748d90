"""Embedding new points against a fixed training embedding (``transform``), in numba.

The loops of :mod:`gidr_reference.transform` (same forces, same draws, same steps), with
one ``prange`` over the new points and each point's whole epoch loop inside it: new points
do not interact, so there is no per-epoch synchronisation, and a point's bits depend
neither on the other points nor on the number of threads. Each point sums its edges, then
its draws, one at a time, in the reference's order.

The loss enters as its registered numba kernels (:func:`gidr_numba.forces.loss_kernels`):
``attraction(D, p, a, b, params) -> (coefficient, w)`` and
``repulsion(D, a, b, params) -> (phi_0, phi_1, w)``. Each loop is compiled twice
(:func:`gidr_numba.forces.compile_twice`): specialized on each built-in loss (forces
inlined) and once for function pointers (third-party losses). A loss without numba
kernels runs on the reference function.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange, types

from gidr.types import Affinities, Context, NewEdges
from gidr_numba.forces import (ATTRACTION_TYPE, PARAMS_TYPE, REPULSION_TYPE, call_attraction, call_repulsion,
                               compile_twice, kernel_arguments, loss_kernels)
from gidr_numba.random import epoch_key, mix, row_key
from gidr_reference import transform as reference
from gidr_reference.transform import NewPointSteps

__all__ = ["embed_new_points", "NewPointSteps"]


@njit(cache=True, inline="always")
def _point_forces(y, i, Y_train, edges, functions, theta, a, b, scale, n_negative, epoch, out):
    """``out`` gets the force on new point ``i`` at ``y`` (:func:`gidr_reference.transform.new_point_forces`)."""
    indices, p, keys = edges
    attraction, repulsion, params = functions
    n_train, d = Y_train.shape
    k = indices.shape[1]
    channels = np.zeros((2, d))
    for c in range(d):
        out[c] = 0.0
    for e in range(k):
        j = indices[i, e]
        D = 0.0
        for c in range(d):
            diff = y[c] - Y_train[j, c]
            D += diff * diff
        coefficient, _ = call_attraction(attraction, D, p[i, e], a, b, params)
        for c in range(d):
            out[c] += coefficient * (y[c] - Y_train[j, c])
    point_key = row_key(epoch_key(keys[i], epoch), 0)
    for slot in range(k * n_negative):
        t = np.int64(mix(point_key ^ np.uint64(slot)) % np.uint64(n_train))
        D = 0.0
        for c in range(d):
            diff = y[c] - Y_train[t, c]
            D += diff * diff
        phi_0, phi_1, _ = call_repulsion(repulsion, D, a, b, params)
        for c in range(d):
            diff = y[c] - Y_train[t, c]
            channels[0, c] += phi_0 * diff
            channels[1, c] += phi_1 * diff
    for channel in range(theta.shape[0]):
        for c in range(d):
            out[c] += theta[channel] * (scale * channels[channel, c])


@njit(cache=True, inline="always")
def _clipped_point(Y, i, Y_train, edges, functions, theta, a, b, constants, n_negative, rates):
    scale, max_step = constants[2], constants[3]
    d = Y.shape[1]
    y = Y[i].copy()
    force = np.empty(d)
    for epoch in range(rates.shape[0]):
        _point_forces(y, i, Y_train, edges, functions, theta, a, b, scale, n_negative, epoch, force)
        for c in range(d):
            y[c] = y[c] - rates[epoch] * min(max(force[c], -max_step), max_step)
    Y[i] = y


def _clipped_kernel(Y, Y_train, edges, attraction, repulsion, params, theta, constants, n_negative, rates):
    """Clipped steps of every new point, in place on ``Y``; ``constants = (a, b, scale, max_step)``."""
    a, b = constants[0], constants[1]
    for i in prange(Y.shape[0]):
        if b == 1.0:
            _clipped_point(Y, i, Y_train, edges, (attraction, repulsion, params), theta, a, 1.0, constants,
                           n_negative, rates)
        else:
            _clipped_point(Y, i, Y_train, edges, (attraction, repulsion, params), theta, a, b, constants,
                           n_negative, rates)


@njit(cache=True, inline="always")
def _amplified_point(Y, i, Y_train, edges, functions, theta, a, b, constants, n_negative, schedule):
    scale, step_cap, min_gain = constants[2], constants[3], constants[4]
    rates, momenta = schedule
    d = Y.shape[1]
    y = Y[i].copy()
    force = np.empty(d)
    update = np.zeros(d)
    gains = np.ones(d)
    for epoch in range(rates.shape[0]):
        _point_forces(y, i, Y_train, edges, functions, theta, a, b, scale, n_negative, epoch, force)
        for c in range(d):
            if np.sign(force[c]) != np.sign(update[c]):
                gains[c] = max(gains[c] + 0.2, min_gain)
            else:
                gains[c] = max(gains[c] * 0.8, min_gain)
            step = momenta[epoch] * update[c] - rates[epoch] * gains[c] * force[c]
            update[c] = min(max(step, -step_cap), step_cap)
            y[c] = y[c] + update[c]
    Y[i] = y


def _amplified_kernel(Y, Y_train, edges, attraction, repulsion, params, theta, constants, n_negative, schedule):
    """Momentum-and-gains steps of every new point, in place on ``Y``;
    ``constants = (a, b, scale, step_cap, min_gain)``, ``schedule = (rates, momenta)`` per epoch."""
    a, b = constants[0], constants[1]
    for i in prange(Y.shape[0]):
        if b == 1.0:
            _amplified_point(Y, i, Y_train, edges, (attraction, repulsion, params), theta, a, 1.0, constants,
                             n_negative, schedule)
        else:
            _amplified_point(Y, i, Y_train, edges, (attraction, repulsion, params), theta, a, b, constants,
                             n_negative, schedule)


_f8 = types.float64
_EDGES_TYPE = types.Tuple((types.int64[:, ::1], _f8[:, ::1], types.uint64[::1]))
_CLIPPED_SIGNATURE = types.void(_f8[:, ::1], _f8[:, ::1], _EDGES_TYPE, ATTRACTION_TYPE, REPULSION_TYPE, PARAMS_TYPE,
                                _f8[::1], types.UniTuple(_f8, 4), types.int64, _f8[::1])
_AMPLIFIED_SIGNATURE = types.void(_f8[:, ::1], _f8[:, ::1], _EDGES_TYPE, ATTRACTION_TYPE, REPULSION_TYPE,
                                  PARAMS_TYPE, _f8[::1], types.UniTuple(_f8, 5), types.int64,
                                  types.UniTuple(_f8[::1], 2))
_clipped_markers, _clipped_functions = compile_twice(_clipped_kernel, _CLIPPED_SIGNATURE)
_amplified_markers, _amplified_functions = compile_twice(_amplified_kernel, _AMPLIFIED_SIGNATURE)


def embed_new_points(Y_start: np.ndarray, Y_train: np.ndarray, edges: NewEdges, affinities: Affinities, loss,
                     ctx: Context, n_epochs: int, *, steps: NewPointSteps) -> np.ndarray:
    """:func:`gidr_reference.transform.embed_new_points` in numba (same parameters and result).

    Returns
    -------
    ndarray of shape (n_new, n_components), float64
    """
    kernels = loss_kernels(loss, ctx)
    if kernels is None:
        return reference.embed_new_points(Y_start, Y_train, edges, affinities, loss, ctx, n_epochs, steps=steps)
    Y_train = np.ascontiguousarray(Y_train, dtype=np.float64)
    Y = np.array(Y_start, dtype=np.float64, order="C")
    theta = reference.repulsion_weights(Y_train, affinities, loss, ctx)
    if len(Y) == 0 or n_epochs <= 0:
        return Y
    k = edges.indices.shape[1]
    scale = len(Y_train) / (k * steps.n_negative) if ctx.normalized else 1.0
    arrays = (np.ascontiguousarray(edges.indices, dtype=np.int64), np.ascontiguousarray(edges.weights, np.float64),
              np.ascontiguousarray(edges.keys, dtype=np.uint64))
    (attraction, repulsion), markers = kernel_arguments(kernels.attraction, kernels.repulsion)
    rates = np.array([steps.rate(epoch, n_epochs) for epoch in range(n_epochs)], dtype=np.float64)
    common = (Y, Y_train, arrays, attraction, repulsion, kernels.params, theta)
    if not steps.normalized:
        kernel = _clipped_markers if markers else _clipped_functions
        kernel(*common, (float(ctx.a), float(ctx.b), float(scale), float(steps.max_step)), int(steps.n_negative),
               rates)
        return Y
    momenta = np.where(np.arange(n_epochs) < steps.n_momentum, steps.momentum, steps.final_momentum)
    step_cap = reference.STEP_CAP_SHARE * float(np.ptp(Y_train, axis=0).max())
    kernel = _amplified_markers if markers else _amplified_functions
    kernel(*common, (float(ctx.a), float(ctx.b), float(scale), step_cap, float(steps.min_gain)),
           int(steps.n_negative), (rates, np.ascontiguousarray(momenta, dtype=np.float64)))
    return Y
