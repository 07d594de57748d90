"""GDR's optimizer in numba: forces gathered per epoch in one parallel pass, then applied.

The unnormalized loop is :func:`gidr_reference.optimizers.clipped_descent` (the normalized
one, gradient amplification, is t-SNE's: :mod:`gidr_numba.tsne`), with the same forces
(:mod:`gidr.stages.loss`), ``D_ij = ||y_i - y_j||^2``::

    F_i = s_att * sum_{j in row i of P} attraction(D_ij, p_ij) (y_i - y_j)
        + sum_c theta_c * s_i * sum_{samples k of i} phi_c(D_ik) (y_i - y_k)

Per epoch:

1. :func:`gather_sampled`, one ``prange`` over points: point ``i`` walks its row of P
   (attraction, and ``p w`` for ``sum_pw``) and draws ``n_negative`` negatives per stored
   entry, ``negative_sample(seed, epoch, i, slot, n)`` with ``slot = 0 .. m_i - 1``: the
   reference ``sampled`` estimator's draws, bit for bit. It writes only row ``i`` of its
   outputs and point ``i``'s partial sums of ``w``, ``w^2``, ``p w``. With another
   repulsion stage, :func:`gather_attraction` does the attraction and the stage's
   ``estimate`` the channels.
2. Python adds the partial sums in point order, builds :class:`~gidr.types.PairTotals`
   and asks the loss for ``theta``.
3. :func:`clipped_step` (or :func:`gidr_numba.tsne.amplified_step` when normalized), a
   ``prange`` over points, assembles each point's force and applies the update.

No draw and no sum depends on thread scheduling: the output is bit-identical whatever the
number of threads.

Symmetric attraction (edge (i, j) also pulls y_j) adds to ``F_i`` the attraction of every
stored entry ``(j, i)``, i.e. of row ``i`` of ``P^T``. When P is exactly symmetric (the
built-in symmetrizations make it so, bit for bit) that is the row's own attraction, so it
is applied as ``s_att = 2``, with no write to another point's row; otherwise
:func:`gather_attraction` also runs over the rows of ``P^T``. Both are race-free.

Force functions are jitted scalars ``attraction(D, p, a, b) -> float`` and
``repulsion(D, a, b, epsilon) -> (phi_0, phi_1)`` (:mod:`gidr_numba.forces`). Each kernel
that calls them is compiled twice (:func:`gidr_numba.forces.compile_twice`): specialized on
each built-in loss, its forces inlined, and once with first-class function types, which
serves every third-party loss through function pointers. Both are cached on disk.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np
import scipy.sparse as sp
from numba import njit, prange, types

from gidr.types import PairTotals
from gidr_numba.forces import (ATTRACTION_TYPE, REPULSION_TYPE, call_attraction, call_repulsion, compile_twice,
                               kernel_arguments, kernel_w)
from gidr_numba.random import epoch_key, negative_sample_from_key, negative_sample_from_row_key, row_key

__all__ = [
    "gather_sampled",
    "gather_attraction",
    "point_force",
    "forces_array",
    "clipped_step",
    "loss_statistics",
    "column_sums",
]

#: Columns of the per-point partial sums written by :func:`gather_sampled`.
SUM_W, SUM_W2, SUM_PW = 0, 1, 2


@njit(cache=True)
def _squared_distance(Y, i, j):
    D = 0.0
    for c in range(Y.shape[1]):
        diff = Y[i, c] - Y[j, c]
        D += diff * diff
    return D


@njit(cache=True, inline="always")
def _row_attraction(Y, i, indptr, indices, data, attraction, a, b, out):
    """``out[i] = sum_e attraction(D_e, p_e) (y_i - y_j)`` over row ``i``; returns ``sum_e p_e w_e``."""
    d = Y.shape[1]
    for c in range(d):
        out[i, c] = 0.0
    sum_pw = 0.0
    for e in range(indptr[i], indptr[i + 1]):
        j = indices[e]
        D = _squared_distance(Y, i, j)
        coefficient = call_attraction(attraction, D, data[e], a, b)
        for c in range(d):
            out[i, c] += coefficient * (Y[i, c] - Y[j, c])
        sum_pw += data[e] * kernel_w(D, a, b)
    return sum_pw


@njit(cache=True, inline="always")
def _row_attraction_2d(Y, i, indptr, indices, data, attraction, a, b, out):
    """:func:`_row_attraction` for two components, accumulated in registers (same bits)."""
    y0, y1 = Y[i, 0], Y[i, 1]
    f0 = 0.0
    f1 = 0.0
    sum_pw = 0.0
    for e in range(indptr[i], indptr[i + 1]):
        j = indices[e]
        d0 = y0 - Y[j, 0]
        d1 = y1 - Y[j, 1]
        D = d0 * d0 + d1 * d1
        coefficient = call_attraction(attraction, D, data[e], a, b)
        f0 += coefficient * d0
        f1 += coefficient * d1
        sum_pw += data[e] * kernel_w(D, a, b)
    out[i, 0] = f0
    out[i, 1] = f1
    return sum_pw


@njit(cache=True, inline="always")
def _row_samples(Y, i, repulsion, a, b, epsilon, key, m, channels_out, sums_out):
    """Point ``i``'s ``m`` negative samples: its rows of ``channels_out`` and ``sums_out``."""
    n, d = Y.shape
    for c in range(d):
        channels_out[0, i, c] = 0.0
        channels_out[1, i, c] = 0.0
    sum_w = 0.0
    sum_w2 = 0.0
    point_key = row_key(key, i)
    for s in range(m):
        k = negative_sample_from_row_key(point_key, i, s, n)
        D = _squared_distance(Y, i, k)
        phi_0, phi_1 = call_repulsion(repulsion, D, a, b, epsilon)
        for c in range(d):
            diff = Y[i, c] - Y[k, c]
            channels_out[0, i, c] += phi_0 * diff
            channels_out[1, i, c] += phi_1 * diff
        w = kernel_w(D, a, b)
        sum_w += w
        sum_w2 += w * w
    sums_out[i, SUM_W] = sum_w
    sums_out[i, SUM_W2] = sum_w2


