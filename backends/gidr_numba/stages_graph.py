"""numba stages of the graph half of the pipeline: neighbors, similarity, symmetrize, init.

The classes that share a name with a reference stage subclass it, so they declare the
same parameters with the same defaults (and the same ``n_neighbors_required``); they
only swap the math for the kernels of :mod:`gidr_numba.neighbors`,
:mod:`~gidr_numba.similarity`, :mod:`~gidr_numba.symmetrize` and
:mod:`~gidr_numba.spectral`. Two neighbors stages exist only here:

``nndescent``
    our own NN-descent (:mod:`gidr_numba.nndescent`): approximate, deterministic for a
    seed whatever the thread count, compiled once and cached on disk.
``pynndescent``
    the pynndescent package, for the many metrics it supports. Its JIT is not cached:
    every fresh process pays its compilation (tens of seconds) on first use.

Stages not listed here (``precomputed``, symmetrize ``none``, the ``pca``, ``random``
and ``array`` inits) are served by the reference backend.

Kernel modules are imported on first use, not when the plugin registers the classes.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from gidr.stages import Neighbors
from gidr.stages.neighbors import NeighborsIndex
from gidr.types import Context, KNNGraph
from gidr.validation import Described, GidrValueError, Interval, Options, Param, format_error
from gidr_numba import serialized
from gidr_reference import init as reference_init
from gidr_reference.distances import (
    EUCLIDEAN_MAPPED,
    EXTRA_METRICS,
    check_metric_data,
    check_metric_kwds,
    euclidean_rows,
)
from gidr_reference.neighbors import ExactIndex, prepare_metric
from gidr_reference import stages_graph as reference

__all__ = [
    "ExactNeighbors", "NNDescentNeighbors", "PynndescentNeighbors", "UmapSimilarity", "TsneSimilarity", "MultiscaleSimilarity",
    "FuzzyUnionSymmetrize", "MeanSymmetrize", "SpectralInit", "STAGES", "check_jitted", "MappedIndex",
]

logger = logging.getLogger("gidr")


def _seed(ctx: Context) -> int:
    """The kNN search's seed, drawn from ``ctx.rng("neighbors")``."""
    return int(ctx.rng("neighbors").integers(0, 2**62))


# ---------------------------------------------------------------------- neighbors
class ExactNeighbors(reference.ExactNeighbors):
    """Brute-force kNN by blocks of BLAS products, rows selected in parallel; O(block * n)
    memory and no sample limit. The reference's graph (ties broken by index)."""

    backend = "numba"
    priority = 10
    max_samples = None

    def check(self) -> None:
        super().check()
        check_jitted(self.metric, self.describe())

    def compute(self, X: np.ndarray, n_neighbors: int, ctx: Context) -> KNNGraph:
        from gidr_numba.neighbors import exact_knn

        return exact_knn(X, n_neighbors, self.metric, self.metric_kwds)

    def build_index(self, X: np.ndarray, graph: KNNGraph, ctx: Context):
        """Brute-force queries against ``X`` by BLAS blocks (:func:`gidr_numba.query.exact_query`):
        the reference's answers."""
        from gidr_numba.query import exact_query

        return ExactIndex(X, self.metric, serialized(exact_query), metric_kwds=self.metric_kwds)


def check_jitted(metric: Any, owner: str) -> None:
    """A function metric must be numba-jitted to run in numba's kernels (and pynndescent's)."""
    if isinstance(metric, str):
        return
    from numba.core.dispatcher import Dispatcher

    if not isinstance(metric, Dispatcher):
        raise GidrValueError(format_error(
            f"The 'metric' parameter of {owner} (backend 'numba')", "a metric name or a numba-jitted function",
            metric, "Decorate it with @numba.njit, as umap-learn requires, or use backend='reference'."))


#: Metrics of neighbors 'nndescent': its own two, and the Euclidean distances of mapped rows.
NNDESCENT_METRICS = ("euclidean", "cosine") + EUCLIDEAN_MAPPED


class _NNDescentMetric(Options):
    """The metrics of neighbors 'nndescent', with a pointer to 'pynndescent' for the others."""

    @property
    def description(self) -> str:  # type: ignore[override]
        return super().description + " (neighbors 'pynndescent' supports many other metrics)"


