"""umap-learn's ``precomputed_knn=(indices, distances[, index])`` in gidr.UMAP and gidr.GDR.

The graph is given in umap-learn's convention (each row lists the point itself, first); the
fit uses it instead of computing one (the neighbours stage is never called) and gives the
embedding that the pipeline's ``neighbors="precomputed"`` path gives for the same graph
without the point; transform builds an index over X at its first call. gidr.UMAP's
``n_neighbors`` counts the point as umap-learn's does (``K + 1`` is K others), gidr.GDR's does
not (``K``).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris

from gidr import GDR, UMAP, Pipeline
from gidr.auto import AutoNeighbors
from gidr.types import KNNGraph
from gidr.validation import GidrValueError
from gidr_reference import neighbors as reference_neighbors
from gidr_reference import stages_graph as reference_stages
from tests.helpers import assert_matches

pytestmark = pytest.mark.filterwarnings("ignore:The affinity graph has 2 connected components")
K = 10
FAST = dict(n_epochs=40, random_state=3)
#: The n_neighbors that gives K neighbours besides the point.
WITH_K_OTHERS = {UMAP: K + 1, GDR: K}


@pytest.fixture(scope="module")
def iris():
    X = load_iris().data
    return X + np.random.default_rng(0).normal(scale=1e-3, size=X.shape)  # no duplicate rows: no ties


@pytest.fixture(scope="module")
def graph(iris):
    return reference_neighbors.exact_knn(iris, K + 2)


def _with_self(graph: KNNGraph, columns: int):
    """umap-learn's convention: the point itself first, at distance 0."""
    n = graph.n_samples
    indices = np.column_stack([np.arange(n), graph.indices])[:, :columns]
    distances = np.column_stack([np.zeros(n), graph.distances])[:, :columns]
    return indices, distances


@pytest.mark.parametrize("cls", [UMAP, GDR])
def test_fit_uses_the_graph_as_the_precomputed_path_does(cls, iris, graph, monkeypatch):
    knn = _with_self(graph, K + 3)
    n_neighbors = WITH_K_OTHERS[cls]
    expected = cls(n_neighbors=n_neighbors, **FAST).fit(iris)  # its own exact graph: the same one

    def refuse(*args, **kwargs):
        raise AssertionError("the neighbours stage ran")

    for stage in (AutoNeighbors, reference_stages.ExactNeighbors):
        monkeypatch.setattr(stage, "compute", refuse)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*precomputed_knn")  # a graph wide enough: no note
        model = cls(n_neighbors=n_neighbors, precomputed_knn=knn, **FAST).fit(iris)
    preset = model.pipeline_.config["pipeline"]["preset"]
    run = Pipeline.from_preset(preset, neighbors="precomputed", n_neighbors=K, **FAST).run(
        KNNGraph(graph.indices[:, :K].copy(), graph.distances[:, :K].copy()))
    np.testing.assert_array_equal(model.embedding_, run.embedding)
    np.testing.assert_array_equal(model.embedding_, expected.embedding_)
    assert model.result_.graph.n_neighbors == K


def test_point_itself_is_dropped_wherever_it_sits(iris, graph):
    indices, distances = _with_self(graph, K + 1)
    indices[:, [0, 1]] = indices[:, [1, 0]]  # a duplicate-like order: the point in second place
    distances[:, [0, 1]] = distances[:, [1, 0]]
    model = UMAP(n_neighbors=K + 1, precomputed_knn=(indices, distances), **FAST).fit(iris)
    np.testing.assert_array_equal(model.result_.graph.indices, graph.indices[:, :K])


def test_missing_entries_are_skipped(iris, graph):
    indices, distances = _with_self(graph, K + 3)
    indices[:, -1], distances[:, -1] = -1, np.inf  # umap-learn's missing neighbour
    model = UMAP(n_neighbors=K + 1, precomputed_knn=(indices, distances), **FAST).fit(iris)
    np.testing.assert_array_equal(model.result_.graph.distances, graph.distances[:, :K])


