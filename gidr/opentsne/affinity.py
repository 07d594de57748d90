"""openTSNE's affinities (``openTSNE.affinity``) over gidr's graph stages.

Each class finds the neighbours (an index of :mod:`gidr.opentsne.nearest_neighbors`, or
the one passed as ``knn_index``), weighs them with one of gidr's similarity stages,
symmetrizes and normalizes P to sum one, as :meth:`gidr.Pipeline.run` does:

==========================  ============================  ============================
openTSNE                    gidr similarity stage         symmetrize
==========================  ============================  ============================
``PerplexityBasedNN``       ``tsne``                      ``mean`` (``none``: False)
``FixedSigmaNN``            ``gaussian``                  ``mean`` (``none``: False)
``MultiscaleMixture``       ``multiscale``, mixture       ``mean`` (``none``: False)
``Multiscale``              ``multiscale``                ``mean`` (``none``: False)
``Uniform``                 ``uniform``                   ``max`` (True), ``mean``, ``none``
``PrecomputedAffinities``   (the user's matrix)           ``(A + A^T) / 2`` if asymmetric
==========================  ============================  ============================

``.P`` is a CSR matrix; ``to_new`` gives new points' rows (each summing to one) with the same
similarity, and the kept index and graph serve ``TSNEEmbedding.transform``.
"""
from __future__ import annotations

import contextlib
import logging
import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp

from gidr.opentsne.nearest_neighbors import check_count
from gidr.pipeline import Pipeline
from gidr.types import Affinities as GidrAffinities
from gidr.types import Context, KNNGraph
from gidr.validation import Described, GidrValueError, format_error, resolve_seed

__all__ = ["Affinities", "PerplexityBasedNN", "FixedSigmaNN", "MultiscaleMixture", "Multiscale", "Uniform",
           "PrecomputedAffinities", "NEIGHBOR_METHODS", "joint_probabilities_nn"]

log = logging.getLogger("gidr")

#: openTSNE's ``method`` / ``neighbors`` names -> gidr's neighbours stages. openTSNE's
#: ``"annoy"`` and ``"hnsw"`` have no gidr twin and are refused.
NEIGHBOR_METHODS = {"auto": "auto", "exact": "exact", "pynndescent": "pynndescent", "approx": "auto"}


class NeedsNewSearch(GidrValueError, RuntimeError):
    """A perplexity that needs more neighbours than were searched (openTSNE raises RuntimeError)."""


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
    """gidr's neighbours stage for openTSNE's ``method`` (refused clearly when it has none);
    an index object passes."""
    from gidr.opentsne.nearest_neighbors import KNNIndex  # noqa: PLC0415 (circular)

    if isinstance(method, KNNIndex):
        return "index"
    if isinstance(method, str) and method.lower() in NEIGHBOR_METHODS:
        return NEIGHBOR_METHODS[method.lower()]
    raise refuse(owner, name, "one of " + ", ".join(repr(m) for m in NEIGHBOR_METHODS), method,
                 "gidr has no Annoy or HNSW index; 'auto' picks exact search for small inputs and "
                 "NN-descent above.")