@njit(cache=True, inline="always")
def _row_samples_2d(Y, i, repulsion, a, b, epsilon, key, m, channels_out, sums_out):
    """:func:`_row_samples` for two components, accumulated in registers (same bits)."""
    n = Y.shape[0]
    y0, y1 = Y[i, 0], Y[i, 1]
    point_key = row_key(key, i)
    c00 = 0.0
    c01 = 0.0
    c10 = 0.0
    c11 = 0.0
    sum_w = 0.0
    sum_w2 = 0.0
    for s in range(m):
        k = negative_sample_from_row_key(point_key, i, s, n)
        d0 = y0 - Y[k, 0]
        d1 = y1 - Y[k, 1]
        D = d0 * d0 + d1 * d1
        phi_0, phi_1 = call_repulsion(repulsion, D, a, b, epsilon)
        c00 += phi_0 * d0
        c01 += phi_0 * d1
        c10 += phi_1 * d0
        c11 += phi_1 * d1
        w = kernel_w(D, a, b)
        sum_w += w
        sum_w2 += w * w
    channels_out[0, i, 0] = c00
    channels_out[0, i, 1] = c01
    channels_out[1, i, 0] = c10
    channels_out[1, i, 1] = c11
    sums_out[i, SUM_W] = sum_w
    sums_out[i, SUM_W2] = sum_w2


_f8 = types.float64
#: CSR arrays of P: (indptr, indices, data).
GRAPH_TYPE = types.Tuple((types.int64[::1], types.int32[::1], _f8[::1]))
_GATHER_SAMPLED_SIGNATURE = types.void(
    _f8[:, ::1], GRAPH_TYPE, ATTRACTION_TYPE, REPULSION_TYPE, types.UniTuple(_f8, 3), types.uint64, types.int64,
    types.Tuple((_f8[:, ::1], _f8[:, :, ::1], _f8[:, ::1])))
_GATHER_ATTRACTION_SIGNATURE = types.void(
    _f8[:, ::1], GRAPH_TYPE, ATTRACTION_TYPE, _f8, _f8, _f8[:, ::1], _f8[::1])


