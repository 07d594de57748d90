"""``transform`` through the stages: per-point keys, batch and chunk independence, the
reference queries and loops, and clear errors (reference backend: no numba needed)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import gidr
from gidr import datasets
from gidr import transform as orchestrator
from gidr.types import KNNGraph
from gidr.validation import GidrValueError
from gidr_reference import neighbors as reference_neighbors
from gidr_reference import stages_forces, stages_graph
from gidr_reference import transform as reference

N_TRAIN = 300


@pytest.fixture(scope="module")
def blobs():
    return datasets.load("blobs", n_samples=420, random_state=0)


def _fit(X, **overrides):
    overrides = {"random_state": 0, "n_epochs": 40, "backend": "reference", "init": "pca", **overrides}
    pipeline = gidr.Pipeline.from_preset("gdr-umap", **overrides)
    return pipeline, pipeline.run(X)


@pytest.fixture(scope="module", params=[False, True], ids=["unnormalized", "normalized"])
def fitted(request, blobs):
    X, _ = blobs
    pipeline, result = _fit(X[:N_TRAIN], normalized=request.param)
    return pipeline, result, X[:N_TRAIN], X[N_TRAIN:]


# ---------------------------------------------------------------------- keys
def test_point_keys_depend_on_the_row_only():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 7))
    X[X < 0.3] = 0.0
    keys = orchestrator.point_keys(X, seed=3)
    np.testing.assert_array_equal(orchestrator.point_keys(X[10:20], seed=3), keys[10:20])
    np.testing.assert_array_equal(orchestrator.point_keys(sp.csr_matrix(X), seed=3), keys)
    np.testing.assert_array_equal(orchestrator.point_keys(X.astype(np.float32).astype(np.float64), seed=3),
                                  orchestrator.point_keys(X.astype(np.float32), seed=3))
    assert len(set(keys.tolist())) == len(keys)
    assert not np.any(orchestrator.point_keys(X, seed=4) == keys)
    assert keys.dtype == np.uint64


def test_negative_target_is_uniform_over_the_training_points():
    keys = orchestrator.point_keys(np.arange(2000.0)[:, None], seed=0)
    targets = reference.negative_target(keys, epoch=3, slot=1, n_train=10)
    counts = np.bincount(targets, minlength=10)
    assert targets.min() >= 0 and targets.max() < 10
    assert counts.min() > 150  # 200 expected per point; 150 is more than 3.5 standard deviations away


# ---------------------------------------------------------------------- queries
def test_reference_exact_query_keeps_copies_first_and_breaks_ties_by_index():
    X_train = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    graph = reference_neighbors.exact_query(X_train, np.array([[0.0, 0.0], [0.0, 0.0 + 1e-300]]), 4)
    np.testing.assert_array_equal(graph.indices, [[0, 1, 2, 3], [0, 1, 2, 3]])
    assert graph.distances[0, 0] == 0.0
    np.testing.assert_allclose(graph.distances[0, 1:], 1.0)


@pytest.mark.parametrize("metric", reference_neighbors.METRICS)
def test_reference_exact_query_matches_brute_force(metric, blobs):
    X, _ = blobs
    graph = reference_neighbors.exact_query(X[:N_TRAIN], X[N_TRAIN:], 7, metric)
    D = reference_neighbors.pairwise_distances(X[N_TRAIN:], X[:N_TRAIN], metric)
    order = np.argsort(D, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(graph.indices, order)
    np.testing.assert_array_equal(graph.distances, np.take_along_axis(D, order, axis=1))


def test_exact_query_rejects_wrong_columns_and_k(blobs):
    X, _ = blobs
    index = stages_graph.ExactNeighbors().build_index(X[:N_TRAIN], None, None)
    with pytest.raises(GidrValueError, match="The query points must be a 2-D array with 50 columns"):
        index.query(X[:3, :10], 5)
    with pytest.raises(GidrValueError, match=r"number of neighbours of a query must be an int in \[1, 300\]"):
        index.query(X[:3], 301)


def test_precomputed_neighbours_do_not_answer_queries():
    stage = stages_graph.PrecomputedNeighbors()
    assert stage.answers_queries is False
    graph = KNNGraph(np.zeros((3, 1), np.int64), np.zeros((3, 1)))
    with pytest.raises(GidrValueError, match="must be a stage that answers queries for new points"):
        stage.build_index(None, graph, None)


# ---------------------------------------------------------------------- the loop
def test_steps_come_from_the_optimizer_and_the_repulsion():
    ctx = gidr.types.Context(n_samples=100, normalized=False, n_epochs=90)
    optimizer = gidr.Pipeline.from_preset("gdr-umap", max_step=2.5, backend="reference").stages["optimizer"]
    steps = reference.new_point_steps(optimizer, ctx, 30, repulsion=stages_forces.SampledRepulsion(n_negative=3))
    assert (steps.max_step, steps.learning_rate, steps.n_negative) == (2.5, 1.0, 3)
    assert reference.new_point_steps(optimizer, ctx, 30, repulsion=stages_forces.ExactRepulsion()).n_negative == 1
    tsne = gidr.Pipeline.from_preset("tsne", backend="reference", momentum=0.4, min_gain=0.02).stages["optimizer"]
    normalized = gidr.types.Context(n_samples=1200, normalized=True, n_epochs=750)
    steps = reference.new_point_steps(tsne, normalized, 250, schedule=tsne.schedule(1200))
    assert (steps.n_negative, steps.momentum, steps.min_gain, steps.n_momentum) == (4, 0.4, 0.02, 83)
    assert steps.learning_rate == tsne.schedule(1200).learning_rate


def test_batch_independence_bit_for_bit(fitted):
    pipeline, result, X_train, X_new = fitted
    batch = orchestrator.transform_new_points(pipeline, result, X_train, X_new[:100])
    alone = orchestrator.transform_new_points(pipeline, result, X_train, X_new[:10])
    np.testing.assert_array_equal(alone, batch[:10])
    assert batch.dtype == np.float64 and batch.shape == (100, 2)


def test_chunking_changes_no_bit(fitted):
    pipeline, result, X_train, X_new = fitted
    whole = orchestrator.transform_new_points(pipeline, result, X_train, X_new)
    chunked = orchestrator.transform_new_points(pipeline, result, X_train, X_new, chunk_size=7)
    np.testing.assert_array_equal(chunked, whole)


def test_transformed_points_land_near_their_class(fitted, blobs):
    pipeline, result, X_train, X_new = fitted
    _, y = blobs
    Y_new = orchestrator.transform_new_points(pipeline, result, X_train, X_new)
    from sklearn.neighbors import KNeighborsClassifier

    accuracy = KNeighborsClassifier(n_neighbors=5).fit(result.embedding, y[:N_TRAIN]).score(Y_new, y[N_TRAIN:])
    assert accuracy >= 0.95  # well-separated blobs: 1.0 measured


def test_a_given_index_is_used_and_old_points_do_not_move(fitted):
    pipeline, result, X_train, X_new = fitted
    before = result.embedding.copy()
    index = orchestrator.build_index(pipeline, result, X_train)
    given = orchestrator.transform_new_points(pipeline, result, X_train, X_new[:20], index=index)
    np.testing.assert_array_equal(given, orchestrator.transform_new_points(pipeline, result, X_train, X_new[:20]))
    np.testing.assert_array_equal(result.embedding, before)


def test_zero_rows_is_a_clear_error(fitted):
    pipeline, result, X_train, X_new = fitted
    with pytest.raises(GidrValueError, match="The input X of transform must be at least one row"):
        orchestrator.transform_new_points(pipeline, result, X_train, X_new[:0])
