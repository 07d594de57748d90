"""Reference loss and repulsion stages: they bind parameters; the math is in
:mod:`gidr_reference.losses`, :mod:`gidr_reference.repulsion` and
:mod:`gidr_reference.barnes_hut`."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from gidr.stages import Loss, Repulsion
from gidr.types import Context, PairTotals, RepulsionSums
from gidr.validation import GidrValueError, Interval, Param, format_error
from gidr_reference import MAX_SAMPLES
from gidr_reference import barnes_hut, losses, repulsion

__all__ = ["KL", "Frobenius", "ExactRepulsion", "BarnesHutRepulsion", "SampledRepulsion", "STAGES"]


class KL(Loss):
    """Kullback-Leibler divergence: t-SNE's (normalized) or UMAP's cross-entropy (unnormalized).

    Unnormalized forces replace the unknown ``p`` of non-neighbours by the mean of P and
    soften the repulsion's ``1/D`` by ``epsilon`` (see :func:`losses.kl_repulsion_channels`).
    Normalized, ``dof`` sets the degrees of freedom of the Student-t kernel
    ``w = (1 + a D^b / dof)^(-dof)`` (openTSNE's ``dof``: below 1, heavier tails and
    finer clusters; 1 is t-SNE's kernel).
    """

    name = "kl"
    n_channels = 1
    #: UMAP's cross-entropy (``dof`` other than 1 is refused unnormalized, see check_settings).
    edge_sampling_sgd = True
    #: gdr's normalized "auto" rate is doubled for KL: its annealed steps average out the
    #: sampled repulsion's noise (Fashion-MNIST 70,000, 1,000 epochs: 100-NN accuracy 0.816
    #: at a rate of 3,000 against 0.802 at the undoubled 1,458).
    auto_rate_factor = 2.0
    params = (
        Param("epsilon", 1e-3, (Interval(float, 0, None, "left"),),
              "Softening of the unnormalized repulsion 2b / ((epsilon + D)(1 + a D^b))."),
        Param("dof", 1.0, (Interval(float, 0, None, "neither"),),
              "Degrees of freedom of the normalized kernel (1 + a D^b / dof)^(-dof); 1 is t-SNE's."),
    )

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        if self.dof != 1.0 and not settings["normalized"]:
            raise GidrValueError(format_error(
                f"The 'dof' parameter of {self.describe()} with normalized=False", "1.0", self.dof,
                "The heavy-tailed kernel is t-SNE's (normalized); use normalized=True (e.g. preset "
                "'tsne' or 'gdr-tsne'), or dof=1."))

    def value(self, P: sp.csr_matrix, Y: np.ndarray, ctx: Context) -> float:
        return losses.kl_value(P, Y, ctx.a, ctx.b, ctx.normalized, self.dof)

    def gradient(self, P: sp.csr_matrix, Y: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.kl_gradient(P, Y, ctx.a, ctx.b, ctx.normalized, self.dof)

    def attraction(self, D: np.ndarray, p: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.kl_attraction(D, p, ctx.a, ctx.b, ctx.normalized, self.dof)

    def repulsion_channels(self, D: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.kl_repulsion_channels(D, ctx.a, ctx.b, ctx.normalized, self.epsilon, self.dof)

    def repulsion_weights(self, totals: PairTotals, ctx: Context) -> np.ndarray:
        return losses.kl_repulsion_weights(totals, ctx.normalized)

    def kernel(self, D: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.heavy_tailed_kernel(D, ctx.a, ctx.b, self.dof if ctx.normalized else 1.0)

    def value_edge_terms(self, D: np.ndarray, p: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.kl_edge_terms(D, p, ctx.a, ctx.b, ctx.normalized, self.dof)

    def value_pair_terms(self, D: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.kl_pair_terms(D, ctx.a, ctx.b, ctx.normalized, self.dof)

    def value_from_sums(self, edge_sums: np.ndarray, pair_sums: np.ndarray, ctx: Context) -> float:
        return losses.kl_value_from_sums(edge_sums, pair_sums, ctx.normalized)


class Frobenius(Loss):
    """Squared error between P and Q (paper §4.1). Two channels (the normalized loss has a
    global Z term); unnormalized, the second channel is identically zero."""

    name = "frobenius"
    n_channels = 2
    params = ()

    def value(self, P: sp.csr_matrix, Y: np.ndarray, ctx: Context) -> float:
        return losses.frobenius_value(P, Y, ctx.a, ctx.b, ctx.normalized)

    def gradient(self, P: sp.csr_matrix, Y: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.frobenius_gradient(P, Y, ctx.a, ctx.b, ctx.normalized)

    def attraction(self, D: np.ndarray, p: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.frobenius_attraction(D, p, ctx.a, ctx.b, ctx.normalized)

    def repulsion_channels(self, D: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.frobenius_repulsion_channels(D, ctx.a, ctx.b, ctx.normalized)

    def repulsion_weights(self, totals: PairTotals, ctx: Context) -> np.ndarray:
        return losses.frobenius_repulsion_weights(totals, ctx.normalized)

    def force_scale(self, totals: PairTotals, ctx: Context) -> float:
        return losses.frobenius_force_scale(totals, ctx.normalized)

    def value_edge_terms(self, D: np.ndarray, p: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.frobenius_edge_terms(D, p, ctx.a, ctx.b, ctx.normalized)

    def value_pair_terms(self, D: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.frobenius_pair_terms(D, ctx.a, ctx.b, ctx.normalized)

    def value_from_sums(self, edge_sums: np.ndarray, pair_sums: np.ndarray, ctx: Context) -> float:
        return losses.frobenius_value_from_sums(edge_sums, pair_sums, ctx.normalized)


def _channel_function(loss: Loss, ctx: Context):
    return lambda D: loss.repulsion_channels(D, ctx)


def _weight_function(loss: Loss, ctx: Context):
    return lambda D: loss.kernel(D, ctx)


class ExactRepulsion(Repulsion):
    """Every pair, O(n^2) time (blocks of rows keep memory at O(block * n))."""

    name = "exact"
    max_samples = MAX_SAMPLES

    def estimate(self, Y, loss, ctx, epoch, n_edges=None) -> RepulsionSums:
        self.check_n_samples(Y.shape[0])
        return repulsion.exact_repulsion(Y, _channel_function(loss, ctx), _weight_function(loss, ctx))


class BarnesHutRepulsion(Repulsion):
    """Barnes-Hut: a quadtree (2-D) or octree (3-D) rebuilt at every call."""

    name = "barnes_hut"
    params = (
        Param("theta", 0.5, (Interval(float, 0, None, "left"),),
              "Opening angle: a cell counts as one point when width / distance < theta; 0 is exact."),
    )

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        _check_dimensions(settings.get("n_components", 2))

    def estimate(self, Y, loss, ctx, epoch, n_edges=None) -> RepulsionSums:
        _check_dimensions(Y.shape[1])
        return barnes_hut.barnes_hut_repulsion(Y, _channel_function(loss, ctx), _weight_function(loss, ctx),
                                               self.theta)


def _check_dimensions(n_components: int) -> None:
    if n_components > barnes_hut.MAX_DIMENSIONS:
        raise GidrValueError(format_error(
            "The 'n_components' setting for repulsion 'barnes_hut'",
            f"at most {barnes_hut.MAX_DIMENSIONS} (it uses a quadtree or an octree)",
            n_components,
            "Use repulsion 'exact' or 'sampled' for higher dimensions.",
        ))


class SampledRepulsion(Repulsion):
    """GDR's negative sampling: ``n_negative`` uniform points per edge of each point,
    drawn with the counter-based hash of (seed, epoch, point, slot)."""

    name = "sampled"
    per_edge_sampler = True
    params = (
        Param("n_negative", 1, (Interval(int, 1, None),),
              "Negative samples drawn per attractive edge of each point."),
    )

    def draws_per_edge(self) -> int:
        return int(self.n_negative)

    def estimate(self, Y, loss, ctx, epoch, n_edges=None) -> RepulsionSums:
        m = repulsion.samples_per_point(Y.shape[0], self.n_negative, n_edges)
        return repulsion.sampled_repulsion(Y, _channel_function(loss, ctx), _weight_function(loss, ctx),
                                           seed=ctx.seed, epoch=epoch, m=m, normalized=ctx.normalized)


STAGES = [KL, Frobenius, ExactRepulsion, BarnesHutRepulsion, SampledRepulsion]
