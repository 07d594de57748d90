"""Exact and sampled repulsion in numba (the Barnes-Hut estimator is in
:mod:`gidr_numba.barnes_hut`).

Both kernels run over points in parallel (``prange``); point ``i`` writes only row ``i``
of the channels and its own partial sums of ``w`` and ``w^2``, which are then added in
point order: the result is bit-identical whatever the number of threads. They return the
sums of :mod:`gidr_reference.repulsion`::

    channels[c, i] ~ sum_{k != i} phi_c(D_ik) (y_i - y_k)
    sum_w  ~ sum_{k != l} w_kl,    sum_w2 ~ sum_{k != l} w_kl^2,    w = 1 / (1 + a D^b)

with ``(phi_0, phi_1, w) = repulsion(D, a, b, params)``, the loss's jitted force function
(``w`` its kernel, ``params`` its own parameters). Each kernel
is compiled twice (:func:`gidr_numba.forces.compile_twice`): specialized on each built-in
loss, and once for any force function passed by pointer; both are cached.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange, types

from gidr.stages.repulsion import sample_scaling
from gidr.types import RepulsionSums
from gidr_numba.forces import PARAMS_TYPE, REPULSION_TYPE, call_repulsion, compile_twice, is_marker, kernel_argument
from gidr_numba.random import epoch_key, fill_negative_pool, negative_sample_from_key, pooled_negative_from_row_key, row_key

__all__ = ["exact_repulsion", "sampled_repulsion"]

_f8 = types.float64


#: Points per parallel task: scratch arrays are allocated once per chunk, not per point.
CHUNK = 64


@numba.njit(cache=True)
def n_chunks(n):
    """Number of chunks of :data:`CHUNK` points."""
    return (n + CHUNK - 1) // CHUNK


@numba.njit(cache=True, inline="always")
def add_interaction(Y, i, positions, j, count, repulsion, a, b, params, acc, diff):
    """Add ``count`` points at ``positions[j]`` to point ``i``'s channel sums; return ``w(D)``.

    ``acc`` (2, d) accumulates ``count * phi_c(D) (y_i - positions[j])``; ``diff`` (d,) is
    scratch. Inlined into the kernels: as a call it made Barnes-Hut 2.5 times slower.
    """
    D = 0.0
    for c in range(Y.shape[1]):
        diff[c] = Y[i, c] - positions[j, c]
        D += diff[c] * diff[c]
    phi_0, phi_1, w = call_repulsion(repulsion, D, a, b, params)
    phi_0, phi_1 = phi_0 * count, phi_1 * count
    for c in range(Y.shape[1]):
        acc[0, c] += phi_0 * diff[c]
        acc[1, c] += phi_1 * diff[c]
    return w


@numba.njit(cache=True)
def store_point(i, acc, sum_w, sum_w2, out, totals):
    """Write point ``i``'s sums: ``out[:, i] = acc[:n_channels]``, ``totals[i] = (sum_w, sum_w2)``."""
    for c in range(out.shape[0]):
        for k in range(out.shape[2]):
            out[c, i, k] = acc[c, k]
    totals[i, 0] = sum_w
    totals[i, 1] = sum_w2


_EXACT_SIGNATURE = types.void(_f8[:, ::1], REPULSION_TYPE, _f8, _f8, PARAMS_TYPE, _f8[:, :, ::1], _f8[:, ::1])


def _exact_kernel(Y, repulsion, a, b, params, out, totals):
    """Every pair: ``out[:, i]`` and ``totals[i]`` sum over all ``k != i``."""
    n, d = Y.shape
    for chunk in prange(n_chunks(n)):
        acc, diff = np.empty((2, d)), np.empty(d)
        for i in range(chunk * CHUNK, min(n, (chunk + 1) * CHUNK)):
            acc[:] = 0.0
            sum_w = sum_w2 = 0.0
            for k in range(n):
                if k != i:
                    w = add_interaction(Y, i, Y, k, 1.0, repulsion, a, b, params, acc, diff)
                    sum_w += w
                    sum_w2 += w * w
            store_point(i, acc, sum_w, sum_w2, out, totals)


_exact_markers, _exact_functions = compile_twice(_exact_kernel, _EXACT_SIGNATURE)

_SAMPLED_SIGNATURE = types.void(_f8[:, ::1], REPULSION_TYPE, _f8, _f8, PARAMS_TYPE, types.uint64, types.int64[::1],
                                types.int64[::1], _f8[:, :, ::1], _f8[:, ::1])


