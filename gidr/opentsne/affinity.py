"""openTSNE-shaped affinities: :class:`PerplexityBasedNN` over gidr's graph stages.

``PerplexityBasedNN(X, perplexity=30)`` runs the ``tsne`` preset's first stages (neighbours,
``tsne`` similarity, ``mean`` symmetrization, normalization to sum one), exactly as
:meth:`gidr.Pipeline.run` does, and keeps what ``transform`` needs later: the fitted
neighbours stage, the graph and the data. ``.P`` is the symmetric, normalized P as a CSR
matrix, as openTSNE's.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from gidr.pipeline import Pipeline
from gidr.types import Affinities as GidrAffinities
from gidr.types import Context, KNNGraph
from gidr.validation import Described, GidrValueError, check_array, format_error, resolve_seed

__all__ = ["Affinities", "PerplexityBasedNN", "PrecomputedAffinities", "NEIGHBOR_METHODS"]

log = logging.getLogger("gidr")

#: openTSNE's ``method`` / ``neighbors`` names -> gidr's neighbours stages. openTSNE's
#: ``"annoy"`` and ``"hnsw"`` have no gidr twin and are refused.
NEIGHBOR_METHODS = {"auto": "auto", "exact": "exact", "pynndescent": "pynndescent", "approx": "auto"}


def refuse(owner: str, name: str, expected: str, got: Any, fix: str) -> GidrValueError:
    """The error for a parameter of the openTSNE layer that gidr cannot honour."""
    return GidrValueError(format_error(f"The '{name}' parameter of {owner}", expected, got, fix))


def check_none(owner: str, name: str, value: Any, fix: str) -> None:
    """Refuse ``value`` unless it is None (an openTSNE option gidr has no counterpart for)."""
    if value is not None:
        raise refuse(owner, name, "None", value, fix)


def tsne_pipeline(backend: str = "auto", random_state: Any = None, **overrides: Any) -> Pipeline:
    """The ``tsne`` preset with ``overrides`` (validated by the pipeline)."""
    return Pipeline.from_preset("tsne", backend=backend, random_state=random_state, **overrides)


def neighbor_stage_name(owner: str, name: str, method: Any) -> str:
    """gidr's neighbours stage for openTSNE's ``method`` (refused clearly when it has none)."""
    if isinstance(method, str) and method.lower() in NEIGHBOR_METHODS:
        return NEIGHBOR_METHODS[method.lower()]
    raise refuse(owner, name, "one of " + ", ".join(repr(m) for m in NEIGHBOR_METHODS), method,
                 "gidr has no Annoy or HNSW index; 'auto' picks exact search for small inputs and "
                 "NN-descent above.")


class Affinities:
    """Base of the affinity objects: ``P`` (CSR, symmetric, sums to one) and what
    :meth:`TSNEEmbedding.transform <gidr.opentsne.TSNEEmbedding.transform>` needs.

    Attributes
    ----------
    P : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
    pipeline : Pipeline
        The ``tsne`` pipeline whose stages built ``P``.
    context : Context
        Its switches (``n_samples``, the resolved seed, ``a = b = 1``).
    graph : KNNGraph or None
    data : array-like or None
        The training data (None for precomputed affinities: no ``transform``).
    neighbors : Neighbors stage or None
        The neighbours stage that built ``graph`` (``"auto"`` resolved).
    """

    def __init__(self, P: sp.csr_matrix, pipeline: Pipeline, context: Context, graph=None, data=None,
                 neighbors=None, verbose: bool = False) -> None:
        self.P = P
        self.pipeline = pipeline
        self.context = context
        self.graph = graph
        self.data = data
        self.neighbors = neighbors
        self.verbose = verbose

    @property
    def n_samples(self) -> int:
        return self.P.shape[0]

    def gidr_affinities(self) -> GidrAffinities:
        """``P`` as the :class:`gidr.types.Affinities` the optimizers take."""
        return GidrAffinities(self.P, True)


class PerplexityBasedNN(Affinities):
    """t-SNE's perplexity-calibrated affinities on the k = min(n - 1, 3 perplexity) nearest
    neighbours (openTSNE's ``PerplexityBasedNN``).

    Parameters
    ----------
    data : array-like of shape (n_samples, n_features)
    perplexity : float
    method : {"auto", "exact", "pynndescent", "approx"}
        The neighbours search (openTSNE's ``"annoy"`` and ``"hnsw"`` are refused).
    metric : str
        Any metric the chosen neighbours stage knows.
    metric_params : dict or None
        The metric's parameters (gidr's ``metric_kwds``: ``{"p": 3}`` for minkowski, ``{"V": ...}``
        for seuclidean, ``{"VI": ...}`` for mahalanobis), checked by the neighbours stage.
    symmetrize : bool
        Only True: gidr's t-SNE P is always ``(P + P^T) / 2``, normalized.
    n_jobs : int
        Threads; the result does not depend on it.
    random_state : int, RandomState, Generator or None
    verbose : bool
    k_neighbors : "auto" or int
        Only ``"auto"``: gidr's ``tsne`` similarity always takes ``3 perplexity`` neighbours.
    knn_kwargs, knn_index : None
        Only None.
    backend : str
        gidr's backend (``"auto"``, ``"numba"``, ``"reference"``).
    """

    def __init__(self, data=None, perplexity=30, method="auto", metric="euclidean", metric_params=None,
                 symmetrize=True, n_jobs=1, random_state=None, verbose=False, k_neighbors="auto",
                 knn_kwargs=None, knn_index=None, backend="auto") -> None:
        owner = "PerplexityBasedNN"
        if data is None:
            raise refuse(owner, "data", "an array of shape (n_samples, n_features)", None,
                         "Pass the data matrix; gidr builds its own neighbours index (knn_index is not supported).")
        check_none(owner, "knn_index", knn_index, "Pass the data instead; gidr builds its own neighbours index.")
        check_none(owner, "knn_kwargs", knn_kwargs, "gidr's neighbours stages take no extra keyword arguments.")
        extra = {} if metric_params is None else {"metric_kwds": dict(metric_params)}
        if symmetrize is not True:
            raise refuse(owner, "symmetrize", "True", symmetrize, "gidr's t-SNE P is always symmetrized.")
        if not (isinstance(k_neighbors, str) and k_neighbors == "auto"):
            raise refuse(owner, "k_neighbors", "'auto'", k_neighbors,
                         "gidr takes min(n - 1, 3 perplexity) neighbours; change the perplexity instead.")
        neighbors = neighbor_stage_name(owner, "method", method)
        if isinstance(metric, str) and metric == "precomputed":  # X is a square distance matrix
            pipeline = tsne_pipeline(backend, random_state, neighbors="precomputed", perplexity=perplexity)
        else:
            with _as_metric_params():
                pipeline = tsne_pipeline(backend, random_state, neighbors=neighbors, metric=metric,
                                         perplexity=perplexity, **extra)
        from gidr.estimators import _threads  # noqa: PLC0415 (optional numba)

        with _threads(job_count(n_jobs, owner)), _as_metric_params():
            P, ctx, graph, stage, X = affinities_of(pipeline, data, random_state)
        queryable = "precomputed" not in stage.accepts
        super().__init__(P, pipeline, ctx, graph=graph, data=X if queryable else None, neighbors=stage, verbose=verbose)
        self.perplexity = perplexity
        self.effective_perplexity_ = min(float(perplexity), float(graph.n_neighbors))
        self._searched = graph  # the neighbours found, which set_perplexity may use fewer of

    def set_perplexity(self, new_perplexity: float) -> None:
        """Recompute ``P`` at another perplexity on the same neighbours: the first
        ``floor(3 new_perplexity)`` of each point's, or all of those searched (with a warning)
        when that is more; a perplexity above the number searched needs a new search and is
        refused."""
        found = self._searched.n_neighbors
        if not (isinstance(new_perplexity, (int, float, np.number)) and 0 < new_perplexity <= found):
            raise refuse("PerplexityBasedNN.set_perplexity", "new_perplexity",
                         f"a float in (0, {found}] (the neighbours already found)",
                         new_perplexity, "Build a new PerplexityBasedNN for a larger perplexity.")
        k = max(1, min(int(np.floor(3 * new_perplexity)), found))
        if k < 3 * new_perplexity:
            log.warning("set_perplexity(%s) uses the %d neighbours searched (3 x perplexity would be %g).",
                        new_perplexity, found, 3 * new_perplexity)
        pipeline = self.pipeline.replace(perplexity=new_perplexity)
        graph = KNNGraph(self._searched.indices[:, :k], self._searched.distances[:, :k])
        self.P = p_of_graph(pipeline, graph, self.context)
        self.pipeline, self.graph, self.perplexity = pipeline, graph, new_perplexity
        self.effective_perplexity_ = min(float(new_perplexity), float(k))
        self._gidr_index = None

    def to_new(self, data, perplexity=None, return_distances=False, k_neighbors="auto"):
        """Affinities of new points to the training points (rows summing to one).

        ``perplexity`` must be None or the fit's (gidr's transform weights new points with the
        fitted similarity stage); ``k_neighbors`` only ``"auto"``.

        Returns
        -------
        P : scipy.sparse.csr_matrix of shape (n_new, n_samples)
        indices, distances : ndarray of shape (n_new, k)
            With ``return_distances``.
        """
        owner = "PerplexityBasedNN.to_new"
        check_new_perplexity(self, perplexity, owner)
        if not (isinstance(k_neighbors, str) and k_neighbors == "auto"):
            raise refuse(owner, "k_neighbors", "'auto'", k_neighbors, "gidr queries the fit's k neighbours.")
        from gidr.opentsne.partial import new_point_edges  # noqa: PLC0415 (circular)

        edges, graph = new_point_edges(self, data)
        P = new_point_matrix(edges, self.n_samples)
        if return_distances:
            return P, np.asarray(graph.indices), np.asarray(graph.distances)
        return P


class PrecomputedAffinities(Affinities):
    """A user's own affinity matrix (openTSNE's ``PrecomputedAffinities``): symmetrized as
    ``(A + A^T) / 2`` when it is not symmetric, then normalized to sum one (``normalize``).
    There is no data behind it, so an embedding of it cannot ``transform``.

    Parameters
    ----------
    affinities : array-like or sparse matrix of shape (n_samples, n_samples)
        Non-negative, zero diagonal.
    normalize : bool
    backend : str
    """

    def __init__(self, affinities, normalize: bool = True, backend: str = "auto") -> None:
        owner = "PrecomputedAffinities"
        P = sp.csr_matrix(affinities, dtype=np.float64)
        if P.shape[0] != P.shape[1] or P.shape[0] < 2:
            raise refuse(owner, "affinities", "a square matrix of at least 2 rows", Described(f"shape {P.shape}"),
                         "Pass one row and one column per sample.")
        if P.nnz and (not np.all(np.isfinite(P.data)) or P.data.min() < 0):
            raise refuse(owner, "affinities", "finite, non-negative values", Described("negative or non-finite values"),
                         "Affinities are similarities: zero for unrelated pairs.")
        P.setdiag(0)
        P.eliminate_zeros()
        if (P != P.T).nnz:
            P = (P + P.T) / 2
        if normalize:
            P = P / P.sum()
        pipeline = tsne_pipeline(backend, 0, neighbors="precomputed")
        ctx = Context(n_samples=P.shape[0], normalized=True, a=1.0, b=1.0, seed=0, registry=pipeline.registry)
        super().__init__(sp.csr_matrix(P), pipeline, ctx)


def check_new_perplexity(affinities: Affinities, perplexity: Any, owner: str) -> None:
    """New points take the fit's perplexity (None: the fit's); another one is refused."""
    fitted = getattr(affinities, "perplexity", None)
    if perplexity is not None and perplexity != fitted:
        raise refuse(owner, "perplexity", f"None or the fit's {fitted}", perplexity,
                     "gidr weighs new points with the fitted similarity stage.")


def new_point_matrix(edges, n_train: int) -> sp.csr_matrix:
    """The new points' affinities to the training points as a CSR matrix (n_new, n_train),
    each row the point's neighbour weights scaled to sum to one."""
    n_new, k = edges.indices.shape
    weights = edges.weights / np.maximum(edges.weights.sum(axis=1, keepdims=True), np.finfo(float).tiny)
    return sp.csr_matrix((weights.ravel(), edges.indices.ravel(), np.arange(0, n_new * k + 1, k)),
                         shape=(n_new, n_train))


