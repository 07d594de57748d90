"""Reference optimizers: ``gdr``, ``umap_sgd`` and ``tsne``, in plain NumPy.

Every optimizer moves the embedding along the forces of the loss (see
:mod:`gidr.stages.loss`): with ``D_ij = ||y_i - y_j||^2``::

    F_i = sum_{j in row i of P} attraction(D_ij, p_ij) (y_i - y_j)
        + sum_c theta_c * sum_{k != i} phi_c(D_ik) (y_i - y_k)

and descent moves ``y_i -= lr * F_i``. The functions here take the loss and repulsion
stages as plain objects (they only call their documented methods), never modify the
caller's ``Y`` and return a new array.

Three loops:

- :func:`amplified_descent` ("gradient amplification", t-SNE's loop): all forces at the
  epoch-start Y, early exaggeration of the attraction, momentum and per-coordinate gains;
  constant learning rate for ``tsne``; for normalized ``gdr`` the rate decays linearly to 0
  after the exaggeration, so that momentum averages out the noise of sampled repulsion.
  :func:`amplified_descent_from` continues such a run from a :class:`~gidr.types.DescentState`
  (gains, last update, epoch) and returns the state it ends in.
- :func:`clipped_descent` (GDR-UMAP): all forces at the epoch-start Y, each coordinate of
  F clipped to ``±max_step``, learning rate decaying linearly to 0. ``gdr`` unnormalized.
- :func:`umap_sgd` (umap-learn's schedule): edges sampled in proportion to p, negative
  samples, per-update clipping, linear decay. The reference evaluates every update due in an
  epoch at the epoch-start Y and applies them as one batch (paper §5.1: collecting the
  updates of an epoch instead of applying them immediately changes nothing).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gidr.types import Affinities, Context, DescentState, Monitor, PairTotals
from gidr_reference import densmap
from gidr_reference import force_table as _force_table

__all__ = [
    "Edges",
    "AmplifiedSchedule",
    "EarlyStop",
    "edge_list",
    "scatter_rows",
    "attraction_forces",
    "pair_totals",
    "gather_forces",
    "update_gains",
    "report_if_due",
    "amplified_descent",
    "amplified_descent_from",
    "clipped_descent",
    "epochs_per_sample",
    "negative_targets",
    "sgd_epoch_step",
    "umap_sgd",
]


@dataclass(frozen=True)
class Edges:
    """The stored entries of P as an edge list (both directions of every pair).

    Attributes
    ----------
    rows, cols : ndarray of shape (n_edges,), intp
        Edge ``e`` goes from ``rows[e]`` (the point it moves) to ``cols[e]``.
    p : ndarray of shape (n_edges,), float64
        The stored values ``P[rows[e], cols[e]]``.
    n_samples : int
    """

    rows: np.ndarray
    cols: np.ndarray
    p: np.ndarray
    n_samples: int

    @property
    def per_point(self) -> np.ndarray:
        """Number of stored entries in each row of P, shape (n_samples,)."""
        return np.bincount(self.rows, minlength=self.n_samples)


@dataclass(frozen=True)
class AmplifiedSchedule:
    """Constants of :func:`amplified_descent`.

    Attributes
    ----------
    learning_rate : float
    exaggeration : float
        Factor on the attraction during the first ``n_exaggerated`` epochs.
    n_exaggerated : int
    momentum, final_momentum : float
        Momentum during, then after, the exaggeration phase.
    min_gain : float
        Floor of the per-coordinate gains.
    anneal : bool
        After the exaggeration, decay the learning rate linearly to 0 (GDR: its sampled
        repulsion is a noisy estimate, and a decaying step averages the noise out, as in
        UMAP's SGD). False: constant learning rate (t-SNE).
    max_step_norm : float
        Longest step of one point in one epoch: a longer ``update`` row is scaled to this
        norm (:func:`clip_step_norms`, openTSNE's ``max_step_norm``). ``inf``: unbounded.
    n_iter_without_progress, min_grad_norm : int, float or None
        scikit-learn's stopping rules (:class:`EarlyStop`); None: that rule is off. Only for
        a constant rate (``anneal=False``): the annealed rate is planned for the full run.
    check_every : int
        Epochs between the rules' checks (scikit-learn's ``_N_ITER_CHECK``, 50).
    """

    learning_rate: float
    exaggeration: float
    n_exaggerated: int
    momentum: float
    final_momentum: float
    min_gain: float
    anneal: bool = False
    max_step_norm: float = math.inf
    n_iter_without_progress: int | None = None
    min_grad_norm: float | None = None
    check_every: int = 50

    def rate(self, epoch: int, n_epochs: int) -> float:
        """Learning rate of ``epoch``: constant, or ``lr (n_epochs - t) / (n_epochs - n_exaggerated)``
        after the exaggeration when annealed."""
        if not self.anneal or epoch < self.n_exaggerated:
            return self.learning_rate
        return self.learning_rate * (n_epochs - epoch) / (n_epochs - self.n_exaggerated)


class EarlyStop:
    """scikit-learn's stopping rules for :func:`amplified_descent` (its TSNE's
    ``n_iter_without_progress`` and ``min_grad_norm``), from an :class:`AmplifiedSchedule`.

    Epoch ``t`` is a check when ``(t + 1) % check_every == 0``. The run has two phases, as
    scikit-learn's two calls of its gradient descent: the exaggeration (epochs before
    ``n_exaggerated``), then the rest. At a check, with the epoch-end loss and the norm of
    ``gains * F`` over every coordinate (the direction of the step, scikit-learn's
    "gradient norm"):

    1. after the exaggeration: a loss below the phase's best becomes the best; otherwise, when
       more than ``n_iter_without_progress`` epochs have passed since the epoch of the best
       (the phase's first epoch before any check), the run stops ("no progress"). During the
       exaggeration this rule does not apply (scikit-learn's patience there is the phase's
       length);
    2. a gradient norm at most ``min_grad_norm`` stops the run ("gradient norm"); during the
       exaggeration it ends the exaggeration instead: the next epoch is the first of the
       second phase (no exaggeration, ``final_momentum``), as in scikit-learn.

    With both rules off (None) nothing is checked and :attr:`record` is None.
    """

    def __init__(self, schedule: AmplifiedSchedule, first_epoch: int):
        if schedule.anneal and (schedule.n_iter_without_progress is not None or schedule.min_grad_norm is not None):
            raise ValueError("EarlyStop needs a constant learning rate (anneal=False)")
        self.patience = schedule.n_iter_without_progress
        self.min_grad_norm = schedule.min_grad_norm
        self.every = int(schedule.check_every)
        #: Epochs run with exaggeration: the schedule's, or fewer when rule 2 ended the phase.
        self.n_exaggerated = int(schedule.n_exaggerated)
        self.active = self.patience is not None or self.min_grad_norm is not None
        self._best = math.inf
        self._best_epoch = max(int(first_epoch), self.n_exaggerated)
        self._started = time.perf_counter()
        self.checks: list[tuple[int, float, float, float]] = []
        self.stopped: dict | None = None

    def exaggerated(self, epoch: int) -> bool:
        return epoch < self.n_exaggerated

    def due(self, epoch: int) -> bool:
        return self.active and (epoch + 1) % self.every == 0

    def check(self, epoch: int, loss: float, grad_norm: float) -> bool:
        """Apply the rules at check epoch ``epoch``; True when the run stops after it."""
        now = time.perf_counter()
        self.checks.append((epoch + 1, float(loss), float(grad_norm), now - self._started))
        self._started = now
        small = self.min_grad_norm is not None and grad_norm <= self.min_grad_norm
        if self.exaggerated(epoch):
            if small:
                self.n_exaggerated = epoch + 1
                self._best_epoch = epoch + 1
            return False
        if loss < self._best:
            self._best, self._best_epoch = loss, epoch
        elif self.patience is not None and epoch - self._best_epoch > self.patience:
            return self._stop(epoch, "no progress")
        if small:
            return self._stop(epoch, "gradient norm")
        return False

    def _stop(self, epoch: int, reason: str) -> bool:
        self.stopped = {"epoch": epoch + 1, "reason": reason}
        return True

    @property
    def record(self) -> dict | None:
        """What the rules saw: ``checks`` as ``(epoch, loss, gradient norm, seconds since the
        previous check)``, ``stopped`` (``{"epoch", "reason"}`` or None), ``exaggeration_epochs``."""
        if not self.active:
            return None
        return {"checks": list(self.checks), "stopped": self.stopped, "exaggeration_epochs": self.n_exaggerated}


# ---------------------------------------------------------------------- shared helpers
def edge_list(P: sp.spmatrix) -> Edges:
    """The stored entries of ``P`` (CSR, both directions stored) as an :class:`Edges`."""
    P = sp.csr_matrix(P)
    n_samples = P.shape[0]
    rows = np.repeat(np.arange(n_samples, dtype=np.intp), np.diff(P.indptr))
    return Edges(rows=rows, cols=P.indices.astype(np.intp), p=np.asarray(P.data, dtype=np.float64),
                 n_samples=n_samples)


def scatter_rows(values: np.ndarray, index: np.ndarray, n_samples: int) -> np.ndarray:
    """``out[i] = sum of values[e] over e with index[e] == i`` (deterministic order).

    Parameters
    ----------
    values : ndarray of shape (m, n_components)
    index : ndarray of shape (m,), int
    n_samples : int

    Returns
    -------
    ndarray of shape (n_samples, n_components)
    """
    out = np.empty((n_samples, values.shape[1]))
    for c in range(values.shape[1]):
        out[:, c] = np.bincount(index, weights=values[:, c], minlength=n_samples)
    return out


def attraction_forces(Y: np.ndarray, edges: Edges, coefficients: np.ndarray, symmetric: bool) -> np.ndarray:
    """Attractive part of the forces.

    Edge ``e = (i, j)`` adds ``c_e (y_i - y_j)`` to ``F_i``; with ``symmetric`` it also adds
    ``c_e (y_j - y_i)`` to ``F_j``.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components)
    edges : Edges
    coefficients : ndarray of shape (n_edges,)
        ``attraction(D_e, p_e)``, already multiplied by any exaggeration.
    symmetric : bool

    Returns
    -------
    F : ndarray of shape (n_samples, n_components)
    """
    pulls = coefficients[:, None] * (Y[edges.rows] - Y[edges.cols])
    forces = scatter_rows(pulls, edges.rows, edges.n_samples)
    if symmetric:
        forces -= scatter_rows(pulls, edges.cols, edges.n_samples)
    return forces


def pair_totals(sums, edges: Edges, D: np.ndarray, loss, affinities: Affinities, ctx: Context) -> PairTotals:
    """Global sums for ``loss.repulsion_weights``.

    ``sum_w``, ``sum_w2`` come from the repulsion estimate; ``p_mean`` is the mean of the
    stored values of P (:attr:`Affinities.p_mean`); ``sum_pw = sum_{(k, l) stored in P}
    p_kl w(D_kl)`` with the loss's kernel ``w``.

    Parameters
    ----------
    sums : RepulsionSums
    edges : Edges
    D : ndarray of shape (n_edges,)
        Squared distances along the edges.
    loss : Loss
    affinities : Affinities
    ctx : Context
    """
    sum_pw = float(np.sum(edges.p * loss.kernel(D, ctx)))
    return affinities.totals(sums.sum_w, sums.sum_w2, sum_pw)


def gather_forces(Y, edges: Edges, loss, repulsion, ctx: Context, epoch: int, *, affinities: Affinities,
                  exaggeration: float = 1.0, symmetric: bool = False) -> np.ndarray:
    """All forces at positions ``Y``: attraction over the edges plus estimated repulsion.

    ``F_i = exaggeration * sum_{e=(i,j)} attraction(D_e, p_e) (y_i - y_j)
    + sum_c theta_c channels[c, i]`` with ``channels`` from ``repulsion.estimate`` (passed
    ``n_edges``, the number of stored entries of each row of P) and ``theta`` from
    ``loss.repulsion_weights`` of the :func:`pair_totals`.

    Returns
    -------
    F : ndarray of shape (n_samples, n_components)
    """
    diff = Y[edges.rows] - Y[edges.cols]
    D = np.einsum("ij,ij->i", diff, diff)
    coefficients = exaggeration * np.asarray(loss.attraction(D, edges.p, ctx), dtype=np.float64)
    forces = attraction_forces(Y, edges, coefficients, symmetric)
    sums = repulsion.estimate(Y, loss, ctx, epoch, edges.per_point)
    theta = np.asarray(loss.repulsion_weights(pair_totals(sums, edges, D, loss, affinities, ctx), ctx),
                       dtype=np.float64)
    channels = np.asarray(sums.channels, dtype=np.float64)
    for c in range(theta.size):
        forces += theta[c] * channels[c]
    return forces


def clip_step_norms(update: np.ndarray, max_step_norm: float) -> np.ndarray:
    """``update`` with every row longer than ``max_step_norm`` scaled to that length::

        u_i <- u_i * (max_step_norm / |u_i|)   where |u_i|^2 = sum_c u_ic^2 > max_step_norm^2

    Without it, t-SNE's gains let points overshoot after the early exaggeration: the
    embedding balloons for a few hundred epochs before it settles (a span of 540 instead of
    180 on Fashion-MNIST 70k), which costs the FFT repulsion a grid 9 times larger. Returns a
    new array (``update`` itself when the bound is infinite: nothing to scale).
    """
    if math.isinf(max_step_norm):
        return update
    norm2 = np.sum(update * update, axis=1)
    long_rows = norm2 > max_step_norm * max_step_norm
    out = np.array(update, dtype=np.float64)
    out[long_rows] *= (max_step_norm / np.sqrt(norm2[long_rows]))[:, None]
    return out


def update_gains(gains: np.ndarray, update: np.ndarray, forces: np.ndarray, min_gain: float) -> np.ndarray:
    """t-SNE's per-coordinate gains (openTSNE's rule).

    ``g <- g + 0.2`` where ``sign(F) != sign(update)`` (the step keeps going downhill),
    else ``g <- 0.8 g``; then ``g <- max(g, min_gain)``. Returns a new array.
    """
    grows = np.sign(forces) != np.sign(update)
    return np.maximum(np.where(grows, gains + 0.2, gains * 0.8), min_gain)


def report_if_due(monitor: Monitor, epoch: int, n_epochs: int, loss, P, Y: np.ndarray, ctx: Context,
                  early_stop: EarlyStop | None = None, step: tuple | None = None) -> bool:
    """Call the monitor for this epoch; True when a callback (or ``early_stop``) asks to stop.

    When due, the reported loss is the exact ``loss.value(P, Y, ctx)``. ``step``: the epoch's
    ``(gains, F)``, whose product's norm ``early_stop`` checks (computed only at its checks).
    """
    due = monitor.due(epoch, n_epochs)
    check = early_stop is not None and early_stop.due(epoch)
    if not (due or check):
        return False
    value = float(loss.value(P, Y, ctx))
    stop = due and bool(monitor.report(epoch, value, Y.copy()))
    if check:
        stop = early_stop.check(epoch, value, float(np.sqrt(np.sum(np.square(step[0] * step[1]))))) or stop
    return stop


# ---------------------------------------------------------------------- the loops
def amplified_descent(Y0, affinities: Affinities, loss, repulsion, ctx: Context, monitor: Monitor, *,
                      schedule: AmplifiedSchedule, symmetric_attraction: bool, n_epochs: int) -> np.ndarray:
    """Gradient amplification (t-SNE's loop; ``tsne`` and normalized ``gdr``).

    Per epoch ``t``, with ``F`` from :func:`gather_forces` at the epoch-start ``Y``, the
    attraction multiplied by ``exaggeration`` and ``mu = momentum`` while
    ``t < n_exaggerated``, else 1 and ``mu = final_momentum``::

        gains  <- update_gains(gains, update, F)
        update <- clip_step_norms(mu * update - lr_t * gains * F, max_step_norm)
        Y      <- Y + update

    ``update`` starts at 0 and ``gains`` at 1; both carry over the end of the exaggeration.
    ``lr_t`` is :meth:`AmplifiedSchedule.rate` (constant unless annealed). The schedule's
    stopping rules (:class:`EarlyStop`, off by default) may end the exaggeration or the run
    early; what they saw is left in ``monitor.early_stop``.

    Parameters
    ----------
    Y0 : ndarray of shape (n_samples, n_components)
        Not modified.
    affinities : Affinities
    loss, repulsion : Loss, Repulsion
    ctx : Context
    monitor : Monitor
    schedule : AmplifiedSchedule
    symmetric_attraction : bool
    n_epochs : int

    Returns
    -------
    Y : ndarray of shape (n_samples, n_components)
    """
    Y, _ = amplified_descent_from(Y0, affinities, loss, repulsion, ctx, monitor, schedule=schedule,
                                  symmetric_attraction=symmetric_attraction, n_epochs=n_epochs,
                                  state=DescentState.start(np.shape(Y0)))
    return Y


def amplified_descent_from(Y0, affinities: Affinities, loss, repulsion, ctx: Context, monitor: Monitor, *,
                           schedule: AmplifiedSchedule, symmetric_attraction: bool, n_epochs: int,
                           state: DescentState) -> tuple[np.ndarray, DescentState]:
    """:func:`amplified_descent` continued from ``state``: epochs ``t = state.epoch, ...,
    state.epoch + n_epochs - 1``, starting from its ``update`` and ``gains``.

    Running ``n1`` epochs, then ``n2`` more from the returned state, gives the same bits as
    one run of ``n1 + n2`` epochs (the schedule sees the same epoch numbers; ``lr_t`` is
    ``schedule.rate(t, state.epoch + n_epochs)``, and the monitor the same numbers).

    Returns
    -------
    Y : ndarray of shape (n_samples, n_components)
    state : DescentState
        After the last epoch run (fewer than ``n_epochs`` when a callback stopped the run).
    """
    P = affinities.P
    edges = edge_list(P)
    Y = np.array(Y0, dtype=np.float64)
    update = np.array(state.update, dtype=np.float64)
    gains = np.array(state.gains, dtype=np.float64)
    stop = state.epoch + n_epochs
    epoch = state.epoch - 1
    early_stop = EarlyStop(schedule, state.epoch)
    for epoch in range(state.epoch, stop):
        exaggerated = early_stop.exaggerated(epoch)
        forces = gather_forces(Y, edges, loss, repulsion, ctx, epoch, affinities=affinities,
                               symmetric=symmetric_attraction,
                               exaggeration=schedule.exaggeration if exaggerated else 1.0)
        momentum = schedule.momentum if exaggerated else schedule.final_momentum
        gains = update_gains(gains, update, forces, schedule.min_gain)
        update = clip_step_norms(momentum * update - schedule.rate(epoch, stop) * gains * forces,
                                 schedule.max_step_norm)
        Y = Y + update
        if report_if_due(monitor, epoch, stop, loss, P, Y, ctx, early_stop, (gains, forces)):
            break
    monitor.early_stop = early_stop.record
    return Y, DescentState(update=update, gains=gains, epoch=epoch + 1)


def clipped_descent(Y0, affinities: Affinities, loss, repulsion, ctx: Context, monitor: Monitor, *,
                    learning_rate: float, max_step: float, symmetric_attraction: bool,
                    n_epochs: int) -> np.ndarray:
    """GDR's unnormalized loop: clipped steps with a linearly decaying learning rate.

    Per epoch ``t``, with ``F`` from :func:`gather_forces` at the epoch-start ``Y``::

        Y <- Y - lr0 (1 - t / n_epochs) clip(F, -max_step, max_step)

    (each coordinate of each point's total force is clipped, which tames the
    ``1 / (eps + D)`` repulsion of the unnormalized KL between near-coincident points).
    With ``affinities.density`` (densMAP), ``F`` also holds the density term's forces
    (:func:`gidr_reference.densmap.density_forces`) in the epochs where it is active.

    Parameters
    ----------
    Y0 : ndarray of shape (n_samples, n_components)
        Not modified.
    affinities : Affinities
    loss, repulsion : Loss, Repulsion
    ctx : Context
    monitor : Monitor
    learning_rate : float
        ``lr0``.
    max_step : float
    symmetric_attraction : bool
    n_epochs : int

    Returns
    -------
    Y : ndarray of shape (n_samples, n_components)
    """
    P = affinities.P
    edges = edge_list(P)
    Y = np.array(Y0, dtype=np.float64)
    density = affinities.density
    for epoch in range(n_epochs):
        forces = gather_forces(Y, edges, loss, repulsion, ctx, epoch, affinities=affinities,
                               symmetric=symmetric_attraction)
        if density is not None and density.active_at(epoch, n_epochs):
            forces = forces + densmap.density_forces(Y, P, density, ctx.a, ctx.b,
                                                     weight=density.force_weight(symmetric_attraction))
        lr = learning_rate * (1.0 - epoch / n_epochs)
        Y = Y - lr * np.clip(forces, -max_step, max_step)
        if report_if_due(monitor, epoch, n_epochs, loss, P, Y, ctx):
            break
    return Y


# ---------------------------------------------------------------------- umap-learn's SGD
def epochs_per_sample(p: np.ndarray) -> np.ndarray:
    """umap-learn's schedule: edge ``e`` is processed every ``max(p) / p_e`` epochs.

    Parameters
    ----------
    p : ndarray of shape (n_edges,), >= 0

    Returns
    -------
    ndarray of shape (n_edges,)
        ``inf`` for stored zeros and for values so small that the period overflows (never
        processed).
    """
    with np.errstate(divide="ignore", over="ignore"):
        return p.max() / p


def negative_targets(ctx: Context, epoch: int, heads: np.ndarray, edge_ids: np.ndarray,
                     n_negative: int) -> np.ndarray:
    """The negative samples of the processed edges.

    Sample ``s`` of edge ``e`` (head ``i``) is
    ``negative_sample(seed, epoch, i, slot=e * n_negative + s, n)``: uniform over the points
    other than ``i``, from the counter-based hash of :mod:`gidr_reference.random`.

    Returns
    -------
    ndarray of shape (len(heads), n_negative), intp
    """
    from gidr_reference.random import negative_sample

    slots = edge_ids[:, None].astype(np.uint64) * np.uint64(n_negative) + np.arange(n_negative, dtype=np.uint64)
    owners = np.broadcast_to(heads[:, None], slots.shape)
    targets = negative_sample(ctx.seed, epoch, owners.astype(np.uint64), slots, ctx.n_samples)
    return np.asarray(targets, dtype=np.intp).reshape(slots.shape)


def sgd_epoch_step(Y, edges: Edges, due: np.ndarray, loss, ctx: Context, epoch: int, *,
                   n_negative: int, symmetric_attraction: bool, max_step: float,
                   table: _force_table.ForceTable = _force_table.EMPTY) -> np.ndarray:
    """Sum of the clipped umap-learn updates of the edges ``due``, all at positions ``Y``.

    Edge ``e = (i, j)``: ``g = clip(attraction(D_ij, 1) (y_i - y_j))`` moves ``y_i`` by
    ``-g`` and, with ``symmetric_attraction``, ``y_j`` by ``+g``. Each of its ``n_negative``
    negatives ``k`` moves ``y_i`` by ``clip(phi_0(D_ik) (y_i - y_k))`` (theta = -1: the
    ``1 - p`` factor is replaced by sampling), skipped when ``D_ik == 0``. ``clip`` bounds
    every coordinate of every single update to ``±max_step``. With a ``table``
    (:mod:`gidr_reference.force_table`), both coefficients are interpolated on it where
    ``D`` is in its range.

    Returns
    -------
    delta : ndarray of shape (n_samples, n_components)
        The step before multiplication by the learning rate.
    """
    n = edges.n_samples
    heads, tails = edges.rows[due], edges.cols[due]
    diff = Y[heads] - Y[tails]
    D = np.einsum("ij,ij->i", diff, diff)
    coefficients = _force_table.coefficients(table.attraction, D, lambda d: loss.attraction(d, np.ones_like(d), ctx))
    pulls = np.clip(coefficients[:, None] * diff, -max_step, max_step)
    delta = -scatter_rows(pulls, heads, n)
    if symmetric_attraction:
        delta += scatter_rows(pulls, tails, n)
    if n_negative == 0 or due.size == 0:
        return delta
    targets = negative_targets(ctx, epoch, heads, due, n_negative).ravel()
    owners = np.repeat(heads, n_negative)
    diff = Y[owners] - Y[targets]
    D = np.einsum("ij,ij->i", diff, diff)
    phi = _force_table.coefficients(table.repulsion, D, lambda d: np.asarray(loss.repulsion_channels(d, ctx))[..., 0])
    phi = np.where(D > 0, phi, 0.0)
    pushes = np.clip(phi[:, None] * diff, -max_step, max_step)
    return delta + scatter_rows(pushes, owners, n)


def umap_sgd(Y0, affinities: Affinities, loss, ctx: Context, monitor: Monitor, *, n_negative: int,
             symmetric_attraction: bool,
             learning_rate: float, max_step: float, n_epochs: int, force_table: bool = False) -> np.ndarray:
    """umap-learn's optimization loop, with the updates of each epoch batched.

    Every stored entry ``e`` of P is an edge with period ``max(P) / p_e``; it is due at
    epoch ``t`` (0-based) when its next sampling time is ``<= t + 1`` and then scheduled one
    period later (so edges of maximal weight are processed every epoch, the others in
    proportion to ``p``). All updates due at epoch ``t`` are computed at the epoch-start
    ``Y`` by :func:`sgd_epoch_step` and applied together::

        Y <- Y + learning_rate (1 - t / n_epochs) delta

    umap-learn applies each update immediately instead; the paper (§5.1) found that
    collecting them per epoch does not change the embedding. With ``affinities.density``
    (densMAP), ``delta`` also holds, in the epochs where the term is active, the expectation of
    umap-learn's per-edge density updates (:func:`gidr_reference.densmap.density_forces` with
    ``bound = max_step``, ``rate_scale = 1 / max(P)``).

    Parameters
    ----------
    Y0 : ndarray of shape (n_samples, n_components)
        Not modified.
    affinities : Affinities
    loss : Loss
        Unnormalized KL: ``attraction(D, 1)`` and ``phi_0`` are umap-learn's coefficients.
    ctx : Context
    monitor : Monitor
    n_negative : int
        Negative samples per processed edge.
    symmetric_attraction : bool
    learning_rate, max_step : float
    n_epochs : int
    force_table : bool
        Interpolate the coefficients on :mod:`gidr_reference.force_table`'s table (when
        ``ctx.b != 1``) instead of evaluating ``D^b`` for every pair.

    Returns
    -------
    Y : ndarray of shape (n_samples, n_components)
    """
    P = affinities.P
    edges = edge_list(P)
    Y = np.array(Y0, dtype=np.float64)
    if edges.p.size == 0:
        return Y
    period = epochs_per_sample(edges.p)
    next_time = period.copy()
    density = affinities.density
    table = _force_table.build(loss, ctx) if _force_table.wanted(ctx, force_table) else _force_table.EMPTY
    for epoch in range(n_epochs):
        due = np.flatnonzero(next_time <= epoch + 1)
        next_time[due] += period[due]
        delta = sgd_epoch_step(Y, edges, due, loss, ctx, epoch, n_negative=n_negative,
                               symmetric_attraction=symmetric_attraction, max_step=max_step, table=table)
        if density is not None and density.active_at(epoch, n_epochs):
            delta = delta - densmap.density_forces(Y, P, density, ctx.a, ctx.b,
                                                   weight=density.force_weight(symmetric_attraction),
                                                   bound=max_step, rate_scale=1.0 / float(edges.p.max()))
        Y = Y + learning_rate * (1.0 - epoch / n_epochs) * delta
        if report_if_due(monitor, epoch, n_epochs, loss, P, Y, ctx):
            break
    return Y
