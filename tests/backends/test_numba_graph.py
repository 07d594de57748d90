"""numba graph stages (neighbors, similarity, symmetrize, spectral init) against the reference."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

numba = pytest.importorskip("numba")

from gidr import datasets  # noqa: E402
from gidr.pipeline import Pipeline  # noqa: E402
from gidr.types import Context, KNNGraph  # noqa: E402
from gidr.validation import GidrValueError  # noqa: E402
from gidr_numba import nndescent, spectral  # noqa: E402
from gidr_numba import stages_graph as fast  # noqa: E402
from gidr_numba.neighbors import exact_knn  # noqa: E402
from gidr_reference import init as reference_init  # noqa: E402
from gidr_reference import neighbors as reference_neighbors  # noqa: E402
from gidr_reference import stages_graph as reference  # noqa: E402
from tests.helpers import assert_matches  # noqa: E402

METRICS = ("euclidean", "manhattan", "chebyshev", "cosine", "correlation")
TWINS = [(fast.ExactNeighbors, reference.ExactNeighbors), (fast.UmapSimilarity, reference.UmapSimilarity),
         (fast.TsneSimilarity, reference.TsneSimilarity), (fast.FuzzyUnionSymmetrize, reference.FuzzyUnionSymmetrize),
         (fast.MeanSymmetrize, reference.MeanSymmetrize), (fast.SpectralInit, reference.SpectralInit)]


@pytest.fixture(scope="module")
def X_small():
    """300 points in 8-D with an offset (cancellation in |x|^2 + |y|^2 - 2xy), three
    identical rows and two zero rows."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)) * 3.0 + 40.0
    X[11] = X[12] = X[10]
    X[20] = X[21] = 0.0
    return X


@pytest.fixture(scope="module")
def blobs():
    return datasets.load("blobs", n_samples=3000, random_state=0)[0]


@pytest.fixture(scope="module")
def blobs_graph(blobs):
    return reference_neighbors.exact_knn(blobs, 15)


@pytest.fixture(scope="module")
def graph_small(X_small):
    return reference_neighbors.exact_knn(X_small, 30)


def recall(indices, truth):
    return np.mean([len(set(a) & set(b)) for a, b in zip(indices, truth)]) / truth.shape[1]


def ctx_for(n, **kw):
    return Context(n_samples=n, seed=3, **kw)


def connected_P(n=800, seed=1):
    X = datasets.load("swiss-roll", n_samples=n, random_state=seed)[0]
    graph = reference_neighbors.exact_knn(X, 10)
    P_directed = reference.UmapSimilarity().compute(graph, ctx_for(n))
    return reference.FuzzyUnionSymmetrize().compute(P_directed, ctx_for(n))


def with_threads(n_threads, function, *args, **kwargs):
    before = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        return function(*args, **kwargs)
    finally:
        numba.set_num_threads(before)


# ---------------------------------------------------------------------- stage declarations
@pytest.mark.parametrize("numba_class, reference_class", TWINS, ids=lambda c: getattr(c, "name", ""))
def test_twins_declare_the_same_parameters(numba_class, reference_class):
    assert numba_class.backend == "numba" and numba_class.priority == 10
    assert numba_class.name == reference_class.name
    assert [(p.name, p.default) for p in numba_class.params] == [(p.name, p.default) for p in reference_class.params]


def test_stages_are_registered_and_preferred_by_auto():
    from gidr.plugins import get_registry

    registry = get_registry()
    for stage_class in fast.STAGES:
        assert registry.get(stage_class.kind, stage_class.name, "auto") is stage_class


def test_exact_has_no_sample_limit():
    assert fast.ExactNeighbors.max_samples is None
    fast.ExactNeighbors().check_n_samples(10**6)


# ---------------------------------------------------------------------- exact neighbors
@pytest.mark.parametrize("metric", METRICS)
def test_exact_matches_reference(X_small, metric):
    actual = fast.ExactNeighbors(metric=metric).compute(X_small, 12, ctx_for(300))
    expected = reference.ExactNeighbors(metric=metric).compute(X_small, 12, ctx_for(300))
    np.testing.assert_array_equal(actual.indices, expected.indices)
    assert_matches(actual=actual.distances, reference=expected.distances, rtol=1e-12, atol=1e-12)
    assert actual.indices.dtype == np.int64 and actual.distances.dtype == np.float64