class NNDescentNeighbors(Neighbors):
    """Approximate kNN by NN-descent from a random-projection forest, in cached numba.

    Deterministic for a seed whatever the thread count; recall above 0.95 at k = 15 on
    Fashion-MNIST. Distances are recomputed exactly (float64) for the neighbours found.
    ``seuclidean``, ``mahalanobis`` and ``hellinger`` are the Euclidean distances of mapped rows
    (:func:`gidr_reference.distances.euclidean_rows`): the search runs on those, a float64 copy
    of the data.
    """

    name = "nndescent"
    backend = "numba"
    priority = 10
    #: It searches a float32 copy of the data.
    copy_bytes_per_value = 4
    params = (
        Param("metric", "euclidean", (_NNDescentMetric(NNDESCENT_METRICS),),
              "Distance in the input space: " + ", ".join(map(repr, NNDESCENT_METRICS)) + "."),
        reference.metric_params(())[1],
        Param("n_trees", None, (Interval(int, 0, None),),
              "Random-projection trees of the initial graph; None: max(3, min(8, round(log10 n))).",
              allow_none=True),
        Param("n_iters", None, (Interval(int, 1, None),),
              "Most NN-descent iterations (it usually stops earlier); None: max(5, round(log2 n)).",
              allow_none=True),
        Param("max_candidates", None, (Interval(int, 1, None),),
              "Candidates sampled per point and iteration; None: min(60, max(20, k)).", allow_none=True),
    )

    def check(self) -> None:
        check_metric_kwds(self.metric, self.metric_kwds, self.describe())

    def _search_rows(self, X: np.ndarray) -> tuple[np.ndarray, str]:
        """The rows NN-descent searches and its metric: mapped rows, Euclidean, for the mapped metrics."""
        if self.metric not in EUCLIDEAN_MAPPED:
            return X, self.metric
        return euclidean_rows(X, self.metric, prepare_metric(np.asarray(X), self.metric, self.metric_kwds)), \
            "euclidean"

    def compute(self, X: np.ndarray, n_neighbors: int, ctx: Context) -> KNNGraph:
        from gidr_numba.nndescent import nndescent_knn

        rows, metric = self._search_rows(X)
        indices, distances, info = nndescent_knn(
            rows, n_neighbors, _seed(ctx), metric=metric, n_trees=self.n_trees, n_iters=self.n_iters,
            max_candidates=self.max_candidates)
        logger.debug("nndescent: %d iterations, changes %s", info["n_iters"], info["changes"])
        return KNNGraph(indices, distances)

    answers_queries = True

    def build_index(self, X: np.ndarray, graph: KNNGraph, ctx: Context):
        """Queries on the fit's graph (:class:`gidr_numba.query.GraphSearch`): the first tree of
        the fit's forest, rebuilt from the fit's seed, then a best-first search on ``graph`` and
        its reverse edges. Recall about 0.995 at k = 15 on Fashion-MNIST (test images against
        the training images). For a mapped metric the queries are mapped as the training rows."""
        from gidr_numba.nndescent import MIN_SEARCH_NEIGHBORS, default_leaf_size
        from gidr_numba.query import GraphSearch

        rows, metric = self._search_rows(X)
        search_k = min(X.shape[0] - 1, max(graph.n_neighbors, MIN_SEARCH_NEIGHBORS))
        index = GraphSearch(rows, graph, _seed(ctx), metric=metric, leaf_size=default_leaf_size(search_k))
        return index if rows is X else MappedIndex(index, self._search_rows)


class MappedIndex(NeighborsIndex):
    """Queries of an index over mapped training rows: each query mapped the same way first."""

    def __init__(self, index: NeighborsIndex, mapping):
        self.index, self.mapping = index, mapping

    def query(self, X_new: np.ndarray, n_neighbors: int) -> KNNGraph:
        return self.index.query(self.mapping(np.asarray(X_new))[0], n_neighbors)


class _PynndescentMetric(Options):
    """A metric name that pynndescent knows (checked against pynndescent on first use)."""

    @property
    def description(self) -> str:  # type: ignore[override]
        return ("a metric name pynndescent supports, e.g. 'euclidean', 'cosine', 'manhattan', 'correlation', "
                "or a numba-jitted function metric(x, y) -> float")

    def is_satisfied_by(self, value: Any) -> bool:
        if not isinstance(value, str):
            return callable(value) and not isinstance(value, type)  # a jitted function (checked by the stage)
        try:
            from pynndescent.distances import named_distances
        except ImportError:  # the stage explains at compute time
            return True
        return value in named_distances


