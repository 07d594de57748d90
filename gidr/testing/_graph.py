"""Checks of the neighbors, similarity, symmetrize and init stages."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from gidr.stages import BASES
from gidr.stages.neighbors import INPUT_KINDS
from gidr.stages.similarity import directed_matrix
from gidr.types import KNNGraph
from gidr.testing._problems import (N_SAMPLES, _K, _assert_sorted_csr, _dataset, _exact_neighbors,
                                   _fuzzy_affinities, _graph, _rejects, pipeline_settings)


# ============================================================================ neighbors
def _neighbors_metric(stage) -> str:
    return stage.values.get("metric", "euclidean")


def _assert_graph(stage, graph, queries, X, k, *, exclude_self: bool, what: str) -> None:
    """Shape, index range, sorted rows, true distances, self excluded, recall >= 0.9 vs exact."""
    from scipy.spatial.distance import cdist

    owner = f"{stage.describe()} ({stage.backend}) {what}"
    assert isinstance(graph, KNNGraph), f"{owner}: must return a KNNGraph, got {type(graph).__name__}"
    indices, distances = np.asarray(graph.indices), np.asarray(graph.distances)
    n = len(queries)
    assert indices.shape == (n, k) and distances.shape == (n, k), \
        f"{owner}: shapes {indices.shape}, {distances.shape}, expected {(n, k)}"
    assert np.issubdtype(indices.dtype, np.integer), f"{owner}: indices must be integers"
    assert indices.min() >= 0 and indices.max() < len(X), f"{owner}: indices out of range"
    assert all(len(set(row)) == k for row in indices.tolist()), f"{owner}: a row repeats a neighbour"
    if exclude_self:
        assert not np.any(indices == np.arange(n)[:, None]), f"{owner}: a point is its own neighbour"
    assert np.all(np.diff(distances, axis=1) >= 0), f"{owner}: rows are not sorted by distance"
    metric = _neighbors_metric(stage)
    true = np.stack([cdist(queries[i:i + 1], X[indices[i]], metric=metric)[0] for i in range(n)])
    # pynndescent computes in float32 (relative error ~2e-7 here), and float64 distances expanded as
    # |x|^2 + |y|^2 - 2 x.y carry about sqrt(eps) |x| ~ 1e-7 absolute error near 0; squared or
    # twice-rooted distances are off by O(1).
    np.testing.assert_allclose(distances, true, rtol=1e-6, atol=1e-6,
                               err_msg=f"{owner}: distances are not the true {metric} distances")
    exact, _ = _exact_neighbors(queries, X, k, metric, exclude_self)
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(indices.tolist(), exact.tolist())])
    assert recall >= 0.9, f"{owner}: recall against exact neighbours is {recall:.3f} < 0.9"


def _accepts_reason(input_kind: str):
    def why_not(cls, env):
        if input_kind not in getattr(cls, "accepts", ()):
            return f"does not declare {input_kind!r} in 'accepts' ({sorted(getattr(cls, 'accepts', ()))})"
        return None
    return why_not


def _check_neighbors_capabilities(cls, env) -> None:
    accepts = getattr(cls, "accepts", None)
    assert isinstance(accepts, (set, frozenset)) and accepts, f"{cls.describe()}: 'accepts' must be a non-empty set"
    assert set(accepts) <= set(INPUT_KINDS), f"{cls.describe()}: 'accepts' {sorted(accepts)} not within {INPUT_KINDS}"
    assert isinstance(cls.answers_queries, bool), f"{cls.describe()}: 'answers_queries' must be a bool"
    stage = env.build(cls)
    data = _dataset() if "dense" in accepts else _graph(_dataset(), _K)
    chosen = stage.select(data, N_SAMPLES, env.registry, cls.backend)
    assert isinstance(chosen, BASES["neighbors"]), f"{cls.describe()}: select() must return a neighbors stage"


def _check_neighbors_input(input_kind: str):
    def run(cls, env) -> None:
        X = _dataset()
        data = {"dense": X, "sparse": sp.csr_matrix(X)}.get(input_kind)
        if input_kind == "distributed":  # row chunks of uneven sizes, on Dask's local scheduler
            import dask.array as da

            data = da.from_array(X, chunks=((N_SAMPLES // 3, N_SAMPLES // 2, N_SAMPLES - N_SAMPLES // 3
                                            - N_SAMPLES // 2), (X.shape[1],)))
        if input_kind == "precomputed":
            from scipy.spatial.distance import cdist

            data = cdist(X, X)
        stage = env.build(cls)
        graph = stage.compute(data, _K, env.ctx(n_samples=N_SAMPLES, seed=0))
        _assert_graph(stage, graph, X, X, _K, exclude_self=True, what=f"on {input_kind} input")
    return run


def _check_neighbors_precomputed_graph(cls, env) -> None:
    X = _dataset()
    stage = env.build(cls)
    wider = _graph(X, _K + 3)
    graph = stage.compute(wider, _K, env.ctx(n_samples=N_SAMPLES, seed=0))
    _assert_graph(stage, graph, X, X, _K, exclude_self=True, what="on a KNNGraph with more columns")


def _check_neighbors_queries(cls, env) -> None:
    X = _dataset(separation=4.0)  # separate blobs: a copy's own blob holds few candidates
    rng = np.random.default_rng(1)
    copies = [5, 17]
    X_new = np.vstack([X[rng.integers(0, N_SAMPLES, 10)] + rng.normal(scale=0.3, size=(10, X.shape[1])),
                       X[copies]])
    stage = env.build(cls)
    ctx = env.ctx(n_samples=N_SAMPLES, seed=0)
    data = X if "dense" in cls.accepts else sp.csr_matrix(X)
    index = stage.build_index(data, stage.compute(data, _K, ctx), ctx)
    graph = index.query(X_new, _K)
    _assert_graph(stage, graph, X_new, X, _K, exclude_self=False, what="answering queries")
    owner = f"{stage.describe()} ({stage.backend}) index"
    assert list(graph.indices[-2:, 0]) == copies, f"{owner}: a copy of a training point must have it first"
    assert np.all(np.abs(graph.distances[-2:, 0]) <= 1e-6), f"{owner}: a copy must be at distance 0"
    alone = index.query(X_new[:3], _K)
    assert np.array_equal(alone.indices, graph.indices[:3]), \
        f"{owner}: a query's answer must not depend on the other points queried with it"


def _why_not_queries(cls, env):
    if not getattr(cls, "answers_queries", False):
        return "declares answers_queries=False (build_index is not offered)"
    if not {"dense", "sparse"} & set(cls.accepts):
        return "accepts neither dense nor sparse input"
    return None


# ============================================================================ similarity
def _check_similarity(cls, env) -> None:
    stage = env.build(cls)
    owner = f"{cls.describe()} ({cls.backend})"
    required = stage.n_neighbors_required(N_SAMPLES)
    assert isinstance(required, (int, np.integer)) and required >= 1, \
        f"{owner}: n_neighbors_required must be a positive int, got {required!r}"
    k = min(int(required), N_SAMPLES - 1)
    graph = _graph(_dataset(), k)
    ctx = env.ctx(n_samples=N_SAMPLES, seed=0)
    W = np.asarray(stage.row_weights(graph.distances.copy(), ctx))
    assert W.shape == graph.distances.shape, f"{owner}: row_weights shape {W.shape}, expected {graph.distances.shape}"
    assert np.all(np.isfinite(W)) and np.all(W >= 0), f"{owner}: row_weights must be finite and non-negative"
    assert np.any(W > 0), f"{owner}: row_weights are all zero"
    permutation = np.random.default_rng(0).permutation(N_SAMPLES)
    np.testing.assert_allclose(stage.row_weights(graph.distances[permutation], ctx), W[permutation], rtol=1e-12,
                               atol=0, err_msg=f"{owner}: a row's weights depend on the other rows")
    np.testing.assert_allclose(stage.row_weights(graph.distances[3:5], ctx), W[3:5], rtol=1e-12, atol=0,
                               err_msg=f"{owner}: a row's weights depend on which rows come with it")
    P = stage.compute(graph, ctx)
    assert P.shape == (N_SAMPLES, N_SAMPLES), f"{owner}: compute() shape {P.shape}"
    _assert_sorted_csr(P, f"{owner} compute()")
    dense = P.toarray()
    rows = np.repeat(np.arange(N_SAMPLES), k)
    np.testing.assert_allclose(dense[rows, graph.indices.ravel()], W.ravel(), rtol=1e-12, atol=0,
                               err_msg=f"{owner}: compute() must place row_weights at the graph's edges")


# ============================================================================ symmetrize
def _check_symmetrize(cls, env) -> None:
    stage = env.build(cls)
    owner = f"{cls.describe()} ({cls.backend})"
    graph = _graph(_dataset())
    weights = np.random.default_rng(2).uniform(0.05, 1.0, size=graph.indices.shape)
    P_directed = directed_matrix(graph.indices, weights)
    before = P_directed.copy()
    P = stage.compute(P_directed, env.ctx(n_samples=N_SAMPLES, seed=0))
    assert (abs(P_directed - before)).max() == 0, f"{owner}: modified its input"
    assert P.shape == (N_SAMPLES, N_SAMPLES), f"{owner}: shape {P.shape}"
    _assert_sorted_csr(P, owner)
    assert np.all(P.diagonal() == 0), f"{owner}: the diagonal must be zero"
    if getattr(cls, "symmetric", True):
        asymmetry = abs(P - P.T).max()
        assert asymmetry <= 1e-12 * abs(P).max(), f"{owner}: P is not symmetric (max |P - P.T| = {asymmetry:.3g})"


# ============================================================================ init
def _check_init(cls, env) -> None:
    stage = env.build(cls)
    owner = f"{cls.describe()} ({cls.backend})"
    X = _dataset()
    for normalized, n_components in ((False, 2), (True, 2), (False, 3)):
        if _rejects(stage, pipeline_settings(normalized=normalized, n_components=n_components)):
            continue
        P = _fuzzy_affinities(X, normalized)
        ctx = env.ctx(n_samples=N_SAMPLES, n_components=n_components, normalized=normalized, seed=7)
        X_before, P_before = X.copy(), P.copy()
        Y = stage.compute(X, P, ctx)
        where = f"{owner} (normalized={normalized}, n_components={n_components})"
        assert isinstance(Y, np.ndarray) and Y.dtype == np.float64, f"{where}: must return a float64 ndarray"
        assert Y.shape == (N_SAMPLES, n_components), f"{where}: shape {Y.shape}"
        assert np.all(np.isfinite(Y)), f"{where}: non-finite positions"
        assert np.array_equal(X, X_before) and abs(P - P_before).max() == 0, f"{where}: modified its input"
        assert np.array_equal(stage.compute(X, P, ctx), Y), f"{where}: the same seed must give the same bits"
