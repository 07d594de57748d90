"""Reference stages of the graph half of the pipeline: neighbors, similarity, symmetrize, init.

The classes bind validated parameters; the math is in :mod:`gidr_reference.neighbors`,
:mod:`~gidr_reference.similarity`, :mod:`~gidr_reference.symmetrize` and
:mod:`~gidr_reference.init`.
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import scipy.sparse as sp

from gidr.stages import Init, Neighbors, Similarity, Symmetrize
from gidr.types import Context, KNNGraph
from gidr.validation import ArrayLike, Boolean, Constraint, GidrValueError, Interval, Options, Param, format_error
from gidr_reference import MAX_SAMPLES
from gidr_reference import distances as distances_math
from gidr_reference import init as init_math
from gidr_reference import neighbors as neighbors_math
from gidr_reference import similarity as similarity_math
from gidr_reference import symmetrize as symmetrize_math

__all__ = [
    "metric_params", "kept_row_weights", "ExactNeighbors", "PrecomputedNeighbors", "UmapSimilarity", "TsneSimilarity",
    "GaussianSimilarity", "UniformSimilarity", "MultiscaleSimilarity", "Perplexities", "MaxSymmetrize", "FuzzyUnionSymmetrize",
    "MeanSymmetrize", "NoSymmetrize", "SpectralInit", "PcaInit", "RandomInit", "ArrayInit", "STAGES",
]


# ---------------------------------------------------------------------- neighbors
def metric_params(metrics: tuple, functions: bool = True, note: str = "") -> tuple[Param, Param]:
    """The ``metric`` and ``metric_kwds`` parameters of a neighbours stage that knows ``metrics``
    (and function metrics, with ``functions``)."""
    return (
        Param("metric", "euclidean", (distances_math.Metric(metrics, functions, note),),
              "Distance in the input space: " + ", ".join(metrics) +
              (", or a numba-jitted function metric(x, y) -> float." if functions else ".")),
        Param("metric_kwds", None, (distances_math.MetricKwds(),),
              "The metric's parameters: {'p': ...} (minkowski, default 2), {'V': ...} (seuclidean), "
              "{'VI': ...} (mahalanobis); None: none.", allow_none=True),
    )


class ExactNeighbors(Neighbors):
    """Brute-force kNN, O(n^2) time, O(block * n) memory; ties broken by index."""

    name = "exact"
    backend = "reference"
    priority = 0
    max_samples = MAX_SAMPLES
    params = metric_params(neighbors_math.EXACT_METRICS)

    answers_queries = True

    def check(self) -> None:
        distances_math.check_metric_kwds(self.metric, self.metric_kwds, self.describe())

    def compute(self, X: np.ndarray, n_neighbors: int, ctx: Context) -> KNNGraph:
        return neighbors_math.exact_knn(X, n_neighbors, self.metric, self.metric_kwds)

    def build_index(self, X: np.ndarray, graph: KNNGraph, ctx: Context) -> neighbors_math.ExactIndex:
        """Brute-force queries against ``X`` (:func:`gidr_reference.neighbors.exact_query`)."""
        return neighbors_math.ExactIndex(X, self.metric, metric_kwds=self.metric_kwds)


class PrecomputedNeighbors(Neighbors):
    """Neighbours given by the user: a KNNGraph, an (indices, distances) tuple, or a square
    distance matrix. The graph is validated, each row sorted by (distance, index), and its
    first k columns kept."""

    name = "precomputed"
    backend = "reference"
    priority = 0
    accepts = frozenset({"precomputed"})
    params = ()

    def compute(self, X: Any, n_neighbors: int, ctx: Context) -> KNNGraph:
        if isinstance(X, (KNNGraph, tuple)):
            return neighbors_math.check_knn_graph(X, n_neighbors)
        return neighbors_math.knn_from_distance_matrix(X, n_neighbors)


# ---------------------------------------------------------------------- similarity
def _disconnection_param() -> Param:
    return Param("disconnection_distance", None, (Interval(float, 0, None, "neither"),),
                 "umap-learn's: edges at or beyond this distance are removed before the weights are computed "
                 "(a point left with none is isolated); None: keep every edge.", allow_none=True)


def kept_row_weights(distances: np.ndarray, threshold: float | None,
                     weigh: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``weigh`` applied to each row's edges below ``threshold`` only; removed edges weigh 0.

    Rows are sorted by distance, so a row's kept edges are its first ``c`` columns: the rows
    are grouped by ``c`` and each group weighed as a graph with ``c`` neighbours (a row with
    ``c = 0`` keeps no edge). Without a threshold it is ``weigh(distances)``.

    Parameters
    ----------
    distances : ndarray of shape (n_points, k)
        Sorted neighbour distances of each point.
    threshold : float or None
    weigh : callable
        ``(n_rows, c) distances -> (n_rows, c) weights``.

    Returns
    -------
    ndarray of shape (n_points, k)
    """
    distances = np.asarray(distances, dtype=np.float64)
    if threshold is None:
        return weigh(distances)
    kept = np.count_nonzero(distances < threshold, axis=1)
    if np.all(kept == distances.shape[1]):
        return weigh(distances)
    weights = np.zeros_like(distances)
    for c in np.unique(kept[kept > 0]):
        rows = np.flatnonzero(kept == c)
        weights[rows, :c] = weigh(distances[rows, :c])
    return weights


