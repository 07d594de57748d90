"""Embedding new points against a fixed training embedding (``transform``), in NumPy.

With ``D = ||y - y_j||^2`` and the fitted loss's forces (:mod:`gidr.stages.loss`), the
force on new point ``q`` (neighbours ``j`` with weights ``p_qj``, from :class:`NewEdges`) is::

    F_q = sum_{e < k} attraction(D_qj_e, p_qj_e) (y_q - y_j_e)
        + sum_c theta_c * s * sum_{slot < k n_negative} phi_c(D_qt) (y_q - y_t)

with ``t = negative_target(key_q, epoch, slot, n_train)``: uniform over the training points,
a pure function of the point's own key (:func:`negative_target`), so a point's draws do not
depend on the other new points. ``s = n_train / (k n_negative)`` when normalized (the draws
stand for all ``n_train`` training points), else 1. ``theta`` comes from the loss's
``repulsion_weights`` on totals of the training embedding (:func:`training_totals`),
computed once. The training points do not move. Two loops (:class:`NewPointSteps`):

* unnormalized: ``y <- y - lr0 (1 - t / n_epochs) clip(F, -max_step, max_step)``;
* normalized: the optimizer's momentum and gains, without exaggeration::

      gains  <- update_gains(gains, update, F, min_gain)     (gidr_reference.optimizers)
      update <- clip(mu_t update - lr_t gains F, -step_cap, step_cap)
      y      <- y + update

  ``mu_t`` is ``momentum`` for the first ``n_momentum`` epochs (the share of the fit's
  epochs run with early exaggeration), then ``final_momentum``; ``lr_t`` the fit schedule's
  rate (annealed after ``n_momentum`` epochs when the fit's is); ``step_cap`` is
  :data:`STEP_CAP_SHARE` of the training embedding's largest extent.

Sums run in the order the numba twin (:mod:`gidr_numba.transform`) runs them: edges, then
draws, one at a time, so that both give the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gidr.types import Affinities, Context, NewEdges, PairTotals
from gidr_reference.optimizers import update_gains
from gidr_reference.random import counter_hash

__all__ = ["NewPointSteps", "new_point_steps", "negative_target", "training_totals", "repulsion_weights",
           "new_point_forces", "embed_new_points", "STEP_CAP_SHARE", "TOTALS_SAMPLE", "DEFAULT_NEGATIVES"]

#: Training pairs sampled to estimate ``Z = sum w`` and ``sum w^2`` for the repulsion weights.
TOTALS_SAMPLE = 200_000
#: Normalized loop: the cap on each coordinate of a step, as a share of the training
#: embedding's largest extent (``max(ptp(Y_train, axis=0))``).
STEP_CAP_SHARE = 0.05
#: Negatives per edge when the repulsion stage does not sample per edge: (unnormalized, normalized).
DEFAULT_NEGATIVES = (1, 4)


@dataclass(frozen=True)
class NewPointSteps:
    """How new points move (see the module docstring).

    Attributes
    ----------
    normalized : bool
        Momentum and gains (True) or clipped steps (False).
    n_negative : int
        Draws per edge.
    learning_rate : float
        ``lr0`` (unnormalized) or the schedule's rate (normalized).
    max_step : float
        Unnormalized: clip of each force coordinate.
    momentum, final_momentum, min_gain : float
        Normalized: the optimizer's momentum and floor of the gains.
    n_momentum : int
        Normalized: epochs run with ``momentum``.
    anneal : bool
        Normalized: after ``n_momentum`` epochs the rate decays linearly to 0.
    """

    normalized: bool
    n_negative: int
    learning_rate: float
    max_step: float = 0.0
    momentum: float = 0.0
    final_momentum: float = 0.0
    min_gain: float = 0.0
    n_momentum: int = 0
    anneal: bool = False

    def rate(self, epoch: int, n_epochs: int) -> float:
        """The learning rate of ``epoch`` (the formulas of the fit's loops)."""
        if not self.normalized:
            return self.learning_rate * (1.0 - epoch / n_epochs)
        if not self.anneal or epoch < self.n_momentum:
            return self.learning_rate
        return self.learning_rate * (n_epochs - epoch) / (n_epochs - self.n_momentum)


def new_point_steps(optimizer, ctx: Context, n_epochs: int, *, repulsion=None, schedule=None,
                    learning_rate: float | None = None) -> NewPointSteps:
    """The steps of ``transform`` from the fitted optimizer's own parameters.

    Parameters
    ----------
    optimizer : Optimizer
        Unnormalized: its ``learning_rate`` (``"auto"``: 1.0) and ``max_step``.
    ctx : Context
        The fit's switches; ``ctx.n_epochs`` is the number of epochs the fit ran.
    n_epochs : int
        Epochs of the transform.
    repulsion : Repulsion, optional
        A ``per_edge_sampler`` gives the draws per edge (``draws_per_edge()``); otherwise
        :data:`DEFAULT_NEGATIVES`.
    schedule : AmplifiedSchedule, optional
        Normalized (required): the optimizer's schedule for the fit; its rate, momenta,
        ``min_gain`` and annealing are kept, its exaggeration dropped, and the early momentum
        lasts the same share of the epochs as the fit's exaggeration.
    learning_rate : float, optional
        Unnormalized: the fit's resolved initial step (the optimizer's ``"auto"`` already
        resolved); by default the optimizer's ``learning_rate`` (``"auto"``: 1.0).

    Returns
    -------
    NewPointSteps
    """
    if repulsion is not None and getattr(repulsion, "per_edge_sampler", False):
        n_negative = int(repulsion.draws_per_edge())
    else:
        n_negative = DEFAULT_NEGATIVES[int(bool(ctx.normalized))]
    if not ctx.normalized:
        rate = getattr(optimizer, "learning_rate", "auto") if learning_rate is None else learning_rate
        return NewPointSteps(normalized=False, n_negative=n_negative,
                             learning_rate=1.0 if rate == "auto" else float(rate),
                             max_step=float(optimizer.max_step))
    if schedule is None:
        raise ValueError("new_point_steps: a normalized transform needs the optimizer's schedule")
    fit_epochs = max(int(ctx.n_epochs or n_epochs), 1)
    n_momentum = min(n_epochs, int(round(schedule.n_exaggerated * n_epochs / fit_epochs)))
    return NewPointSteps(normalized=True, n_negative=n_negative, learning_rate=float(schedule.learning_rate),
                         momentum=float(schedule.momentum), final_momentum=float(schedule.final_momentum),
                         min_gain=float(schedule.min_gain), n_momentum=n_momentum,
                         anneal=bool(getattr(schedule, "anneal", False)))


def negative_target(keys, epoch: int, slot, n_train: int) -> np.ndarray:
    """The training point drawn by new point(s) with ``keys`` at ``epoch``, ``slot``.

    ``counter_hash(key, epoch, 0, slot) % n_train`` (:mod:`gidr_reference.random`): uniform
    over the ``n_train`` training points (a new point is none of them), a pure function of
    the point's key.

    Parameters
    ----------
    keys : ndarray of shape (m,), uint64
    epoch : int
    slot : int or ndarray broadcast with ``keys``
    n_train : int

    Returns
    -------
    ndarray of shape (m,), int64
    """
    h = counter_hash(np.asarray(keys, dtype=np.uint64), epoch, 0, slot)
    return (h % np.uint64(n_train)).astype(np.int64)


def training_totals(Y_train: np.ndarray, affinities: Affinities, loss, ctx: Context) -> PairTotals:
    """``sum w``, ``sum w^2`` over the training embedding's ordered pairs, estimated from
    :data:`TOTALS_SAMPLE` pairs drawn with ``ctx.rng("transform-totals")``; ``sum p w`` exact
    over the stored entries of P. ``w`` is the loss's kernel."""
    rng = ctx.rng("transform-totals")
    n = len(Y_train)
    m = min(TOTALS_SAMPLE, n * (n - 1))
    i = rng.integers(0, n, m)
    j = (i + rng.integers(1, n, m)) % n
    w = np.asarray(loss.kernel(np.sum((Y_train[i] - Y_train[j]) ** 2, axis=1), ctx), dtype=np.float64)
    scale = n * (n - 1) / m
    coo = affinities.P.tocoo()
    w_edges = np.asarray(loss.kernel(np.sum((Y_train[coo.row] - Y_train[coo.col]) ** 2, axis=1), ctx))
    return affinities.totals(sum_w=float(w.sum() * scale), sum_w2=float((w * w).sum() * scale),
                             sum_pw=float(coo.data @ w_edges))


def repulsion_weights(Y_train: np.ndarray, affinities: Affinities, loss, ctx: Context) -> np.ndarray:
    """``theta``, shape (n_channels,): the loss's repulsion weights on :func:`training_totals`."""
    totals = training_totals(Y_train, affinities, loss, ctx)
    return np.ascontiguousarray(loss.repulsion_weights(totals, ctx), dtype=np.float64).reshape(-1)


def new_point_forces(Y: np.ndarray, Y_train: np.ndarray, edges: NewEdges, loss, theta: np.ndarray, ctx: Context,
                     epoch: int, n_negative: int) -> np.ndarray:
    """The forces on the new points at positions ``Y`` (module docstring), shape (m, n_components)."""
    n_train = len(Y_train)
    k = edges.indices.shape[1]
    forces = np.zeros_like(Y)
    for e in range(k):
        diff = Y - Y_train[edges.indices[:, e]]
        D = np.sum(diff * diff, axis=1)
        forces += np.asarray(loss.attraction(D, edges.weights[:, e], ctx), dtype=np.float64)[:, None] * diff
    channels = np.zeros((theta.size,) + Y.shape)
    for slot in range(k * n_negative):
        diff = Y - Y_train[negative_target(edges.keys, epoch, slot, n_train)]
        phi = np.asarray(loss.repulsion_channels(np.sum(diff * diff, axis=1), ctx), dtype=np.float64)
        for c in range(theta.size):
            channels[c] += phi[:, c, None] * diff
    scale = n_train / (k * n_negative) if ctx.normalized else 1.0
    for c in range(theta.size):
        forces += theta[c] * (scale * channels[c])
    return forces


def embed_new_points(Y_start: np.ndarray, Y_train: np.ndarray, edges: NewEdges, affinities: Affinities, loss,
                     ctx: Context, n_epochs: int, *, steps: NewPointSteps) -> np.ndarray:
    """Optimize the new points against the fixed ``Y_train`` (see the module docstring).

    Parameters
    ----------
    Y_start : ndarray of shape (n_new, n_components)
        Not modified.
    Y_train : ndarray of shape (n_train, n_components)
    edges : NewEdges
    affinities : Affinities
        The fitted P (for the totals behind ``theta``).
    loss : Loss
    ctx : Context
        The fit's switches (``n_samples`` is ``n_train``).
    n_epochs : int
    steps : NewPointSteps

    Returns
    -------
    ndarray of shape (n_new, n_components), float64
    """
    Y_train = np.ascontiguousarray(Y_train, dtype=np.float64)
    Y = np.array(Y_start, dtype=np.float64)
    theta = repulsion_weights(Y_train, affinities, loss, ctx)
    if len(Y) == 0 or n_epochs <= 0:
        return Y
    if not steps.normalized:
        for epoch in range(n_epochs):
            forces = new_point_forces(Y, Y_train, edges, loss, theta, ctx, epoch, steps.n_negative)
            Y = Y - steps.rate(epoch, n_epochs) * np.clip(forces, -steps.max_step, steps.max_step)
        return Y
    update, gains = np.zeros_like(Y), np.ones_like(Y)
    step_cap = STEP_CAP_SHARE * float(np.ptp(Y_train, axis=0).max())
    for epoch in range(n_epochs):
        forces = new_point_forces(Y, Y_train, edges, loss, theta, ctx, epoch, steps.n_negative)
        momentum = steps.momentum if epoch < steps.n_momentum else steps.final_momentum
        gains = update_gains(gains, update, forces, steps.min_gain)
        update = np.clip(momentum * update - steps.rate(epoch, n_epochs) * gains * forces, -step_cap, step_cap)
        Y = Y + update
    return Y
