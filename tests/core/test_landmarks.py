"""The ``landmarks`` switch: embed a sample, place the other points from it, optimize all."""
import warnings

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits

import gidr
from gidr.metrics import knn_accuracy
from gidr.types import KNNGraph
from gidr.validation import GidrValueError
from gidr_reference.init import place_from_sample


def _graph(rows, cols, weights, n):
    """A symmetric sparse graph from one direction of each edge."""
    P = sp.coo_matrix((weights, (rows, cols)), shape=(n, n))
    return (P + P.T).tocsr()


# ---------------------------------------------------------------------- placement
def test_each_pass_reads_the_positions_of_the_pass_before():
    # chain 0 - 1 - 2 - 3 with 0 and 3 sampled: 1 and 2 are placed in the same pass, each from
    # its sampled neighbour only (not from the other, placed in that pass)
    P = _graph([0, 1, 2], [1, 2, 3], [1.0, 0.5, 2.0], 4)
    Y, record = place_from_sample(P, np.array([0, 3]), np.array([[0.0, 0.0], [6.0, 3.0]]), np.random.default_rng(0))
    np.testing.assert_array_equal(Y, [[0.0, 0.0], [0.0, 0.0], [6.0, 3.0], [6.0, 3.0]])
    assert record == {"passes": 1, "placed": [2], "unreached": 0}


def test_a_point_goes_to_the_weighted_mean_of_its_placed_neighbours():
    # a star: centre 4, sampled leaves 0-3 with weights 1, 2, 3, 4; then 5 hangs off the centre
    P = _graph([4, 4, 4, 4, 5], [0, 1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0, 1.0], 6)
    leaves = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    Y, record = place_from_sample(P, np.arange(4), leaves, np.random.default_rng(0))
    centre = (np.array([1.0, 2.0, 3.0, 4.0])[:, None] * leaves).sum(axis=0) / 10.0
    np.testing.assert_allclose(Y[4], centre, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(Y[5], Y[4])  # second pass: its only neighbour
    np.testing.assert_array_equal(Y[:4], leaves)
    assert record["passes"] == 2 and record["placed"] == [1, 1]


def _random_graph(n, degree, seed):
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), degree)
    cols = (rows + rng.integers(1, n, size=rows.size)) % n  # no self-loops
    return _graph(rows, cols, rng.uniform(0.1, 1.0, size=rows.size), n)


def test_the_block_size_changes_nothing():
    P = _random_graph(500, 3, 0)
    rows = np.sort(np.random.default_rng(1).choice(500, 40, replace=False))
    Y_rows = np.random.default_rng(2).normal(size=(40, 2))
    results = [place_from_sample(P, rows, Y_rows, np.random.default_rng(0), block_rows=b)[0] for b in (1, 7, 2**18)]
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])
    assert np.all(np.isfinite(results[0]))


def test_the_order_of_the_points_changes_nothing():
    n = 400
    P = _random_graph(n, 3, 3)
    rows = np.sort(np.random.default_rng(4).choice(n, 30, replace=False))
    Y_rows = np.random.default_rng(5).normal(size=(30, 2))
    Y, record = place_from_sample(P, rows, Y_rows, np.random.default_rng(0))
    order = np.random.default_rng(6).permutation(n)  # new label j is old point order[j]
    inverse = np.argsort(order)
    P_new = P[order][:, order]
    Y_new, record_new = place_from_sample(P_new, inverse[rows], Y_rows, np.random.default_rng(0))
    # the sums run over each row's entries in another order: equal to rounding
    np.testing.assert_allclose(Y_new, Y[order], rtol=1e-12, atol=1e-15)
    assert record_new == record


def test_points_no_sample_reaches_are_laid_out_beside_with_a_warning():
    # two components: 0-1-2 (point 0 sampled) and 3-4-5-6 (no sampled point)
    P = _graph([0, 1, 3, 4, 5], [1, 2, 4, 5, 6], np.ones(5), 7)
    with pytest.warns(UserWarning, match=r"4 points are in parts of the graph with no sampled point"):
        Y, record = place_from_sample(P, np.array([0, 2]), np.array([[0.0, 0.0], [5.0, 1.0]]),
                                      np.random.default_rng(0))
    assert record["unreached"] == 4
    assert np.all(np.isfinite(Y))
    assert Y[3:, 0].min() > Y[:3, 0].max()  # beside the placed points
    assert np.ptp(Y[3:], axis=0).max() <= 0.1 * 5.0 + 1e-12  # in a box of a tenth of their extent


# ---------------------------------------------------------------------- the pipeline switch
@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.data, data.target


def test_at_most_landmarks_points_run_as_without(digits):
    X = digits[0][:300]
    plain = gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=30).run(X)
    same = gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=30, landmarks=300).run(X)
    np.testing.assert_array_equal(same.embedding, plain.embedding)
    assert "landmarks" not in same.config["resolved"]


