"""umap-learn's neighbour-graph parameters of :class:`gidr.UMAP` and :class:`gidr.GDR`.

``metric_kwds``
    the metric's parameters (``{"p": ...}`` minkowski, ``{"V": ...}`` seuclidean,
    ``{"VI": ...}`` mahalanobis), passed to the neighbours stage; None or ``{}``: none.
``disconnection_distance``
    kNN edges at or beyond it are removed before the similarity (the similarity stage's
    parameter of that name). None: umap-learn's default, the bound of a bounded metric
    (:data:`gidr_reference.distances.DISCONNECTION_DISTANCES`: cosine and correlation 2,
    hellinger and jaccard 1), else no removal; ``inf`` removes nothing.
``precomputed_knn``
    ``(indices, distances)`` or ``(indices, distances, index)``: the kNN graph in umap-learn's
    convention (each row lists the point itself, first; -1 marks a missing neighbour). It
    replaces the neighbours stage (``neighbors="precomputed"``); the third entry is not used.
    ``transform`` then builds an index over the training rows, with the fitted metric, at its
    first call (:func:`index_for_precomputed_knn`).
``transform_mode``
    ``"embedding"`` (default) or ``"graph"``: ``fit_transform`` returns ``graph_`` and
    ``transform`` the new points' rows of the directed graph
    (:func:`gidr.transform.new_points_graph`) instead of positions.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from gidr.stages.neighbors import graph_without_self
from gidr.types import KNNGraph
from gidr.validation import Described, GidrValueError, Interval, Options, Param, format_error

__all__ = ["TRANSFORM_MODES", "check_umap_graph_params", "graph_overrides", "given_knn", "knn_graph",
           "index_for_precomputed_knn", "query_distances"]

#: What ``transform_mode`` accepts.
TRANSFORM_MODES = ("embedding", "graph")


def check_umap_graph_params(estimator) -> None:
    """The estimator's ``metric_kwds``, ``disconnection_distance``, ``precomputed_knn`` and
    ``transform_mode``, checked before anything runs."""
    owner = type(estimator).__name__
    kwds = estimator.metric_kwds
    if kwds is not None and not (isinstance(kwds, dict) and all(isinstance(k, str) for k in kwds)):
        raise GidrValueError(format_error(f"The 'metric_kwds' parameter of {owner}", "a dict of the metric's "
                                          "parameters or None", kwds, "e.g. metric_kwds={'p': 3} for 'minkowski'."))
    distance = estimator.disconnection_distance
    if distance is not None and (isinstance(distance, (bool, np.bool_)) or not isinstance(distance, numbers.Real)
                                 or math.isnan(distance) or distance <= 0):
        raise GidrValueError(format_error(f"The 'disconnection_distance' parameter of {owner}",
                                          "a positive float (inf: keep every edge) or None (the metric's "
                                          "default)", distance))
    Param("transform_mode", None, (Options(TRANSFORM_MODES),)).validate(estimator.transform_mode, owner)
    knn = given_knn(estimator)
    if knn is None:
        return
    if isinstance(estimator.metric, str) and estimator.metric == "precomputed":
        raise GidrValueError(format_error(f"The 'precomputed_knn' parameter of {owner} with metric='precomputed'",
                                          "(None, None, None)", Described("a kNN graph"),
                                          "Pass either a distance matrix as X with metric='precomputed', or the "
                                          "data X with its kNN graph as precomputed_knn."))
    if estimator.unique:
        raise GidrValueError(format_error(f"The 'unique' parameter of {owner} with precomputed_knn", "False",
                                          True, "The graph lists every row; as umap-learn, unique=True is not "
                                          "available with a precomputed kNN graph."))


def graph_overrides(estimator) -> dict[str, Any]:
    """Pipeline overrides for ``metric_kwds`` (when not empty) and ``disconnection_distance`` (the
    resolved value, when finite)."""
    from gidr_reference.distances import DISCONNECTION_DISTANCES

    overrides: dict[str, Any] = {}
    if estimator.metric_kwds:
        overrides["metric_kwds"] = dict(estimator.metric_kwds)
    distance = estimator.disconnection_distance
    if distance is None and isinstance(estimator.metric, str):
        distance = DISCONNECTION_DISTANCES.get(estimator.metric)
    if distance is not None and math.isfinite(distance):
        overrides["disconnection_distance"] = float(distance)
    return overrides


def given_knn(estimator) -> tuple[Any, Any] | None:
    """``(indices, distances)`` of ``precomputed_knn``, or None when it is not given
    (``None`` or umap-learn's default ``(None, None, None)``)."""
    value = estimator.precomputed_knn
    owner = type(estimator).__name__
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) not in (2, 3):
        raise GidrValueError(format_error(f"The 'precomputed_knn' parameter of {owner}", "a tuple (indices, "
                                          "distances) or (indices, distances, index)", value))
    if all(entry is None for entry in value):
        return None
    if value[0] is None or value[1] is None:
        raise GidrValueError(format_error(f"The 'precomputed_knn' parameter of {owner}", "a tuple whose indices "
                                          "and distances are both arrays", value))
    return value[0], value[1]


