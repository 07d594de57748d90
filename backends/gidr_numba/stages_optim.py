"""Numba optimizer stages: ``gdr``, ``umap_sgd`` and ``tsne`` (backend ``numba``, priority 10).

Each class subclasses its reference twin (:mod:`gidr_reference.stages_optim`), so the
parameters, defaults, ``default_n_epochs`` and ``check_compatible`` are the same by
construction; only ``optimize`` changes. The loss enters the kernels as the numba kernels
registered for it through the ``gidr_register_kernels`` hook
(:func:`gidr_numba.forces.loss_kernels`); a loss that has none runs on the reference
optimizer of the same name, with a message at info level.

The loss values given to the monitor are estimates
(:func:`gidr_reference.loss_estimate.estimate_loss`: the loss's own value terms over
sampled rows and pairs), not the reference's exact O(n^2) values.
"""
from __future__ import annotations

import logging

import numpy as np

from gidr.types import Affinities, Context, Monitor
from gidr_numba import gdr, tsne, umap_sgd
from gidr_numba import transform as numba_transform
from gidr_numba.forces import loss_kernels
from gidr_reference import stages_optim as reference

__all__ = ["GDROptimizer", "UmapSGDOptimizer", "TSNEOptimizer", "STAGES"]

logger = logging.getLogger("gidr")


def _fallback(optimizer, loss) -> None:
    logger.info("%s (numba): %s has no numba kernels; running the reference optimizer.",
                optimizer.describe(), loss.describe())


def _n_epochs(optimizer, ctx: Context) -> int:
    return int(ctx.n_epochs) if ctx.n_epochs is not None else int(optimizer.default_n_epochs(ctx.n_samples))


class _NumbaOptimizer:
    """``optimize`` for the numba twins: the loss's numba kernels go to :meth:`_optimize_numba`;
    a loss without them runs on the reference twin (the next class in the MRO), with a message."""

    #: transform's loop in numba (points in parallel, the whole epoch loop inside each point).
    _embed_new_points = staticmethod(numba_transform.embed_new_points)

    def optimize(self, Y: np.ndarray, affinities: Affinities, loss, repulsion, ctx: Context,
                 monitor: Monitor) -> np.ndarray:
        kernels = loss_kernels(loss, ctx)
        if kernels is None:
            _fallback(self, loss)
            return super().optimize(Y, affinities, loss, repulsion, ctx, monitor)
        return self._optimize_numba(Y, affinities, loss, repulsion, ctx, monitor, kernels, _n_epochs(self, ctx))


class GDROptimizer(_NumbaOptimizer, reference.GDROptimizer):
    """GDR's loop in numba: one parallel pass per epoch gathers the attraction and, for the
    ``sampled`` repulsion, the negative samples (the reference's draws), then a second applies
    the update (see :mod:`gidr_numba.gdr`). Bit-identical whatever the number of threads."""

    backend = "numba"
    priority = 10

    def _optimize_numba(self, Y, affinities, loss, repulsion, ctx, monitor, kernels, n_epochs):
        if ctx.normalized:
            schedule = self.schedule(ctx.n_samples, n_epochs, loss)
            return tsne.amplified_descent(Y, affinities, loss, repulsion, ctx, monitor, kernels=kernels,
                                          schedule=schedule, symmetric_attraction=self.symmetric_attraction,
                                          n_epochs=n_epochs)
        return gdr.clipped_descent(Y, affinities, loss, repulsion, ctx, monitor, kernels=kernels,
                                   learning_rate=self.unnormalized_rate(loss),
                                   max_step=self.max_step, symmetric_attraction=self.symmetric_attraction,
                                   n_epochs=n_epochs)


class UmapSGDOptimizer(_NumbaOptimizer, reference.UmapSGDOptimizer):
    """umap-learn's SGD in numba: points in parallel, each applying its own updates at once
    against the others' epoch-start positions; deterministic (see :mod:`gidr_numba.umap_sgd`)."""

    backend = "numba"
    priority = 10

    def _optimize_numba(self, Y, affinities, loss, repulsion, ctx, monitor, kernels, n_epochs):
        return umap_sgd.umap_sgd(Y, affinities, loss, ctx, monitor, kernels=kernels,
                                 n_negative=repulsion.draws_per_edge(),
                                 symmetric_attraction=self.symmetric_attraction,
                                 learning_rate=float(self.learning_rate), max_step=self.max_step,
                                 n_epochs=n_epochs, force_table=self.force_table)


class TSNEOptimizer(_NumbaOptimizer, reference.TSNEOptimizer):
    """Barnes-Hut t-SNE's loop: the repulsion stage's estimate each epoch, attraction and
    gains/momentum update in numba (see :mod:`gidr_numba.tsne`). Its schedule is the
    reference twin's."""

    backend = "numba"
    priority = 10

    def _optimize_numba(self, Y, affinities, loss, repulsion, ctx, monitor, kernels, n_epochs):
        return tsne.amplified_descent(Y, affinities, loss, repulsion, ctx, monitor, kernels=kernels,
                                      schedule=self.schedule(ctx.n_samples),
                                      symmetric_attraction=self.symmetric_attraction, n_epochs=n_epochs)

    def resume(self, Y, affinities, loss, repulsion, ctx, monitor, state=None):
        """The reference twin's :meth:`~gidr_reference.stages_optim.TSNEOptimizer.resume` in numba
        (same bits as the numba ``optimize`` when chained); a loss without numba kernels runs the
        reference twin's."""
        kernels = loss_kernels(loss, ctx)
        if kernels is None:
            _fallback(self, loss)
            return super().resume(Y, affinities, loss, repulsion, ctx, monitor, state)
        return tsne.amplified_descent_from(Y, affinities, loss, repulsion, ctx, monitor, kernels=kernels,
                                           schedule=self.schedule(ctx.n_samples),
                                           symmetric_attraction=self.symmetric_attraction,
                                           n_epochs=_n_epochs(self, ctx), state=reference.checked_state(state, Y))


STAGES = [GDROptimizer, UmapSGDOptimizer, TSNEOptimizer]