@njit(cache=True, inline="always")
def _point_attraction(Y, i, indptr, indices, data, attraction, a, b, out):
    if Y.shape[1] == 2:
        return _row_attraction_2d(Y, i, indptr, indices, data, attraction, a, b, out)
    return _row_attraction(Y, i, indptr, indices, data, attraction, a, b, out)


@njit(cache=True, inline="always")
def _point_sampled(Y, i, indptr, indices, data, attraction, repulsion, a, b, epsilon, key, n_negative,
                   attraction_out, channels_out, sums_out):
    n, d = Y.shape
    m = n_negative * (indptr[i + 1] - indptr[i]) if n > 1 else 0
    sums_out[i, SUM_PW] = _point_attraction(Y, i, indptr, indices, data, attraction, a, b, attraction_out)
    if d == 2:
        _row_samples_2d(Y, i, repulsion, a, b, epsilon, key, m, channels_out, sums_out)
    else:
        _row_samples(Y, i, repulsion, a, b, epsilon, key, m, channels_out, sums_out)


def _gather_sampled_kernel(Y, graph, attraction, repulsion, kernel_params, key, n_negative, out):
    """Body of :func:`gather_sampled` (compiled twice: see :func:`gidr_numba.forces.compile_twice`).

    ``b == 1`` (GDR's default) is passed on as the literal 1.0 to the inlined row helpers, so
    that the compiler removes ``D^b``: with ``b`` a variable, it evaluates ``pow`` for every
    pair even where ``b == 1`` selects the other branch (measured 4x slower).
    """
    indptr, indices, data = graph
    attraction_out, channels_out, sums_out = out
    a, b, epsilon = kernel_params
    for i in prange(Y.shape[0]):
        if b == 1.0:
            _point_sampled(Y, i, indptr, indices, data, attraction, repulsion, a, 1.0, epsilon, key, n_negative,
                           attraction_out, channels_out, sums_out)
        else:
            _point_sampled(Y, i, indptr, indices, data, attraction, repulsion, a, b, epsilon, key, n_negative,
                           attraction_out, channels_out, sums_out)


def _gather_attraction_kernel(Y, graph, attraction, a, b, out, sum_pw_out):
    """Body of :func:`gather_attraction` (compiled twice; ``b == 1`` as in :func:`_gather_sampled_kernel`)."""
    indptr, indices, data = graph
    for i in prange(Y.shape[0]):
        if b == 1.0:
            sum_pw_out[i] = _point_attraction(Y, i, indptr, indices, data, attraction, a, 1.0, out)
        else:
            sum_pw_out[i] = _point_attraction(Y, i, indptr, indices, data, attraction, a, b, out)


_gather_sampled_markers, _gather_sampled_functions = compile_twice(_gather_sampled_kernel,
                                                                   _GATHER_SAMPLED_SIGNATURE)
_gather_attraction_markers, _gather_attraction_functions = compile_twice(_gather_attraction_kernel,
                                                                         _GATHER_ATTRACTION_SIGNATURE)


def gather_sampled(Y, graph, attraction, repulsion, kernel_params, key, n_negative, out) -> None:
    """Attraction, sampled repulsion channels and per-point totals, in one pass.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components), float64
    graph : tuple (indptr, indices, data)
        The CSR arrays of P.
    attraction, repulsion : numba functions
        ``attraction(D, p, a, b) -> float``, ``repulsion(D, a, b, epsilon) -> (phi_0, phi_1)``
        (see :mod:`gidr_numba.forces`).
    kernel_params : tuple (a, b, epsilon)
        Kernel parameters and the loss's ``epsilon``.
    key : uint64
        ``epoch_key(seed, epoch)`` of :mod:`gidr_numba.random`.
    n_negative : int
        Samples per stored entry: point ``i`` draws ``m_i = n_negative * nnz(row i)``,
        sample ``s`` being ``negative_sample(seed, epoch, i, s, n)``.
    out : tuple (attraction_out, channels_out, sums_out)
        ``attraction_out`` (n, d): ``sum_j attraction(D_ij, p_ij) (y_i - y_j)``;
        ``channels_out`` (2, n, d): ``sum_s phi_c(D_ik_s) (y_i - y_k_s)`` (plain sums);
        ``sums_out`` (n, 3): per point, the sums over its samples of ``w`` and ``w^2``, and
        over its row of ``p w``. Every row is overwritten.
    """
    (attraction, repulsion), markers = kernel_arguments(attraction, repulsion)
    kernel = _gather_sampled_markers if markers else _gather_sampled_functions
    kernel(Y, graph, attraction, repulsion, kernel_params, key, n_negative, out)