def test_exact_euclidean_survives_cancellation():
    """Points far from the origin and close together: the BLAS formula alone would
    misorder them; the exact refinement must give the reference's graph."""
    rng = np.random.default_rng(5)
    X = 1e6 + rng.normal(size=(200, 5)) * 1e-3
    actual = exact_knn(X, 5)
    expected = reference_neighbors.exact_knn(X, 5)
    np.testing.assert_array_equal(actual.indices, expected.indices)
    assert_matches(actual=actual.distances, reference=expected.distances, rtol=1e-12)


def test_exact_keeps_duplicates_and_excludes_self(X_small):
    graph = exact_knn(X_small, 5)
    assert not np.any(graph.indices == np.arange(300)[:, None])
    np.testing.assert_array_equal(graph.indices[10, :2], [11, 12])
    np.testing.assert_array_equal(graph.distances[10, :2], [0.0, 0.0])


def test_exact_rejects_too_many_neighbors(X_small):
    with pytest.raises(GidrValueError, match=r"number of neighbours must be an int in \[1, 299\]"):
        exact_knn(X_small, 300)


# ---------------------------------------------------------------------- nndescent
def test_nndescent_recall_on_blobs(blobs, blobs_graph):
    graph = fast.NNDescentNeighbors().compute(blobs, 15, ctx_for(len(blobs)))
    assert recall(graph.indices, blobs_graph.indices) >= 0.95
    assert not np.any(graph.indices == np.arange(len(blobs))[:, None])
    exact = np.linalg.norm(blobs[:, None, :] - blobs[graph.indices], axis=2)
    assert_matches(actual=graph.distances, reference=exact, rtol=1e-10)
    assert np.all(np.diff(graph.distances, axis=1) >= 0)


def test_nndescent_cosine_recall(blobs):
    truth = reference_neighbors.exact_knn(blobs, 10, "cosine")
    graph = fast.NNDescentNeighbors(metric="cosine").compute(blobs, 10, ctx_for(len(blobs)))
    assert recall(graph.indices, truth.indices) >= 0.95
    exact = reference_neighbors.pairwise_distances(blobs[:50], blobs, "cosine")
    assert_matches(actual=graph.distances[:50], reference=np.take_along_axis(exact, graph.indices[:50], 1),
                   atol=1e-12)


def test_nndescent_same_bits_whatever_the_thread_count(blobs):
    one = with_threads(1, nndescent.nndescent_knn, blobs, 15, 7)
    every = with_threads(numba.config.NUMBA_NUM_THREADS, nndescent.nndescent_knn, blobs, 15, 7)
    np.testing.assert_array_equal(one[0], every[0])
    np.testing.assert_array_equal(one[1], every[1])
    assert one[2] == every[2]


@pytest.mark.parametrize("setting", ["CHUNK_SIZE", "CANDIDATE_BLOCK_POINTS"])
def test_nndescent_chunking_changes_nothing(blobs, monkeypatch, setting):
    whole = nndescent.nndescent_knn(blobs[:1500], 15, 5)
    monkeypatch.setattr(nndescent, setting, 97)  # 16 blocks, the last one short
    chunked = nndescent.nndescent_knn(blobs[:1500], 15, 5)
    np.testing.assert_array_equal(whole[0], chunked[0])
    np.testing.assert_array_equal(whole[1], chunked[1])
    assert whole[2] == chunked[2]


def test_nndescent_seed_changes_the_search(blobs):
    first = nndescent.nndescent_knn(blobs[:1000], 15, 1, n_iters=1)
    second = nndescent.nndescent_knn(blobs[:1000], 15, 2, n_iters=1)
    assert not np.array_equal(first[0], second[0])


def test_nndescent_with_duplicates_lists_each_neighbour_once():
    rng = np.random.default_rng(2)
    X = np.repeat(rng.normal(size=(60, 4)), 25, axis=0)  # 1500 points, 25 copies of each
    indices, distances, _ = nndescent.nndescent_knn(X, 10, 0)
    assert not np.any(indices == np.arange(len(X))[:, None])
    assert all(len(set(row)) == 10 for row in indices)
    np.testing.assert_array_equal(distances, 0.0)  # 24 exact copies are the 10 nearest


def test_nndescent_small_input_is_exact():
    X = np.random.default_rng(4).normal(size=(12, 3))
    indices, distances, _ = nndescent.nndescent_knn(X, 11, 0)
    expected = reference_neighbors.exact_knn(X, 11)
    np.testing.assert_array_equal(indices, expected.indices)
    assert_matches(actual=distances, reference=expected.distances, rtol=1e-12)