class _Disconnecting(Similarity):
    """A similarity with ``disconnection_distance``: :meth:`row_weights` weighs each row's kept
    edges (:func:`kept_row_weights`) with :meth:`weigh`, which subclasses (and backends) supply;
    :meth:`compute` warns when points are left with no edge, as umap-learn does."""

    def row_weights(self, distances: np.ndarray, ctx: Context) -> np.ndarray:
        return kept_row_weights(distances, self.disconnection_distance, lambda d: self.weigh(d, ctx))

    def weigh(self, distances: np.ndarray, ctx: Context) -> np.ndarray:  # pragma: no cover - abstract
        """p_{j|i} of rows that keep all their ``distances.shape[1]`` edges."""
        raise NotImplementedError

    def compute(self, graph: KNNGraph, ctx: Context) -> sp.csr_matrix:
        if self.disconnection_distance is not None:
            removed = np.asarray(graph.distances) >= self.disconnection_distance
            isolated = int(np.count_nonzero(removed.all(axis=1)))
            if isolated:
                warnings.warn(f"disconnection_distance={self.disconnection_distance!r} removed {int(removed.sum())} "
                              f"kNN edge(s) and left {isolated} point(s) with none of their own: they are placed "
                              f"by the edges of the points that list them, or, with none, as isolated points.",
                              UserWarning, stacklevel=3)
        return super().compute(graph, ctx)


class UmapSimilarity(_Disconnecting):
    """UMAP's fuzzy memberships p_{j|i} = exp(-max(0, d_ij - rho_i) / sigma_i) (SPEC §3)."""

    name = "umap"
    backend = "reference"
    priority = 0
    params = (
        Param("n_neighbors", 15, (Interval(int, 1, None),),
              "k, the number of neighbours of each point (self excluded)."),
        Param("pseudo_distance", True, (Boolean(),),
              "Subtract rho_i (the distance to the nearest neighbour) before the kernel."),
        _disconnection_param(),
        Param("self_in_target", False, (Boolean(),),
              "Count the point itself in the bandwidths' target, log2(k + 1) instead of log2(k): "
              "umap-learn's, whose n_neighbors lists the point (the umap preset's 14 neighbours are "
              "umap-learn's n_neighbors=15)."),
    )

    def n_neighbors_required(self, n_samples: int) -> int:
        return self.n_neighbors  # the pipeline clamps it to n_samples - 1, with a warning

    def weigh(self, distances: np.ndarray, ctx: Context) -> np.ndarray:
        sigma, rho = similarity_math.umap_sigmas(distances, self.pseudo_distance, self_in_target=self.self_in_target)
        return similarity_math.umap_weights(distances, sigma, rho, self.pseudo_distance)