def gather_attraction(Y, graph, attraction, a, b, out, sum_pw_out) -> None:
    """``out[i] = sum_{e in row i} attraction(D_e, p_e) (y_i - y_j)`` and ``sum_pw_out[i] = sum p w``.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components)
    graph : tuple (indptr, indices, data)
        CSR arrays (of P, or of P^T for the symmetric part of the attraction).
    attraction : numba function
    a, b : float
    out : ndarray of shape (n_samples, n_components)
        Overwritten.
    sum_pw_out : ndarray of shape (n_samples,)
        Overwritten.
    """
    (attraction,), markers = kernel_arguments(attraction)
    kernel = _gather_attraction_markers if markers else _gather_attraction_functions
    kernel(Y, graph, attraction, a, b, out, sum_pw_out)


@njit(cache=True)
def point_force(i, c, parts, weights):
    """``F[i, c] = s_att * attraction[i, c] + sum_c' theta_c' * (channel_scale[i] * channels[c', i, c])``."""
    attraction, channels, channel_scale = parts
    attraction_scale, theta = weights
    force = attraction_scale * attraction[i, c]
    for channel in range(theta.shape[0]):
        force += theta[channel] * (channel_scale[i] * channels[channel, i, c])
    return force


@njit(cache=True, parallel=True)
def clipped_step(Y, parts, weights, learning_rate, max_step):
    """``Y <- Y - learning_rate * clip(F, -max_step, max_step)``, in place on ``Y``.

    ``parts`` and ``weights`` are those of :func:`gidr_numba.tsne.amplified_step`.
    """
    n, d = Y.shape
    for i in prange(n):
        for c in range(d):
            Y[i, c] = Y[i, c] - learning_rate * min(max(point_force(i, c, parts, weights), -max_step), max_step)


def forces_array(parts, weights) -> np.ndarray:
    """The forces of shape (n_samples, n_components) that the step kernels apply (for tests)."""
    attraction, channels, channel_scale = parts
    attraction_scale, theta = weights
    out = attraction_scale * attraction
    for channel in range(theta.shape[0]):
        out = out + theta[channel] * (channel_scale[:, None] * channels[channel])
    return out


@njit(cache=True)
def _xlogy(x, y):
    return 0.0 if x == 0.0 else x * np.log(y)


@njit(cache=True, inline="always")
def _point_loss_statistics(Y, i, r, indptr, indices, data, a, b, key, out):
    n = Y.shape[0]
    for col in range(out.shape[1]):
        out[r, col] = 0.0
    for e in range(indptr[i], indptr[i + 1]):
        p = data[e]
        D = _squared_distance(Y, i, indices[e])
        w = kernel_w(D, a, b)
        one_minus_w = a * D**b * w
        out[r, 0] += _xlogy(p, p)
        out[r, 1] += _xlogy(p, w)
        out[r, 2] += p * w
        out[r, 3] += w * w
        out[r, 4] += p * p
        out[r, 5] += _xlogy(1.0 - p, 1.0 - p) - _xlogy(1.0 - p, one_minus_w)
        out[r, 6] -= np.log(one_minus_w)
    if n < 2:
        return
    for s in range(max(indptr[i + 1] - indptr[i], 1)):
        D = _squared_distance(Y, i, negative_sample_from_key(key, i, s, n))
        w = kernel_w(D, a, b)
        out[r, 7] += w
        out[r, 8] += w * w
        out[r, 9] -= np.log(a * D**b * w)