def test_nndescent_random_start_still_converges(blobs, blobs_graph):
    indices, _, _ = nndescent.nndescent_knn(blobs, 15, 0, n_trees=0, n_iters=30)
    assert recall(indices, blobs_graph.indices) >= 0.9


def test_nndescent_rejects_other_metrics_pointing_to_pynndescent():
    with pytest.raises(GidrValueError, match=r"'metric' parameter of neighbors 'nndescent'.*'pynndescent'"):
        fast.NNDescentNeighbors(metric="manhattan")


def test_nndescent_rejects_bad_n_trees():
    with pytest.raises(GidrValueError, match=r"'n_trees' parameter of neighbors 'nndescent' must be an int"):
        fast.NNDescentNeighbors(n_trees=-1)


# ---------------------------------------------------------------------- pynndescent
def test_drop_self_wherever_it_sits():
    """Duplicates may put a point after its twin; a missing entry (-1) is skipped too."""
    indices = np.array([[1, 0, 2, -1], [0, 1, 2, 3], [1, 0, 2, 3]])
    distances = np.array([[0.0, 0.0, 1.0, np.inf], [0.0, 0.0, 2.0, 3.0], [0.5, 0.5, 0.0, 0.7]])
    graph = fast.drop_self(indices, distances, 2)
    np.testing.assert_array_equal(graph.indices, [[1, 2], [0, 2], [0, 1]])
    np.testing.assert_array_equal(graph.distances, [[0.0, 1.0], [0.0, 2.0], [0.5, 0.5]])


def test_drop_self_refuses_short_rows():
    with pytest.raises(GidrValueError, match=r"neighbors 'pynndescent' must be at least 2 per point"):
        fast.drop_self(np.array([[0, 1, -1], [0, 1, 2], [2, 0, 1]]), np.zeros((3, 3)), 2)


def test_pynndescent_rejects_unknown_metric():
    pytest.importorskip("pynndescent")
    with pytest.raises(GidrValueError, match=r"'metric' parameter of neighbors 'pynndescent' must be a metric"):
        fast.PynndescentNeighbors(metric="no-such-metric")


def test_pynndescent_recall(blobs, blobs_graph):
    """One run (pynndescent compiles its JIT in every fresh process: slow on first use)."""
    pytest.importorskip("pynndescent")
    graph = fast.PynndescentNeighbors().compute(blobs, 15, ctx_for(len(blobs)))
    assert recall(graph.indices, blobs_graph.indices) >= 0.95
    assert not np.any(graph.indices == np.arange(len(blobs))[:, None])
    assert graph.indices.shape == (len(blobs), 15) and graph.distances.dtype == np.float64


