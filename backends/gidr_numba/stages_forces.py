"""numba loss and repulsion stages.

The losses are the reference classes (same parameters, same exact value and gradient in
NumPy) plus :meth:`numba_forces`, the jitted force pair of :mod:`gidr_numba.forces`.
The repulsion estimators bind parameters and call the kernels of
:mod:`gidr_numba.repulsion` and :mod:`gidr_numba.barnes_hut` with the loss's jitted
``repulsion``; a loss without one (``numba_forces`` returns None) runs on the reference
estimator instead, with the same parameters.

The kernel modules are imported on first use, not when the plugin registers these
classes: loading (or, with a cold cache, compiling) their explicit signatures takes time
that a pipeline which never uses them should not pay.
"""
from __future__ import annotations

import logging

import numpy as np

from gidr.types import Context, RepulsionSums
from gidr_numba import forces
from gidr_reference import repulsion as reference_repulsion
from gidr_reference import stages_forces as reference

__all__ = ["KL", "Frobenius", "ExactRepulsion", "BarnesHutRepulsion", "SampledRepulsion", "STAGES"]

logger = logging.getLogger("gidr")


class KL(reference.KL):
    __doc__ = reference.KL.__doc__
    backend = "numba"
    priority = 10

    def numba_forces(self, ctx: Context):
        """The jitted pair of :mod:`gidr_numba.forces` for ``ctx.normalized``."""
        return forces.force_pair("kl", ctx.normalized)


class Frobenius(reference.Frobenius):
    __doc__ = reference.Frobenius.__doc__
    backend = "numba"
    priority = 10

    def numba_forces(self, ctx: Context):
        """The jitted pair of :mod:`gidr_numba.forces` for ``ctx.normalized``."""
        return forces.force_pair("frobenius", ctx.normalized)


class _NumbaRepulsion:
    """Mixin: the loss's jitted repulsion, or the reference estimator when it has none."""

    backend = "numba"
    priority = 10
    #: the reference class this estimator falls back to.
    reference_class: type

    def _jitted_repulsion(self, loss, ctx: Context):
        pair = loss.numba_forces(ctx)
        if pair is None:
            logger.debug("%s has no numba force functions: repulsion '%s' runs on the reference backend",
                         loss.describe(), self.name)
            return None
        return pair[1]

    def _reference_estimate(self, Y, loss, ctx, epoch, n_edges) -> RepulsionSums:
        return self.reference_class(**self.values).estimate(Y, loss, ctx, epoch, n_edges)


class ExactRepulsion(_NumbaRepulsion, reference.ExactRepulsion):
    """Every pair, O(n^2) time and O(n) memory, parallel over points."""

    reference_class = reference.ExactRepulsion
    max_samples = None

    def estimate(self, Y, loss, ctx, epoch, n_edges=None) -> RepulsionSums:
        from gidr_numba.repulsion import exact_repulsion

        repulsion = self._jitted_repulsion(loss, ctx)
        if repulsion is None:
            return self._reference_estimate(Y, loss, ctx, epoch, n_edges)
        return exact_repulsion(Y, repulsion, ctx.a, ctx.b, forces.force_epsilon(loss), loss.n_channels)


class BarnesHutRepulsion(_NumbaRepulsion, reference.BarnesHutRepulsion):
    """Barnes-Hut: a quadtree (2-D) or octree (3-D) rebuilt at every call, parallel traversal."""

    reference_class = reference.BarnesHutRepulsion

    def estimate(self, Y, loss, ctx, epoch, n_edges=None) -> RepulsionSums:
        from gidr_numba.barnes_hut import barnes_hut_repulsion

        self.check_settings({"n_components": np.shape(Y)[1]})
        repulsion = self._jitted_repulsion(loss, ctx)
        if repulsion is None:
            return self._reference_estimate(Y, loss, ctx, epoch, n_edges)
        return barnes_hut_repulsion(Y, repulsion, ctx.a, ctx.b, forces.force_epsilon(loss), loss.n_channels,
                                    self.theta)


class SampledRepulsion(_NumbaRepulsion, reference.SampledRepulsion):
    """GDR's negative sampling, the reference's draws bit for bit, parallel over points."""

    reference_class = reference.SampledRepulsion

    def estimate(self, Y, loss, ctx, epoch, n_edges=None) -> RepulsionSums:
        from gidr_numba.repulsion import sampled_repulsion

        repulsion = self._jitted_repulsion(loss, ctx)
        if repulsion is None:
            return self._reference_estimate(Y, loss, ctx, epoch, n_edges)
        m = reference_repulsion.samples_per_point(np.shape(Y)[0], self.n_negative, n_edges)
        return sampled_repulsion(Y, repulsion, ctx.a, ctx.b, forces.force_epsilon(loss), loss.n_channels,
                                 seed=ctx.seed, epoch=epoch, m=m, normalized=ctx.normalized)


STAGES = [KL, Frobenius, ExactRepulsion, BarnesHutRepulsion, SampledRepulsion]