@njit(cache=True, parallel=True)
def loss_statistics(Y, graph, a, b, key, rows, out):
    """Per-point sums from which :mod:`gidr_numba.stages_optim` estimates a loss value.

    Row ``r`` of ``out`` (len(rows), 10) holds the sums of point ``i = rows[r]``, over the
    stored entries of row ``i`` of P:
    0 ``p log p``, 1 ``p log w``, 2 ``p w``, 3 ``w^2``, 4 ``p^2``,
    5 ``(1-p) log(1-p) - (1-p) log(1-w)``, 6 ``-log(1-w)``;
    over ``max(nnz_i, 1)`` uniform samples ``k != i`` drawn with ``key``:
    7 ``w``, 8 ``w^2``, 9 ``-log(1-w)``; and the sample counts are ``max(nnz_i, 1)``.
    ``1 - w`` is computed as ``a D^b w`` (no cancellation).
    """
    indptr, indices, data = graph
    for r in prange(rows.shape[0]):
        if b == 1.0:
            _point_loss_statistics(Y, rows[r], r, indptr, indices, data, a, 1.0, key, out)
        else:
            _point_loss_statistics(Y, rows[r], r, indptr, indices, data, a, b, key, out)


@njit(cache=True)
def column_sums(values):
    """``values.sum(axis=0)`` of a C-ordered 2-D array, row after row (the same bits as NumPy)."""
    totals = np.zeros(values.shape[1])
    for i in range(values.shape[0]):
        for c in range(values.shape[1]):
            totals[c] += values[i, c]
    return totals


# ---------------------------------------------------------------------- Python side
@dataclass(frozen=True)
class Forces:
    """A loss's jitted force functions, as the kernels take them.

    Attributes
    ----------
    attraction : numba function
        ``attraction(D, p, a, b) -> float``.
    repulsion : numba function
        ``repulsion(D, a, b, epsilon) -> (phi_0, phi_1)``.
    epsilon : float
        The loss's ``epsilon`` (:func:`gidr_numba.forces.force_epsilon`).
    """

    attraction: Callable
    repulsion: Callable
    epsilon: float = 0.0