class Affinities:
    """Base of the affinity objects: ``P`` (CSR, sums to one) and what
    :meth:`TSNEEmbedding.transform <gidr.opentsne.TSNEEmbedding.transform>` needs.

    Attributes
    ----------
    P : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
    pipeline : Pipeline
        The ``tsne`` pipeline whose similarity and symmetrize stages built ``P``.
    context : Context
        Its switches (``n_samples``, the resolved seed, ``a = b = 1``).
    knn_index : gidr.opentsne.nearest_neighbors.KNNIndex or None
        The index that found the neighbours and answers new points' queries.
    graph : KNNGraph or None
    data : array-like or None
        The training data (None when the index has none: no ``transform``).
    neighbors : the neighbours stage or index that reads new points (its ``accepts``)
    """

    def __init__(self, P: sp.csr_matrix, pipeline: Pipeline, context: Context, graph=None, data=None,
                 neighbors=None, verbose: bool = False, knn_index=None) -> None:
        self.P = P
        self.pipeline = pipeline
        self.context = context
        self.graph = graph
        self.data = data
        self.neighbors = neighbors
        self.verbose = verbose
        self.knn_index = knn_index

    @property
    def n_samples(self) -> int:
        return self.P.shape[0]

    def gidr_affinities(self) -> GidrAffinities:
        """``P`` as the :class:`gidr.types.Affinities` the optimizers take."""
        return GidrAffinities(self.P, True)

    def _fit(self, owner: str, data, knn_index, k, method, metric, metric_params, n_jobs, random_state,
             knn_kwargs, backend, symmetrize: str, similarity) -> None:
        """Search (or take ``knn_index``'s) neighbours and compute P.

        ``k(n_samples)`` is the number of neighbours to search; ``similarity(knn_index)`` the
        pipeline overrides of the similarity stage (which may depend on the neighbours found)."""
        from gidr.opentsne.nearest_neighbors import GidrNeighbors, KNNIndex, get_knn_index  # noqa: PLC0415

        check_source(owner, data, knn_index)
        if knn_index is None:
            n_samples = precomputed_or_rows(data, metric)
            with _threads_of(n_jobs, owner), _as_metric_params():
                knn_index = get_knn_index(data, method, k(n_samples), metric, metric_params, n_jobs, random_state,
                                          self.verbose, knn_kwargs, backend)
        elif not isinstance(knn_index, KNNIndex):
            raise refuse(owner, "knn_index", "a gidr.opentsne.nearest_neighbors.KNNIndex", knn_index,
                         "Build one with gidr.opentsne.nearest_neighbors (Sklearn, GidrNeighbors, "
                         "PrecomputedNeighbors, ...).")
        else:
            log.info("%s: knn_index given; its neighbours are used and the search parameters ignored.", owner)
        with _threads_of(n_jobs, owner), _as_metric_params():
            indices, distances = knn_index.build()
        self.knn_index = knn_index
        self.graph = KNNGraph(indices, distances)
        stage = knn_index.stage if isinstance(knn_index, GidrNeighbors) else knn_index
        self.data, self.neighbors = getattr(knn_index, "data", None), stage
        neighbors = knn_index.pipeline.config["neighbors"] if isinstance(knn_index, GidrNeighbors) else {}
        self.pipeline = tsne_pipeline(backend, random_state, neighbors=neighbors.get("name", "precomputed"),
                                      symmetrize=symmetrize, **similarity(knn_index))
        self.context = Context(n_samples=knn_index.n_samples, n_components=2, normalized=True, a=1.0, b=1.0,
                               seed=resolve_seed(random_state), registry=self.pipeline.registry)
        self.P = p_of_graph(self.pipeline, self.graph, self.context)
        self._gidr_index = None

    def _refit(self, k: int, **similarity) -> None:
        """P again from the first ``k`` of the neighbours found, with new similarity settings."""
        self.pipeline = self.pipeline.replace(**similarity)
        found = self.knn_index.build()
        self.graph = KNNGraph(found[0][:, :k], found[1][:, :k])
        self.P = p_of_graph(self.pipeline, self.graph, self.context)

    def _new_rows(self, data, k: int, return_distances: bool, **similarity):
        """New points' affinities to the training points, each row summing to one, from their
        ``k`` nearest training points weighed by the similarity (with ``similarity`` overrides)."""
        stage = (self.pipeline.replace(**similarity) if similarity else self.pipeline).stages["similarity"]
        with _as_metric_params():
            indices, distances = self.knn_index.query(data, int(k))
        weights = np.asarray(stage.row_weights(np.asarray(distances, dtype=np.float64), self.context))
        P = new_point_matrix(np.asarray(indices), weights, self.n_samples)
        return (P, indices, distances) if return_distances else P


def check_source(owner: str, data, knn_index) -> None:
    """Exactly one of ``data`` and ``knn_index``, as openTSNE requires."""
    if data is None and knn_index is None:
        raise refuse(owner, "data", "an array of shape (n_samples, n_features), or a knn_index", None,
                     "Pass the data matrix, or an index from gidr.opentsne.nearest_neighbors as knn_index.")
    if data is not None and knn_index is not None:
        raise refuse(owner, "knn_index", "None when data is given", knn_index,
                     "Pass either the data or an index built on it, not both.")