@pytest.mark.parametrize("preset", ["gdr-umap", "gdr-tsne"])
def test_a_landmark_start_keeps_the_picture(digits, preset):
    X, y = digits
    full = gidr.Pipeline.from_preset(preset, random_state=0).run(X)
    result = gidr.Pipeline.from_preset(preset, random_state=0, landmarks=500).run(X)
    record = result.config["resolved"]["landmarks"]
    assert record["n_landmarks"] == 500 and record["unreached"] == 0
    assert sum(record["placed"]) == len(X) - 500
    assert set(record["sample_timings"]) == {"neighbors", "similarity", "symmetrize", "init", "optimize"}
    assert np.all(np.isfinite(result.embedding))
    # 15-NN accuracy, measured 2026-12-03 (seeds 0 and 1, full / landmarks): gdr-umap 0.984 / 0.987
    # and 0.986 / 0.986, gdr-tsne 0.983 / 0.988 and 0.989 / 0.988; the bound is 3 points below
    accuracy, reference = knn_accuracy(result.embedding, y, k=15), knn_accuracy(full.embedding, y, k=15)
    assert accuracy > reference - 0.03


def test_a_landmark_run_is_reproducible_at_any_thread_count(digits):
    X = digits[0]
    results = []
    try:
        for threads in [t for t in (1, 2) if t <= numba.config.NUMBA_NUM_THREADS]:
            numba.set_num_threads(threads)
            results += [gidr.Pipeline.from_preset("gdr-umap", random_state=7, n_epochs=40, landmarks=400,
                                                  backend="numba").run(X).embedding for _ in range(2)]
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def test_landmark_epochs_count_after_a_landmark_start_only(digits):
    X = digits[0][:600]
    after = gidr.Pipeline.from_preset("gdr-umap", random_state=0, landmarks=200, landmark_epochs=7).run(X)
    assert after.config["resolved"]["n_epochs"] == 7 and after.config["resolved"]["epochs_run"] == 7
    pipeline = gidr.Pipeline.from_preset("gdr-umap", random_state=0, landmarks=600, landmark_epochs=7)
    assert pipeline.n_epochs_for(600) == 500 and pipeline.n_epochs_for(601) == 7
    assert pipeline.run(X).config["resolved"]["n_epochs"] == 500  # no landmark start at 600 points
    chosen = gidr.Pipeline.from_preset("gdr-umap", random_state=0, landmarks=200, landmark_epochs=7, n_epochs=9)
    assert chosen.run(X).config["resolved"]["epochs_run"] == 9  # n_epochs set wins


def test_an_optimizer_default_sets_the_samples_epochs_and_landmark_epochs_the_full_run(digits):
    """gdr-tsne's 1,000 epochs are its optimizer's default_epochs, not a pipeline n_epochs, so that
    its landmark_epochs still apply above the landmarks (a pipeline n_epochs would win)."""
    X = digits[0][:600]
    pipeline = gidr.Pipeline.from_preset("gdr-umap", random_state=0, landmarks=200, landmark_epochs=7,
                                         default_epochs=11)
    assert pipeline.n_epochs_for(200) == 11 and pipeline.n_epochs_for(600) == 7
    result = pipeline.run(X)
    assert result.config["resolved"]["epochs_run"] == 7
    assert result.config["resolved"]["landmarks"]["sample_epochs"] == 11
    tsne = gidr.Pipeline.from_preset("gdr-tsne")
    landmarks = tsne.config["pipeline"]["landmarks"]
    assert tsne.n_epochs_for(landmarks) == 1000
    assert tsne.n_epochs_for(landmarks + 1) == tsne.config["pipeline"]["landmark_epochs"] < 1000


def test_another_seed_draws_another_sample(digits):
    X = digits[0][:800]
    records = [gidr.Pipeline.from_preset("gdr-umap", random_state=seed, n_epochs=10, landmarks=200).run(X)
               for seed in (0, 1)]
    assert not np.array_equal(records[0].embedding, records[1].embedding)


def test_supervised_runs_embed_the_sample_with_its_labels(digits):
    X, y = digits
    result = gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=30, landmarks=300).run(X, y)
    assert result.config["resolved"]["landmarks"]["n_landmarks"] == 300
    assert np.all(np.isfinite(result.embedding))


def test_no_landmarks_without_a_data_matrix_or_with_start_positions(digits):
    X = digits[0][:600]
    knn = gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=5).run(X).graph
    from_graph = gidr.Pipeline.from_preset("gdr-umap", neighbors="precomputed", random_state=0, n_epochs=5,
                                           landmarks=100).run(KNNGraph(knn.indices, knn.distances))
    assert "landmarks" not in from_graph.config["resolved"]
    start = np.random.default_rng(0).normal(size=(600, 2))
    given = gidr.Pipeline.from_preset("gdr-umap", init=start, random_state=0, n_epochs=5, landmarks=100).run(X)
    assert "landmarks" not in given.config["resolved"]


@pytest.mark.parametrize("value", [1, 0, -5, 2.5, "many"])
def test_a_bad_landmarks_value_is_named(value):
    with pytest.raises(GidrValueError, match="landmarks"):
        gidr.Pipeline.from_preset("gdr-umap", landmarks=value)


def test_no_warning_from_a_connected_run(digits):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the placement's warning is a UserWarning
        gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=5, landmarks=400).run(digits[0])


def test_densmap_after_a_landmark_start_adds_its_epochs(digits):
    X = digits[0][:600]
    result = gidr.Pipeline.from_preset("gdr-umap", random_state=0, landmarks=200, landmark_epochs=20, densmap=True,
                                       output_dens=True).run(X)
    assert result.config["resolved"]["n_epochs"] == 20 + gidr.pipeline.DENSMAP_EXTRA_EPOCHS
    assert np.all(np.isfinite(result.embedding)) and np.all(np.isfinite(result.densities["rad_emb"]))