def csr_arrays(P: sp.spmatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr int64, indices int32, data float64)`` of P as CSR, in its storage order (the
    reference's edge order: it numbers umap_sgd's draws), as copies."""
    P = sp.csr_matrix(P)
    if P.shape[0] > np.iinfo(np.int32).max:
        raise ValueError(f"the numba optimizers index points with int32; got {P.shape[0]} points")
    return (np.asarray(P.indptr, dtype=np.int64).copy(), np.asarray(P.indices, dtype=np.int32).copy(),
            np.asarray(P.data, dtype=np.float64).copy())


def exactly_symmetric(P: sp.csr_matrix) -> bool:
    """Whether ``P == P^T`` entry for entry, bit for bit (stored structure included)."""
    P = sp.csr_matrix(P)
    T = P.T.tocsr()
    T.sort_indices()
    A = P.sorted_indices() if not P.has_sorted_indices else P
    return (np.array_equal(A.indptr, T.indptr) and np.array_equal(A.indices, T.indices)
            and np.array_equal(A.data, T.data))


class ForceField:
    """All forces at the epoch-start ``Y``, as the reference's ``gather_forces`` defines them.

    Parameters
    ----------
    P : csr_matrix of shape (n_samples, n_samples)
    loss : Loss
        Supplies ``repulsion_weights`` (called once per epoch).
    repulsion : Repulsion
        ``sampled`` is fused into :func:`gather_sampled`; any other estimator is called.
    ctx : Context
    forces : Forces
    symmetric_attraction : bool
    n_components : int
    """

    def __init__(self, P, loss, repulsion, ctx, forces: Forces, symmetric_attraction: bool, n_components: int):
        self.graph = csr_arrays(P)
        self.loss, self.repulsion, self.ctx, self.functions = loss, repulsion, ctx, forces
        n, d = P.shape[0], n_components
        indptr, _, data = self.graph
        self.n_edges = np.diff(indptr)
        self.p_mean = float(data.mean()) if data.size else 0.0
        self.transpose = None
        self.symmetric_factor = 1.0
        if symmetric_attraction:
            if exactly_symmetric(P):
                self.symmetric_factor = 2.0
            else:
                self.transpose = csr_arrays(sp.csr_matrix(P).T)
        self.sampled = getattr(repulsion, "name", None) == "sampled"
        if self.sampled:
            self.n_negative = int(repulsion.n_negative)
            m = self.n_negative * self.n_edges
            self.pair_scale = n * (n - 1) / m.sum() if m.sum() > 0 else 0.0
            self.channel_scale = np.ones(n)
            if ctx.normalized:
                self.channel_scale = np.divide(n - 1, m, out=np.zeros(n), where=m > 0)
            self.channels = np.empty((2, n, d))
            self.sums = np.empty((n, 3))
        else:
            self.channel_scale = np.ones(n)
            self.sum_pw = np.empty(n)
        self.attraction = np.empty((n, d))
        #: interactions per epoch, for :func:`threads_for`.
        self.work = int(data.size) * (1 + (self.n_negative if self.sampled else 0)) + n
        self.attraction_transpose = np.empty((n, d)) if self.transpose is not None else None

    def __call__(self, Y: np.ndarray, epoch: int, exaggeration: float = 1.0):
        """``(parts, weights)`` of the forces at ``Y`` for the step kernels (buffers reused by the
        next call); :func:`forces_array` turns them into an array."""
        ctx = self.ctx
        if self.sampled:
            key = np.uint64(epoch_key(ctx.seed, epoch))
            gather_sampled(Y, self.graph, self.functions.attraction, self.functions.repulsion,
                           (float(ctx.a), float(ctx.b), float(self.functions.epsilon)), key, self.n_negative,
                           (self.attraction, self.channels, self.sums))
            totals = column_sums(self.sums)
            sum_w, sum_w2 = self.pair_scale * totals[SUM_W], self.pair_scale * totals[SUM_W2]
            sum_pw, channels = totals[SUM_PW], self.channels
        else:
            gather_attraction(Y, self.graph, self.functions.attraction, float(ctx.a), float(ctx.b), self.attraction,
                              self.sum_pw)
            estimate = self.repulsion.estimate(Y, self.loss, ctx, epoch, self.n_edges)
            sum_w, sum_w2, sum_pw = float(estimate.sum_w), float(estimate.sum_w2), float(self.sum_pw.sum())
            channels = np.ascontiguousarray(estimate.channels, dtype=np.float64)
        if self.transpose is not None:
            gather_attraction(Y, self.transpose, self.functions.attraction, float(ctx.a), float(ctx.b),
                              self.attraction_transpose, np.empty(len(Y)))
            self.attraction += self.attraction_transpose
        totals = PairTotals(sum_w=float(sum_w), sum_w2=float(sum_w2), p_mean=self.p_mean, sum_pw=float(sum_pw))
        theta = np.ascontiguousarray(self.loss.repulsion_weights(totals, ctx), dtype=np.float64).reshape(-1)
        return ((self.attraction, channels, self.channel_scale),
                (float(exaggeration * self.symmetric_factor), theta))


# ---------------------------------------------------------------------- loss estimate
#: Largest n for which a loss without a known estimate reports its exact O(n^2) value.
EXACT_LOSS_MAX_SAMPLES = 3000
#: Above this many points, :func:`estimate_loss` reads the rows of this many random points
#: (at 70,000 points the full estimate cost 50-80 ms, 10 calls per 500 epochs).
LOSS_ESTIMATE_MAX_POINTS = 10_000
#: Offset of the epoch coordinate of the draws used by :func:`estimate_loss` (never an epoch).
_ESTIMATE_EPOCH = 2**40


def estimate_loss(loss, P, graph, Y: np.ndarray, ctx, epoch: int) -> float:
    """A cheap estimate of the loss value, for the monitor.

    Edge terms are exact over the stored entries of P (of :data:`LOSS_ESTIMATE_MAX_POINTS`
    rows drawn at random, scaled up, when n is larger); the sums over all pairs (``Z``,
    ``sum w^2``, ``sum -log(1 - w)``) are estimated from ``max(nnz_i, 1)`` uniform samples
    per point (counter hash, so deterministic). For the built-in losses::

        kl, normalized:         sum p log p - sum p log w + log Z
        kl, unnormalized:       (edge cross-entropy + off-graph sum of -log(1 - w)) / 2
        frobenius, normalized:  sum p^2 - 2 sum p w / Z + sum w^2 / Z^2
        frobenius, unnormalized: (sum_edges (p - w)^2 + off-graph sum of w^2) / 2

    Any other loss reports its exact ``loss.value`` when ``n <= EXACT_LOSS_MAX_SAMPLES``,
    and NaN above (its value is unknown to the numba backend).
    """
    name, n = getattr(loss, "name", None), Y.shape[0]
    if name not in ("kl", "frobenius") or n < 2:
        return float(loss.value(P, Y, ctx)) if n <= EXACT_LOSS_MAX_SAMPLES else float("nan")
    rows = np.arange(n, dtype=np.int64)
    if n > LOSS_ESTIMATE_MAX_POINTS:
        rows = np.sort(np.random.default_rng([ctx.seed, epoch]).choice(n, LOSS_ESTIMATE_MAX_POINTS, replace=False))
    stats = np.empty((rows.size, 10))
    loss_statistics(Y, graph, ctx.a, ctx.b, np.uint64(epoch_key(ctx.seed, _ESTIMATE_EPOCH + epoch)), rows, stats)
    s = column_sums(stats)
    s[:7] *= n / rows.size  # the edge terms of the chosen rows stand for all rows
    n_samples_drawn = float(np.maximum(np.diff(graph[0])[rows], 1).sum())
    pairs = n * (n - 1)
    all_w, all_w2, all_log = (pairs / n_samples_drawn * s[c] for c in (7, 8, 9))
    p_sum = float(graph[2].sum())
    if name == "kl" and ctx.normalized:
        return float(s[0] - s[1] + p_sum * np.log(all_w))
    if name == "kl":
        edge_terms = s[0] - s[1] + s[5]
        return float(0.5 * (edge_terms + all_log - s[6]))
    if ctx.normalized:
        return float(s[4] - 2.0 * s[2] / all_w + all_w2 / all_w**2)
    edge_terms = s[4] - 2.0 * s[2] + s[3]
    return float(0.5 * (edge_terms + all_w2 - s[3]))


def report(monitor, epoch: int, n_epochs: int, loss, P, graph, Y: np.ndarray, ctx) -> bool:
    """Call the monitor for this epoch (estimated loss, copy of Y); True when it asks to stop."""
    if not monitor.due(epoch, n_epochs):
        return False
    return bool(monitor.report(epoch, estimate_loss(loss, P, graph, Y, ctx, epoch), Y.copy()))


# ---------------------------------------------------------------------- the loops
#: Below this many interactions per epoch (stored entries of P times ``1 + n_negative``), the
#: kernels run on one thread: waking the other threads at every epoch costs more than it
#: saves (and, on a loaded machine, up to a scheduler time slice per kernel launch). The
#: result is the same bits either way.
PARALLEL_MIN_WORK = 50_000


@contextmanager
def threads_for(work: int):
    """Run the enclosed kernels on one thread when ``work < PARALLEL_MIN_WORK`` (then restore)."""
    previous = numba.get_num_threads()
    if work >= PARALLEL_MIN_WORK or previous == 1:
        yield
        return
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def clipped_descent(Y0, P, loss, repulsion, ctx, monitor, *, forces: Forces, learning_rate: float,
                    max_step: float, symmetric_attraction: bool, n_epochs: int) -> np.ndarray:
    """GDR's unnormalized loop: ``Y <- Y - lr0 (1 - t / n_epochs) clip(F, -max_step, max_step)``.

    Same parameters as :func:`amplified_descent`, with ``learning_rate`` (``lr0``) and
    ``max_step`` in place of the schedule. ``Y0`` is not modified.
    """
    Y = np.array(Y0, dtype=np.float64, order="C")
    field = ForceField(P, loss, repulsion, ctx, forces, symmetric_attraction, Y.shape[1])
    with threads_for(field.work):
        for epoch in range(n_epochs):
            parts, weights = field(Y, epoch)
            clipped_step(Y, parts, weights, float(learning_rate * (1.0 - epoch / n_epochs)), float(max_step))
            if report(monitor, epoch, n_epochs, loss, P, field.graph, Y, ctx):
                break
    return Y
