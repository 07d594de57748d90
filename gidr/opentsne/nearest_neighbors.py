"""openTSNE's nearest-neighbour indexes (``openTSNE.nearest_neighbors``) over gidr's searches.

An index finds each training point's ``k`` nearest other points (:meth:`KNNIndex.build`)
and answers queries for new points (:meth:`KNNIndex.query`); the affinity classes of
:mod:`gidr.opentsne.affinity` take one as ``knn_index=`` instead of the data. The searches
are gidr's neighbours stages, which return every row sorted by (distance, index) with the
point itself excluded (duplicates of it are ordinary neighbours at distance 0):

- :class:`GidrNeighbors` (``method="auto"``, ``"exact"`` or ``"approx"``): gidr's exact
  search for small inputs and its NN-descent above (``"auto"``), or always exact;
- :class:`NNDescent` (``method="pynndescent"``): gidr's pynndescent stage;
- :class:`Sklearn`: scikit-learn's ``NearestNeighbors`` with ``knn_kwargs`` passed on to it
  (openTSNE's exact index; ``method="exact"`` with ``knn_kwargs`` builds it);
- :class:`PrecomputedDistanceMatrix` and :class:`PrecomputedNeighbors`: a user's distances
  or neighbour lists.

openTSNE's ``Annoy`` and ``HNSW`` need packages gidr does not use; their classes exist so
that imports work, and refuse construction with the fix.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from gidr.stages.neighbors import NeighborsIndex
from gidr.types import Context, KNNGraph
from gidr.validation import Described, GidrValueError, check_array, format_error, resolve_seed

__all__ = ["KNNIndex", "GidrNeighbors", "NNDescent", "Sklearn", "Annoy", "HNSW", "PrecomputedDistanceMatrix",
           "PrecomputedNeighbors", "get_knn_index"]


def _error(owner: str, name: str, expected: str, got: Any, fix: str) -> GidrValueError:
    return GidrValueError(format_error(f"The '{name}' parameter of {owner}", expected, got, fix))


def check_count(owner: str, name: str, value: Any, most: int,
                fix: str = "Each point has at most n_samples - 1 others.") -> int:
    """``value`` as an int in [1, ``most``] (a count of neighbours), else the error naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not 1 <= value <= most:
        raise _error(owner, name, f"an int in [1, {most}]", value, fix)
    return int(value)


def _check_k(owner: str, k: Any, n_samples: int) -> int:
    return check_count(owner, "k", k, n_samples - 1, "Lower k: each point has at most n_samples - 1 others.")


class _Queries(NeighborsIndex):
    """gidr's query interface over an index's :meth:`KNNIndex.query`."""

    def __init__(self, index: "KNNIndex") -> None:
        self.index = index

    def query(self, X_new, n_neighbors: int) -> KNNGraph:
        indices, distances = self.index.query(X_new, n_neighbors)
        return KNNGraph(np.asarray(indices, dtype=np.int64), np.asarray(distances, dtype=np.float64))