class PynndescentNeighbors(Neighbors):
    """Approximate kNN by the pynndescent package (any of its metrics).

    Asks pynndescent for k + 1 neighbours and drops the point itself (by index, wherever
    duplicates put it); rows are sorted by (distance, index). Its JIT is not cached on
    disk: each fresh process compiles it again on first use.
    """

    name = "pynndescent"
    backend = "numba"
    priority = 10
    #: pynndescent searches scipy sparse matrices directly (no densified copy).
    accepts = frozenset({"dense", "sparse"})
    params = (
        Param("metric", "euclidean", (_PynndescentMetric(()),),
              "Any metric name pynndescent supports, or a numba-jitted function metric(x, y) -> float."),
        reference.metric_params(())[1],
        Param("n_trees", None, (Interval(int, 1, None),), "pynndescent's n_trees; None: its default.",
              allow_none=True),
        Param("n_iters", None, (Interval(int, 1, None),), "pynndescent's n_iters; None: its default.",
              allow_none=True),
    )

    def check(self) -> None:
        check_jitted(self.metric, self.describe())
        check_metric_kwds(self.metric, self.metric_kwds, self.describe())

    def _kwds(self, X: Any) -> dict | None:
        """The checked metric_kwds for pynndescent (None when there are none); a function metric
        must return a float here (pynndescent's searches cannot read a (distance, gradient) tuple)."""
        kwds = check_metric_kwds(self.metric, self.metric_kwds, self.describe())
        if self.metric in EXTRA_METRICS and not sp.issparse(X):
            check_metric_data(np.asarray(X), self.metric, kwds)
        if not isinstance(self.metric, str) and not sp.issparse(X) and X.shape[0] >= 2:
            if isinstance(self.metric(np.asarray(X[0], np.float64), np.asarray(X[1], np.float64)), tuple):
                raise GidrValueError(format_error(
                    f"The 'metric' function of {self.describe()}", "a function returning a float",
                    Described("one returning a (distance, gradient) tuple"),
                    "Pass a function returning the distance only, or use neighbors='exact'."))
        return kwds or None

    def compute(self, X: np.ndarray, n_neighbors: int, ctx: Context) -> KNNGraph:
        try:
            from pynndescent import NNDescent
        except ImportError:
            raise GidrValueError(format_error(
                f"The package behind {self.describe()}", "installed", "an ImportError",
                "Install it (pip install pynndescent), or use neighbors 'nndescent' or 'exact'.")) from None
        n_samples = X.shape[0]
        index = NNDescent(X, n_neighbors=min(n_neighbors + 1, n_samples), metric=self.metric,
                          metric_kwds=self._kwds(X), random_state=_seed(ctx) % (2**31 - 1), n_trees=self.n_trees,
                          n_iters=self.n_iters)
        indices, distances = index.neighbor_graph
        return drop_self(np.asarray(indices), np.asarray(distances), n_neighbors)

    answers_queries = True

    def build_index(self, X: Any, graph: KNNGraph, ctx: Context) -> "PynndescentIndex":
        """pynndescent's own ``NNDescent.query``, on the index the fit built, rebuilt with the
        fit's seed and parameters (the fit pays nothing for it; the first transform does).
        Started from the fit's graph instead (``init_graph``), its queries on 10 blobs in 50-D
        found 0.77 of the true neighbours, against 0.99 rebuilt."""
        from pynndescent import NNDescent

        k = min(graph.n_neighbors + 1, X.shape[0])
        index = NNDescent(X, n_neighbors=k, metric=self.metric, metric_kwds=self._kwds(X),
                          random_state=_seed(ctx) % (2**31 - 1), n_trees=self.n_trees, n_iters=self.n_iters)
        return PynndescentIndex(index)


class PynndescentIndex(NeighborsIndex):
    """Queries by ``pynndescent.NNDescent.query``, rows sorted by (distance, index)."""

    def __init__(self, index):
        self.index = index

    def query(self, X_new: Any, n_neighbors: int) -> KNNGraph:
        indices, distances = self.index.query(X_new, k=n_neighbors)
        indices, distances = np.asarray(indices, dtype=np.int64), np.asarray(distances, dtype=np.float64)
        order = np.lexsort((indices, distances), axis=-1)
        return KNNGraph(np.take_along_axis(indices, order, axis=1), np.take_along_axis(distances, order, axis=1))


def drop_self(indices: np.ndarray, distances: np.ndarray, n_neighbors: int) -> KNNGraph:
    """The ``n_neighbors`` best non-self neighbours of a graph that may list each point itself.

    The point is removed by index wherever it sits (duplicates of a point may come before
    it), along with missing entries (index -1); rows are then sorted by (distance, index).

    Parameters
    ----------
    indices : ndarray of shape (n_samples, m), int
    distances : ndarray of shape (n_samples, m)
    n_neighbors : int
        At most the number of valid non-self entries of every row.

    Returns
    -------
    KNNGraph

    Raises
    ------
    GidrValueError
        When a row has fewer than ``n_neighbors`` valid neighbours.
    """
    indices = indices.astype(np.int64)
    distances = distances.astype(np.float64)
    invalid = (indices < 0) | (indices == np.arange(len(indices))[:, None])
    short = np.flatnonzero((~invalid).sum(axis=1) < n_neighbors)
    if len(short):
        raise GidrValueError(format_error(
            "The neighbours found by neighbors 'pynndescent'", f"at least {n_neighbors} per point besides itself",
            f"fewer in {len(short)} row(s), the first row {int(short[0])}",
            "Use neighbors 'nndescent' or 'exact' for this data."))
    keys = np.where(invalid, np.inf, distances)
    order = np.lexsort((np.where(invalid, np.iinfo(np.int64).max, indices), keys), axis=-1)[:, :n_neighbors]
    return KNNGraph(np.take_along_axis(indices, order, axis=1), np.take_along_axis(distances, order, axis=1))


