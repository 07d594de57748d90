"""Tests of gidr.metrics: each score against a plain-loop reference, and bad inputs."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.manifold import trustworthiness as sklearn_trustworthiness

from gidr.metrics import evaluate, knn_accuracy, knn_recall, trustworthiness, v_measure
from gidr.validation import GidrValueError


def assert_close(*, actual: float, reference: float, atol: float = 1e-12) -> None:
    assert actual == pytest.approx(reference, abs=atol)


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    return centers[labels] + rng.normal(size=(120, 2)), labels


def _loop_knn_accuracy(Y: np.ndarray, labels: np.ndarray, k: int) -> float:
    hits = 0
    for i in range(len(Y)):
        distances = np.linalg.norm(Y - Y[i], axis=1)
        distances[i] = np.inf
        votes = np.bincount(labels[np.argsort(distances, kind="stable")[:k]], minlength=labels.max() + 1)
        hits += int(np.argmax(votes) == labels[i])
    return hits / len(Y)


def _loop_knn_recall(X: np.ndarray, Y: np.ndarray, k: int, queries: np.ndarray) -> float:
    kept = 0
    for i in queries:
        high_d = np.linalg.norm(X - X[i], axis=1)
        low_d = np.linalg.norm(Y - Y[i], axis=1)
        high_d[i] = low_d[i] = np.inf
        kept += len(set(np.argsort(high_d)[:k]) & set(np.argsort(low_d)[:k]))
    return kept / (len(queries) * k)


def test_knn_accuracy_matches_a_loop() -> None:
    rng = np.random.default_rng(1)
    Y = rng.normal(size=(80, 2))
    labels = rng.integers(0, 4, size=80)
    assert_close(actual=knn_accuracy(Y, labels, k=7), reference=_loop_knn_accuracy(Y, labels, 7))


def test_knn_accuracy_separated_classes_is_one(blobs) -> None:
    Y, labels = blobs
    assert knn_accuracy(Y, labels, k=10) == 1.0


def test_knn_accuracy_ties_go_to_the_smallest_label() -> None:
    # With k=2, points 0 and 2 (label 1) each see one neighbour of label 1 and one of
    # label 2: the tie goes to 1, so both are right; point 1 (label 2) sees two 1s.
    # Ties toward the largest label would score 0.
    Y = np.array([[0.0], [1.0], [-1.0]])
    assert knn_accuracy(Y, np.array([1, 2, 1]), k=2) == pytest.approx(2 / 3)


def test_knn_accuracy_clamps_k_and_accepts_string_labels() -> None:
    Y = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0]])
    labels = np.array(["a", "a", "a", "b"])
    # k=100 becomes 3: every point's vote is "a".
    assert knn_accuracy(Y, labels, k=100) == 0.75


def test_knn_accuracy_does_not_modify_inputs(blobs) -> None:
    Y, labels = blobs
    Y_before, labels_before = Y.copy(), labels.copy()
    knn_accuracy(Y, labels, k=5)
    np.testing.assert_array_equal(Y, Y_before)
    np.testing.assert_array_equal(labels, labels_before)


def test_v_measure_perfect_and_deterministic(blobs) -> None:
    Y, labels = blobs
    assert v_measure(Y, labels) == pytest.approx(1.0)
    rng = np.random.default_rng(2)
    noise = rng.normal(size=(120, 2))
    assert v_measure(noise, labels, random_state=3) == v_measure(noise, labels, random_state=3)


def test_v_measure_n_clusters_too_large(blobs) -> None:
    Y, labels = blobs
    with pytest.raises(GidrValueError, match=r"'n_clusters' parameter of v_measure\(\) must be at most"):
        v_measure(Y, labels, n_clusters=500)


def test_trustworthiness_matches_sklearn_without_subsampling(blobs) -> None:
    Y, _ = blobs
    X = np.c_[Y, np.random.default_rng(3).normal(size=(120, 3))]
    assert_close(actual=trustworthiness(X, Y, n_neighbors=5, max_samples=None),
                 reference=sklearn_trustworthiness(X, Y, n_neighbors=5))


def test_trustworthiness_subsample_is_fixed_and_shared() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 5))
    Y = X[:, :2] + 0.1 * rng.normal(size=(300, 2))
    first = trustworthiness(X, Y, n_neighbors=5, max_samples=100, random_state=7)
    assert first == trustworthiness(X, Y, n_neighbors=5, max_samples=100, random_state=7)
    rows = np.sort(np.random.default_rng(7).choice(300, size=100, replace=False))
    assert_close(actual=first, reference=sklearn_trustworthiness(X[rows], Y[rows], n_neighbors=5))


def test_trustworthiness_n_neighbors_too_large(blobs) -> None:
    Y, _ = blobs
    with pytest.raises(GidrValueError, match=r"'n_neighbors' parameter .* less than half"):
        trustworthiness(Y, Y, n_neighbors=60)


def test_knn_recall_matches_a_loop() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(150, 6))
    Y = X[:, :2] + 0.3 * rng.normal(size=(150, 2))
    queries = np.sort(np.random.default_rng(9).choice(150, size=40, replace=False))
    assert_close(actual=knn_recall(X, Y, k=10, max_samples=40, random_state=9),
                 reference=_loop_knn_recall(X, Y, 10, queries))


def test_knn_recall_identity_is_one_and_searches_all_points() -> None:
    X = np.random.default_rng(6).normal(size=(200, 3))
    assert knn_recall(X, X, k=15, max_samples=10) == 1.0


def test_knn_recall_with_duplicates_excludes_self() -> None:
    X = np.repeat(np.arange(5.0), 4)[:, None]
    assert knn_recall(X, X, k=3) == 1.0


def test_evaluate_keys(blobs) -> None:
    Y, labels = blobs
    X = np.c_[Y, np.zeros(120)]
    assert set(evaluate(X, Y, labels, k=10)) == {"knn_accuracy", "v_measure", "trustworthiness", "knn_recall"}
    assert set(evaluate(X, Y)) == {"trustworthiness", "knn_recall"}
    assert set(evaluate(None, Y, labels, k=10)) == {"knn_accuracy", "v_measure"}


def test_evaluate_values_equal_the_single_scores(blobs) -> None:
    Y, labels = blobs
    X = np.c_[Y, np.random.default_rng(8).normal(size=120)]
    scores = evaluate(X, Y, labels, k=10, n_neighbors=5, max_samples=50, random_state=1)
    assert scores["knn_accuracy"] == knn_accuracy(Y, labels, k=10)
    assert scores["knn_recall"] == knn_recall(X, Y, k=5, max_samples=50, random_state=1)


def test_k_below_one_is_rejected(blobs) -> None:
    Y, labels = blobs
    with pytest.raises(GidrValueError, match=r"'k' parameter of knn_accuracy\(\) must be an int in \[1, inf\)"):
        knn_accuracy(Y, labels, k=0)


def test_knn_recall_k_below_one_is_rejected(blobs) -> None:
    Y, _ = blobs
    with pytest.raises(GidrValueError, match=r"'k' parameter of knn_recall\(\) must be an int"):
        knn_recall(Y, Y, k=0)


def test_labels_of_wrong_length_are_rejected(blobs) -> None:
    Y, labels = blobs
    with pytest.raises(GidrValueError, match=r"'labels' parameter of knn_accuracy\(\) must be a 1-D array"):
        knn_accuracy(Y, labels[:-1])


def test_v_measure_labels_of_wrong_length_are_rejected(blobs) -> None:
    Y, labels = blobs
    with pytest.raises(GidrValueError, match=r"'labels' parameter of v_measure\(\)"):
        v_measure(Y, labels[:10])


def test_mismatched_X_and_Y_are_rejected(blobs) -> None:
    Y, _ = blobs
    with pytest.raises(GidrValueError, match=r"input X of knn_recall\(\) must be an array with as many rows as Y"):
        knn_recall(Y[:50], Y)


def test_trustworthiness_mismatched_lengths_are_rejected(blobs) -> None:
    Y, _ = blobs
    with pytest.raises(GidrValueError, match=r"input X of trustworthiness\(\) must be an array with as many rows"):
        trustworthiness(Y, Y[:60])


def test_non_2d_embedding_is_rejected(blobs) -> None:
    _, labels = blobs
    with pytest.raises(GidrValueError, match=r"input Y must be a 2-D array"):
        knn_accuracy(np.zeros(120), labels)


def test_max_samples_must_be_an_int(blobs) -> None:
    Y, _ = blobs
    with pytest.raises(GidrValueError, match=r"'max_samples' parameter of knn_recall\(\) must be an int"):
        knn_recall(Y, Y, max_samples=0.5)
