"""umap-learn's further metrics in the exact neighbours stages: minkowski, seuclidean, mahalanobis,
hellinger, jaccard, haversine and numba-jitted function metrics.

Each metric's distances against SciPy's ``cdist`` or the formula written as a loop; the exact
graph against a brute-force sort; the numba backend against the reference; their queries
(transform); and each parameter error.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from gidr.pipeline import Pipeline
from gidr.validation import GidrValueError
from gidr_reference import neighbors as reference_neighbors
from gidr_reference import stages_graph as reference
from gidr_reference.distances import EXTRA_METRICS, extra_distances
from tests.helpers import assert_matches

numba = pytest.importorskip("numba")

from gidr_numba import stages_graph as fast  # noqa: E402
from gidr_numba.neighbors import exact_knn as numba_knn  # noqa: E402
from gidr_numba.query import exact_query as numba_query  # noqa: E402


@numba.njit
def jitted_l1(x, y):
    total = 0.0
    for f in range(x.shape[0]):
        total += abs(x[f] - y[f])
    return total


def _data(metric: str, n: int = 160, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Rows suited to ``metric`` and its metric_kwds."""
    rng = np.random.default_rng(seed)
    if metric == "haversine":
        return np.column_stack([rng.uniform(-1.5, 1.5, n), rng.uniform(-3.1, 3.1, n)]), {}
    if metric == "jaccard":
        X = (rng.random((n, 12)) < 0.3) * rng.integers(1, 4, (n, 12)).astype(np.float64)
        X[5] = 0.0  # an empty set
        X[6] = X[7]  # a duplicate
        return X, {}
    if metric == "hellinger":
        X = rng.poisson(2.0, size=(n, 10)).astype(np.float64)
        X[3] = 0.0
        return X, {}
    X = rng.normal(size=(n, 6))
    if metric == "minkowski":
        return X, {"p": 3.0}
    if metric == "seuclidean":
        return X, {"V": rng.uniform(0.5, 2.0, 6)}
    if metric == "mahalanobis":
        A = rng.normal(size=(6, 6))
        return X, {"VI": A @ A.T + 0.1 * np.eye(6)}
    return X, {}


def _formula(x: np.ndarray, y: np.ndarray, metric: str, kwds: dict) -> float:
    """One distance written as its formula (umap-learn's / pynndescent's conventions)."""
    if metric == "hellinger":
        if x.sum() == 0 or y.sum() == 0:
            return 0.0 if x.sum() == y.sum() else 1.0
        return math.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(x * y)) / math.sqrt(x.sum() * y.sum())))
    if metric == "haversine":
        h = math.sin((x[0] - y[0]) / 2) ** 2 + math.cos(x[0]) * math.cos(y[0]) * math.sin((x[1] - y[1]) / 2) ** 2
        return 2.0 * math.asin(math.sqrt(h))
    raise AssertionError(metric)


@pytest.mark.parametrize("metric", ["minkowski", "seuclidean", "mahalanobis"])
def test_parametrized_distances_are_scipys(metric):
    X, kwds = _data(metric)
    assert_matches(actual=reference_neighbors.pairwise_distances(X[:40], X, metric, kwds),
                   reference=cdist(X[:40], X, metric=metric, **kwds), rtol=1e-12)


def test_jaccard_is_scipys_on_the_sets_of_non_zero_features():
    X, _ = _data("jaccard")
    D = reference_neighbors.pairwise_distances(X[:40], X, "jaccard")
    assert_matches(actual=D, reference=cdist(X[:40] != 0, X != 0, metric="jaccard"), rtol=1e-12)
    assert D[5, 5] == 0.0 and D[6, 7] == 0.0  # empty with empty, and a duplicate


@pytest.mark.parametrize("metric", ["hellinger", "haversine"])
def test_distances_follow_the_formula(metric):
    X, kwds = _data(metric, n=50)
    expected = np.array([[_formula(x, y, metric, kwds) for y in X] for x in X])
    assert_matches(actual=reference_neighbors.pairwise_distances(X, X, metric), reference=expected,
                   rtol=1e-9, atol=1e-12)


def test_haversine_is_the_great_circle_distance():
    # two points on the equator a quarter turn apart, and a pole to the equator
    X = np.array([[0.0, 0.0], [0.0, math.pi / 2], [math.pi / 2, 1.0]])
    D = extra_distances(X, X, "haversine", {})
    assert_matches(actual=D[0, 1:], reference=[math.pi / 2, math.pi / 2], rtol=1e-12)


def test_function_metric_is_called_on_rows():
    X, _ = _data("euclidean")
    assert_matches(actual=reference_neighbors.pairwise_distances(X[:20], X, jitted_l1),
                   reference=cdist(X[:20], X, "cityblock"), rtol=1e-12)