def precomputed_or_rows(data, metric) -> int:
    """The number of samples of ``data`` (a square distance matrix with ``metric="precomputed"``)."""
    shape = np.shape(data) if not sp.issparse(data) else data.shape
    if len(shape) != 2 or shape[0] < 2:
        raise refuse("the affinities", "data", "a 2-D array of at least 2 rows", Described(f"shape {shape}"),
                     "Pass one row per sample.")
    return int(shape[0])


@contextlib.contextmanager
def _threads_of(n_jobs, owner):
    from gidr.estimators import _threads  # noqa: PLC0415 (optional numba)

    with _threads(job_count(n_jobs, owner)):
        yield


def _symmetrize_name(owner: str, symmetrize: Any) -> str:
    """openTSNE's ``symmetrize=True/False`` as gidr's ``mean`` / ``none`` stage."""
    if isinstance(symmetrize, (bool, np.bool_)):
        return "mean" if symmetrize else "none"
    raise refuse(owner, "symmetrize", "True or False", symmetrize,
                 "True: (P + P^T) / 2, as t-SNE does; False: keep each point's own row.")


def check_perplexity(perplexity: Any, k: float, owner: str) -> float:
    """openTSNE's rule: a positive perplexity; one above ``k`` becomes ``k / 3``, with a warning."""
    if isinstance(perplexity, (bool, np.bool_)) or not isinstance(perplexity, numbers.Real) or not perplexity > 0:
        raise refuse(owner, "perplexity", "a positive float", perplexity, "Typical values are 5 to 50.")
    if perplexity > k:
        log.warning("%s: perplexity %g is higher than the %g neighbours; using perplexity %g instead.",
                    owner, perplexity, k, k / 3)
        return k / 3
    return float(perplexity)


