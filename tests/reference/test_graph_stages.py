"""Tests of the reference neighbors, similarity, symmetrize and init stages."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.manifold import spectral_embedding
from sklearn.manifold._utils import _binary_search_perplexity
from sklearn.neighbors import NearestNeighbors

from gidr.registry import Registry
from gidr.stages import Init, Neighbors, Similarity, Symmetrize
from gidr.types import Context, KNNGraph
from gidr.validation import GidrValueError
from gidr_reference import MAX_SAMPLES
from gidr_reference import init as init_math
from gidr_reference import neighbors as neighbors_math
from gidr_reference import similarity as similarity_math
from gidr_reference.stages_graph import (
    STAGES,
    ArrayInit,
    ExactNeighbors,
    FuzzyUnionSymmetrize,
    MeanSymmetrize,
    NoSymmetrize,
    PcaInit,
    PrecomputedNeighbors,
    RandomInit,
    SpectralInit,
    TsneSimilarity,
    UmapSimilarity,
)
from tests.helpers import assert_matches


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().data[:240].astype(np.float64)


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [8.0, 0.0, 0.0], [0.0, 8.0, 0.0]])
    return np.repeat(centres, 40, axis=0) + rng.normal(size=(120, 3))


@pytest.fixture(scope="module")
def curve() -> np.ndarray:
    """A noisy 1-D curve in 3-D: its Laplacian eigenvalues are well separated."""
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0, 3, 150))
    return np.column_stack([t, np.sin(2 * t), 0.3 * np.cos(t)]) + 0.01 * rng.normal(size=(150, 3))


def ctx_for(n: int, *, normalized: bool = False, n_components: int = 2, seed: int = 0) -> Context:
    return Context(n_samples=n, n_components=n_components, normalized=normalized, seed=seed)


def umap_graph_P(X: np.ndarray, k: int = 10) -> sp.csr_matrix:
    ctx = ctx_for(len(X))
    graph = ExactNeighbors().compute(X, k, ctx)
    return FuzzyUnionSymmetrize().compute(UmapSimilarity(n_neighbors=k).compute(graph, ctx), ctx)


def row_values(P: sp.csr_matrix) -> list[np.ndarray]:
    return [P.data[P.indptr[i]:P.indptr[i + 1]] for i in range(P.shape[0])]


# ---------------------------------------------------------------------- neighbors
def test_exact_euclidean_matches_sklearn_brute_force(digits):
    k = 10
    graph = ExactNeighbors().compute(digits, k, ctx_for(len(digits)))
    ref_dist, _ = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(digits).kneighbors()
    assert graph.indices.dtype == np.int64 and graph.distances.dtype == np.float64
    assert_matches(actual=graph.distances, reference=ref_dist, rtol=1e-10, atol=1e-10)
    # digits has many ties: the indices are right when they sit at the right distances
    recomputed = np.linalg.norm(digits[:, None, :] - digits[graph.indices], axis=2)
    assert_matches(actual=graph.distances, reference=recomputed, rtol=1e-12, atol=1e-12)
    assert not np.any(graph.indices == np.arange(len(digits))[:, None])


def test_exact_rows_sorted_by_distance_then_index(digits):
    graph = ExactNeighbors().compute(digits, 12, ctx_for(len(digits)))
    for idx, dist in zip(graph.indices, graph.distances):
        assert list(zip(dist, idx)) == sorted(zip(dist, idx))


@pytest.mark.parametrize("metric", ["manhattan", "chebyshev", "cosine", "correlation"])
def test_exact_metrics_match_sklearn(blobs, metric):
    k = 7
    graph = ExactNeighbors(metric=metric).compute(blobs, k, ctx_for(len(blobs)))
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=metric).fit(blobs).kneighbors()
    assert_matches(actual=graph.distances, reference=ref_dist, rtol=1e-9, atol=1e-12)
    assert all(set(a) == set(b) for a, b in zip(graph.indices, ref_idx))  # no ties in continuous blobs


def test_exact_excludes_self_with_duplicates():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(10, 4))
    X = np.vstack([base, base[:5]])  # rows 10..14 duplicate rows 0..4
    graph = ExactNeighbors().compute(X, 3, ctx_for(len(X)))
    assert not np.any(graph.indices == np.arange(len(X))[:, None])
    for i in range(5):
        assert graph.indices[i, 0] == i + 10 and graph.distances[i, 0] == 0.0
        assert graph.indices[i + 10, 0] == i and graph.distances[i + 10, 0] == 0.0


def test_exact_ties_broken_by_index():
    X = np.ones((8, 3))
    graph = ExactNeighbors().compute(X, 3, ctx_for(8))
    assert graph.indices[0].tolist() == [1, 2, 3]
    assert graph.indices[2].tolist() == [0, 1, 3]
    assert np.all(graph.distances == 0.0)


def test_exact_blocks_give_the_same_graph(digits, monkeypatch):
    whole = ExactNeighbors().compute(digits, 9, ctx_for(len(digits)))
    monkeypatch.setattr(neighbors_math, "_BLOCK_ENTRIES", 7 * len(digits))  # blocks of 7 rows
    blocked = ExactNeighbors().compute(digits, 9, ctx_for(len(digits)))
    assert np.array_equal(blocked.indices, whole.indices)
    assert np.array_equal(blocked.distances, whole.distances)


def test_cosine_zero_vector_convention():
    A = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    D = neighbors_math.pairwise_distances(A, A, "cosine")
    assert D[0, 2] == 0.0 and D[0, 1] == 1.0 and D[1, 0] == 1.0 and np.all(np.isfinite(D))


def test_exact_refuses_more_than_max_samples():
    assert ExactNeighbors.max_samples == MAX_SAMPLES
    with pytest.raises(GidrValueError, match="The number of samples for neighbors 'exact' in backend 'reference'"):
        ExactNeighbors().check_n_samples(MAX_SAMPLES + 1)


def test_precomputed_distance_matrix_equals_exact(digits):
    D = np.linalg.norm(digits[:, None, :] - digits[None, :, :], axis=2)
    D_before = D.copy()
    graph = PrecomputedNeighbors().compute(D, 10, ctx_for(len(digits)))
    exact = ExactNeighbors().compute(digits, 10, ctx_for(len(digits)))
    assert np.array_equal(graph.indices, exact.indices)
    assert_matches(actual=graph.distances, reference=exact.distances, rtol=1e-12, atol=1e-12)
    assert np.array_equal(D, D_before)


def test_precomputed_graph_is_sorted_and_truncated(blobs):
    exact = ExactNeighbors().compute(blobs, 10, ctx_for(len(blobs)))
    wide = ExactNeighbors().compute(blobs, 15, ctx_for(len(blobs)))
    permutation = np.random.default_rng(0).permutation(15)
    shuffled = KNNGraph(wide.indices[:, permutation], wide.distances[:, permutation])
    frozen = shuffled.indices.copy()
    for given in (shuffled, (shuffled.indices, shuffled.distances)):
        graph = PrecomputedNeighbors().compute(given, 10, ctx_for(len(blobs)))
        assert np.array_equal(graph.indices, exact.indices)
        assert np.array_equal(graph.distances, exact.distances)
    assert np.array_equal(shuffled.indices, frozen)


def _bad_graph(case: str) -> KNNGraph:
    rng = np.random.default_rng(0)
    indices = np.array([(np.arange(1, 4) + i) % 6 for i in range(6)], dtype=np.int64)
    distances = np.sort(rng.uniform(0.1, 1.0, size=(6, 3)), axis=1)
    if case == "self":
        indices[2, 0] = 2
    elif case == "range":
        indices[1, 1] = 6
    elif case == "missing":
        indices[4, 2] = -1
    elif case == "repeat":
        indices[3, 2] = indices[3, 1]
    elif case == "negative":
        distances[0, 0] = -0.5
    elif case == "nan":
        distances[5, 1] = np.nan
    elif case == "shape":
        distances = distances[:, :2]
    elif case == "float":
        indices = indices.astype(float)
    return KNNGraph(indices, distances)


@pytest.mark.parametrize("case, match", [
    ("self", r"indices must be neighbours other than the point itself. Got 'row 2 listing point 2 itself'"),
    ("range", r"indices must be in \[0, 6\) \(n_samples\)"),
    ("missing", r"indices must be in \[0, 6\).*Missing neighbours \(-1\) are not supported"),
    ("repeat", r"must be distinct neighbours in each row. Got 'a repeated neighbour in row 3'"),
    ("negative", r"distances must be finite and non-negative"),
    ("nan", r"distances must be finite and non-negative"),
    ("shape", r"indices and distances must be 2-D arrays of the same shape"),
    ("float", r"indices must be an integer array. Got 'dtype float64'"),
])
def test_precomputed_graph_rejects_bad_input(case, match):
    with pytest.raises(GidrValueError, match=match):
        PrecomputedNeighbors().compute(_bad_graph(case), 3, ctx_for(6))


def test_precomputed_graph_with_too_few_columns_names_the_fix():
    with pytest.raises(GidrValueError, match=r"must be at least 5 \(the n_neighbors of the similarity.*Got 3\. "
                                             r"Compute more neighbours, or lower the similarity's 'n_neighbors'"):
        PrecomputedNeighbors().compute(_bad_graph("none"), 5, ctx_for(6))


@pytest.mark.parametrize("matrix, match", [
    (np.zeros((4, 3)), r"The precomputed distance matrix X must be a square 2-D array"),
    (-np.ones((4, 4)), r"The precomputed distance matrix X must be a matrix of positive or zero distances\. "
                       r"Got 16 negative value\(s\)"),
    (np.full((4, 4), np.inf), r"The precomputed distance matrix X must be finite"),
])
def test_precomputed_matrix_rejects_bad_input(matrix, match):
    with pytest.raises(GidrValueError, match=match):
        PrecomputedNeighbors().compute(matrix, 2, ctx_for(4))


def test_neighbors_reject_k_out_of_range(blobs):
    with pytest.raises(GidrValueError, match=r"The number of neighbours must be an int in \[1, 119\]"):
        ExactNeighbors().compute(blobs, 120, ctx_for(len(blobs)))


# ---------------------------------------------------------------------- similarity: umap
@pytest.mark.parametrize("pseudo_distance", [True, False])
def test_umap_rows_sum_to_log2_k(digits, pseudo_distance):
    k = 15
    graph = ExactNeighbors().compute(digits, k, ctx_for(len(digits)))
    sigma, _ = similarity_math.umap_sigmas(graph.distances, pseudo_distance)
    P = UmapSimilarity(n_neighbors=k, pseudo_distance=pseudo_distance).compute(graph, ctx_for(len(digits)))
    assert P.shape == (240, 240) and sp.isspmatrix_csr(P) and P.diagonal().sum() == 0
    free = sigma > 1e-3 * graph.distances.mean(axis=1) * (1 + 1e-9)  # not at the floor
    assert free.mean() > 0.9
    sums = np.asarray(P.sum(axis=1)).ravel()
    assert_matches(actual=sums[free], reference=np.full(free.sum(), np.log2(k)), rtol=0, atol=1e-5)
    if pseudo_distance:
        assert all(values.max() == 1.0 for values in row_values(P))


def test_umap_weights_follow_the_formula(blobs):
    graph = ExactNeighbors().compute(blobs, 6, ctx_for(len(blobs)))
    sigma, rho = similarity_math.umap_sigmas(graph.distances)
    P = UmapSimilarity(n_neighbors=6).compute(graph, ctx_for(len(blobs)))
    i = 17
    expected = np.exp(-np.maximum(graph.distances[i] - rho[i], 0) / sigma[i])
    assert_matches(actual=P[i, graph.indices[i]].toarray().ravel(), reference=expected, rtol=1e-14)
    assert rho[i] == graph.distances[i, 0]


def test_umap_rho_skips_zero_distances():
    distances = np.array([[0.0, 0.0, 0.5, 1.0], [0.0, 0.0, 0.0, 0.0]])
    assert similarity_math.umap_rho(distances).tolist() == [0.5, 0.0]


def test_umap_sigma_floor_and_identical_points():
    X = np.ones((12, 4))
    graph = ExactNeighbors().compute(X, 5, ctx_for(12))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P = UmapSimilarity(n_neighbors=5).compute(graph, ctx_for(12))
        P_off = UmapSimilarity(n_neighbors=5, pseudo_distance=False).compute(graph, ctx_for(12))
    assert np.all(P.data == 1.0) and P.nnz == 60
    assert np.all(P_off.data == 1.0) and P_off.nnz == 60


def test_umap_sigma_is_floored():
    # one far neighbour among near-zero ones: the bisection wants a tiny sigma
    distances = np.array([[1e-9, 1e-9, 1e-9, 1e-9, 10.0]])
    sigma, _ = similarity_math.umap_sigmas(distances, pseudo_distance=False)
    assert sigma[0] == pytest.approx(1e-3 * distances.mean())


def test_umap_single_neighbour_is_a_full_member():
    graph = KNNGraph(np.array([[1], [0]]), np.array([[2.0], [2.0]]))
    for pseudo_distance in (True, False):
        P = UmapSimilarity(n_neighbors=1, pseudo_distance=pseudo_distance).compute(graph, ctx_for(2))
        assert P.toarray().tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_umap_n_neighbors_required_is_the_parameter():
    assert UmapSimilarity(n_neighbors=15).n_neighbors_required(1000) == 15


# ---------------------------------------------------------------------- similarity: tsne
def _row_entropy(P: sp.csr_matrix) -> np.ndarray:
    return np.array([-(v * np.log(v)).sum() for v in row_values(P)])


@pytest.mark.parametrize("pseudo_distance", [False, True])
def test_tsne_entropy_equals_log_perplexity(digits, pseudo_distance):
    stage = TsneSimilarity(perplexity=10.0, pseudo_distance=pseudo_distance)
    k = stage.n_neighbors_required(len(digits))
    graph = ExactNeighbors().compute(digits, k, ctx_for(len(digits)))
    P = stage.compute(graph, ctx_for(len(digits)))
    assert k == 30
    assert_matches(actual=np.asarray(P.sum(axis=1)).ravel(), reference=np.ones(240), rtol=1e-12)
    assert_matches(actual=_row_entropy(P), reference=np.full(240, np.log(10.0)), rtol=0, atol=1e-5)


def test_tsne_matches_sklearn_binary_search(blobs):
    graph = ExactNeighbors().compute(blobs, 15, ctx_for(len(blobs)))
    P = TsneSimilarity(perplexity=5.0).compute(graph, ctx_for(len(blobs)))
    reference = _binary_search_perplexity(graph.distances.astype(np.float32) ** 2, 5.0, 0)
    actual = np.take_along_axis(P.toarray(), graph.indices, axis=1)
    assert_matches(actual=actual, reference=reference, rtol=0, atol=1e-4)


def test_tsne_perplexity_larger_than_k_warns(blobs):
    X = blobs[:8]
    stage = TsneSimilarity(perplexity=30.0)
    k = stage.n_neighbors_required(len(X))
    graph = ExactNeighbors().compute(X, k, ctx_for(8))
    with pytest.warns(UserWarning, match=r"The 'perplexity' parameter of similarity 'tsne' \(30.0\) is larger "
                                         r"than the 7 neighbour\(s\)"):
        P = stage.compute(graph, ctx_for(8))
    assert k == 7
    assert_matches(actual=_row_entropy(P), reference=np.full(8, np.log(7)), rtol=0, atol=1e-9)


def test_tsne_equal_distances_give_uniform_rows():
    graph = ExactNeighbors().compute(np.zeros((10, 2)), 6, ctx_for(10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P = TsneSimilarity(perplexity=2.0).compute(graph, ctx_for(10))
    assert_matches(actual=P.data, reference=np.full(60, 1 / 6), rtol=1e-12)


@pytest.mark.parametrize("perplexity, n_samples, expected", [(30.0, 1000, 90), (30.0, 50, 49), (0.2, 50, 1),
                                                             (5.5, 100, 16)])
def test_tsne_n_neighbors_required(perplexity, n_samples, expected):
    assert TsneSimilarity(perplexity=perplexity).n_neighbors_required(n_samples) == expected


# ---------------------------------------------------------------------- symmetrize
@pytest.fixture
def directed() -> sp.csr_matrix:
    dense = np.array([[0.0, 0.5, 0.2, 0.0],
                      [1.0, 0.0, 0.0, 0.3],
                      [0.0, 0.0, 0.0, 0.9],
                      [0.4, 0.0, 0.6, 0.0]])
    return sp.csr_matrix(dense)


def test_fuzzy_union_formula(directed):
    before = directed.copy()
    P = FuzzyUnionSymmetrize().compute(directed, ctx_for(4)).toarray()
    A = directed.toarray()
    assert_matches(actual=P, reference=A + A.T - A * A.T, rtol=1e-15)
    assert P[0, 1] == 1.0 and P[2, 3] == pytest.approx(0.6 + 0.9 - 0.54)
    assert (directed != before).nnz == 0


def test_mean_formula(directed):
    P = MeanSymmetrize().compute(directed, ctx_for(4)).toarray()
    A = directed.toarray()
    assert_matches(actual=P, reference=(A + A.T) / 2, rtol=1e-15)


def test_none_keeps_the_directed_matrix(directed):
    P = NoSymmetrize().compute(directed, ctx_for(4))
    assert_matches(actual=P.toarray(), reference=directed.toarray(), rtol=0)
    assert P is not directed and (P != P.T).nnz > 0


@pytest.mark.parametrize("stage", [FuzzyUnionSymmetrize(), MeanSymmetrize(), NoSymmetrize()])
def test_symmetrize_output_is_clean(stage):
    messy = sp.csr_matrix((np.array([0.5, 0.0, 0.3, 0.7, 0.2]),
                           (np.array([0, 0, 1, 2, 2]), np.array([2, 1, 1, 0, 1]))), shape=(3, 3))
    P = stage.compute(messy, ctx_for(3))
    assert sp.isspmatrix_csr(P) and P.has_sorted_indices
    assert np.all(P.data != 0) and P.diagonal().sum() == 0
    if stage.name != "none":
        assert (P != P.T).nnz == 0


def test_symmetrize_is_exactly_symmetric_on_real_data(digits):
    ctx = ctx_for(len(digits))
    graph = ExactNeighbors().compute(digits, 10, ctx)
    P_directed = UmapSimilarity(n_neighbors=10).compute(graph, ctx)
    for stage in (FuzzyUnionSymmetrize(), MeanSymmetrize()):
        P = stage.compute(P_directed, ctx)
        assert np.array_equal(P.toarray(), P.T.toarray())


# ---------------------------------------------------------------------- init: spectral
def test_spectral_matches_sklearn_on_a_connected_graph(curve):
    P = umap_graph_P(curve)
    Y = init_math.spectral_layout(P, 2, np.random.default_rng(0))
    reference = spectral_embedding(P, n_components=3, norm_laplacian=True, drop_first=True, random_state=0)
    degree = np.asarray(P.sum(axis=1)).ravel()
    for j in range(2):  # sklearn divides by sqrt(degree): the same eigenvector up to that factor
        assert abs(np.corrcoef(Y[:, j], reference[:, j])[0, 1]) > 0.9
        assert abs(np.corrcoef(Y[:, j], reference[:, j] * np.sqrt(degree))[0, 1]) > 0.9999


def test_spectral_stage_is_deterministic_and_scaled(curve):
    P = umap_graph_P(curve)
    ctx = ctx_for(len(curve), seed=3)
    Y1 = SpectralInit().compute(curve, P, ctx)
    Y2 = SpectralInit().compute(None, P, ctx)
    assert Y1.dtype == np.float64 and Y1.shape == (150, 2) and np.all(np.isfinite(Y1))
    assert np.array_equal(Y1, Y2)
    assert np.abs(Y1).max() == pytest.approx(10.0, rel=1e-12)


def test_spectral_sparse_solver_agrees_with_dense(curve, monkeypatch):
    P = umap_graph_P(curve)
    dense = init_math.spectral_layout(P, 2, np.random.default_rng(0))
    monkeypatch.setattr(init_math, "DENSE_EIGEN_MAX", 10)
    sparse = init_math.spectral_layout(P, 2, np.random.default_rng(0))
    assert_matches(actual=sparse, reference=dense, rtol=0, atol=1e-6)


def test_spectral_disconnected_graph_warns_and_separates(blobs):
    pair, single = sp.csr_matrix([[0.0, 1.0], [1.0, 0.0]]), sp.csr_matrix((1, 1))
    P = sp.block_diag([umap_graph_P(blobs[:40]), umap_graph_P(blobs[40:80]), pair, single], format="csr")
    with pytest.warns(UserWarning, match=r"The affinity graph has 4 connected components"):
        Y = SpectralInit().compute(None, P, ctx_for(83))
    assert np.all(np.isfinite(Y)) and Y.shape == (83, 2)
    groups = [np.r_[0:40], np.r_[40:80], np.r_[80:82], np.r_[82:83]]
    centres = np.array([Y[g].mean(axis=0) for g in groups])
    spans = np.array([np.abs(Y[g] - c).max() for g, c in zip(groups, centres)])
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=2)[np.triu_indices(4, 1)]
    assert gaps.min() > 2 * spans.max()
    assert abs(np.corrcoef(Y[:40, 0], init_math.spectral_layout(P[:40, :40], 2, np.random.default_rng(0))[:, 0])[0, 1]) > 0.999


def test_spectral_eigensolver_failure_falls_back_to_random(curve, monkeypatch):
    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("no convergence")

    monkeypatch.setattr(init_math, "laplacian_eigenmap", broken)
    with pytest.warns(UserWarning, match=r"eigensolver failed \(no convergence\); using a random init"):
        Y = SpectralInit().compute(curve, umap_graph_P(curve), ctx_for(len(curve)))
    assert np.all(np.isfinite(Y))


def test_spectral_accepts_a_directed_matrix(curve):
    ctx = ctx_for(len(curve))
    P = NoSymmetrize().compute(UmapSimilarity(n_neighbors=8).compute(
        ExactNeighbors().compute(curve, 8, ctx), ctx), ctx)
    symmetric = MeanSymmetrize().compute(P, ctx)
    assert_matches(actual=SpectralInit().compute(None, P, ctx), reference=SpectralInit().compute(None, symmetric, ctx),
                   rtol=0, atol=1e-9)


# ---------------------------------------------------------------------- init: pca, random, array
def test_pca_matches_sklearn_up_to_sign_and_scale(digits):
    ctx = ctx_for(len(digits), normalized=True)
    Y = PcaInit().compute(digits, sp.csr_matrix((240, 240)), ctx)
    reference = PCA(n_components=2, svd_solver="full").fit_transform(digits)
    factor = reference[:, 0].std() / Y[:, 0].std()
    signs = np.sign(np.sum(Y * reference, axis=0))
    assert_matches(actual=Y * factor, reference=reference * signs, rtol=1e-8, atol=1e-8)
    assert Y[:, 0].std() == pytest.approx(1e-4, rel=1e-12)


def test_pca_needs_the_data_matrix():
    with pytest.raises(GidrValueError, match=r"The data for init 'pca' must be the data matrix X. Got None. "
                                             r"With precomputed neighbours there is no X"):
        PcaInit().compute(None, sp.csr_matrix((5, 5)), ctx_for(5))


def test_pca_zero_variance_falls_back_to_random():
    with pytest.warns(UserWarning, match=r"The 'pca' init got data with zero variance"):
        Y = PcaInit().compute(np.full((20, 3), 7.0), sp.csr_matrix((20, 20)), ctx_for(20))
    assert np.all(np.isfinite(Y)) and np.abs(Y).max() == pytest.approx(10.0)


def test_pca_fills_components_beyond_the_rank():
    X = np.linspace(0, 1, 30)[:, None]  # one feature, two components asked for
    Y = init_math.pca_layout(X, 2, np.random.default_rng(0))
    assert np.all(np.isfinite(Y)) and 0 < Y[:, 1].std() < 1e-3 * Y[:, 0].std()


@pytest.mark.parametrize("stage_class", [SpectralInit, PcaInit, RandomInit])
@pytest.mark.parametrize("normalized, scale, check", [
    (True, "auto", lambda Y: Y[:, 0].std() == pytest.approx(1e-4, rel=1e-12)),
    (False, "auto", lambda Y: np.abs(Y).max() == pytest.approx(10.0, rel=1e-12)),
    (False, 2.5, lambda Y: Y[:, 0].std() == pytest.approx(2.5, rel=1e-12)),
    (True, 0.01, lambda Y: Y[:, 0].std() == pytest.approx(0.01, rel=1e-12)),
])
def test_init_scale_rules(curve, stage_class, normalized, scale, check):
    ctx = ctx_for(len(curve), normalized=normalized, n_components=3)
    Y = stage_class(scale=scale).compute(curve, umap_graph_P(curve), ctx)
    assert Y.shape == (150, 3) and Y.dtype == np.float64 and check(Y)


def test_unnormalized_auto_extent_shrinks_above_100000_points():
    """max|Y| = 10 up to 100,000 points, then 10 (1e5 / n)^2, at least 0.1; rescale uses it."""
    from gidr_reference import init as init_math

    extent = init_math.unnormalized_extent
    assert extent(150) == extent(100_000) == 10.0
    assert extent(200_000) == pytest.approx(2.5, rel=1e-12)
    assert extent(500_000) == pytest.approx(0.4, rel=1e-12)
    assert extent(1_000_000) == pytest.approx(0.1, rel=1e-12) and extent(10_000_000) == 0.1
    Y = np.random.default_rng(0).normal(size=(200_000, 2))
    assert np.abs(init_math.rescale(Y, "auto", False)).max() == pytest.approx(2.5, rel=1e-12)
    assert init_math.rescale(Y, "auto", True)[:, 0].std() == pytest.approx(1e-4, rel=1e-12)


def test_unnormalized_inits_get_seeded_jitter(curve):
    P = umap_graph_P(curve)
    plain = SpectralInit().compute(curve, P, ctx_for(150, normalized=True))
    jittered = SpectralInit().compute(curve, P, ctx_for(150, normalized=False))
    difference = np.abs(jittered - plain * (10.0 / np.abs(plain).max()))
    assert 1e-6 < difference.max() < 1e-2
    assert np.array_equal(jittered, SpectralInit().compute(curve, P, ctx_for(150, normalized=False)))


def test_random_init_depends_only_on_the_seed():
    P = sp.csr_matrix((50, 50))
    first = RandomInit().compute(None, P, ctx_for(50, seed=1))
    assert np.array_equal(first, RandomInit().compute(None, P, ctx_for(50, seed=1)))
    assert not np.allclose(first, RandomInit().compute(None, P, ctx_for(50, seed=2)))


def test_every_init_is_finite_on_identical_points():
    X = np.ones((25, 4))
    ctx = ctx_for(25)
    P = umap_graph_P(X, k=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pca's zero-variance fallback
        for stage in (SpectralInit(), PcaInit(), RandomInit()):
            Y = stage.compute(X, P, ctx)
            assert Y.shape == (25, 2) and np.all(np.isfinite(Y)), stage.name


def test_array_init_returns_a_float64_copy():
    array = np.arange(12, dtype=np.int32).reshape(6, 2)
    stage = ArrayInit(array=array)
    Y = stage.compute(None, sp.csr_matrix((6, 6)), ctx_for(6))
    assert Y.dtype == np.float64 and np.array_equal(Y, array)
    Y[0, 0] = 99.0
    assert array[0, 0] == 0


@pytest.mark.parametrize("array, match", [
    (None, r"The 'array' parameter of init 'array' must be an array of shape \(n_samples, n_components\)\. "
           r"Got None\. Pass init=<array>"),
    (np.zeros((5, 2)), r"must be an array of shape \(6, 2\) \(n_samples, n_components\)\. Got an array of "
                       r"shape \(5, 2\)"),
    (np.zeros(12), r"must be an array of shape \(6, 2\)"),
    (np.full((6, 2), np.nan), r"The 'array' parameter of init 'array' must be finite\. Got '12 NaN"),
])
def test_array_init_rejects_bad_arrays(array, match):
    with pytest.raises(GidrValueError, match=match):
        ArrayInit(array=array).compute(None, sp.csr_matrix((6, 6)), ctx_for(6))


def test_array_init_checks_settings_when_the_pipeline_is_built():
    with pytest.raises(GidrValueError, match=r"must be an array of shape \(n_samples, 3\)"):
        ArrayInit(array=np.zeros((6, 2))).check_settings({"n_components": 3})
    with pytest.raises(GidrValueError, match=r"Got None\. Pass init=<array>"):
        ArrayInit().check_settings({"n_components": 2})


# ---------------------------------------------------------------------- parameters and registration
@pytest.mark.parametrize("stage_class, params, match", [
    (TsneSimilarity, {"perplexity": -3.0},
     r"The 'perplexity' parameter of similarity 'tsne' must be a float in \(0, inf\)\. Got -3\.0\."),
    (TsneSimilarity, {"perplexity": "30"}, r"The 'perplexity' parameter of similarity 'tsne' must be a float in"),
    (TsneSimilarity, {"pseudo_distance": 1}, r"The 'pseudo_distance' parameter of similarity 'tsne' must be a bool"),
    (UmapSimilarity, {"n_neighbors": 0},
     r"The 'n_neighbors' parameter of similarity 'umap' must be an int in \[1, inf\)\. Got 0\."),
    (UmapSimilarity, {"n_neighbors": 2.5}, r"The 'n_neighbors' parameter of similarity 'umap' must be an int in"),
    (UmapSimilarity, {"pseudo_distance": "yes"}, r"The 'pseudo_distance' parameter of similarity 'umap' must be a"),
    (ExactNeighbors, {"metric": "hamming"},
     r"The 'metric' parameter of neighbors 'exact' must be one of 'euclidean', 'manhattan', 'chebyshev', "
     r"'cosine', 'correlation', 'minkowski', .*, 'haversine' or a numba-jitted function metric\(x, y\) -> float\. "
     r"Got 'hamming'\."),
    (PrecomputedNeighbors, {"metric": "euclidean"},
     r"A parameter name of neighbors 'precomputed' must be one of \(no parameters\)\. Got 'metric'\."),
    (SpectralInit, {"scale": 0.0},
     r"The 'scale' parameter of init 'spectral' must be one of 'auto' or a float in \(0, inf\)\. Got 0\.0\."),
    (PcaInit, {"scale": "big"}, r"The 'scale' parameter of init 'pca' must be one of 'auto' or a float in"),
    (RandomInit, {"scale": -1.0}, r"The 'scale' parameter of init 'random' must be one of 'auto' or a float in"),
    (ArrayInit, {"array": "abc"}, r"The 'array' parameter of init 'array' must be an array-like or None\."),
    (FuzzyUnionSymmetrize, {"weight": 1.0}, r"A parameter name of symmetrize 'fuzzy_union' must be one of"),
])
def test_bad_parameters_raise(stage_class, params, match):
    with pytest.raises(GidrValueError, match=match):
        stage_class(**params)


def test_stages_register_and_pickle():
    registry = Registry()
    bases = {"neighbors": Neighbors, "similarity": Similarity, "symmetrize": Symmetrize, "init": Init}
    for stage_class in STAGES:
        registry.add(stage_class)
        assert issubclass(stage_class, bases[stage_class.kind])
        assert stage_class.backend == "reference" and stage_class.priority == 0
        stage = stage_class()
        assert pickle.loads(pickle.dumps(stage)).values == stage.values
    assert registry.names("symmetrize") == ["fuzzy_union", "max", "mean", "none"]
    assert registry.names("similarity") == ["gaussian", "multiscale", "tsne", "umap", "uniform"]
    assert registry.names("init") == ["array", "pca", "random", "spectral"]
    assert TsneSimilarity(perplexity=12).perplexity == 12.0