# ---------------------------------------------------------------------- similarity
@pytest.mark.parametrize("pseudo_distance", [True, False])
def test_umap_similarity_matches_reference(graph_small, pseudo_distance):
    graph = KNNGraph(graph_small.indices[:, :15], graph_small.distances[:, :15])
    actual = fast.UmapSimilarity(pseudo_distance=pseudo_distance).compute(graph, ctx_for(300))
    expected = reference.UmapSimilarity(pseudo_distance=pseudo_distance).compute(graph, ctx_for(300))
    np.testing.assert_array_equal(actual.indices, expected.indices)
    np.testing.assert_array_equal(actual.indptr, expected.indptr)
    assert_matches(actual=actual.data, reference=expected.data, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("pseudo_distance", [False, True])
@pytest.mark.parametrize("perplexity", [5.0, 10.0])
def test_tsne_similarity_matches_reference(graph_small, pseudo_distance, perplexity):
    stage = dict(perplexity=perplexity, pseudo_distance=pseudo_distance)
    actual = fast.TsneSimilarity(**stage).compute(graph_small, ctx_for(300))
    expected = reference.TsneSimilarity(**stage).compute(graph_small, ctx_for(300))
    np.testing.assert_array_equal(actual.indices, expected.indices)
    assert_matches(actual=actual.data, reference=expected.data, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("stage", [dict(), dict(perplexity=2.0)], ids=["umap", "tsne"])
def test_row_weights_of_identical_points_match_reference(stage):
    distances = np.zeros((20, 6))
    numba_class, reference_class = (fast.TsneSimilarity, reference.TsneSimilarity) if stage else \
        (fast.UmapSimilarity, reference.UmapSimilarity)
    assert_matches(actual=numba_class(**stage).row_weights(distances, ctx_for(20)),
                   reference=reference_class(**stage).row_weights(distances, ctx_for(20)), rtol=1e-12)


def test_tsne_perplexity_above_k_warns_like_the_reference(graph_small):
    """The target log(k) is reached only at beta = 0, where each bisection step is decided
    by rounding: both backends give near-uniform rows, equal to about 1e-8."""
    with pytest.warns(UserWarning, match=r"perplexity.*larger than the 30 neighbour"):
        actual = fast.TsneSimilarity(perplexity=50.0).compute(graph_small, ctx_for(300))
    with pytest.warns(UserWarning, match=r"perplexity.*larger than the 30 neighbour"):
        expected = reference.TsneSimilarity(perplexity=50.0).compute(graph_small, ctx_for(300))
    assert_matches(actual=actual.data, reference=expected.data, rtol=1e-6)
    assert_matches(actual=np.asarray(actual.sum(axis=1)).ravel(), reference=np.ones(300), rtol=1e-12)


def test_similarity_same_bits_whatever_the_thread_count(graph_small):
    stage = fast.TsneSimilarity(perplexity=8.0)
    one = with_threads(1, stage.compute, graph_small, ctx_for(300))
    every = with_threads(numba.config.NUMBA_NUM_THREADS, stage.compute, graph_small, ctx_for(300))
    np.testing.assert_array_equal(one.data, every.data)


# ---------------------------------------------------------------------- symmetrize
def messy_directed():
    """A COO matrix with a duplicate entry, a diagonal entry, an explicit zero, float32."""
    rows, cols = [0, 0, 1, 2, 2, 3, 1], [1, 1, 2, 2, 0, 1, 3]
    return sp.coo_matrix((np.array([0.5, 0.25, 0.0, 0.3, 0.2, 0.7, 0.4], np.float32), (rows, cols)), shape=(4, 4))


@pytest.mark.parametrize("name", ["fuzzy_union", "mean"])
def test_symmetrize_matches_reference_bit_for_bit(graph_small, name):
    P_directed = reference.UmapSimilarity().compute(graph_small, ctx_for(300))
    fast_class = {"fuzzy_union": fast.FuzzyUnionSymmetrize, "mean": fast.MeanSymmetrize}[name]
    reference_class = {"fuzzy_union": reference.FuzzyUnionSymmetrize, "mean": reference.MeanSymmetrize}[name]
    for matrix in (P_directed, messy_directed()):
        actual = fast_class().compute(matrix, ctx_for(matrix.shape[0]))
        expected = reference_class().compute(matrix, ctx_for(matrix.shape[0]))
        np.testing.assert_array_equal(actual.indptr, expected.indptr)
        np.testing.assert_array_equal(actual.indices, expected.indices)
        assert_matches(actual=actual.data, reference=expected.data, rtol=0.0)
        assert (actual != actual.T).nnz == 0 and actual.has_sorted_indices


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.7])
def test_fuzzy_union_mixed_with_the_intersection_matches_reference_bit_for_bit(graph_small, ratio):
    P_directed = reference.UmapSimilarity().compute(graph_small, ctx_for(300))
    for matrix in (P_directed, messy_directed()):
        actual = fast.FuzzyUnionSymmetrize(set_op_mix_ratio=ratio).compute(matrix, ctx_for(matrix.shape[0]))
        expected = reference.FuzzyUnionSymmetrize(set_op_mix_ratio=ratio).compute(matrix, ctx_for(matrix.shape[0]))
        np.testing.assert_array_equal(actual.indptr, expected.indptr)
        np.testing.assert_array_equal(actual.indices, expected.indices)
        assert_matches(actual=actual.data, reference=expected.data, rtol=0.0)
        assert (actual != actual.T).nnz == 0


def test_symmetrize_keeps_int32_indices_and_makes_no_union_sized_temporaries(graph_small):
    """The result's indices are int32 as SciPy stores them; the stage's traced peak is within
    the transpose and the result (no aligned value arrays, no expression temporaries)."""
    import tracemalloc

    from gidr_numba import symmetrize

    P_directed = sp.csr_matrix(reference.UmapSimilarity().compute(graph_small, ctx_for(300)))
    symmetrize.fuzzy_union(P_directed)  # compiled before tracing
    assert P_directed.indices.dtype == np.int32
    tracemalloc.start()
    P = symmetrize.fuzzy_union(P_directed)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert P.indices.dtype == np.int32
    transpose = 12 * P_directed.nnz + 8 * (P_directed.shape[0] + 1)
    result = 12 * P.nnz + 8 * (P.shape[0] + 1)
    # int64 indices with two aligned value arrays and three temporaries held over 2.5 times this
    assert peak < 1.5 * (transpose + result), (peak, transpose, result)