def knn_graph(estimator, n_samples: int) -> KNNGraph:
    """The ``precomputed_knn`` of ``estimator`` as gidr's graph of ``n_samples`` rows (the point
    itself and missing entries dropped, :func:`gidr.stages.neighbors.graph_without_self`).

    :class:`gidr.UMAP`'s ``n_neighbors`` counts the point, as umap-learn's: ``n_neighbors - 1``
    others are used, umap-learn's output for the same ``n_neighbors``. :class:`gidr.GDR`'s counts
    the neighbours besides the point: there a graph of exactly ``n_neighbors`` columns that lists
    each point holds ``n_neighbors - 1`` others, which are used, with a warning.
    """
    owner = type(estimator).__name__
    indices, distances = given_knn(estimator)
    if len(estimator.precomputed_knn) == 3 and estimator.precomputed_knn[2] is not None:
        warnings.warn(f"The search index in precomputed_knn[2] is not used by {owner}: for transforming new data, "
                      f"gidr builds its own index over X, with metric {estimator.metric!r}, at the first transform.",
                      UserWarning, stacklevel=4)
    n_neighbors = Param("n_neighbors", None, (Interval(int, 1, None),)).validate(estimator.n_neighbors, owner)
    if getattr(estimator, "_n_neighbors_counts_self", False):
        return graph_without_self(indices, distances, n_samples, min(n_neighbors - 1, n_samples - 1))
    k = min(n_neighbors, n_samples - 1)
    columns = np.shape(indices)[1] if np.ndim(indices) == 2 else None
    try:
        return graph_without_self(indices, distances, n_samples, k)
    except GidrValueError:
        if columns != n_neighbors or k != n_neighbors or k < 2:
            raise
        graph = graph_without_self(indices, distances, n_samples, k - 1)
    warnings.warn(f"precomputed_knn has {columns} columns, the point itself and {k - 1} others (umap-learn counts "
                  f"the point in n_neighbors; gidr does not): {owner} uses those {k - 1} neighbours. Pass "
                  f"n_neighbors={k - 1} to silence this, or a graph of {k + 1} columns for {k} neighbours.",
                  UserWarning, stacklevel=4)
    return graph


def index_for_precomputed_knn(estimator, X_train: Any):
    """The index ``transform`` searches after a fit on ``precomputed_knn``: the neighbours stage
    ``neighbors="auto"`` would pick for ``X_train`` with the fitted metric and ``metric_kwds``,
    built over ``X_train`` (an NN-descent index searches the user's graph)."""
    from gidr.transform import transform_context

    pipeline, result = estimator.pipeline_, estimator.result_
    registry = pipeline.registry
    backend = pipeline.config["pipeline"].get("backend", "auto")
    params = {"metric": estimator.metric, **({"metric_kwds": dict(estimator.metric_kwds)}
                                             if estimator.metric_kwds else {})}
    auto = registry.get("neighbors", "auto", backend).bind(registry, backend)(**params)
    stage = auto.select(X_train, X_train.shape[0], registry, backend)
    if sp.issparse(X_train) and "sparse" not in stage.accepts:
        X_train = X_train.toarray()
    return stage.build_index(X_train, result.graph, transform_context(pipeline, result))


def query_distances(X: Any, n_train: int, owner: str) -> np.ndarray:
    """``transform``'s input after a fit on distances: each new point's distances to the
    ``n_train`` training points, as a dense float64 array (a sparse matrix's unstored entries
    become ``inf``, never chosen as neighbours; a stored 0 is a distance of 0)."""
    what = f"The input X of {owner}.transform after a fit on metric='precomputed'"
    shape = getattr(X, "shape", np.shape(X))
    if len(shape) != 2 or shape[1] != n_train or shape[0] < 1:
        raise GidrValueError(format_error(what, f"an (n_new, {n_train}) matrix of distances to the training "
                                          "points", Described(f"shape {tuple(shape)}"),
                                          "With metric='precomputed', transform needs the training data's distances "
                                          "to the new points, not data rows."))
    if sp.issparse(X):
        X = sp.coo_matrix(X)
        D = np.full(X.shape, np.inf)
        D[X.row, X.col] = X.data
        values = X.data
    else:
        D = values = np.asarray(X, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise GidrValueError(format_error(what, "finite and non-negative distances", "negative, NaN or infinite "
                                          "values", "Replace them with large finite distances."))
    return np.array(D, dtype=np.float64)