class PerplexityBasedNN(Affinities):
    """t-SNE's perplexity-calibrated affinities on ``k = min(n - 1, 3 perplexity)`` nearest
    neighbours (openTSNE's ``PerplexityBasedNN``).

    Parameters
    ----------
    data : array-like of shape (n_samples, n_features), or None with ``knn_index``
    perplexity : float
        A perplexity above the neighbours there are becomes a third of their number (openTSNE's
        rule), with a warning.
    method : {"auto", "exact", "pynndescent", "approx"} or KNNIndex
        The neighbours search (see :func:`gidr.opentsne.nearest_neighbors.get_knn_index`);
        openTSNE's ``"annoy"`` and ``"hnsw"`` are refused.
    metric : str or callable
        Any metric the search knows; ``"precomputed"``: ``data`` is a square distance matrix.
    metric_params : dict or None
        The metric's parameters (gidr's ``metric_kwds``: ``{"p": 3}`` for minkowski, ``{"V": ...}``
        for seuclidean, ``{"VI": ...}`` for mahalanobis), checked by the neighbours stage.
    symmetrize : bool
        ``(P + P^T) / 2`` (True), or each point's own row (False).
    n_jobs : int
        Threads; the result does not depend on it.
    random_state : int, RandomState, Generator or None
    verbose : bool
    k_neighbors : "auto" or int
        The neighbours searched (``"auto"``: ``min(n - 1, floor(3 perplexity))``).
    knn_kwargs : dict or None
        The search's keyword arguments (scikit-learn's with ``method="exact"``).
    knn_index : KNNIndex or None
        Neighbours already found (then ``data`` is None and the search parameters are ignored).
    backend : str
        gidr's backend (``"auto"``, ``"numba"``, ``"reference"``).
    """

    def __init__(self, data=None, perplexity=30, method="auto", metric="euclidean", metric_params=None,
                 symmetrize=True, n_jobs=1, random_state=None, verbose=False, k_neighbors="auto",
                 knn_kwargs=None, knn_index=None, backend="auto") -> None:
        owner = "PerplexityBasedNN"
        self.verbose = verbose
        symmetrized = _symmetrize_name(owner, symmetrize)
        if not (isinstance(k_neighbors, str) and k_neighbors == "auto"):
            if isinstance(k_neighbors, (bool, np.bool_)) or not isinstance(k_neighbors, (int, np.integer)) \
                    or k_neighbors < 1:
                raise refuse(owner, "k_neighbors", "'auto' or a positive int", k_neighbors,
                             "Pass 'auto' (three times the perplexity) or a number of neighbours.")
        check_perplexity(perplexity, np.inf, owner)
        auto = isinstance(k_neighbors, str)
        self._fit(owner, data, knn_index, lambda n: min(n - 1, int(3 * perplexity) if auto else int(k_neighbors)),
                  method, metric, metric_params, n_jobs, random_state, knn_kwargs, backend, symmetrized,
                  # openTSNE's rule, against the neighbours found
                  lambda index: {"similarity": "tsne", "perplexity": check_perplexity(perplexity, index.k, owner)})
        self.perplexity = perplexity
        self.effective_perplexity_ = self.pipeline.stages["similarity"].perplexity
        self.symmetrize = symmetrize
        self.n_jobs = n_jobs
        self.knn_kwargs = knn_kwargs

    def set_perplexity(self, new_perplexity: float) -> None:
        """Recompute ``P`` at another perplexity on the neighbours already found: the first
        ``floor(3 new_perplexity)`` of them (all of them, with a warning, when that is more).
        A perplexity above the number found would need a new search: refused
        (:class:`NeedsNewSearch`, a RuntimeError as in openTSNE)."""
        owner = "PerplexityBasedNN.set_perplexity"
        if new_perplexity == self.perplexity:
            return
        effective = check_perplexity(new_perplexity, np.inf, owner)
        found = self.knn_index.k
        if effective > found:
            raise NeedsNewSearch(format_error(f"The 'new_perplexity' parameter of {owner}",
                                              f"at most the {found} neighbours already found", new_perplexity,
                                              "Build a new PerplexityBasedNN for a larger perplexity."))
        if 3 * effective > found:
            log.warning("set_perplexity(%s): 3 x perplexity is more than the %d neighbours found; all are used. "
                        "Build a new PerplexityBasedNN for the usual three times the perplexity.",
                        new_perplexity, found)
        self._refit(min(found, int(3 * new_perplexity)), perplexity=effective)
        self.perplexity, self.effective_perplexity_ = new_perplexity, effective
        self._gidr_index = None

    def new_point_settings(self, perplexity=None, k_neighbors="auto") -> tuple[int, dict]:
        """The neighbours (``"auto"``: ``3 perplexity``, at most n_samples) and the similarity
        overrides (the effective perplexity; None: the fit's) that weigh new points."""
        owner = "PerplexityBasedNN.to_new"
        perplexity = self.perplexity if perplexity is None else perplexity
        check_perplexity(perplexity, np.inf, owner)
        auto = isinstance(k_neighbors, str) and k_neighbors == "auto"
        k = min(self.n_samples, int(3 * perplexity)) if auto else k_neighbors
        return k, {"perplexity": check_perplexity(perplexity, k, owner)}

    def to_new(self, data, perplexity=None, return_distances=False, k_neighbors="auto"):
        """Affinities of new points to the training points (rows summing to one), from their
        ``k_neighbors`` (``"auto"``: ``3 perplexity``, at most n_samples) nearest training points
        at ``perplexity`` (None: the fit's).

        Returns
        -------
        P : scipy.sparse.csr_matrix of shape (n_new, n_samples)
        indices, distances : ndarray of shape (n_new, k)
            With ``return_distances``.
        """
        k, overrides = self.new_point_settings(perplexity, k_neighbors)
        return self._new_rows(data, k, return_distances, **overrides)


