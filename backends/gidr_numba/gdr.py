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
   reference ``sampled`` estimator's draws, bit for bit (for any repulsion stage that
   declares ``per_edge_sampler``). It writes only row ``i`` of its
   outputs and point ``i``'s partial sums of ``w``, ``w^2``, ``p w``. With any other
   repulsion stage, :func:`gather_attraction` does the attraction and the stage's own
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

Force functions are jitted scalars ``attraction(D, p, a, b, params) -> (coefficient, w)``
and ``repulsion(D, a, b, params) -> (phi_0, phi_1, w)`` (:mod:`gidr_numba.forces`). Each kernel
that calls them is compiled twice (:func:`gidr_numba.forces.compile_twice`): specialized on
each built-in loss, its forces inlined, and once with first-class function types, which
serves every third-party loss through function pointers. Both are cached on disk.
"""
from __future__ import annotations

from contextlib import contextmanager

import numba
import numpy as np
import scipy.sparse as sp
from numba import njit, prange, types

from gidr.stages.repulsion import sample_scaling
from gidr_numba.forces import (ATTRACTION_TYPE, PARAMS_TYPE, REPULSION_TYPE, LossKernels, call_attraction,
                               call_repulsion, compile_twice, kernel_arguments)
from gidr_numba.random import (epoch_key, fill_negative_pool, negative_sample_from_row_key, pool_redraw, pool_slot,
                               row_key)
from gidr_reference.loss_estimate import estimate_loss

__all__ = [
    "gather_sampled",
    "gather_attraction",
    "point_force",
    "forces_array",
    "clipped_step",
    "column_sums",
    "ForceField",
    "clipped_descent",
]

#: Points per parallel task of :func:`gather_sampled` (each task holds one draw buffer).
POINT_BLOCK = 256
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
def _row_attraction(Y, i, indptr, indices, data, attraction, a, b, params, out):
    """``out[i] = sum_e attraction(D_e, p_e) (y_i - y_j)`` over row ``i``; returns ``sum_e p_e w_e``."""
    d = Y.shape[1]
    for c in range(d):
        out[i, c] = 0.0
    sum_pw = 0.0
    for e in range(indptr[i], indptr[i + 1]):
        j = indices[e]
        D = _squared_distance(Y, i, j)
        coefficient, w = call_attraction(attraction, D, data[e], a, b, params)
        for c in range(d):
            out[i, c] += coefficient * (Y[i, c] - Y[j, c])
        sum_pw += data[e] * w
    return sum_pw


@njit(cache=True, inline="always")
def _row_attraction_2d(Y, i, indptr, indices, data, attraction, a, b, params, out):
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
        coefficient, w = call_attraction(attraction, D, data[e], a, b, params)
        f0 += coefficient * d0
        f1 += coefficient * d1
        sum_pw += data[e] * w
    out[i, 0] = f0
    out[i, 1] = f1
    return sum_pw


#: Negative draws hashed ahead of their reads, per batch (:func:`draw_batch`).
DRAW_BATCH = 64


@njit(cache=True, inline="always")
def draw_batch(point_key, i, first, count, n, pool_size, out):
    """``out[t] = negative_sample(..., i, slot=first + t, n)`` for ``t < count``; with a pool
    (``pool_size > 0``), the pool entries ``pool_slot(..., first + t, pool_size)`` instead.

    The draws are hashed in a loop of their own, before any is read: the hashes vectorize
    and the reads that follow have their addresses ready, so the memory system has many in
    flight. Hashing each draw just before its read (one loop) chained every read behind a
    hash and was 1.7-1.9x slower per draw on this machine (70,000 and 1,000,000 points).
    """
    if pool_size > 0:
        for t in range(count):
            out[t] = pool_slot(point_key, first + t, pool_size)
    else:
        for t in range(count):
            out[t] = negative_sample_from_row_key(point_key, i, first + t, n)


@njit(cache=True, inline="always")
def _partner(Y, i, point_key, slot, draw, pool, own):
    """Where point ``i``'s draw ``slot`` reads its partner: ``(positions row, array)``.

    Without a pool the draw is the partner's index in ``Y``. With one it is a pool entry,
    read from the pool's copy of positions, except where the entry is ``i`` itself (only
    possible when ``own``: ``i`` is in the pool), redrawn from all points.
    """
    if own and pool[0][draw] == i:
        return pool_redraw(point_key, i, slot, Y.shape[0]), Y
    return draw, (pool[1] if pool[0].shape[0] > 0 else Y)


@njit(cache=True, inline="always")
def _row_samples(Y, i, repulsion, a, b, params, key, m, channels_out, sums_out, draws, pool):
    """Point ``i``'s ``m`` negative samples: its rows of ``channels_out`` and ``sums_out``."""
    n, d = Y.shape
    for c in range(d):
        channels_out[0, i, c] = 0.0
        channels_out[1, i, c] = 0.0
    sum_w = 0.0
    sum_w2 = 0.0
    point_key = row_key(key, i)
    pool_size = pool[0].shape[0]
    own = pool_size > 0 and pool[2][i] != 0
    for first in range(0, m, DRAW_BATCH):
        count = min(DRAW_BATCH, m - first)
        draw_batch(point_key, i, first, count, n, pool_size, draws)
        for t in range(count):
            k, positions = _partner(Y, i, point_key, first + t, draws[t], pool, own)
            D = 0.0
            for c in range(d):
                diff = Y[i, c] - positions[k, c]
                D += diff * diff
            phi_0, phi_1, w = call_repulsion(repulsion, D, a, b, params)
            for c in range(d):
                diff = Y[i, c] - positions[k, c]
                channels_out[0, i, c] += phi_0 * diff
                channels_out[1, i, c] += phi_1 * diff
            sum_w += w
            sum_w2 += w * w
    sums_out[i, SUM_W] = sum_w
    sums_out[i, SUM_W2] = sum_w2