def test_umap_learns_width_is_umap_learns_graph(iris, graph):
    """umap-learn's nearest_neighbors(n_neighbors=K) output, the point and K - 1 others, is the
    graph gidr.UMAP(n_neighbors=K) computes: no note, the same embedding."""
    knn = _with_self(graph, K)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*precomputed_knn")
        model = UMAP(n_neighbors=K, precomputed_knn=knn, **FAST).fit(iris)
    assert model.result_.graph.n_neighbors == K - 1
    np.testing.assert_array_equal(model.embedding_, UMAP(n_neighbors=K, **FAST).fit(iris).embedding_)


def test_gdr_uses_the_others_of_umap_learns_width_with_a_warning(iris, graph):
    knn = _with_self(graph, K)  # GDR's n_neighbors counts the others only
    with pytest.warns(UserWarning, match=f"the point itself and {K - 1} others .* n_neighbors={K - 1}"):
        model = GDR(n_neighbors=K, precomputed_knn=knn, **FAST).fit(iris)
    np.testing.assert_array_equal(model.embedding_, GDR(n_neighbors=K - 1, **FAST).fit(iris).embedding_)


def test_search_index_entry_is_noted_and_not_used(iris, graph):
    indices, distances = _with_self(graph, K + 1)
    with pytest.warns(UserWarning, match="precomputed_knn.2. is not used .* transforming new data"):
        model = UMAP(n_neighbors=K + 1, precomputed_knn=(indices, distances, object()), **FAST).fit(iris)
    assert model.result_.graph.n_neighbors == K


def test_default_means_no_graph(iris):
    a = UMAP(n_neighbors=K, precomputed_knn=(None, None, None), **FAST).fit(iris)
    b = UMAP(n_neighbors=K, precomputed_knn=None, **FAST).fit(iris)
    np.testing.assert_array_equal(a.embedding_, b.embedding_)


def test_transform_builds_an_index_over_x_with_the_fitted_metric(iris, graph):
    new = iris[:7] + 0.05
    fitted = UMAP(n_neighbors=K, **FAST).fit(iris)
    model = UMAP(n_neighbors=K, precomputed_knn=_with_self(graph, K + 1), **FAST).fit(iris)
    assert model._query_index is None  # nothing built by the fit
    assert_matches(actual=model.transform(new), reference=fitted.transform(new), rtol=1e-12)
    index = model._query_index
    model.transform(new)
    assert model._query_index is index  # built once

    manhattan = reference_neighbors.exact_knn(iris, K, "manhattan")
    knn = _with_self(manhattan, K + 1)
    model = UMAP(n_neighbors=K, metric="manhattan", precomputed_knn=knn, **FAST).fit(iris)
    model.transform(new)
    answers = model._query_index.query(new, 3)
    assert_matches(actual=answers.distances,
                   reference=reference_neighbors.exact_query(iris, new, 3, "manhattan").distances, rtol=1e-12)


@pytest.mark.parametrize("change, match", [
    (lambda i, d: (i[:-1], d[:-1]), "number of rows of the 'precomputed_knn' .* must be 150"),
    (lambda i, d: (i, d[:, :-1]), "indices and distances must be 2-D arrays of the same shape"),
    (lambda i, d: (i.astype(float), d), "indices must be an integer array"),
    (lambda i, d: (np.where(i == 5, 150, i), d), r"indices must be in \[0, 150\)"),
    (lambda i, d: (i, np.where(i == 5, np.nan, d)), "distances must be finite and non-negative"),
    (lambda i, d: (i, -d), "distances must be finite and non-negative"),
    (lambda i, d: (np.column_stack([i[:, :2], i[:, 1:2]]), d[:, :3]), "distinct neighbours"),
    (lambda i, d: (i[:, :4], d[:, :4]), "at least 10 besides the point itself"),
])
def test_bad_graphs_are_refused(iris, graph, change, match):
    knn = change(*_with_self(graph, K + 1))
    with pytest.raises(GidrValueError, match=match):
        UMAP(n_neighbors=K + 1, precomputed_knn=knn, **FAST).fit(iris)


