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
from gidr_reference import fft

__all__ = ["KL", "Frobenius", "ExactRepulsion", "BarnesHutRepulsion", "SampledRepulsion", "FFTRepulsion",
           "STAGES"]


class KL(Loss):
    """Kullback-Leibler divergence: t-SNE's (normalized) or UMAP's cross-entropy (unnormalized).

    Unnormalized forces replace the unknown ``p`` of non-neighbours by the mean of P and
    soften the repulsion's ``1/D`` by ``epsilon`` (see :func:`losses.kl_repulsion_channels`).
    Normalized, ``dof`` sets the degrees of freedom of the Student-t kernel
    ``w = (1 + a D^b / dof)^(-dof)`` (openTSNE's ``dof``: below 1, heavier tails and
    finer clusters; 1 is t-SNE's kernel). Unnormalized, ``repulsion_strength`` weights the
    repulsive part of the cross-entropy (umap-learn's ``repulsion_strength``, its gamma).
    """

    name = "kl"
    n_channels = 1
    #: UMAP's cross-entropy (``dof`` other than 1 is refused unnormalized, see check_settings).
    edge_sampling_sgd = True
    #: gdr's normalized "auto" rate is doubled for KL: its annealed steps average out the
    #: sampled repulsion's noise (Fashion-MNIST 70,000, 1,000 epochs: 100-NN accuracy 0.816
    #: at a rate of 3,000 against 0.802 at the undoubled 1,458).
    auto_rate_factor = 2.0
    #: gdr's unnormalized "auto" rate is 3 for KL: its clipped steps, gathered per epoch
    #: rather than applied edge by edge as umap-learn's, settle the clusters sooner at a
    #: larger rate (Fashion-MNIST 70,000, seeds 0-2: 300 epochs at rate 3 give 100-NN
    #: accuracy 0.786-0.787 and V-measure 0.616-0.617, 400 epochs at rate 1 0.785 and 0.577;
    #: docs/results/tradeoff-70k.md).
    auto_rate_unnormalized = 3.0
    params = (
        Param("epsilon", 1e-3, (Interval(float, 0, None, "left"),),
              "Softening of the unnormalized repulsion 2b / ((epsilon + D)(1 + a D^b))."),
        Param("dof", 1.0, (Interval(float, 0, None, "neither"),),
              "Degrees of freedom of the normalized kernel (1 + a D^b / dof)^(-dof); 1 is t-SNE's."),
        Param("repulsion_strength", 1.0, (Interval(float, 0, None, "left"),),
              "Weight of the unnormalized loss's repulsive part, gamma (1 - p) log((1 - p) / (1 - w)) "
              "(umap-learn's repulsion_strength)."),
    )

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        if self.dof != 1.0 and not settings["normalized"]:
            raise GidrValueError(format_error(
                f"The 'dof' parameter of {self.describe()} with normalized=False", "1.0", self.dof,
                "The heavy-tailed kernel is t-SNE's (normalized); use normalized=True (e.g. preset "
                "'tsne' or 'gdr-tsne'), or dof=1."))
        if self.repulsion_strength != 1.0 and settings["normalized"]:
            raise GidrValueError(format_error(
                f"The 'repulsion_strength' parameter of {self.describe()} with normalized=True", "1.0",
                self.repulsion_strength,
                "Normalized, Z fixes the balance of attraction and repulsion; use exaggeration (or "
                "early_exaggeration) to change it, or normalized=False (e.g. preset 'umap' or 'gdr-umap')."))

    def value(self, P: sp.csr_matrix, Y: np.ndarray, ctx: Context) -> float:
        return losses.kl_value(P, Y, ctx.a, ctx.b, ctx.normalized, self.dof, self.repulsion_strength)

    def gradient(self, P: sp.csr_matrix, Y: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.kl_gradient(P, Y, ctx.a, ctx.b, ctx.normalized, self.dof, self.repulsion_strength)

    def attraction(self, D: np.ndarray, p: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.kl_attraction(D, p, ctx.a, ctx.b, ctx.normalized, self.dof)

    def repulsion_channels(self, D: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.kl_repulsion_channels(D, ctx.a, ctx.b, ctx.normalized, self.epsilon, self.dof,
                                            self.repulsion_strength)

    def repulsion_weights(self, totals: PairTotals, ctx: Context) -> np.ndarray:
        return losses.kl_repulsion_weights(totals, ctx.normalized)

    def kernel(self, D: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.heavy_tailed_kernel(D, ctx.a, ctx.b, self.dof if ctx.normalized else 1.0)

    def value_edge_terms(self, D: np.ndarray, p: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.kl_edge_terms(D, p, ctx.a, ctx.b, ctx.normalized, self.dof, self.repulsion_strength)

    def value_pair_terms(self, D: np.ndarray, ctx: Context) -> np.ndarray:
        return losses.kl_pair_terms(D, ctx.a, ctx.b, ctx.normalized, self.dof, self.repulsion_strength)

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
        _check_tree_dimensions(settings.get("n_components", 2))

    def estimate(self, Y, loss, ctx, epoch, n_edges=None) -> RepulsionSums:
        _check_tree_dimensions(Y.shape[1])
        return barnes_hut.barnes_hut_repulsion(Y, _channel_function(loss, ctx), _weight_function(loss, ctx),
                                               self.theta)


def _check_dimensions(stage: str, n_components: int, maximum: int, why: str, fix: str) -> None:
    """Refuse more than ``maximum`` embedding dimensions for repulsion ``stage``."""
    if n_components > maximum:
        raise GidrValueError(format_error(f"The 'n_components' setting for repulsion '{stage}'",
                                          f"at most {maximum} ({why})", n_components, fix))


def _check_tree_dimensions(n_components: int) -> None:
    _check_dimensions("barnes_hut", n_components, barnes_hut.MAX_DIMENSIONS, "it uses a quadtree or an octree",
                      "Use repulsion 'exact' or 'sampled' for higher dimensions.")


class SampledRepulsion(Repulsion):
    """GDR's negative sampling: ``n_negative`` uniform points per edge of each point,
    drawn with the counter-based hash of (seed, epoch, point, slot)."""

    name = "sampled"
    per_edge_sampler = True
    params = (
        Param("n_negative", 1, (Interval(int, 1, None),),
              "Negative samples drawn per attractive edge of each point."),
        Param("pool_size", 0, (Interval(int, 0, None),),
              "Draw each epoch's negatives through a pool of this many points drawn uniformly for the epoch "
              "(each draw stays uniform over the other points; a kernel reads the pool's positions from a "
              "copy that fits a core's cache). Used when the data have more points; 0: never."),
    )

    def draws_per_edge(self) -> int:
        return int(self.n_negative)

    def negative_pool_size(self, n_samples: int) -> int:
        pool = int(self.pool_size)
        return pool if 0 < pool < n_samples else 0

    def estimate(self, Y, loss, ctx, epoch, n_edges=None) -> RepulsionSums:
        m = repulsion.samples_per_point(Y.shape[0], self.n_negative, n_edges)
        return repulsion.sampled_repulsion(Y, _channel_function(loss, ctx), _weight_function(loss, ctx),
                                           seed=ctx.seed, epoch=epoch, m=m, normalized=ctx.normalized,
                                           pool_size=self.negative_pool_size(Y.shape[0]))


class FFTRepulsion(Repulsion):
    """FFT-interpolated kernel sums (FIt-SNE's method, :mod:`gidr_reference.fft`), 1-D and 2-D.

    Every scalar kernel of the loss (its channels ``phi_c``, ``w`` and ``w^2``) is interpolated
    on a grid of ``n_interpolation_points`` Lagrange nodes per box and axis, and its sums over
    all pairs are evaluated by FFT in O(n + M log M) for ``M`` grid nodes. The estimate stands
    for the sum over all other points (normalized and unnormalized alike); it is accurate for
    kernels smooth on the scale of a box (t-SNE's and GDR-t-SNE's Student-t: relative force
    error about 2 % at the defaults on a spread-out embedding, see ``tests/reference/test_fft.py``),
    coarse for UMAP's softened ``1/D`` and for ``b < 1``.
    """

    name = "fft"
    #: No parameter makes it exact (its error is the kernels' interpolation error): the
    #: conformance check against exact sums at rtol 1e-9 does not apply.
    interpolates_kernels = True
    params = (
        Param("n_interpolation_points", 3, (Interval(int, 1, None),),
              "Lagrange interpolation nodes per box and axis (FIt-SNE's default 3)."),
        Param("min_boxes", 50, (Interval(int, 1, None),),
              "Fewest boxes per axis of the interpolation grid (FIt-SNE's min_num_intervals)."),
        Param("max_box_width", 1.0, (Interval(float, 0, None, "neither"),),
              "Largest box side in embedding units: a wider embedding gets more boxes "
              "(FIt-SNE's ints_in_interval)."),
    )

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        _check_fft_dimensions(settings.get("n_components", 2))

    def check_resolution(self, loss: Loss, ctx: Context) -> None:
        """Refuse a loss whose kernels the grid cannot resolve (:func:`gidr_reference.fft.resolution_error`
        above :data:`~gidr_reference.fft.MAX_RESOLUTION_ERROR`); checked once per loss and kernel
        parameters."""
        p, h = self.values["n_interpolation_points"], self.values["max_box_width"]
        key = (type(loss), repr(sorted(loss.values.items())), ctx.a, ctx.b, ctx.normalized, p, h)
        error = _RESOLUTION_ERRORS.get(key)
        if error is None:
            phi = _channel_function(loss, ctx)
            n_channels = np.asarray(phi(np.zeros(1))).shape[-1]
            kernels = [lambda D, c=c: np.asarray(phi(D))[..., c] for c in range(n_channels)]
            error = max(fft.resolution_error(k, h, p) for k in kernels + [_weight_function(loss, ctx)])
            if len(_RESOLUTION_ERRORS) > 256:
                _RESOLUTION_ERRORS.clear()
            _RESOLUTION_ERRORS[key] = error
        if error > fft.MAX_RESOLUTION_ERROR:
            raise GidrValueError(
                f"The repulsion 'fft' cannot resolve the kernels of {loss.describe()} "
                f"(normalized={ctx.normalized}, a={ctx.a:.4g}, b={ctx.b:.4g}): interpolated on boxes of side "
                f"max_box_width={h:g} they are off by {error:.0%} of their peak (at most "
                f"{fft.MAX_RESOLUTION_ERROR:.0%} is accepted). Kernels that vary faster than a box near distance "
                "0 are not resolved: UMAP's unnormalized one (a peak about 0.03 wide) and any with b < 1. Use "
                "repulsion='sampled' (UMAP's), 'barnes_hut' or 'exact', or normalized=True with a=b=1 "
                "(scalars='one', as t-SNE).")

    def estimate(self, Y, loss, ctx, epoch, n_edges=None) -> RepulsionSums:
        _check_fft_dimensions(Y.shape[1])
        self.check_resolution(loss, ctx)
        return fft.fft_repulsion(Y, _channel_function(loss, ctx), _weight_function(loss, ctx), **self.values)


#: resolution_error of each (loss, kernel parameters, grid) checked so far: the check runs once.
_RESOLUTION_ERRORS: dict[tuple, float] = {}


def _check_fft_dimensions(n_components: int) -> None:
    _check_dimensions("fft", n_components, fft.MAX_DIMENSIONS, "its interpolation grid is 1-D or 2-D",
                      "Use repulsion 'barnes_hut' (up to 3 dimensions), 'exact' or 'sampled'.")


STAGES = [KL, Frobenius, ExactRepulsion, BarnesHutRepulsion, SampledRepulsion, FFTRepulsion]