@njit(cache=True, inline="always")
def _row_samples_2d(Y, i, repulsion, a, b, params, key, m, channels_out, sums_out, draws, pool):
    """:func:`_row_samples` for two components, accumulated in registers (same bits)."""
    n = Y.shape[0]
    y0, y1 = Y[i, 0], Y[i, 1]
    point_key = row_key(key, i)
    pool_size = pool[0].shape[0]
    own = pool_size > 0 and pool[2][i] != 0
    c00 = 0.0
    c01 = 0.0
    c10 = 0.0
    c11 = 0.0
    sum_w = 0.0
    sum_w2 = 0.0
    for first in range(0, m, DRAW_BATCH):
        count = min(DRAW_BATCH, m - first)
        draw_batch(point_key, i, first, count, n, pool_size, draws)
        for t in range(count):
            k, positions = _partner(Y, i, point_key, first + t, draws[t], pool, own)
            d0 = y0 - positions[k, 0]
            d1 = y1 - positions[k, 1]
            D = d0 * d0 + d1 * d1
            phi_0, phi_1, w = call_repulsion(repulsion, D, a, b, params)
            c00 += phi_0 * d0
            c01 += phi_0 * d1
            c10 += phi_1 * d0
            c11 += phi_1 * d1
            sum_w += w
            sum_w2 += w * w
    channels_out[0, i, 0] = c00
    channels_out[0, i, 1] = c01
    channels_out[1, i, 0] = c10
    channels_out[1, i, 1] = c11
    sums_out[i, SUM_W] = sum_w
    sums_out[i, SUM_W2] = sum_w2


@njit(cache=True)
def refill_pool(Y, key, pool):
    """The epoch's negative pool: ``pool = (indices, positions, in_pool)`` refilled in place.

    ``indices`` from :func:`gidr_numba.random.fill_negative_pool`, ``positions[q] = Y[indices[q]]``
    (the copy the draws read: small enough for a core's cache), ``in_pool[i]`` 1 for the
    points in the pool (the previous epoch's marks are cleared first).
    """
    indices, positions, in_pool = pool
    for q in range(indices.shape[0]):
        in_pool[indices[q]] = 0
    fill_negative_pool(key, Y.shape[0], indices)
    for q in range(indices.shape[0]):
        k = indices[q]
        in_pool[k] = 1
        for c in range(Y.shape[1]):
            positions[q, c] = Y[k, c]


_f8 = types.float64
#: CSR arrays of P: (indptr, indices, data).
GRAPH_TYPE = types.Tuple((types.int64[::1], types.int32[::1], _f8[::1]))
#: The epoch's negative pool: (indices, positions, in_pool), see :func:`refill_pool`.
POOL_TYPE = types.Tuple((types.int64[::1], _f8[:, ::1], types.uint8[::1]))
_GATHER_SAMPLED_SIGNATURE = types.void(
    _f8[:, ::1], GRAPH_TYPE, ATTRACTION_TYPE, REPULSION_TYPE, types.Tuple((_f8, _f8, PARAMS_TYPE)), types.uint64,
    types.int64, POOL_TYPE,
    types.Tuple((_f8[:, ::1], _f8[:, :, ::1], _f8[:, ::1])))
