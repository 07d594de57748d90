"""Composite models (umap1 + umap2, *, -): the graph operations and the estimators."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_iris
from sklearn.manifold import trustworthiness

import gidr
from gidr.validation import GidrValueError
from gidr_reference import composite, supervised


def _fuzzy(n, edges):
    rows, cols, values = zip(*edges)
    P = sp.coo_matrix((values, (rows, cols)), shape=(n, n)).tocsr()
    return (P + P.T).tocsr()


def test_union_intersection_and_difference_of_two_small_graphs():
    # P: 0-1 (1.0), 1-2 (0.5); Q: 0-1 (1.0), 2-3 (0.8)
    P = _fuzzy(4, [(0, 1, 1.0), (1, 2, 0.5)])
    Q = _fuzzy(4, [(0, 1, 1.0), (2, 3, 0.8)])
    rows, cols, p, q = supervised.pattern_values(P, Q)
    assert set(zip(rows, cols)) == {(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)}
    union, inter, diff = (composite.combine(P, Q, op).toarray() for op in ("union", "intersection", "difference"))
    for G in (union, inter, diff):
        np.testing.assert_allclose(G, G.T)
        assert np.all(np.diag(G) == 0) and np.all((G >= 0) & (G <= 1))
    # the union keeps every edge of either graph; the shared edge is the strongest
    assert all(union[i, j] > 0 for i, j in [(0, 1), (1, 2), (2, 3)])
    assert union[0, 1] == 1.0
    # the intersection keeps the shared edge strong and the edges of one graph only weak
    assert inter[0, 1] == 1.0 and inter[1, 2] < 1e-2 * union[1, 2]  # (2, 3) is row 3's only edge: 1 again
    # the difference drops P's edge that Q is sure of (1 - 1 = 0) and keeps the one Q lacks
    assert diff[0, 1] == 0.0 and diff[1, 2] == 1.0
    # (Q's own edge (2, 3), which P lacks, keeps only P's floor, but it is row 3's only edge: the
    # rows' rescaling to a largest entry of 1 restores it, as in umap-learn)


def test_rows_to_local_metric_brings_each_row_to_log2_15():
    values = np.linspace(0.05, 1.0, 20)
    short = np.array([1.0, 0.5])  # two values can never sum to log2(15) = 3.9
    rows = composite.rows_to_local_metric(np.concatenate([values, short]), np.array([0, 20, 22]))
    powered = rows[:20]
    assert np.sum(powered) == pytest.approx(np.log2(15), abs=1e-4)
    assert np.all(np.diff(powered) > 0) and powered[-1] == 1.0
    np.testing.assert_array_equal(rows[20:], short)


def test_an_unknown_operation_is_refused():
    P = _fuzzy(3, [(0, 1, 1.0), (1, 2, 1.0)])
    with pytest.raises(ValueError, match="operation must be one of"):
        composite.combine(P, P, "xor")


@pytest.fixture(scope="module")
def iris_views():
    iris = load_iris()
    X = iris.data
    sepals = gidr.UMAP(n_neighbors=10, min_dist=0.01, random_state=42, n_epochs=100).fit(X[:, :2])
    petals = gidr.UMAP(n_neighbors=10, min_dist=0.01, random_state=42, n_epochs=100).fit(X[:, 2:])
    return X, sepals, petals


@pytest.mark.parametrize("operator, bound", [("+", 0.82), ("*", 0.82), ("-", 0.75)])
def test_composite_of_two_views_is_trustworthy_for_the_whole_data(iris_views, operator, bound):
    X, sepals, petals = iris_views
    model = {"+": sepals + petals, "*": sepals * petals, "-": sepals - petals}[operator]
    assert isinstance(model, gidr.UMAP) and model is not sepals
    assert model.embedding_.shape == (150, 2) and np.all(np.isfinite(model.embedding_))
    assert model.graph_.shape == (150, 150)
    # umap-learn's own tests ask for these bounds; measured 0.93-0.97 for + and *, 0.85-0.9 for -
    assert trustworthiness(X, model.embedding_, n_neighbors=10) >= bound
    # the combined model embeds the combined graph, not either view's
    assert not np.allclose(model.embedding_, sepals.embedding_)


def test_composite_is_reproducible_and_keeps_the_left_parameters(iris_views):
    _, sepals, petals = iris_views
    first, second = sepals * petals, sepals * petals
    np.testing.assert_array_equal(first.embedding_, second.embedding_)
    assert first.get_params()["n_neighbors"] == 10 and first.get_params()["init"] == "spectral"
    assert first.result_.graph is None and first.result_.config["resolved"]["n_neighbors"] is None


def test_composite_refuses_models_of_other_points_and_unfitted_ones(iris_views):
    _, sepals, _ = iris_views
    other = gidr.UMAP(n_neighbors=5, random_state=0, n_epochs=20).fit(load_iris().data[:50])
    for combine in (lambda: sepals + other, lambda: sepals * other, lambda: sepals - other):
        with pytest.raises(ValueError, match="same points"):
            combine()
    with pytest.raises(Exception, match="Only fitted UMAP models"):
        _ = sepals + gidr.UMAP()
    with pytest.raises(GidrValueError, match="Only UMAP models"):
        _ = sepals + gidr.TSNE()
    with pytest.raises(TypeError, match="unsupported operand"):
        _ = sepals * 2


def test_composite_has_no_training_data_to_transform_against(iris_views, tmp_path):
    X, sepals, petals = iris_views
    model = sepals + petals
    for call, what in ((lambda: model.transform(X[:5, :2]), "transform"),
                       (lambda: model.inverse_transform(model.embedding_[:5]), "inverse_transform"),
                       (lambda: model.update(X[:5, :2]), "update"),
                       (lambda: model.save(tmp_path / "model.zip"), "save")):
        with pytest.raises(GidrValueError, match=f"{what} is not available for a composite"):
            call()
    refit = model.fit(X[:, :2])  # a fit makes it an ordinary model again
    assert refit.transform(X[:5, :2]).shape == (5, 2)


def test_run_affinities_checks_its_matrix():
    pipeline = gidr.Pipeline.from_preset("umap", random_state=0, n_epochs=10)
    with pytest.raises(GidrValueError, match="square scipy sparse matrix"):
        pipeline.run_affinities(np.eye(3))
    asymmetric = sp.csr_matrix(np.array([[0, 1.0, 0], [0.2, 0, 1.0], [0, 1.0, 0]]))
    with pytest.raises(GidrValueError, match="symmetric"):
        pipeline.run_affinities(asymmetric)
    lonely = _fuzzy(4, [(0, 1, 1.0), (1, 2, 1.0)])
    with pytest.raises(GidrValueError, match="empty rows"):
        pipeline.run_affinities(lonely)
    negative = _fuzzy(3, [(0, 1, -1.0), (1, 2, 1.0)])
    with pytest.raises(GidrValueError, match="non-negative"):
        pipeline.run_affinities(negative)
    with pytest.raises(GidrValueError, match="init stage"):
        gidr.Pipeline.from_preset("umap", init="pca").run_affinities(_fuzzy(3, [(0, 1, 1.0), (1, 2, 1.0)]))