def _brute_force(X, k, metric, kwds):
    D = cdist(X, X, metric=metric, **kwds) if metric in ("minkowski", "seuclidean", "mahalanobis") else \
        extra_distances(X, X, metric, kwds)
    indices, distances = [], []
    for i in range(len(X)):
        order = sorted((d, j) for j, d in enumerate(D[i]) if j != i)[:k]
        indices.append([j for _, j in order])
        distances.append([d for d, _ in order])
    return np.array(indices), np.array(distances)


@pytest.mark.parametrize("metric", EXTRA_METRICS)
def test_exact_graph_is_the_brute_force_one(metric):
    X, kwds = _data(metric)
    graph = reference_neighbors.exact_knn(X, 10, metric, kwds)
    indices, distances = _brute_force(X, 10, metric, kwds)
    assert_matches(actual=graph.distances, reference=distances, rtol=1e-12)
    np.testing.assert_array_equal(graph.indices, indices)


@pytest.mark.parametrize("metric", EXTRA_METRICS + ("function",))
def test_numba_graph_and_queries_match_the_reference(metric):
    X, kwds = _data(metric, n=400)
    name = jitted_l1 if metric == "function" else metric
    expected = reference_neighbors.exact_knn(X, 12, name, kwds)
    graph = numba_knn(X, 12, name, kwds)
    _assert_same_up_to_ties(graph, expected)
    X_new, _ = _data(metric, n=30, seed=1)
    _assert_same_up_to_ties(numba_query(X, X_new, 7, name, kwds),
                            reference_neighbors.exact_query(X, X_new, 7, name, kwds))


def _assert_same_up_to_ties(graph, expected):
    """Same distances to rounding, and the same neighbours wherever the distance is not tied (the
    squared values the Euclidean path orders may split a tie that their square roots make)."""
    assert_matches(actual=graph.distances, reference=expected.distances, rtol=1e-10, atol=1e-13)
    swapped = graph.indices != expected.indices
    tied = np.array([[np.sum(np.isclose(row, d, rtol=1e-10, atol=1e-13)) > 1 for d in row]
                     for row in expected.distances])
    assert not np.any(swapped & ~tied)


@pytest.mark.parametrize("metric", ["jaccard", "haversine"])
def test_numba_graph_is_bitwise_the_references_for_the_shared_formulas(metric):
    X, kwds = _data(metric, n=300)
    expected = reference_neighbors.exact_knn(X, 9, metric)
    graph = numba_knn(X, 9, metric)
    np.testing.assert_array_equal(graph.indices, expected.indices)
    np.testing.assert_array_equal(graph.distances, expected.distances)


@pytest.mark.parametrize("stage", [reference.ExactNeighbors, fast.ExactNeighbors])
@pytest.mark.parametrize("metric, kwds, match", [
    ("minkowski", {"p": 0.5}, "'p' entry .* finite float >= 1"),
    ("minkowski", {"p": np.inf}, "metric='chebyshev'"),
    ("minkowski", {"q": 2}, "Remove 'q'"),
    ("seuclidean", None, "a dict with 'V'.*X.var"),
    ("seuclidean", {"V": [1.0, -1.0]}, "'V' entry .* positive finite variances"),
    ("mahalanobis", {"VI": np.ones((2, 3))}, "'VI' entry .* square d x d"),
    ("mahalanobis", {"VI": np.array([[1.0, 2.0], [0.0, 1.0]])}, "symmetric positive semi-definite"),
    ("euclidean", {"p": 2}, "empty .* for metric 'euclidean'"),
])
def test_bad_metric_kwds_are_refused_at_construction(stage, metric, kwds, match):
    with pytest.raises(GidrValueError, match=match):
        stage(metric=metric, metric_kwds=kwds)


@pytest.mark.parametrize("knn", [reference_neighbors.exact_knn, numba_knn])
@pytest.mark.parametrize("metric, X, kwds, match", [
    ("seuclidean", np.ones((5, 3)), {"V": [1.0, 1.0]}, "of length 3 .* Got length 2"),
    ("mahalanobis", np.ones((5, 3)), {"VI": np.eye(2)}, r"of shape \(3, 3\)"),
    ("haversine", np.zeros((5, 3)), {}, "2 columns .* Got 3 columns"),
    ("haversine", np.full((5, 2), 45.0), {}, "np.radians"),
    ("hellinger", -np.ones((5, 2)), {}, "non-negative .* 10 negative"),
    ("jaccard", -np.eye(5), {}, "non-negative .* 5 negative"),
])
def test_data_a_metric_cannot_measure_is_refused(knn, metric, X, kwds, match):
    with pytest.raises(GidrValueError, match=match):
        knn(X, 2, metric, kwds)


def test_query_rows_are_checked_for_the_metric():
    X, _ = _data("hellinger")
    with pytest.raises(GidrValueError, match="The query points for metric 'hellinger' must be non-negative"):
        reference_neighbors.exact_query(X, -X[:3], 3, "hellinger")