_GATHER_ATTRACTION_SIGNATURE = types.void(
    _f8[:, ::1], GRAPH_TYPE, ATTRACTION_TYPE, types.Tuple((_f8, _f8, PARAMS_TYPE)), _f8[:, ::1], _f8[::1])


@njit(cache=True, inline="always")
def _point_attraction(Y, i, indptr, indices, data, attraction, a, b, params, out):
    if Y.shape[1] == 2:
        return _row_attraction_2d(Y, i, indptr, indices, data, attraction, a, b, params, out)
    return _row_attraction(Y, i, indptr, indices, data, attraction, a, b, params, out)


@njit(cache=True, inline="always")
def _point_sampled(Y, i, indptr, indices, data, attraction, repulsion, a, b, params, key, n_negative, pool,
                   attraction_out, channels_out, sums_out, draws):
    n, d = Y.shape
    m = n_negative * (indptr[i + 1] - indptr[i]) if n > 1 else 0
    sums_out[i, SUM_PW] = _point_attraction(Y, i, indptr, indices, data, attraction, a, b, params, attraction_out)
    if d == 2:
        _row_samples_2d(Y, i, repulsion, a, b, params, key, m, channels_out, sums_out, draws, pool)
    else:
        _row_samples(Y, i, repulsion, a, b, params, key, m, channels_out, sums_out, draws, pool)