def float32_precision(distances: np.ndarray) -> np.ndarray:
    """``distances`` rounded to float32's 24-bit significand, in float64.

    For values in float32's normal range this is ``float64(float32(d))`` exactly (scikit-learn's
    rounding). The rounding is done on :func:`unit_scaled` distances, largest in [0.5, 1), so
    that distances beyond float32's range (above 3.4e38 or below 1.2e-38) are rounded too, never
    turned into inf or 0.
    """
    scaled, exponent = unit_scaled(distances)
    if exponent is None:
        return scaled.copy()
    return np.ldexp(_rounded_to_float32(scaled), exponent)


def unit_scaled(distances: np.ndarray) -> tuple[np.ndarray, int | None]:
    """``distances`` times the power of two that puts the largest in [0.5, 1), and the
    exponent ``e`` it was divided by (``2**e``); None (and ``distances`` as they are) when the
    largest is 0 or not finite.

    The perplexity search is exact under such a scaling: it starts from ``1 / mean_j d_ij^2``
    and only doubles, halves and averages, so every ``beta * d^2`` and every weight is the same
    bits. Scaled, the squares never overflow (distances of 1e200) nor underflow.
    """
    distances = np.asarray(distances, dtype=np.float64)
    largest = float(distances.max()) if distances.size else 0.0
    if not (largest > 0 and np.isfinite(largest)):
        return distances, None
    exponent = int(np.frexp(largest)[1])
    return np.ldexp(distances, -exponent), exponent


def _rounded_to_float32(distances: np.ndarray) -> np.ndarray:
    return distances.astype(np.float32).astype(np.float64)


class TsneSimilarity(_Disconnecting):
    """t-SNE's conditional probabilities with entropy log(perplexity) (SPEC §3)."""

    name = "tsne"
    backend = "reference"
    priority = 0
    params = (
        Param("perplexity", 30.0, (Interval(float, 0, None, "neither"),),
              "Effective number of neighbours; k = min(n - 1, floor(3 * perplexity)) are used."),
        Param("pseudo_distance", False, (Boolean(),),
              "Use max(0, d_ij - rho_i) in place of d_ij (the paper's ablation)."),
        _disconnection_param(),
        Param("distance_dtype", "float64", (Options(("float64", "float32")),),
              "Precision of the distances the bandwidths are computed from: 'float32' rounds them "
              "first, as scikit-learn's TSNE does, so that inputs equal to float32 precision give the "
              "same P."),
    )

    def n_neighbors_required(self, n_samples: int) -> int:
        return max(1, min(n_samples - 1, math.floor(3 * self.perplexity)))

    def row_weights(self, distances: np.ndarray, ctx: Context) -> np.ndarray:
        perplexity = similarity_math.effective_perplexity(self.perplexity, distances.shape[1])  # warns once
        return kept_row_weights(distances, self.disconnection_distance,  # the threshold is in the caller's units
                                lambda d: self.weigh_perplexity(self._search_distances(d), min(perplexity, d.shape[1])))

    def _search_distances(self, distances: np.ndarray) -> np.ndarray:
        """The distances the perplexity search reads: scaled by a power of two (:func:`unit_scaled`:
        the same weights, bit for bit, and squares that stay finite), then rounded to float32 with
        ``distance_dtype="float32"`` (:func:`float32_precision`'s rounding, in the scaled units)."""
        scaled, exponent = unit_scaled(distances)
        return _rounded_to_float32(scaled) if self.distance_dtype == "float32" and exponent is not None else scaled

    def weigh_perplexity(self, distances: np.ndarray, perplexity: float) -> np.ndarray:
        """p_{j|i} of rows that keep all their edges, at a perplexity of at most their k."""
        beta = similarity_math.tsne_betas(distances, perplexity, self.pseudo_distance)
        return similarity_math.tsne_weights(distances, beta, self.pseudo_distance)


class _FixedK(Similarity):
    """A similarity on a set number of neighbours, its ``n_neighbors`` parameter (the pipeline
    clamps it to n_samples - 1, with a warning)."""

    K_PARAM = Param("n_neighbors", 30, (Interval(int, 1, None),), "k, the neighbours weighed (self excluded).")

    def n_neighbors_required(self, n_samples: int) -> int:
        return self.n_neighbors