def test_symmetrize_drops_values_that_underflow():
    P = sp.csr_matrix(np.array([[0.0, 5e-324], [0.0, 0.0]]))
    actual = fast.MeanSymmetrize().compute(P, ctx_for(2))
    expected = reference.MeanSymmetrize().compute(P, ctx_for(2))
    assert actual.nnz == expected.nnz == 0


def test_symmetrize_leaves_the_input_alone(graph_small):
    P_directed = reference.UmapSimilarity().compute(graph_small, ctx_for(300))
    before = P_directed.copy()
    fast.FuzzyUnionSymmetrize().compute(P_directed, ctx_for(300))
    assert (P_directed != before).nnz == 0


# ---------------------------------------------------------------------- spectral init
def column_correlations(A, B):
    return [abs(np.corrcoef(A[:, c], B[:, c])[0, 1]) for c in range(A.shape[1])]


@pytest.mark.parametrize("normalized", [False, True])
def test_spectral_matches_reference_on_a_connected_graph(normalized):
    P = connected_P()
    ctx = ctx_for(P.shape[0], normalized=normalized)
    actual = fast.SpectralInit().compute(None, P, ctx)
    expected = reference.SpectralInit().compute(None, P, ctx)
    assert min(column_correlations(actual, expected)) > 0.99
    if normalized:
        assert_matches(actual=actual[:, 0].std(), reference=1e-4, rtol=1e-10)
    else:
        assert_matches(actual=np.abs(actual).max(), reference=10.0, rtol=1e-10)


def test_spectral_eigenmap_sparse_solver_agrees_with_dense():
    A = reference_init.clean(connected_P())
    sparse_layout = spectral.laplacian_eigenmap(A, 2, np.random.default_rng(0))
    dense_layout = reference_init.laplacian_eigenmap(A, 2, np.random.default_rng(0))
    assert A.shape[0] > spectral.DENSE_EIGEN_MAX
    assert min(column_correlations(sparse_layout, dense_layout)) > 0.999


def test_spectral_lays_out_components_separately_with_a_warning():
    P = sp.block_diag([connected_P(600, 1), connected_P(300, 2), sp.csr_matrix((2, 2))]).tocsr()
    with pytest.warns(UserWarning, match=r"4 connected components"):
        Y = spectral.spectral_layout(P, 2, np.random.default_rng(0))
    assert np.all(np.isfinite(Y))
    centres = [Y[:600].mean(axis=0), Y[600:900].mean(axis=0)]
    assert np.linalg.norm(centres[0] - centres[1]) > 0.5


def test_spectral_falls_back_to_random_when_the_solver_fails(monkeypatch):
    from scipy.sparse.linalg import ArpackNoConvergence

    def failing_eigsh(*args, **kwargs):
        raise ArpackNoConvergence("no convergence", np.zeros(0), np.zeros((0, 0)))

    monkeypatch.setattr(spectral, "eigsh", failing_eigsh)
    P = connected_P()
    with pytest.warns(UserWarning, match=r"eigensolver failed.*random init for 800 points"):
        Y = fast.SpectralInit().compute(None, P, ctx_for(P.shape[0]))
    assert Y.shape == (800, 2) and np.all(np.isfinite(Y))


def test_spectral_is_reproducible():
    P = connected_P()
    first = fast.SpectralInit().compute(None, P, ctx_for(P.shape[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = fast.SpectralInit().compute(None, P, ctx_for(P.shape[0]))
    np.testing.assert_array_equal(first, second)


# ---------------------------------------------------------------------- pipeline
def test_pipeline_runs_on_the_numba_graph_stages():
    X = datasets.load("digits", n_samples=400)[0]
    result = Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=5, neighbors="nndescent",
                                  backend="numba").run(X)
    backends = result.config["resolved"]["backends"]
    assert [backends[kind] for kind in ("neighbors", "similarity", "symmetrize", "init")] == ["numba"] * 4
    assert np.all(np.isfinite(np.asarray(result)))