@pytest.mark.parametrize("params, match", [
    (dict(precomputed_knn=([[0]],)), r"a tuple \(indices, distances\)"),
    (dict(precomputed_knn=(None, np.zeros((3, 3)))), "indices and distances are both arrays"),
    (dict(unique=True), "unique=True is not available"),
    (dict(metric="precomputed"), "either a distance matrix"),
])
def test_bad_combinations_are_refused(iris, graph, params, match):
    params = {"precomputed_knn": _with_self(graph, K + 1), **params}
    with pytest.raises(GidrValueError, match=match):
        UMAP(n_neighbors=K, **params, **FAST).fit(iris)


@pytest.mark.parametrize("sparse", [False, True])
def test_transform_after_a_fit_on_distances_reads_the_new_points_distances(iris, sparse):
    """umap-learn's transform of a metric='precomputed' fit: the new points' distances to the
    training points, dense or sparse (unstored entries are unknown, never neighbours)."""
    import scipy.sparse as sps
    from scipy.spatial.distance import cdist

    train, new = iris[:120], iris[120:]
    fitted = UMAP(n_neighbors=K, **FAST).fit(train)
    model = UMAP(n_neighbors=K, metric="precomputed", **FAST).fit(cdist(train, train))
    np.testing.assert_array_equal(model.embedding_, fitted.embedding_)
    D = cdist(new, train)
    if sparse:  # keep each row's 20 nearest
        D = sps.csr_matrix(np.where(D <= np.sort(D, axis=1)[:, 19:20], D, 0.0))
    Y = model.transform(D)
    assert Y.shape == (30, 2) and np.all(np.isfinite(Y))
    for estimator in (model, fitted):  # the same edges and weights (the draws hash each input row)
        estimator.set_params(transform_mode="graph")
    assert_matches(actual=model.transform(D).toarray(), reference=fitted.transform(new).toarray(), rtol=1e-12)
    model.set_params(transform_mode="embedding")
    with pytest.raises(GidrValueError, match=r"an \(n_new, 120\) matrix of distances .* not data rows"):
        model.transform(new)
    with pytest.raises(GidrValueError, match="finite and non-negative distances"):
        model.transform(-cdist(new, train))
    short = sps.csr_matrix(np.eye(3, 120))
    with pytest.raises(GidrValueError, match=f"at least {K - 1} finite values per row"):  # UMAP's K: K - 1 others
        model.transform(short)


def test_save_and_load_keep_what_transform_needs(iris, graph, tmp_path):
    import gidr

    model = UMAP(n_neighbors=K, precomputed_knn=_with_self(graph, K + 1), **FAST).fit(iris)
    model.save(tmp_path / "knn.gidr")
    loaded = gidr.load(tmp_path / "knn.gidr")
    np.testing.assert_array_equal(loaded.transform(iris[:5] + 0.02), model.transform(iris[:5] + 0.02))


@pytest.mark.parametrize("cls", [UMAP, GDR])
def test_pca_init_reads_x_beside_the_graph(cls, iris, graph):
    # init="pca" reads the X given to fit: the same bits as a fit that computed the same graph
    knn = _with_self(graph, K + 1)
    expected = cls(n_neighbors=K, init="pca", **FAST).fit(iris)
    model = cls(n_neighbors=K, init="pca", precomputed_knn=knn, **FAST).fit(iris)
    np.testing.assert_array_equal(model.embedding_, expected.embedding_)
    spectral = cls(n_neighbors=K, precomputed_knn=knn, **FAST).fit(iris)
    assert not np.array_equal(model.embedding_, spectral.embedding_)


def test_pipeline_init_data_is_checked(iris, graph):
    pipeline = Pipeline.from_preset("gdr-umap", neighbors="precomputed", n_neighbors=K, init="pca", **FAST)
    graph_k = KNNGraph(graph.indices[:, :K].copy(), graph.distances[:, :K].copy())
    with pytest.raises(GidrValueError, match=r"The data for init 'pca' must be the data matrix X"):
        pipeline.run(graph_k)
    with pytest.raises(GidrValueError, match=r"'init_data' argument of Pipeline.run must be an array with 150 rows"):
        pipeline.run(graph_k, init_data=iris[:100])
    assert np.all(np.isfinite(pipeline.run(graph_k, init_data=iris).embedding))