def test_function_metric_errors():
    with pytest.raises(GidrValueError, match="numba-jitted function.*@numba.njit"):
        fast.ExactNeighbors(metric=lambda x, y: 0.0)
    with pytest.raises(GidrValueError, match="finite float .or a tuple"):
        reference_neighbors.exact_knn(np.eye(4), 2, numba.njit(lambda x, y: (np.inf, x)))
    with pytest.raises(GidrValueError, match="empty.*function metric"):
        reference.ExactNeighbors(metric=jitted_l1, metric_kwds={"p": 1})


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_pipeline_passes_metric_kwds_and_transform_uses_them(backend):
    X, kwds = _data("minkowski", n=200)
    pipeline = Pipeline.from_preset("gdr-umap", neighbors="exact", metric="minkowski", metric_kwds=kwds,
                                    backend=backend, random_state=0, n_epochs=20)
    result = pipeline.run(X)
    truth = reference_neighbors.exact_knn(X, result.graph.n_neighbors, "minkowski", kwds)
    assert_matches(actual=result.graph.distances, reference=truth.distances, rtol=1e-10)
    from gidr.transform import build_index

    answers = build_index(pipeline, result, X).query(X[:5] + 0.01, 4)
    assert_matches(actual=answers.distances,
                   reference=reference_neighbors.exact_query(X, X[:5] + 0.01, 4, "minkowski", kwds).distances,
                   rtol=1e-10)


@pytest.mark.parametrize("metric", ["seuclidean", "mahalanobis", "hellinger"])
def test_nndescent_searches_the_mapped_rows_of_euclidean_metrics(metric):
    """NN-descent on the mapped rows: recall against the exact graph (0.95: the margin NN-descent
    keeps on Euclidean blobs at this size), distances exact for the neighbours found, and the
    fitted index answers queries with the metric."""
    from gidr.types import Context

    rng = np.random.default_rng(4)
    centres = rng.normal(scale=4.0, size=(8, 6))
    X = np.abs(centres[rng.integers(0, 8, 2500)] + rng.normal(size=(2500, 6)))
    kwds = _data(metric)[1]
    stage = fast.NNDescentNeighbors(metric=metric, metric_kwds=kwds or None)
    ctx = Context(n_samples=len(X), n_components=2, normalized=False, a=1.0, b=1.0, seed=0, n_epochs=1)
    graph = stage.compute(X, 15, ctx)
    truth = reference_neighbors.exact_knn(X, 15, metric, kwds)
    found = np.mean([len(set(a) & set(b)) / 15 for a, b in zip(graph.indices, truth.indices)])
    assert found > 0.95
    exact = reference_neighbors.pairwise_distances(X[:50], X, metric, kwds)
    assert_matches(actual=graph.distances[:50],
                   reference=np.take_along_axis(exact, graph.indices[:50], axis=1), rtol=1e-10, atol=1e-13)
    queries = X[:40] * 1.01
    answers = stage.build_index(X, graph, ctx).query(queries, 5)
    expected = reference_neighbors.exact_query(X, queries, 5, metric, kwds)
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(answers.indices, expected.indices)]) > 0.95
    assert_matches(actual=answers.distances[answers.indices == expected.indices],
                   reference=expected.distances[answers.indices == expected.indices], rtol=1e-10, atol=1e-13)


def test_nndescent_refuses_the_metrics_it_does_not_search():
    with pytest.raises(GidrValueError, match="'metric' parameter of neighbors 'nndescent'.*'pynndescent'"):
        fast.NNDescentNeighbors(metric="jaccard")


@numba.njit
def l1_with_gradient(x, y):
    return np.abs(x - y).sum(), np.sign(x - y)


@pytest.mark.parametrize("knn", [reference_neighbors.exact_knn, numba_knn])
def test_functions_returning_a_gradient_give_their_distance(knn):
    """umap-learn accepts ``(distance, gradient)`` functions as metrics; the graph uses the distance."""
    X, _ = _data("euclidean", n=120)
    graph = knn(X, 6, l1_with_gradient)
    expected = reference_neighbors.exact_knn(X, 6, "manhattan")
    np.testing.assert_array_equal(graph.indices, expected.indices)
    assert_matches(actual=graph.distances, reference=expected.distances, rtol=1e-12)


def test_pynndescent_refuses_gradient_functions():
    pytest.importorskip("pynndescent")
    from gidr.types import Context

    ctx = Context(n_samples=50, n_components=2, normalized=False, a=1.0, b=1.0, seed=0, n_epochs=1)
    with pytest.raises(GidrValueError, match="a function returning a float.*tuple.*neighbors='exact'"):
        fast.PynndescentNeighbors(metric=l1_with_gradient).compute(_data("euclidean", n=50)[0], 5, ctx)
