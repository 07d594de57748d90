"""numba repulsion stages.

The losses themselves are the reference classes (a loss is math: its parameters, exact
value and gradient in NumPy); the numba backend only registers their kernels through the
``gidr_register_kernels`` hook (:mod:`gidr_numba.plugin`, :func:`gidr_numba.forces.builtin_loss_kernels`).
The repulsion estimators bind parameters and call the kernels of :mod:`gidr_numba.repulsion`
and :mod:`gidr_numba.barnes_hut` with the loss's jitted ``repulsion``; a loss without numba
kernels runs on the reference estimator instead, with the same parameters.

The kernel modules are imported on first use, not when the plugin registers these
classes: loading (or, with a cold cache, compiling) their explicit signatures takes time
that a pipeline which never uses them should not pay.
"""
from __future__ import annotations

import logging

import numpy as np

from gidr.types import Context, RepulsionSums
from gidr_numba.forces import loss_kernels
from gidr_reference import repulsion as reference_repulsion
from gidr_reference import stages_forces as reference

__all__ = ["ExactRepulsion", "BarnesHutRepulsion", "SampledRepulsion", "FFTRepulsion", "STAGES"]

logger = logging.getLogger("gidr")


class _NumbaRepulsion:
    """Mixin: the loss's jitted repulsion, or the reference estimator when it has none."""

    backend = "numba"
    priority = 10
    #: the reference class this estimator falls back to.
    reference_class: type

    def _kernels(self, loss, ctx: Context):
        kernels = loss_kernels(loss, ctx)
        if kernels is None:
            logger.debug("%s has no numba kernels: repulsion '%s' runs on the reference backend",
                         loss.describe(), self.name)
        return kernels

    def _reference_estimate(self, Y, loss, ctx, epoch, n_edges) -> RepulsionSums:
        return self.reference_class(**self.values).estimate(Y, loss, ctx, epoch, n_edges)


class ExactRepulsion(_NumbaRepulsion, reference.ExactRepulsion):
    """Every pair, O(n^2) time and O(n) memory, parallel over points."""

    reference_class = reference.ExactRepulsion
    max_samples = None

    def estimate(self, Y, loss, ctx, epoch, n_edges=None) -> RepulsionSums:
        from gidr_numba.repulsion import exact_repulsion

        kernels = self._kernels(loss, ctx)
        if kernels is None:
            return self._reference_estimate(Y, loss, ctx, epoch, n_edges)
        return exact_repulsion(Y, kernels.repulsion, ctx.a, ctx.b, kernels.params, loss.n_channels)


class BarnesHutRepulsion(_NumbaRepulsion, reference.BarnesHutRepulsion):
    """Barnes-Hut: a quadtree (2-D) or octree (3-D) rebuilt at every call, parallel traversal."""

    reference_class = reference.BarnesHutRepulsion

    def estimate(self, Y, loss, ctx, epoch, n_edges=None) -> RepulsionSums:
        from gidr_numba.barnes_hut import barnes_hut_repulsion

        self.check_settings({"n_components": np.shape(Y)[1]})
        kernels = self._kernels(loss, ctx)
        if kernels is None:
            return self._reference_estimate(Y, loss, ctx, epoch, n_edges)
        return barnes_hut_repulsion(Y, kernels.repulsion, ctx.a, ctx.b, kernels.params, loss.n_channels,
                                    self.theta)


class SampledRepulsion(_NumbaRepulsion, reference.SampledRepulsion):
    """GDR's negative sampling, the reference's draws bit for bit, parallel over points."""

    reference_class = reference.SampledRepulsion
    #: The reference's per-edge draws exactly (its ``estimate`` only runs them in numba).
    per_edge_sampler = True

    def estimate(self, Y, loss, ctx, epoch, n_edges=None) -> RepulsionSums:
        from gidr_numba.repulsion import sampled_repulsion

        kernels = self._kernels(loss, ctx)
        if kernels is None:
            return self._reference_estimate(Y, loss, ctx, epoch, n_edges)
        m = reference_repulsion.samples_per_point(np.shape(Y)[0], self.n_negative, n_edges)
        return sampled_repulsion(Y, kernels.repulsion, ctx.a, ctx.b, kernels.params, loss.n_channels,
                                 seed=ctx.seed, epoch=epoch, m=m, normalized=ctx.normalized,
                                 pool_size=self.negative_pool_size(np.shape(Y)[0]))


class FFTRepulsion(_NumbaRepulsion, reference.FFTRepulsion):
    """FFT-interpolated kernel sums (:mod:`gidr_numba.fft`), parallel over points and boxes."""

    reference_class = reference.FFTRepulsion

    def estimate(self, Y, loss, ctx, epoch, n_edges=None) -> RepulsionSums:
        from gidr_numba.fft import fft_repulsion

        self.check_settings({"n_components": np.shape(Y)[1]})
        self.check_resolution(loss, ctx)
        kernels = self._kernels(loss, ctx)
        if kernels is None:
            return self._reference_estimate(Y, loss, ctx, epoch, n_edges)
        return fft_repulsion(Y, kernels.repulsion, ctx.a, ctx.b, kernels.params, loss.n_channels, **self.values)


STAGES = [ExactRepulsion, BarnesHutRepulsion, SampledRepulsion, FFTRepulsion]
