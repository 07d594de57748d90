"""t-SNE's gradient amplification in numba: the ``tsne`` optimizer, and normalized ``gdr``.

:func:`amplified_descent` is :func:`gidr_reference.optimizers.amplified_descent`: the forces
of :class:`gidr_numba.gdr.ForceField` at the epoch-start Y, then momentum and per-coordinate
gains (:func:`amplified_step`, a ``prange`` over points that writes only its own point's
row). Normalized ``gdr`` runs it with the fused sampled pass and a rate annealed after the
exaggeration; ``tsne`` with t-SNE's schedule: early exaggeration of the attraction and
``momentum`` for the first ``exaggeration_iter`` epochs, then ``final_momentum``; a constant
learning rate (``"auto"``: ``max(n / 12, 200)``). For ``tsne`` the repulsion stage's
``estimate`` (the numba Barnes-Hut tree of :mod:`gidr_numba.barnes_hut` in the ``tsne``
preset) supplies the channels and ``Z`` each epoch, and
:func:`~gidr_numba.gdr.gather_attraction` the attraction. The result does not depend on the
number of threads (as long as the estimator's does not either).
:func:`amplified_descent_from` continues a run from a :class:`~gidr.types.DescentState`
(the ``tsne`` stage's ``resume``): chained runs give the bits of one run of their summed length.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from gidr.types import DescentState
from gidr_numba.forces import LossKernels
from gidr_numba.gdr import ForceField, point_force, report, threads_for
from gidr_reference.loss_estimate import estimate_loss
from gidr_reference.optimizers import EarlyStop

__all__ = ["amplified_step", "amplified_descent", "amplified_descent_from"]


@njit(cache=True)
def _sign(x):
    return (x > 0.0) - (x < 0.0)


@njit(cache=True, parallel=True)
def amplified_step(Y, parts, weights, state, constants):
    """t-SNE's gradient amplification, in place on ``Y`` and ``state``::

        gains  <- max(gains + 0.2 if sign(F) != sign(update) else 0.8 gains, min_gain)
        update <- momentum * update - learning_rate * gains * F
        update <- update * (max_step_norm / |update|)  where |update| > max_step_norm
        Y      <- Y + update

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components)
    parts : tuple (attraction, channels, channel_scale)
        ``attraction`` (n, d) from the gathering kernels; ``channels`` (C, n, d) (at least
        ``len(theta)`` channels); ``channel_scale`` (n,): ``(n - 1) / m_i`` for normalized
        sampled repulsion, else 1.
    weights : tuple (attraction_scale, theta)
        ``attraction_scale``: exaggeration, times 2 for symmetric attraction on a symmetric
        P; ``theta`` (n_channels,): the loss's repulsion weights.
    state : tuple (update, gains, step_sq)
        ``update`` and ``gains`` of shape (n, d), updated in place; ``step_sq`` (n,) receives
        each point's ``sum_c (gains F)^2`` (the early-stopping rules' gradient norm).
    constants : tuple (learning_rate, momentum, min_gain, max_step_norm)
        ``max_step_norm``: as :func:`gidr_reference.optimizers.clip_step_norms` (``inf``: unbounded).
    """
    update, gains, step_sq = state
    learning_rate, momentum, min_gain, max_step_norm = constants
    n, d = Y.shape
    for i in prange(n):
        norm2 = 0.0
        direction2 = 0.0
        for c in range(d):
            f = point_force(i, c, parts, weights)
            u = update[i, c]
            g = gains[i, c] + 0.2 if _sign(f) != _sign(u) else gains[i, c] * 0.8
            g = max(g, min_gain)
            u = momentum * u - learning_rate * g * f
            gains[i, c] = g
            update[i, c] = u
            norm2 += u * u
            direction2 += (g * f) * (g * f)
        step_sq[i] = direction2
        if norm2 > max_step_norm * max_step_norm:
            scale = max_step_norm / np.sqrt(norm2)
            for c in range(d):
                update[i, c] = update[i, c] * scale
        for c in range(d):
            Y[i, c] = Y[i, c] + update[i, c]


def amplified_descent(Y0, affinities, loss, repulsion, ctx, monitor, *, kernels: LossKernels, schedule,
                      symmetric_attraction: bool, n_epochs: int) -> np.ndarray:
    """Gradient amplification (normalized ``gdr`` and ``tsne``), as the reference's loop.

    Per epoch ``t`` (exaggeration and ``momentum`` while ``t < schedule.n_exaggerated``)::

        F      <- ForceField(Y, t)              (epoch-start Y)
        gains  <- max(gains + 0.2 if sign(F) != sign(update) else 0.8 gains, min_gain)
        update <- mu * update - lr_t * gains * F;   Y <- Y + update

    with ``lr_t = schedule.rate(t, n_epochs)`` (constant, or annealed after the exaggeration).

    Parameters
    ----------
    Y0 : ndarray of shape (n_samples, n_components)
        Not modified.
    affinities : Affinities
    loss, repulsion : Loss, Repulsion
    ctx : Context
    monitor : Monitor
    kernels : LossKernels
    schedule : gidr_reference.optimizers.AmplifiedSchedule
    symmetric_attraction : bool
    n_epochs : int

    Returns
    -------
    Y : ndarray of shape (n_samples, n_components)
    """
    Y, _ = amplified_descent_from(Y0, affinities, loss, repulsion, ctx, monitor, kernels=kernels, schedule=schedule,
                                  symmetric_attraction=symmetric_attraction, n_epochs=n_epochs,
                                  state=DescentState.start(np.shape(Y0)))
    return Y


def amplified_descent_from(Y0, affinities, loss, repulsion, ctx, monitor, *, kernels: LossKernels, schedule,
                           symmetric_attraction: bool, n_epochs: int,
                           state: DescentState) -> tuple[np.ndarray, DescentState]:
    """:func:`amplified_descent` continued from ``state`` (epochs ``state.epoch, ...,
    state.epoch + n_epochs - 1`` from its update and gains), as
    :func:`gidr_reference.optimizers.amplified_descent_from`: two runs chained through the
    returned state give the bits of one run of their summed length.

    Returns
    -------
    Y : ndarray of shape (n_samples, n_components)
    state : DescentState
        After the last epoch run.
    """
    Y = np.array(Y0, dtype=np.float64, order="C")
    update = np.array(state.update, dtype=np.float64, order="C")
    gains = np.array(state.gains, dtype=np.float64, order="C")
    field = ForceField(affinities, loss, repulsion, ctx, kernels, symmetric_attraction, Y.shape[1])
    with threads_for(field.work):
        end = _amplified_loop(Y, field, affinities, loss, ctx, monitor, schedule, (update, gains),
                              (state.epoch, state.epoch + n_epochs))
    return Y, DescentState(update=update, gains=gains, epoch=end)


def _amplified_loop(Y, field, affinities, loss, ctx, monitor, schedule, state, epochs) -> int:
    """Epochs ``start .. stop - 1`` in place on ``Y`` and ``state = (update, gains)``; returns
    the number of the next epoch (``stop``, or earlier when a callback or the schedule's
    stopping rules, :class:`gidr_reference.optimizers.EarlyStop`, stopped the run)."""
    start, stop = epochs
    early_stop = EarlyStop(schedule, start)
    step_sq = np.empty(len(Y))
    state = (*state, step_sq)
    end = stop
    for epoch in range(start, stop):
        exaggerated = early_stop.exaggerated(epoch)
        parts, weights = field(Y, epoch, schedule.exaggeration if exaggerated else 1.0)
        momentum = schedule.momentum if exaggerated else schedule.final_momentum
        amplified_step(Y, parts, weights, state,
                       (float(schedule.rate(epoch, stop)), float(momentum), float(schedule.min_gain),
                        float(schedule.max_step_norm)))
        if _report(monitor, early_stop, epoch, stop, loss, affinities, Y, ctx, step_sq):
            end = epoch + 1
            break
    monitor.early_stop = early_stop.record
    return end


def _report(monitor, early_stop, epoch, stop, loss, affinities, Y, ctx, step_sq) -> bool:
    """:func:`gidr_numba.gdr.report` with the stopping rules' checks (on the same loss
    estimate, computed once); True when the run stops after ``epoch``."""
    if not early_stop.due(epoch):
        return report(monitor, epoch, stop, loss, affinities, Y, ctx)
    value = estimate_loss(loss, affinities, Y, ctx, epoch)
    stopped = monitor.due(epoch, stop) and bool(monitor.report(epoch, value, Y.copy()))
    return early_stop.check(epoch, value, float(np.sqrt(np.sum(step_sq)))) or stopped