class GaussianSimilarity(_FixedK):
    """One Gaussian bandwidth for all points, p_{j|i} proportional to exp(-d_ij^2 / (2 sigma^2))
    on the k nearest neighbours (openTSNE's ``FixedSigmaNN``)."""

    name = "gaussian"
    backend = "reference"
    priority = 0
    params = (
        Param("sigma", 1.0, (Interval(float, 0, None, "neither"),),
              "The bandwidth, in the input's distance units, shared by every point."),
        _FixedK.K_PARAM,
    )

    def row_weights(self, distances: np.ndarray, ctx: Context) -> np.ndarray:
        return similarity_math.gaussian_weights(distances, self.sigma)


class UniformSimilarity(_FixedK):
    """p_{j|i} = 1 / k on the k nearest neighbours (openTSNE's ``Uniform``)."""

    name = "uniform"
    backend = "reference"
    priority = 0
    params = (_FixedK.K_PARAM,)

    def row_weights(self, distances: np.ndarray, ctx: Context) -> np.ndarray:
        return similarity_math.uniform_weights(distances)


@dataclass(frozen=True)
class Perplexities(Constraint):
    """A positive perplexity, or a non-empty list of them (kept as a sorted tuple of distinct floats)."""

    description = "a positive float or a non-empty list of positive floats"

    @staticmethod
    def _values(value: Any) -> list | None:
        values = [value] if isinstance(value, numbers.Real) else value
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            return None
        values = list(values)
        valid = Interval(float, 0, None, "neither")
        return values if values and all(valid.is_satisfied_by(v) for v in values) else None

    def is_satisfied_by(self, value: Any) -> bool:
        return self._values(value) is not None

    def convert(self, value: Any) -> Any:
        return tuple(sorted({float(v) for v in self._values(value)}))


class MultiscaleSimilarity(Similarity):
    """t-SNE's conditional probabilities at several perplexities, combined (openTSNE's
    ``Multiscale``, and with ``mixture=True`` its ``MultiscaleMixture``); see
    :func:`gidr_reference.similarity.multiscale_weights`. Each scale's precision is
    calibrated on its own, as :class:`TsneSimilarity` calibrates its one."""

    name = "multiscale"
    backend = "reference"
    priority = 0
    params = (
        Param("perplexities", (15.0, 50.0), (Perplexities(),),
              "The perplexities combined; k = min(n - 1, floor(3 * max(perplexities))) neighbours are used."),
        Param("mixture", False, (Boolean(),),
              "False: the mean of the single-scale probabilities (Multiscale); True: one kernel, a "
              "mixture of the scales' Gaussians (MultiscaleMixture)."),
    )

    def n_neighbors_required(self, n_samples: int) -> int:
        return max(1, min(n_samples - 1, math.floor(3 * max(self.perplexities))))

    def row_weights(self, distances: np.ndarray, ctx: Context) -> np.ndarray:
        k = np.shape(distances)[1]
        betas = [self.betas(distances, similarity_math.effective_perplexity(perplexity, k))
                 for perplexity in self.perplexities]
        return similarity_math.multiscale_weights(distances, betas, self.mixture)

    def betas(self, distances: np.ndarray, perplexity: float) -> np.ndarray:
        """One scale's precisions (a backend may compute them faster)."""
        return similarity_math.tsne_betas(distances, perplexity)


# ---------------------------------------------------------------------- symmetrize
class FuzzyUnionSymmetrize(Symmetrize):
    """p_ij = p_{j|i} + p_{i|j} - p_{j|i} p_{i|j} (UMAP)."""

    name = "fuzzy_union"
    backend = "reference"
    priority = 0
    params = (
        Param("set_op_mix_ratio", 1.0, (Interval(float, 0, 1, "both"),),
              "umap-learn's mix of the fuzzy union (1) with the fuzzy intersection (0)."),
    )

    def compute(self, P_directed: sp.csr_matrix, ctx: Context) -> sp.csr_matrix:
        return symmetrize_math.fuzzy_union(P_directed, self.set_op_mix_ratio)


class MeanSymmetrize(Symmetrize):
    """p_ij = (p_{j|i} + p_{i|j}) / 2 (t-SNE)."""

    name = "mean"
    backend = "reference"
    priority = 0

    def compute(self, P_directed: sp.csr_matrix, ctx: Context) -> sp.csr_matrix:
        return symmetrize_math.mean(P_directed)