# ---------------------------------------------------------------------- similarity
class UmapSimilarity(reference.UmapSimilarity):
    """UMAP's fuzzy memberships p_{j|i} = exp(-max(0, d_ij - rho_i) / sigma_i) (SPEC §3);
    one bisection per row, rows in parallel."""

    backend = "numba"
    priority = 10

    def weigh(self, distances: np.ndarray, ctx: Context) -> np.ndarray:
        from gidr_numba.similarity import umap_row_weights

        return umap_row_weights(distances, self.pseudo_distance, self.self_in_target)


class TsneSimilarity(reference.TsneSimilarity):
    """t-SNE's conditional probabilities with entropy log(perplexity) (SPEC §3); one
    bisection per row, rows in parallel. A perplexity above k is lowered to k with the
    reference's warning."""

    backend = "numba"
    priority = 10

    def weigh_perplexity(self, distances: np.ndarray, perplexity: float) -> np.ndarray:
        from gidr_numba.similarity import tsne_row_weights

        return tsne_row_weights(distances, perplexity, self.pseudo_distance)


class MultiscaleSimilarity(reference.MultiscaleSimilarity):
    """Several perplexities combined (see the reference); each scale's precisions by the
    parallel per-row bisection of :class:`TsneSimilarity`."""

    backend = "numba"
    priority = 10

    def betas(self, distances: np.ndarray, perplexity: float) -> np.ndarray:
        from gidr_numba.similarity import tsne_betas

        return tsne_betas(distances, perplexity)


# ---------------------------------------------------------------------- symmetrize
class FuzzyUnionSymmetrize(reference.FuzzyUnionSymmetrize):
    """p_ij = p_{j|i} + p_{i|j} - p_{j|i} p_{i|j} (UMAP), by a parallel CSR merge."""

    backend = "numba"
    priority = 10

    def compute(self, P_directed: sp.csr_matrix, ctx: Context) -> sp.csr_matrix:
        from gidr_numba.symmetrize import fuzzy_union

        return fuzzy_union(P_directed, self.set_op_mix_ratio)


class MeanSymmetrize(reference.MeanSymmetrize):
    """p_ij = (p_{j|i} + p_{i|j}) / 2 (t-SNE), by a parallel CSR merge."""

    backend = "numba"
    priority = 10

    def compute(self, P_directed: sp.csr_matrix, ctx: Context) -> sp.csr_matrix:
        from gidr_numba.symmetrize import mean

        return mean(P_directed)


# ---------------------------------------------------------------------- init
class SpectralInit(reference.SpectralInit):
    """Eigenvectors 1..d of the normalized Laplacian of P, per connected component.

    ARPACK to umap-learn's tolerance, as the reference's solver but faster. Components of
    at least :data:`gidr_numba.spectral.MULTILEVEL_MIN_POINTS` points, when it is set (it is
    None, off, by default), get a multilevel eigenmap instead (pyamg's aggregation, ARPACK
    on the coarsest graph, interpolation and smoothing back up: 1.3 s instead of 42 s on a
    million points), which falls back to ARPACK with a warning when it misses its tolerance.
    Reproducible for a seed whatever the thread count. See :mod:`gidr_numba.spectral` for
    the method, the measurements and why it is opt-in."""

    backend = "numba"
    priority = 10

    def compute(self, X: np.ndarray | None, P: sp.csr_matrix, ctx: Context) -> np.ndarray:
        from gidr_numba.spectral import spectral_layout

        rng = ctx.rng("init")
        Y = spectral_layout(P, ctx.n_components, rng)
        if not ctx.normalized:
            Y = reference_init.add_jitter(Y, rng)
        return reference_init.rescale(Y, self.scale, ctx.normalized)


STAGES = [
    ExactNeighbors, NNDescentNeighbors, PynndescentNeighbors,
    UmapSimilarity, TsneSimilarity, MultiscaleSimilarity,
    FuzzyUnionSymmetrize, MeanSymmetrize,
    SpectralInit,
]
