"""Numba optimizer stages: ``gdr``, ``umap_sgd`` and ``tsne`` (backend ``numba``, priority 10).

Each class subclasses its reference twin (:mod:`gidr_reference.stages_optim`), so the
parameters, defaults, ``default_n_epochs`` and ``check_compatible`` are the same by
construction; only ``optimize`` changes. The loss enters the kernels as its jitted force
functions (:meth:`gidr.stages.Loss.numba_forces`); a loss that has none (``None``) runs on
the reference optimizer of the same name, with a message at info level.

The loss values given to the monitor are estimates (:func:`gidr_numba.gdr.estimate_loss`:
exact edge terms, sampled all-pairs sums), not the reference's exact O(n^2) values.
"""
from __future__ import annotations

import inspect
import logging

import numpy as np
import scipy.sparse as sp
from numba import njit

from gidr.types import Context, Monitor
from gidr_numba import gdr, tsne, umap_sgd
from gidr_numba.forces import force_epsilon
from gidr_reference import stages_optim as reference

__all__ = ["GDROptimizer", "UmapSGDOptimizer", "TSNEOptimizer", "STAGES", "numba_forces_of"]

logger = logging.getLogger("gidr")


def _four_argument_repulsion(repulsion):
    """Adapt ``repulsion(D, a, b)`` (the signature in :mod:`gidr.stages.loss`) to the
    kernels' ``repulsion(D, a, b, epsilon)`` (:mod:`gidr_numba.forces`). Compiled per process."""
    @njit
    def adapted(D, a, b, epsilon):
        return repulsion(D, a, b)

    return adapted


def _n_parameters(function) -> int:
    py_func = getattr(function, "py_func", function)
    try:
        return len(inspect.signature(py_func).parameters)
    except (TypeError, ValueError):
        return 4


def numba_forces_of(loss, ctx: Context) -> gdr.Forces | None:
    """The loss's :class:`gidr_numba.gdr.Forces`, or None when it has no numba forces."""
    functions = loss.numba_forces(ctx) if hasattr(loss, "numba_forces") else None
    if functions is None:
        return None
    attraction, repulsion = functions
    if _n_parameters(repulsion) == 3:
        repulsion = _four_argument_repulsion(repulsion)
    return gdr.Forces(attraction=attraction, repulsion=repulsion, epsilon=force_epsilon(loss))


def _fallback(optimizer, loss) -> None:
    logger.info("%s (numba): loss '%s' has no numba forces; running the reference optimizer.",
                optimizer.describe(), getattr(loss, "name", type(loss).__name__))


def _n_epochs(optimizer, ctx: Context) -> int:
    return int(ctx.n_epochs) if ctx.n_epochs is not None else int(optimizer.default_n_epochs(ctx.n_samples))


class _NumbaOptimizer:
    """``optimize`` for the numba twins: the loss's jitted forces go to :meth:`_optimize_numba`;
    a loss without them runs on the reference twin (the next class in the MRO), with a message."""

    def optimize(self, Y: np.ndarray, P: sp.csr_matrix, loss, repulsion, ctx: Context,
                 monitor: Monitor) -> np.ndarray:
        forces = numba_forces_of(loss, ctx)
        if forces is None:
            _fallback(self, loss)
            return super().optimize(Y, P, loss, repulsion, ctx, monitor)
        return self._optimize_numba(Y, P, loss, repulsion, ctx, monitor, forces, _n_epochs(self, ctx))


class GDROptimizer(_NumbaOptimizer, reference.GDROptimizer):
    """GDR's loop in numba: one parallel pass per epoch gathers the attraction and, for the
    ``sampled`` repulsion, the negative samples (the reference's draws), then a second applies
    the update (see :mod:`gidr_numba.gdr`). Bit-identical whatever the number of threads."""

    backend = "numba"
    priority = 10

    def _optimize_numba(self, Y, P, loss, repulsion, ctx, monitor, forces, n_epochs):
        if ctx.normalized:
            schedule = self.schedule(ctx.n_samples, n_epochs, loss)
            return tsne.amplified_descent(Y, P, loss, repulsion, ctx, monitor, forces=forces, schedule=schedule,
                                          symmetric_attraction=self.symmetric_attraction, n_epochs=n_epochs)
        lr = 1.0 if self.learning_rate == "auto" else float(self.learning_rate)
        return gdr.clipped_descent(Y, P, loss, repulsion, ctx, monitor, forces=forces, learning_rate=lr,
                                   max_step=self.max_step, symmetric_attraction=self.symmetric_attraction,
                                   n_epochs=n_epochs)


class UmapSGDOptimizer(_NumbaOptimizer, reference.UmapSGDOptimizer):
    """umap-learn's SGD in numba: points in parallel, each applying its own updates at once
    against the others' epoch-start positions; deterministic (see :mod:`gidr_numba.umap_sgd`)."""

    backend = "numba"
    priority = 10

    def _optimize_numba(self, Y, P, loss, repulsion, ctx, monitor, forces, n_epochs):
        return umap_sgd.umap_sgd(Y, P, loss, ctx, monitor, forces=forces, n_negative=int(repulsion.n_negative),
                                 symmetric_attraction=self.symmetric_attraction,
                                 learning_rate=float(self.learning_rate), max_step=self.max_step,
                                 n_epochs=n_epochs)


class TSNEOptimizer(_NumbaOptimizer, reference.TSNEOptimizer):
    """Barnes-Hut t-SNE's loop: the repulsion stage's estimate each epoch, attraction and
    gains/momentum update in numba (see :mod:`gidr_numba.tsne`). Its schedule is the
    reference twin's."""

    backend = "numba"
    priority = 10

    def _optimize_numba(self, Y, P, loss, repulsion, ctx, monitor, forces, n_epochs):
        return tsne.amplified_descent(Y, P, loss, repulsion, ctx, monitor, forces=forces,
                                      schedule=self.schedule(ctx.n_samples),
                                      symmetric_attraction=self.symmetric_attraction, n_epochs=n_epochs)


STAGES = [GDROptimizer, UmapSGDOptimizer, TSNEOptimizer]