class FixedSigmaNN(Affinities):
    """One Gaussian bandwidth ``sigma`` for every point, on its ``k`` nearest neighbours
    (openTSNE's ``FixedSigmaNN``; gidr's ``gaussian`` similarity).

    Parameters are :class:`PerplexityBasedNN`'s, with ``sigma`` (required, in the
    distances' units) and ``k`` (at most ``n_samples - 1``) in place of the perplexity.
    """

    def __init__(self, data=None, sigma=None, k=30, method="auto", metric="euclidean", metric_params=None,
                 symmetrize=True, n_jobs=1, random_state=None, verbose=False, knn_kwargs=None, knn_index=None,
                 backend="auto") -> None:
        owner = "FixedSigmaNN"
        self.verbose = verbose
        if sigma is None:
            raise refuse(owner, "sigma", "a positive float", None, "Pass the Gaussians' bandwidth, e.g. sigma=1.")
        symmetrized = _symmetrize_name(owner, symmetrize)
        if data is not None:
            check_count(owner, "k", k, precomputed_or_rows(data, metric) - 1)
        self._fit(owner, data, knn_index, lambda _: k, method, metric, metric_params, n_jobs, random_state,
                  knn_kwargs, backend, symmetrized,
                  lambda index: {"similarity": "gaussian", "sigma": sigma, "n_neighbors": index.k})
        self.sigma, self.n_jobs = sigma, n_jobs

    def new_point_settings(self, k=None, sigma=None) -> tuple[int, dict]:
        """New points' neighbours (None: the fit's k) and similarity overrides (``sigma``)."""
        k = check_count("FixedSigmaNN.to_new", "k", self.knn_index.k if k is None else k, self.n_samples,
                        "At most the number of training points.")
        return k, {"n_neighbors": k, **({} if sigma is None else {"sigma": sigma})}

    def to_new(self, data, k=None, sigma=None, return_distances=False):
        """New points' affinities (rows summing to one) on their ``k`` (None: the fit's) nearest
        training points, with bandwidth ``sigma`` (None: the fit's)."""
        k, overrides = self.new_point_settings(k, sigma)
        return self._new_rows(data, k, return_distances, **overrides)


def check_perplexities(perplexities: Any, n_samples: int, owner: str) -> list:
    """openTSNE's rule: sorted, each at most ``(n_samples - 1) / 3`` (larger ones lowered to
    it, with a warning, and dropped when that value is already in the list)."""
    values = [perplexities] if isinstance(perplexities, numbers.Real) else perplexities
    if values is None or isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") or not list(values):
        raise refuse(owner, "perplexities", "a positive float or a non-empty list of them", perplexities,
                     "Pass e.g. perplexities=[50, 500] (a small and a large scale).")
    usable: list = []
    for perplexity in sorted(values):
        check_perplexity(perplexity, np.inf, owner)
        if 3 * perplexity > n_samples - 1:
            lowered = (n_samples - 1) / 3
            log.warning("%s: perplexity %g is too high for %d samples; %s.", owner, perplexity, n_samples,
                        "dropped, as the largest allowed is already in the list" if lowered in usable
                        else f"using {lowered:g}")
            if lowered not in usable:
                usable.append(lowered)
        else:
            usable.append(perplexity)
    return usable