def _gather_sampled_kernel(Y, graph, attraction, repulsion, kernel_params, key, n_negative, pool, out):
    """Body of :func:`gather_sampled` (compiled twice: see :func:`gidr_numba.forces.compile_twice`).

    ``b == 1`` (GDR's default) is passed on as the literal 1.0 to the inlined row helpers, so
    that the compiler removes ``D^b``: with ``b`` a variable, it evaluates ``pow`` for every
    pair even where ``b == 1`` selects the other branch (measured 4x slower). Points run in
    blocks of :data:`POINT_BLOCK`, each block with its own buffer of draws.
    """
    indptr, indices, data = graph
    attraction_out, channels_out, sums_out = out
    a, b, params = kernel_params
    n = Y.shape[0]
    for block in prange((n + POINT_BLOCK - 1) // POINT_BLOCK):
        draws = np.empty(DRAW_BATCH, dtype=np.int64)
        for i in range(block * POINT_BLOCK, min(n, (block + 1) * POINT_BLOCK)):
            if b == 1.0:
                _point_sampled(Y, i, indptr, indices, data, attraction, repulsion, a, 1.0, params, key, n_negative,
                               pool, attraction_out, channels_out, sums_out, draws)
            else:
                _point_sampled(Y, i, indptr, indices, data, attraction, repulsion, a, b, params, key, n_negative,
                               pool, attraction_out, channels_out, sums_out, draws)


def _gather_attraction_kernel(Y, graph, attraction, kernel_params, out, sum_pw_out):
    """Body of :func:`gather_attraction` (compiled twice; ``b == 1`` as in :func:`_gather_sampled_kernel`)."""
    indptr, indices, data = graph
    a, b, params = kernel_params
    for i in prange(Y.shape[0]):
        if b == 1.0:
            sum_pw_out[i] = _point_attraction(Y, i, indptr, indices, data, attraction, a, 1.0, params, out)
        else:
            sum_pw_out[i] = _point_attraction(Y, i, indptr, indices, data, attraction, a, b, params, out)


_gather_sampled_markers, _gather_sampled_functions = compile_twice(_gather_sampled_kernel,
                                                                   _GATHER_SAMPLED_SIGNATURE)
_gather_attraction_markers, _gather_attraction_functions = compile_twice(_gather_attraction_kernel,
                                                                         _GATHER_ATTRACTION_SIGNATURE)


def gather_sampled(Y, graph, attraction, repulsion, kernel_params, key, n_negative, out, pool=None) -> None:
    """Attraction, sampled repulsion channels and per-point totals, in one pass.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components), float64
    graph : tuple (indptr, indices, data)
        The CSR arrays of P.
    attraction, repulsion : numba functions
        ``attraction(D, p, a, b, params) -> (coefficient, w)``,
        ``repulsion(D, a, b, params) -> (phi_0, phi_1, w)`` (see :mod:`gidr_numba.forces`).
    kernel_params : tuple (a, b, params)
        Kernel parameters and the loss's own parameters (a float64 array).
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
    pool : tuple (indices, positions, in_pool), optional
        The epoch's negative pool, filled by :func:`refill_pool` for this ``key``: sample ``s``
        is then ``pooled_negative_sample(seed, epoch, i, s, n, indices)``. None: no pool.
    """
    (attraction, repulsion), markers = kernel_arguments(attraction, repulsion)
    kernel = _gather_sampled_markers if markers else _gather_sampled_functions
    kernel(Y, graph, attraction, repulsion, kernel_params, key, n_negative, empty_pool(Y.shape[1]) if pool is None else pool,
           out)


def empty_pool(n_components: int):
    """No negative pool, for :func:`gather_sampled`: draws from all points."""
    return (np.empty(0, dtype=np.int64), np.empty((0, n_components)), np.empty(0, dtype=np.uint8))


def new_pool(n_samples: int, n_components: int, size: int):
    """Buffers for a pool of ``size`` of ``n_samples`` points (``size == 0``: :func:`empty_pool`),
    filled by :func:`refill_pool`."""
    if size == 0:
        return empty_pool(n_components)
    return (np.zeros(size, dtype=np.int64), np.empty((size, n_components)), np.zeros(n_samples, dtype=np.uint8))


def gather_attraction(Y, graph, attraction, kernel_params, out, sum_pw_out) -> None:
    """``out[i] = sum_{e in row i} attraction(D_e, p_e) (y_i - y_j)`` and ``sum_pw_out[i] = sum p w``.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components)
    graph : tuple (indptr, indices, data)
        CSR arrays (of P, or of P^T for the symmetric part of the attraction).
    attraction : numba function
    kernel_params : tuple (a, b, params)
    out : ndarray of shape (n_samples, n_components)
        Overwritten.
    sum_pw_out : ndarray of shape (n_samples,)
        Overwritten.
    """
    (attraction,), markers = kernel_arguments(attraction)
    kernel = _gather_attraction_markers if markers else _gather_attraction_functions
    kernel(Y, graph, attraction, kernel_params, out, sum_pw_out)


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
def column_sums(values):
    """``values.sum(axis=0)`` of a C-ordered 2-D array, row after row (the same bits as NumPy)."""
    totals = np.zeros(values.shape[1])
    for i in range(values.shape[0]):
        for c in range(values.shape[1]):
            totals[c] += values[i, c]
    return totals


# ---------------------------------------------------------------------- Python side
def csr_arrays(P: sp.spmatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr int64, indices int32, data float64)`` of P as CSR, in its storage order (the
    reference's edge order: it numbers umap_sgd's draws). An array already of that type is
    P's own (the kernels only read them): a copy of P's indices and values would be 12 bytes
    per stored entry more at the optimizer's peak (0.25 GB at a million points)."""
    P = sp.csr_matrix(P)
    if P.shape[0] > np.iinfo(np.int32).max:
        raise ValueError(f"the numba optimizers index points with int32; got {P.shape[0]} points")
    return (np.ascontiguousarray(P.indptr, dtype=np.int64), np.ascontiguousarray(P.indices, dtype=np.int32),
            np.ascontiguousarray(P.data, dtype=np.float64))


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
    affinities : Affinities
        P and what is known about it (``p_mean``, the stored entries per row).
    loss : Loss
        Supplies ``repulsion_weights`` (called once per epoch).
    repulsion : Repulsion
        A stage that declares ``per_edge_sampler`` is fused into :func:`gather_sampled`
        (its ``draws_per_edge()`` negatives per stored entry); any other estimator's
        ``estimate`` is called.
    ctx : Context
    kernels : LossKernels
        The loss's numba kernels (:func:`gidr_numba.forces.loss_kernels`).
    symmetric_attraction : bool
    n_components : int
    """

    def __init__(self, affinities, loss, repulsion, ctx, kernels: LossKernels, symmetric_attraction: bool,
                 n_components: int):
        P = affinities.P
        self.graph = csr_arrays(P)
        self.affinities, self.loss, self.repulsion, self.ctx, self.functions = (affinities, loss, repulsion, ctx,
                                                                               kernels)
        n, d = P.shape[0], n_components
        self.kernel_params = (float(ctx.a), float(ctx.b), kernels.params)
        self.n_edges = affinities.n_edges
        self.transpose = None
        self.symmetric_factor = 1.0
        if symmetric_attraction:
            if exactly_symmetric(P):
                self.symmetric_factor = 2.0
            else:
                self.transpose = csr_arrays(sp.csr_matrix(P).T)
        self.fused = bool(repulsion.per_edge_sampler)
        self.n_negative = repulsion.draws_per_edge() if self.fused else 0
        self.pool = new_pool(n, d, repulsion.negative_pool_size(n) if self.fused else 0)
        if self.fused:
            self.channel_scale, self.pair_scale = sample_scaling(n, self.n_negative * self.n_edges, ctx.normalized)
            self.channels = np.empty((2, n, d))
            self.sums = np.empty((n, 3))
        else:
            self.channel_scale = np.ones(n)
            self.sum_pw = np.empty(n)
        self.attraction = np.empty((n, d))
        #: interactions per epoch, for :func:`threads_for`.
        self.work = int(self.graph[2].size) * (1 + self.n_negative) + n
        self.attraction_transpose = np.empty((n, d)) if self.transpose is not None else None

    def __call__(self, Y: np.ndarray, epoch: int, exaggeration: float = 1.0):
        """``(parts, weights)`` of the forces at ``Y`` for the step kernels (buffers reused by the
        next call); :func:`forces_array` turns them into an array."""
        ctx = self.ctx
        if self.fused:
            key = np.uint64(epoch_key(ctx.seed, epoch))
            if self.pool[0].size:
                refill_pool(Y, key, self.pool)
            gather_sampled(Y, self.graph, self.functions.attraction, self.functions.repulsion, self.kernel_params,
                           key, self.n_negative, (self.attraction, self.channels, self.sums), self.pool)
            totals = column_sums(self.sums)
            sum_w, sum_w2 = self.pair_scale * totals[SUM_W], self.pair_scale * totals[SUM_W2]
            sum_pw, channels = totals[SUM_PW], self.channels
        else:
            gather_attraction(Y, self.graph, self.functions.attraction, self.kernel_params, self.attraction,
                              self.sum_pw)
            estimate = self.repulsion.estimate(Y, self.loss, ctx, epoch, self.n_edges)
            sum_w, sum_w2, sum_pw = float(estimate.sum_w), float(estimate.sum_w2), float(self.sum_pw.sum())
            channels = np.ascontiguousarray(estimate.channels, dtype=np.float64)
        if self.transpose is not None:
            gather_attraction(Y, self.transpose, self.functions.attraction, self.kernel_params,
                              self.attraction_transpose, np.empty(len(Y)))
            self.attraction += self.attraction_transpose
        totals = self.affinities.totals(sum_w, sum_w2, sum_pw)
        theta = np.ascontiguousarray(self.loss.repulsion_weights(totals, ctx), dtype=np.float64).reshape(-1)
        return ((self.attraction, channels, self.channel_scale),
                (float(exaggeration * self.symmetric_factor), theta))


def report(monitor, epoch: int, n_epochs: int, loss, affinities, Y: np.ndarray, ctx) -> bool:
    """Call the monitor for this epoch (the loss's estimate, :func:`gidr_reference.loss_estimate.estimate_loss`,
    and a copy of Y); True when it asks to stop."""
    if not monitor.due(epoch, n_epochs):
        return False
    return bool(monitor.report(epoch, estimate_loss(loss, affinities, Y, ctx, epoch), Y.copy()))


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


def clipped_descent(Y0, affinities, loss, repulsion, ctx, monitor, *, kernels: LossKernels, learning_rate: float,
                    max_step: float, symmetric_attraction: bool, n_epochs: int) -> np.ndarray:
    """GDR's unnormalized loop: ``Y <- Y - lr0 (1 - t / n_epochs) clip(F, -max_step, max_step)``.

    Same parameters as :func:`gidr_numba.tsne.amplified_descent`, with ``learning_rate``
    (``lr0``) and ``max_step`` in place of the schedule. ``Y0`` is not modified.
    """
    Y = np.array(Y0, dtype=np.float64, order="C")
    field = ForceField(affinities, loss, repulsion, ctx, kernels, symmetric_attraction, Y.shape[1])
    density = None
    if affinities.density is not None:
        from gidr_numba.densmap import DensityField, clipped_step_plus

        target = affinities.density
        density = DensityField(affinities.P, target, ctx.a, ctx.b, weight=target.force_weight(symmetric_attraction))
        density_forces = np.empty_like(Y)
    with threads_for(field.work):
        for epoch in range(n_epochs):
            parts, weights = field(Y, epoch)
            rate = float(learning_rate * (1.0 - epoch / n_epochs))
            if density is not None and density.target.active_at(epoch, n_epochs):
                clipped_step_plus(Y, parts, weights, density(Y, density_forces), rate, float(max_step))
            else:
                clipped_step(Y, parts, weights, rate, float(max_step))
            if report(monitor, epoch, n_epochs, loss, affinities, Y, ctx):
                break
    return Y