def _sampled_kernel(Y, repulsion, a, b, params, key, m, pool, out, totals):
    """Point ``i`` sums over its draws ``k_s = negative_sample(seed, epoch, i, s, n)``, s < m_i
    (through the epoch's ``pool`` when it is not empty).

    ``key`` is :func:`gidr_numba.random.epoch_key` of (seed, epoch).
    """
    n, d = Y.shape
    for chunk in prange(n_chunks(n)):
        acc, diff = np.empty((2, d)), np.empty(d)
        for i in range(chunk * CHUNK, min(n, (chunk + 1) * CHUNK)):
            acc[:] = 0.0
            sum_w = sum_w2 = 0.0
            point_key = row_key(key, i)
            for s in range(m[i]):
                if pool.shape[0] > 0:
                    k = pooled_negative_from_row_key(point_key, i, s, n, pool)
                else:
                    k = negative_sample_from_key(key, i, s, n)
                w = add_interaction(Y, i, Y, k, 1.0, repulsion, a, b, params, acc, diff)
                sum_w += w
                sum_w2 += w * w
            store_point(i, acc, sum_w, sum_w2, out, totals)


_sampled_markers, _sampled_functions = compile_twice(_sampled_kernel, _SAMPLED_SIGNATURE)


def exact_repulsion(Y: np.ndarray, repulsion, a: float, b: float, params: tuple, n_channels: int) -> RepulsionSums:
    """All pairs, O(n^2) time, O(n) extra memory, parallel over points.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components)
    repulsion : numba function
        ``repulsion(D, a, b, params) -> (phi_0, phi_1, w)`` (:mod:`gidr_numba.forces`).
    a, b : float
    params : tuple of float
        The loss's own parameters.
    n_channels : int
        1 or 2: the number of channels returned.

    Returns
    -------
    RepulsionSums
        ``channels`` of shape (n_channels, n_samples, n_components).
    """
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    out = np.zeros((n_channels,) + Y.shape)
    totals = np.zeros((Y.shape[0], 2))
    argument = kernel_argument(repulsion)
    kernel = _exact_markers if is_marker(argument) else _exact_functions
    kernel(Y, argument, float(a), float(b), params, out, totals)
    return RepulsionSums(channels=out, sum_w=float(totals[:, 0].sum()), sum_w2=float(totals[:, 1].sum()))


def sampled_repulsion(
    Y: np.ndarray,
    repulsion,
    a: float,
    b: float,
    params: tuple,
    n_channels: int,
    *,
    seed: int,
    epoch: int,
    m: np.ndarray,
    normalized: bool,
    pool_size: int = 0,
) -> RepulsionSums:
    """GDR's estimate from ``m_i`` uniform negative samples per point: the draws of
    :func:`gidr_reference.repulsion.sampled_repulsion`, bit for bit (``pool_size`` as there). With ``M = sum_i m_i``::

        normalized:    channels[c, i] = (n - 1) / m_i * sum_s phi_c(D_ik_s) (y_i - y_k_s)
        unnormalized:  channels[c, i] =                 sum_s phi_c(D_ik_s) (y_i - y_k_s)
        sum_w  = n (n - 1) / M * sum over all M samples of w,   sum_w2 likewise

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components)
    repulsion : numba function
        ``repulsion(D, a, b, params) -> (phi_0, phi_1, w)``.
    a, b : float
    params : tuple of float
    n_channels : int
    seed, epoch : int
        The counter-hash coordinates: the same (seed, epoch) gives the same draws.
    m : ndarray of int, shape (n_samples,)
        Samples per point (:func:`gidr_reference.repulsion.samples_per_point`).
    normalized : bool
    pool_size : int
        Points in the epoch's negative pool; 0, or at least ``n``, draws from all points.

    Returns
    -------
    RepulsionSums
    """
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    n = Y.shape[0]
    m = np.ascontiguousarray(m, dtype=np.int64)
    out = np.zeros((n_channels,) + Y.shape)
    n_samples_total = int(m.sum())
    if n < 2 or n_samples_total == 0:
        return RepulsionSums(channels=out, sum_w=0.0, sum_w2=0.0)
    totals = np.zeros((n, 2))
    argument = kernel_argument(repulsion)
    kernel = _sampled_markers if is_marker(argument) else _sampled_functions
    key = np.uint64(epoch_key(seed, epoch))  # a uint64, also when it is above 2^63
    pool = np.empty(pool_size if 0 < pool_size < n else 0, dtype=np.int64)
    fill_negative_pool(key, n, pool)
    kernel(Y, argument, float(a), float(b), params, key, m, pool, out, totals)
    channel_scale, pair_scale = sample_scaling(n, m, normalized)
    out *= channel_scale[None, :, None]
    return RepulsionSums(channels=out, sum_w=pair_scale * float(totals[:, 0].sum()),
                         sum_w2=pair_scale * float(totals[:, 1].sum()))