def job_count(n_jobs: Any, owner: str) -> int:
    """openTSNE's ``n_jobs``: a positive count, or ``-1`` all cores, ``-2`` all but one, ...
    (at least 1)."""
    import os

    if isinstance(n_jobs, (bool, np.bool_)) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise refuse(owner, "n_jobs", "a non-zero int (-1: all cores)", n_jobs, "Pass 1, a core count or -1.")
    if n_jobs > 0:
        return int(n_jobs)
    return max(int(os.cpu_count() or 1) + int(n_jobs) + 1, 1)


@contextlib.contextmanager
def _as_metric_params():
    """A neighbours stage's error about ``metric_kwds`` in openTSNE's name, ``metric_params``."""
    try:
        yield
    except GidrValueError as exc:
        if "'metric_kwds' parameter" not in str(exc):
            raise
        raise GidrValueError(str(exc).replace("'metric_kwds' parameter", "'metric_params' parameter "
                                              "(gidr's metric_kwds)", 1)) from None


def affinities_of(pipeline: Pipeline, data: Any, random_state: Any):
    """Run ``pipeline``'s graph stages on ``data`` as :meth:`gidr.Pipeline.run` does.

    Returns
    -------
    P : csr_matrix, normalized to sum one
    context : Context
    graph : KNNGraph
    neighbors : the neighbours stage that ran
    data : the checked data
    """
    from gidr.pipeline import _clamped_n_neighbors, precomputed_input  # noqa: PLC0415 (the pipeline's own rules)

    stages = pipeline.stages
    if "precomputed" in stages["neighbors"].accepts:
        X = precomputed_input(data)
        neighbors, n_samples = stages["neighbors"], X.shape[0]
    else:
        X = check_array(data, allow_sparse=True)
        if sp.issparse(X):
            raise refuse("PerplexityBasedNN", "data", "a dense array",
                         Described(f"a sparse matrix of shape {X.shape}"),
                         "Pass X.toarray(), or use gidr.TSNE, which reads sparse input.")
        neighbors, n_samples = pipeline.neighbors_for(X), X.shape[0]
    for stage in (neighbors, *stages.values()):
        stage.check_n_samples(n_samples)
    ctx = Context(n_samples=n_samples, n_components=2, normalized=True, a=1.0, b=1.0,
                  seed=resolve_seed(random_state), registry=pipeline.registry)
    graph = neighbors.compute(X, _clamped_n_neighbors(stages["similarity"], n_samples), ctx)
    return p_of_graph(pipeline, graph, ctx), ctx, graph, neighbors, X


def p_of_graph(pipeline: Pipeline, graph, ctx: Context) -> sp.csr_matrix:
    """The normalized, symmetric P of a kNN graph through ``pipeline``'s similarity and
    symmetrize stages (as :meth:`gidr.Pipeline.run`)."""
    stages = pipeline.stages
    P = stages["symmetrize"].compute(stages["similarity"].compute(graph, ctx), ctx)
    return sp.csr_matrix(P / P.sum())
