"""umap-learn's ``metric_kwds``, ``disconnection_distance`` and ``transform_mode`` in gidr.UMAP and
gidr.GDR, the similarity stages' ``disconnection_distance``, and ``neighbors="auto"``'s fallback."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits, load_iris

from gidr import GDR, UMAP
from gidr.plugins import get_registry
from gidr.types import Context
from gidr.validation import GidrValueError
from gidr_reference import neighbors as reference_neighbors
from gidr_reference import stages_graph as reference
from gidr_reference.stages_graph import kept_row_weights
from tests.helpers import assert_matches

numba = pytest.importorskip("numba")

from gidr_numba import stages_graph as fast  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:The affinity graph has")
FAST = dict(n_epochs=30, random_state=0)


@pytest.fixture(scope="module")
def iris():
    return load_iris().data


def _ctx(n):
    return Context(n_samples=n, n_components=2, normalized=False, a=1.0, b=1.0, seed=0, n_epochs=10)


@pytest.mark.parametrize("stage", [reference.UmapSimilarity, fast.UmapSimilarity, reference.TsneSimilarity,
                                   fast.TsneSimilarity])
def test_disconnection_removes_exactly_the_edges_at_or_beyond_it(stage, iris):
    graph = reference_neighbors.exact_knn(iris, 12)
    threshold = float(np.quantile(graph.distances, 0.6))
    graph.distances[3, 4:] = threshold  # edges exactly at the threshold go too
    options = {"n_neighbors": 12} if "n_neighbors" in stage.param_names() else {"perplexity": 4.0}
    P = stage(disconnection_distance=threshold, **options).compute(graph, _ctx(len(iris)))
    kept = graph.distances < threshold
    rows = np.repeat(np.arange(len(iris)), 12)
    present = np.asarray(P[rows, graph.indices.ravel()]).ravel() > 0
    np.testing.assert_array_equal(present, kept.ravel())


@pytest.mark.parametrize("pair", [(fast.UmapSimilarity, reference.UmapSimilarity),
                                  (fast.TsneSimilarity, reference.TsneSimilarity)])
def test_kept_rows_are_weighed_as_graphs_of_their_kept_edges(pair, iris):
    graph = reference_neighbors.exact_knn(iris, 9)
    threshold = float(np.quantile(graph.distances, 0.5))
    options = {"n_neighbors": 9} if "n_neighbors" in pair[1].param_names() else {"perplexity": 3.0}
    weights = {}
    for stage in pair:
        weights[stage.backend] = stage(disconnection_distance=threshold, **options).row_weights(
            graph.distances, _ctx(len(iris)))
    assert_matches(actual=weights["numba"], reference=weights["reference"], rtol=1e-9, atol=1e-14)
    row = int(np.flatnonzero(np.count_nonzero(graph.distances < threshold, axis=1) == 4)[0])
    alone = pair[1](**options).row_weights(graph.distances[row:row + 1, :4], _ctx(len(iris)))
    assert_matches(actual=weights["reference"][row, :4], reference=alone[0], rtol=1e-12)
    assert np.all(weights["reference"][row, 4:] == 0)


def test_without_a_threshold_rows_are_weighed_whole():
    distances = np.array([[0.5, 1.0, 2.0]])
    np.testing.assert_array_equal(kept_row_weights(distances, None, lambda d: d * 2), distances * 2)
    np.testing.assert_array_equal(kept_row_weights(distances, 0.1, lambda d: d * 2), np.zeros((1, 3)))


@pytest.mark.parametrize("cls, backend", [(UMAP, "numba"), (UMAP, "reference"), (GDR, "numba")])
def test_isolated_points_stay_finite_with_a_warning(cls, backend):
    rng = np.random.default_rng(1)
    X = (rng.random((60, 30)) < 0.3).astype(float)
    X[-1] = 0.0  # jaccard distance 1 from every other row: umap-learn's bound removes all its edges
    with pytest.warns(UserWarning, match=r"disconnection_distance=1.0 removed .* left 1 point"):
        model = cls(metric="jaccard", n_neighbors=5, backend=backend, **FAST).fit(X)
    assert np.all(np.isfinite(model.embedding_))
    assert model.graph_[59].nnz == 0  # every edge to it is at distance 1, both ways


def test_disconnection_distance_defaults_and_overrides(iris):
    assert UMAP(metric="cosine").fit(iris[:40]).pipeline_.stages["similarity"].disconnection_distance == 2.0
    assert UMAP().fit(iris[:40]).pipeline_.stages["similarity"].disconnection_distance is None
    model = UMAP(disconnection_distance=np.inf, metric="cosine", **FAST).fit(iris[:40])
    assert model.pipeline_.stages["similarity"].disconnection_distance is None
    assert UMAP(disconnection_distance=0.5, **FAST).fit(iris).pipeline_.stages["similarity"].values[
        "disconnection_distance"] == 0.5
    with pytest.raises(GidrValueError, match="'disconnection_distance' parameter of UMAP must be a positive float"):
        UMAP(disconnection_distance=-1.0).fit(iris)


def test_transform_mode_graph_returns_the_fuzzy_rows(iris):
    model = UMAP(transform_mode="graph", n_neighbors=8, **FAST)
    graph = model.fit_transform(iris)
    assert graph is model.graph_
    rows = model.transform(iris[:5] + 0.01)
    assert sp.issparse(rows) and rows.shape == (5, 150)
    answers = reference_neighbors.exact_query(iris, iris[:5] + 0.01, 7)  # UMAP's n_neighbors counts the point
    weights = model.pipeline_.stages["similarity"].row_weights(answers.distances, None)
    for q in range(5):
        assert_matches(actual=rows[q, answers.indices[q]].toarray().ravel(), reference=weights[q], rtol=1e-12)
        assert rows[q].nnz == np.count_nonzero(weights[q])
    with pytest.raises(GidrValueError, match="'transform_mode' parameter of UMAP must be one of 'embedding'"):
        UMAP(transform_mode="graphs").fit(iris)


def test_metric_kwds_reach_the_graph_and_transform(iris):
    model = UMAP(metric="minkowski", metric_kwds={"p": 3}, n_neighbors=8, **FAST).fit(iris)
    truth = reference_neighbors.exact_knn(iris, 7, "minkowski", {"p": 3})  # n_neighbors=8: the point and 7
    assert_matches(actual=model.result_.graph.distances, reference=truth.distances, rtol=1e-10)
    assert np.all(np.isfinite(model.transform(iris[:3] + 0.1)))
    assert UMAP(metric_kwds=None, **FAST).fit(iris).embedding_.shape == (150, 2)
    with pytest.raises(GidrValueError, match="metric_kwds.*a dict with 'V'"):
        UMAP(metric="seuclidean").fit(iris)
    with pytest.raises(GidrValueError, match="'metric_kwds' parameter of UMAP must be a dict"):
        UMAP(metric_kwds=[1]).fit(iris)


def test_jitted_metric_through_umap(iris):
    @numba.njit
    def l1(x, y):
        return np.abs(x - y).sum()

    model = UMAP(metric=l1, n_neighbors=8, **FAST).fit(iris)
    truth = reference_neighbors.exact_knn(iris, 7, "manhattan")  # n_neighbors=8: the point and 7
    assert_matches(actual=model.result_.graph.distances, reference=truth.distances, rtol=1e-12)


def test_haversine_and_hellinger_data_errors_name_the_fix():
    X = load_digits().data[:100]
    with pytest.raises(GidrValueError, match="2 columns .* np.radians"):
        UMAP(metric="haversine").fit(X)
    with pytest.raises(GidrValueError, match="non-negative"):
        UMAP(metric="hellinger").fit(-X)


def test_auto_logs_the_quadratic_fallback(monkeypatch, caplog):
    registry = get_registry()
    auto = registry.get("neighbors", "auto", "auto").bind(registry, "auto")(metric="minkowski",
                                                                           metric_kwds={"p": 3})

    def refuse(self):
        raise GidrValueError("pynndescent refused (test)")

    monkeypatch.setattr(fast.PynndescentNeighbors, "check", refuse)
    X = np.zeros((3, 2))
    with caplog.at_level(logging.WARNING, logger="gidr"):
        stage = auto.select(X, 50_000, registry, "auto")
    assert stage.name == "exact" and stage.metric_kwds == {"p": 3}
    assert "O(n^2) = 2.5e+09 distances" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gidr"):
        auto.select(X, 1000, registry, "auto")
    assert "O(n^2)" not in caplog.text