class KNNIndex:
    """openTSNE's index interface: ``build()`` the training points' kNN graph, ``query`` new points.

    Parameters
    ----------
    data : array-like of shape (n_samples, n_features)
    k : int
        Neighbours of each point, self excluded; at most ``n_samples - 1``.
    metric : str or callable
        One of :attr:`VALID_METRICS`, or a function.
    metric_params : dict or None
    n_jobs : int
    random_state : int, RandomState, Generator or None
    verbose : bool
    knn_kwargs : dict or None
        Keyword arguments of the underlying search.

    Attributes
    ----------
    n_samples, k : int
    accepts : frozenset
        ``{"dense"}``, or ``{"dense", "sparse"}`` for an index that reads sparse rows.
    backend : str
        The gidr backend that searches (recorded with a fit).
    """

    VALID_METRICS: tuple = ()
    accepts = frozenset({"dense"})
    backend = "reference"

    def __init__(self, data, k, metric="euclidean", metric_params=None, n_jobs=1, random_state=None, verbose=False,
                 knn_kwargs=None) -> None:
        owner = type(self).__name__
        self.data = check_array(data, allow_sparse="sparse" in self.accepts)
        self.n_samples = self.data.shape[0]
        self.k = _check_k(owner, k, self.n_samples)
        self.metric = self.check_metric(metric)
        self.metric_params = metric_params
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.knn_kwargs = {} if knn_kwargs is None else dict(knn_kwargs)
        self.index = None

    def check_metric(self, metric: Any) -> Any:
        """``metric`` when this index knows it (a function is passed on as it is)."""
        if callable(metric) or metric in self.VALID_METRICS:
            return metric
        raise _error(type(self).__name__, "metric", "one of " + ", ".join(map(repr, self.VALID_METRICS)),
                     metric, "Pick a listed metric, or pass a function metric(x, y) -> float.")

    def build(self) -> tuple[np.ndarray, np.ndarray]:
        """Each training point's ``k`` nearest other points.

        Returns
        -------
        indices : ndarray of shape (n_samples, k), int64
        distances : ndarray of shape (n_samples, k), float64, rows increasing
        """
        raise NotImplementedError

    def query(self, query, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest training points of each row of ``query``, as :meth:`build` returns them."""
        raise NotImplementedError

    def neighbors_index(self) -> NeighborsIndex:
        """This index as gidr's query interface (what ``transform`` and ``to_new`` call)."""
        return _Queries(self)


# ---------------------------------------------------------------------- gidr's searches
class GidrNeighbors(KNNIndex):
    """gidr's neighbours stages as an index: ``method`` ``"auto"`` (exact search up to 4,096
    points, NN-descent above, as ``gidr.TSNE``), ``"exact"`` or ``"pynndescent"``.

    ``knn_kwargs`` are the stage's own parameters (``n_trees`` and ``n_iters`` for
    ``"pynndescent"``; the others take none). ``backend`` is gidr's (``"auto"``, ``"numba"``,
    ``"reference"``). The stage and its graph are kept, so that queries reuse them.
    """

    method = "auto"

    def __init__(self, data, k, metric="euclidean", metric_params=None, n_jobs=1, random_state=None, verbose=False,
                 knn_kwargs=None, method=None, backend="auto") -> None:
        from gidr.opentsne.affinity import tsne_pipeline  # noqa: PLC0415 (circular)

        self.method = self.method if method is None else method
        extra = dict(knn_kwargs or {})
        own = {param.name for param in tsne_pipeline(backend, 0, neighbors=self.method).stages["neighbors"].params}
        own -= {"metric", "metric_kwds"}
        unknown = sorted(set(extra) - own)
        if unknown:
            raise _error(type(self).__name__, "knn_kwargs",
                         "parameters of gidr's neighbors '%s' stage (%s)" % (self.method, ", ".join(sorted(own))
                                                                            or "it takes none"),
                         knn_kwargs, f"Remove {unknown[0]!r}; pass scikit-learn's keyword arguments with "
                                     "method='exact' (a Sklearn index).")
        if metric_params is not None:
            extra["metric_kwds"] = dict(metric_params)
        if not isinstance(metric, str) or metric != "precomputed":
            extra["metric"] = metric
        self.pipeline = tsne_pipeline(backend, random_state, neighbors=self.method, **extra)
        self.seed = resolve_seed(random_state)
        stage = self.pipeline.stages["neighbors"]
        self.accepts = stage.accepts
        super().__init__(data, k, metric, metric_params, n_jobs, random_state, verbose, knn_kwargs)
        self.stage = self.pipeline.neighbors_for(self.data)
        self.backend = self.stage.backend
        self.graph = None

    def check_metric(self, metric: Any) -> Any:
        return metric  # the neighbours stage checked it when the pipeline was built

    def _context(self) -> Context:
        return Context(n_samples=self.n_samples, n_components=2, normalized=True, a=1.0, b=1.0, seed=self.seed,
                       registry=self.pipeline.registry)

    def build(self) -> tuple[np.ndarray, np.ndarray]:
        if self.graph is None:
            self.stage.check_n_samples(self.n_samples)
            self.graph = self.stage.compute(self.data, self.k, self._context())
        return np.asarray(self.graph.indices, dtype=np.int64), np.asarray(self.graph.distances, dtype=np.float64)

    def neighbors_index(self) -> NeighborsIndex:
        if self.index is None:
            if not getattr(self.stage, "answers_queries", True):
                raise GidrValueError(format_error(f"Queries to {self.stage.describe()}", "a searchable index",
                                                  Described("a stage that answers no queries"),
                                                  "Use method='exact' or 'auto'."))
            self.build()
            self.index = self.stage.build_index(self.data, self.graph, self._context())
        return self.index

    def query(self, query, k: int) -> tuple[np.ndarray, np.ndarray]:
        rows = check_array(query, name="query", min_samples=1, allow_sparse="sparse" in self.accepts)
        graph = self.neighbors_index().query(rows, _check_k(type(self).__name__, k, self.n_samples + 1))
        return np.asarray(graph.indices, dtype=np.int64), np.asarray(graph.distances, dtype=np.float64)


class NNDescent(GidrNeighbors):
    """pynndescent's NN-descent (openTSNE's ``NNDescent``), through gidr's ``pynndescent``
    stage; ``knn_kwargs`` may set its ``n_trees`` and ``n_iters``."""

    method = "pynndescent"

    @classmethod
    def _valid(cls) -> tuple:
        try:
            from pynndescent.distances import named_distances
        except ImportError:  # the stage refuses it with the fix when it runs
            return ()
        return tuple(sorted(named_distances))


class _ValidMetrics:
    """``NNDescent.VALID_METRICS``, read from pynndescent when first asked."""

    def __get__(self, obj, owner):
        return owner._valid()


NNDescent.VALID_METRICS = _ValidMetrics()


class Sklearn(KNNIndex):
    """scikit-learn's exact ``NearestNeighbors`` (openTSNE's ``Sklearn``), with ``knn_kwargs``
    (``algorithm``, ``leaf_size``, ...) passed on to it."""

    accepts = frozenset({"dense", "sparse"})

    @property
    def VALID_METRICS(self) -> tuple:  # noqa: N802 (openTSNE's name)
        from sklearn.neighbors import VALID_METRICS

        return tuple(sorted(set(VALID_METRICS["brute"])))

    def build(self) -> tuple[np.ndarray, np.ndarray]:
        """The search runs once; later calls (``set_perplexity``) return its graph."""
        if self.index is None:
            from sklearn import neighbors  # at call time, so that a patched NearestNeighbors is used

            from gidr.opentsne.affinity import job_count  # noqa: PLC0415 (circular)

            self.index = neighbors.NearestNeighbors(n_neighbors=self.k, metric=self.metric,
                                                    metric_params=self.metric_params,
                                                    n_jobs=job_count(self.n_jobs, "Sklearn"), **self.knn_kwargs)
            self.index.fit(self.data)
            distances, indices = self.index.kneighbors(n_neighbors=self.k)  # without X: each point excluded
            self.graph = _sorted(indices, distances)
        return self.graph

    def query(self, query, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.index is None:
            self.build()
        rows = check_array(query, name="query", min_samples=1, allow_sparse=True)
        distances, indices = self.index.kneighbors(rows, n_neighbors=_check_k("Sklearn.query", k, self.n_samples + 1))
        return _sorted(indices, distances)


def _sorted(indices, distances) -> tuple[np.ndarray, np.ndarray]:
    """Rows ordered by (distance, index), as gidr's stages return them."""
    indices = np.asarray(indices, dtype=np.int64)
    distances = np.asarray(distances, dtype=np.float64)
    order = np.lexsort((indices, distances), axis=-1)
    return np.take_along_axis(indices, order, axis=1), np.take_along_axis(distances, order, axis=1)


class _Refused(KNNIndex):
    package = ""

    def __init__(self, *args, **kwargs) -> None:
        raise _error(type(self).__name__, "index", "an index gidr provides", Described(f"{type(self).__name__}, "
                     f"which needs the {self.package} package"),
                     "Use method='auto' (gidr's NN-descent) or 'pynndescent' instead.")


class Annoy(_Refused):
    """openTSNE's Annoy index: not provided (gidr does not use the annoy package)."""

    package = "annoy"


class HNSW(_Refused):
    """openTSNE's HNSW index: not provided (gidr does not use the hnswlib package)."""

    package = "hnswlib"


# ---------------------------------------------------------------------- a user's own distances
class PrecomputedDistanceMatrix(KNNIndex):
    """The ``k`` nearest neighbours read off a square distance matrix (openTSNE's class).

    Parameters
    ----------
    distance_matrix : array-like or sparse matrix of shape (n_samples, n_samples)
        Non-negative; the diagonal is ignored. A sparse matrix lists each point's known
        distances (its stored entries).
    k : int

    ``query`` takes the distances of new points to the training points, shape
    (n_new, n_samples), dense.
    """

    def __init__(self, distance_matrix, k) -> None:
        from gidr.pipeline import precomputed_input  # noqa: PLC0415 (the pipeline's own rules)

        from gidr.opentsne.affinity import tsne_pipeline  # noqa: PLC0415 (circular)

        D = precomputed_input(distance_matrix)
        self.n_samples = D.shape[0]
        self.k = _check_k("PrecomputedDistanceMatrix", k, self.n_samples)
        pipeline = tsne_pipeline("auto", 0, neighbors="precomputed")
        stage = pipeline.stages["neighbors"]
        ctx = Context(n_samples=self.n_samples, n_components=2, normalized=True, a=1.0, b=1.0, seed=0,
                      registry=pipeline.registry)
        graph = stage.compute(D, self.k, ctx)
        self.indices, self.distances = np.asarray(graph.indices, np.int64), np.asarray(graph.distances, np.float64)
        self.data, self.metric, self.metric_params, self.knn_kwargs, self.index = None, "precomputed", None, {}, None

    def build(self) -> tuple[np.ndarray, np.ndarray]:
        return self.indices, self.distances

    def query(self, query, k: int) -> tuple[np.ndarray, np.ndarray]:
        D = np.asarray(query.toarray() if sp.issparse(query) else query, dtype=np.float64)
        if D.ndim != 2 or D.shape[1] != self.n_samples or not np.all(np.isfinite(D)) or (D.size and D.min() < 0):
            raise _error("PrecomputedDistanceMatrix.query", "query",
                         f"finite, non-negative distances of shape (n_new, {self.n_samples})", D,
                         "Pass each new point's distances to every training point.")
        k = _check_k("PrecomputedDistanceMatrix.query", k, self.n_samples + 1)
        columns = np.broadcast_to(np.arange(self.n_samples), D.shape)
        order = np.lexsort((columns, D), axis=-1)[:, :k]
        return order.astype(np.int64), np.take_along_axis(D, order, axis=1)


class PrecomputedNeighbors(KNNIndex):
    """A user's kNN graph (openTSNE's class): ``neighbors[i]`` lists point i's ``k`` nearest
    others and ``distances[i]`` their distances. Rows are reordered by (distance, index).
    There is no data behind it, so it answers no queries.

    Parameters
    ----------
    neighbors : array-like of int, shape (n_samples, k)
    distances : array-like of float, shape (n_samples, k)
    """

    def __init__(self, neighbors, distances) -> None:
        owner = "PrecomputedNeighbors"
        indices = np.asarray(neighbors)
        values = np.asarray(distances, dtype=np.float64)
        if indices.ndim != 2 or indices.shape != values.shape or indices.shape[0] < 2 or indices.shape[1] < 1:
            raise _error(owner, "neighbors", "two arrays of the same shape (n_samples, k), n_samples >= 2",
                         Described(f"shapes {indices.shape} and {values.shape}"),
                         "Pass one row of k neighbour indices and one of their distances per point.")
        n = indices.shape[0]
        if not np.issubdtype(indices.dtype, np.integer) or indices.min() < 0 or indices.max() >= n:
            raise _error(owner, "neighbors", f"integer indices in [0, {n - 1}]", indices,
                         "Each entry is the row number of a neighbour among the n_samples points.")
        if np.any(indices == np.arange(n)[:, None]):
            raise _error(owner, "neighbors", "each point's neighbours without the point itself",
                         Described("a row that lists its own point"),
                         "Drop the self column (a kNN query of the training set often returns it first).")
        if not np.all(np.isfinite(values)) or values.min() < 0:
            raise _error(owner, "distances", "finite, non-negative distances", values,
                         "Distances are >= 0; remove missing neighbours instead of marking them.")
        self.indices, self.distances = _sorted(indices, values)
        self.n_samples, self.k = n, indices.shape[1]
        self.data, self.metric, self.metric_params, self.knn_kwargs, self.index = None, None, None, {}, None

    def build(self) -> tuple[np.ndarray, np.ndarray]:
        return self.indices, self.distances

    def query(self, *args, **kwargs):
        raise GidrValueError(format_error(
            "A query of PrecomputedNeighbors", "an index over data", Described("neighbour lists without data"),
            "Build the affinities from the data (or a Sklearn/GidrNeighbors index) to embed new points."))


#: openTSNE's ``method`` names -> the index class that serves them.
METHODS = {"auto": GidrNeighbors, "approx": GidrNeighbors, "exact": GidrNeighbors, "pynndescent": NNDescent,
           "annoy": Annoy, "hnsw": HNSW}


def get_knn_index(data, method, k, metric, metric_params=None, n_jobs=1, random_state=None, verbose=False,
                  knn_kwargs=None, backend="auto") -> KNNIndex:
    """The index openTSNE's ``method`` names, built over ``data`` (not searched yet).

    ``"auto"`` and ``"approx"`` are gidr's choice (exact search up to 4,096 points,
    NN-descent above), ``"exact"`` gidr's exact search, or scikit-learn's
    ``NearestNeighbors`` when ``knn_kwargs`` (its keyword arguments) are given;
    ``"pynndescent"`` pynndescent; a :class:`KNNIndex` is returned as it is;
    ``metric="precomputed"`` reads ``data`` as a square distance matrix.
    """
    if isinstance(method, KNNIndex):
        return method
    if isinstance(metric, str) and metric == "precomputed":
        return PrecomputedDistanceMatrix(data, k)
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise _error("the affinities", "method", "one of " + ", ".join(map(repr, METHODS)) + " or a KNNIndex",
                     method, "Pass 'auto' (gidr picks the search) or an index from gidr.opentsne.nearest_neighbors.")
    method = method.lower()
    if method == "exact" and knn_kwargs:
        return Sklearn(data, k, metric, metric_params, n_jobs, random_state, verbose, knn_kwargs)
    cls = METHODS[method]
    kwargs = {} if cls is not GidrNeighbors else {"method": "exact" if method == "exact" else "auto"}
    return cls(data, k, metric, metric_params, n_jobs, random_state, verbose, knn_kwargs, backend=backend, **kwargs)