class MultiscaleMixture(Affinities):
    """A Gaussian-mixture kernel over several perplexities (openTSNE's ``MultiscaleMixture``;
    gidr's ``multiscale`` similarity with ``mixture=True``): each scale's precision is
    calibrated to its perplexity, and the scales' Gaussians, each weighted by the square root
    of its precision, are summed into one kernel.

    Parameters are :class:`PerplexityBasedNN`'s, with ``perplexities`` (a float or a list) in
    place of the perplexity; ``k = min(n - 1, 3 max(perplexities))`` neighbours are searched.
    """

    mixture = True

    def __init__(self, data=None, perplexities=None, method="auto", metric="euclidean", metric_params=None,
                 symmetrize=True, n_jobs=1, random_state=None, verbose=False, knn_kwargs=None, knn_index=None,
                 backend="auto") -> None:
        owner = type(self).__name__
        self.verbose = verbose
        if perplexities is None:
            raise refuse(owner, "perplexities", "a positive float or a non-empty list of them", None,
                         "Pass e.g. perplexities=[50, 500].")
        symmetrized = _symmetrize_name(owner, symmetrize)
        check_source(owner, data, knn_index)
        n = precomputed_or_rows(data, metric) if data is not None else knn_index.n_samples
        effective = check_perplexities(perplexities, n, owner)
        self._fit(owner, data, knn_index, lambda n_samples: min(n_samples - 1, int(3 * max(effective))), method,
                  metric, metric_params, n_jobs, random_state, knn_kwargs, backend, symmetrized,
                  lambda index: {"similarity": "multiscale", "perplexities": effective, "mixture": self.mixture})
        self.perplexities, self.effective_perplexities_ = perplexities, effective
        self.symmetrize, self.n_jobs = symmetrize, n_jobs

    def set_perplexities(self, new_perplexities) -> None:
        """Recompute ``P`` at other perplexities on the neighbours already found; a largest
        perplexity that needs more neighbours than were found is refused
        (:class:`NeedsNewSearch`, a RuntimeError as in openTSNE)."""
        owner = f"{type(self).__name__}.set_perplexities"
        if np.array_equal(self.perplexities, new_perplexities):
            return
        effective = check_perplexities(new_perplexities, self.n_samples, owner)
        k = min(self.n_samples - 1, int(3 * max(effective)))
        if k > self.knn_index.k:
            raise NeedsNewSearch(format_error(f"The 'new_perplexities' parameter of {owner}",
                                              f"a largest perplexity needing at most the {self.knn_index.k} "
                                              "neighbours already found", new_perplexities,
                                              f"Build a new {type(self).__name__} for larger perplexities."))
        self._refit(k, perplexities=effective)
        self.perplexities, self.effective_perplexities_ = new_perplexities, effective
        self._gidr_index = None

    def new_point_settings(self, perplexities=None) -> tuple[int, dict]:
        """New points' neighbours and similarity overrides at ``perplexities`` (None: the fit's)."""
        perplexities = self.perplexities if perplexities is None else perplexities
        effective = check_perplexities(perplexities, self.n_samples, f"{type(self).__name__}.to_new")
        return min(self.n_samples - 1, int(3 * max(effective))), {"perplexities": effective}

    def to_new(self, data, perplexities=None, return_distances=False):
        """New points' affinities (rows summing to one) at ``perplexities`` (None: the fit's)."""
        k, overrides = self.new_point_settings(perplexities)
        return self._new_rows(data, k, return_distances, **overrides)


class Multiscale(MultiscaleMixture):
    """The mean of single-scale t-SNE affinities at several perplexities (openTSNE's
    ``Multiscale``, Lee et al. 2015; gidr's ``multiscale`` similarity): each scale's
    conditional probabilities are computed as :class:`PerplexityBasedNN` computes them and
    averaged. Parameters are :class:`MultiscaleMixture`'s."""

    mixture = False


class Uniform(Affinities):
    """Equal weights on each point's ``k_neighbors`` nearest neighbours (openTSNE's
    ``Uniform``; gidr's ``uniform`` similarity).

    ``symmetrize``: ``True`` or ``"max"`` (every kNN edge, in either direction, the same
    weight), ``"mean"`` (``(A + A^T) / 2``: two values, for edges listed in one or both
    directions), ``False`` or ``"none"`` (each point's own row). The other parameters are
    :class:`PerplexityBasedNN`'s.
    """

    SYMMETRIZE = {"max": "max", "mean": "mean", "none": "none"}

    def __init__(self, data=None, k_neighbors=30, method="auto", metric="euclidean", metric_params=None,
                 symmetrize=True, n_jobs=1, random_state=None, verbose=False, knn_kwargs=None, knn_index=None,
                 backend="auto") -> None:
        owner = "Uniform"
        self.verbose = verbose
        if isinstance(symmetrize, (bool, np.bool_)):
            symmetrized = "max" if symmetrize else "none"
        elif isinstance(symmetrize, str) and symmetrize in self.SYMMETRIZE:
            symmetrized = self.SYMMETRIZE[symmetrize]
        else:
            raise refuse(owner, "symmetrize", "True, False, 'max', 'mean' or 'none'", symmetrize,
                         "'max' (the default, True) gives every kNN edge the same weight.")
        if data is not None:
            check_count(owner, "k_neighbors", k_neighbors, precomputed_or_rows(data, metric) - 1)
        self._fit(owner, data, knn_index, lambda _: k_neighbors, method, metric, metric_params, n_jobs,
                  random_state, knn_kwargs, backend, symmetrized,
                  lambda index: {"similarity": "uniform", "n_neighbors": index.k})
        self.n_jobs = n_jobs

    def new_point_settings(self, k_neighbors=None) -> tuple[int, dict]:
        """New points' neighbours (None: the fit's) and similarity overrides."""
        k = check_count("Uniform.to_new", "k_neighbors", self.knn_index.k if k_neighbors is None else k_neighbors,
                        self.n_samples, "At most the number of training points.")
        return k, {"n_neighbors": k}

    def to_new(self, data, k_neighbors=None, return_distances=False):
        """New points' affinities: ``1 / k`` on each one's ``k_neighbors`` (None: the fit's)
        nearest training points."""
        k, overrides = self.new_point_settings(k_neighbors)
        return self._new_rows(data, k, return_distances, **overrides)


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

    def to_new(self, data, return_distances=False):
        raise GidrValueError(format_error("PrecomputedAffinities.to_new", "affinities computed from data",
                                          Described("a precomputed affinity matrix"),
                                          "A precomputed matrix has no data to find new points' neighbours in."))