class MaxSymmetrize(Symmetrize):
    """p_ij = max(p_{j|i}, p_{i|j}) (openTSNE's ``Uniform(symmetrize="max")``)."""

    name = "max"
    backend = "reference"
    priority = 0

    def compute(self, P_directed: sp.csr_matrix, ctx: Context) -> sp.csr_matrix:
        return symmetrize_math.maximum(P_directed)


class NoSymmetrize(Symmetrize):
    """p_ij = p_{j|i}: the directed matrix, cleaned but NOT symmetric (paper's ablation)."""

    name = "none"
    symmetric = False
    backend = "reference"
    priority = 0

    def compute(self, P_directed: sp.csr_matrix, ctx: Context) -> sp.csr_matrix:
        return symmetrize_math.directed(P_directed)


# ---------------------------------------------------------------------- init
def _scale_param() -> Param:
    return Param("scale", "auto", (Options(("auto",)), Interval(float, 0, None, "neither")),
                 "'auto': std(Y[:, 0]) = 1e-4 when normalized, max|Y| = 10 when not (smaller above 100,000 points: init.unnormalized_extent); a float sets "
                 "std(Y[:, 0]).")


def _finish(Y: np.ndarray, scale: Any, ctx: Context, rng: np.random.Generator, jitter: bool) -> np.ndarray:
    if jitter and not ctx.normalized:
        Y = init_math.add_jitter(Y, rng)
    return init_math.rescale(Y, scale, ctx.normalized)


class SpectralInit(Init):
    """Eigenvectors 1..d of the normalized Laplacian of P, per connected component."""

    name = "spectral"
    backend = "reference"
    priority = 0
    params = (_scale_param(),)

    def compute(self, X: np.ndarray | None, P: sp.csr_matrix, ctx: Context) -> np.ndarray:
        rng = ctx.rng("init")
        Y = init_math.spectral_layout(P, ctx.n_components, rng)
        return _finish(Y, self.scale, ctx, rng, jitter=True)


class PcaInit(Init):
    """Scores on the top principal components of X (needs the data matrix)."""

    name = "pca"
    backend = "reference"
    priority = 0
    needs_data = True
    params = (_scale_param(),)

    def compute(self, X: np.ndarray | None, P: sp.csr_matrix, ctx: Context) -> np.ndarray:
        if X is None:
            raise GidrValueError(format_error(
                f"The data for {self.describe()}", "the data matrix X", None,
                "With precomputed neighbours there is no X: use init 'spectral' or 'random'."))
        rng = ctx.rng("init")
        Y = init_math.pca_layout(X, ctx.n_components, rng)
        return _finish(Y, self.scale, ctx, rng, jitter=True)


class RandomInit(Init):
    """Standard normal positions from ctx.rng('init'), rescaled."""

    name = "random"
    backend = "reference"
    priority = 0
    params = (_scale_param(),)

    def compute(self, X: np.ndarray | None, P: sp.csr_matrix, ctx: Context) -> np.ndarray:
        Y = init_math.random_layout(ctx.n_samples, ctx.n_components, ctx.rng("init"))
        return init_math.rescale(Y, self.scale, ctx.normalized)


class ArrayInit(Init):
    """The user's own starting positions, used as given (shape and finiteness checked)."""

    name = "array"
    backend = "reference"
    priority = 0
    params = (
        Param("array", None, (ArrayLike(),), "Starting positions, shape (n_samples, n_components).",
              allow_none=True),
    )

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        # n_samples is known only at run time; the shape's second axis and the values now
        init_math.check_init_array(self.array, None, settings.get("n_components", 2))

    def compute(self, X: np.ndarray | None, P: sp.csr_matrix, ctx: Context) -> np.ndarray:
        return init_math.check_init_array(self.array, ctx.n_samples, ctx.n_components)


STAGES = [
    ExactNeighbors, PrecomputedNeighbors,
    UmapSimilarity, TsneSimilarity, GaussianSimilarity, UniformSimilarity, MultiscaleSimilarity,
    FuzzyUnionSymmetrize, MeanSymmetrize, MaxSymmetrize, NoSymmetrize,
    SpectralInit, PcaInit, RandomInit, ArrayInit,
]