def joint_probabilities_nn(neighbors, distances, perplexities, symmetrize=True, normalization="pair-wise",
                           n_reference_samples=None, n_jobs=1):
    """openTSNE's function: t-SNE affinities of a kNN graph at one or more perplexities
    (several: :class:`Multiscale`'s mean of scales), symmetrized and normalized to sum one
    (``"pair-wise"``), or each row to one (``"point-wise"``, for new points against
    ``n_reference_samples`` training points).

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_samples, n_reference_samples)
    """
    owner = "joint_probabilities_nn"
    if normalization not in ("pair-wise", "point-wise"):
        raise refuse(owner, "normalization", "'pair-wise' or 'point-wise'", normalization,
                     "'pair-wise' for a training P, 'point-wise' for new points.")
    indices = np.asarray(neighbors)
    distances = np.asarray(distances, dtype=np.float64)
    n, k = distances.shape
    n_reference = n if n_reference_samples is None else int(n_reference_samples)
    values = [perplexities] if isinstance(perplexities, numbers.Real) else list(perplexities)
    pipeline = tsne_pipeline("auto", 0, neighbors="precomputed", similarity="multiscale", perplexities=values)
    ctx = Context(n_samples=n, n_components=2, normalized=True, a=1.0, b=1.0, seed=0, registry=pipeline.registry)
    with _threads_of(n_jobs, owner):
        weights = pipeline.stages["similarity"].row_weights(distances, ctx)
    P = sp.csr_matrix((weights.ravel(), indices.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n_reference))
    if symmetrize:
        P = (P + P.T) / 2
    if normalization == "pair-wise":
        return sp.csr_matrix(P / P.sum())
    return sp.csr_matrix(sp.diags(1.0 / np.asarray(P.sum(axis=1)).ravel()) @ P)


def new_point_matrix(indices: np.ndarray, weights: np.ndarray, n_train: int) -> sp.csr_matrix:
    """The new points' affinities to the training points as a CSR matrix (n_new, n_train):
    row q holds the weights of its neighbours ``indices[q]``, scaled to sum to one."""
    n_new, k = indices.shape
    weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), np.finfo(float).tiny)
    return sp.csr_matrix((weights.ravel(), indices.ravel(), np.arange(0, n_new * k + 1, k)), shape=(n_new, n_train))


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


def p_of_graph(pipeline: Pipeline, graph, ctx: Context) -> sp.csr_matrix:
    """The normalized, symmetric P of a kNN graph through ``pipeline``'s similarity and
    symmetrize stages (as :meth:`gidr.Pipeline.run`)."""
    stages = pipeline.stages
    P = stages["symmetrize"].compute(stages["similarity"].compute(graph, ctx), ctx)
    return sp.csr_matrix(P / P.sum())
