"""openTSNE's other kernels as gidr stages: ``gaussian``, ``uniform``, ``multiscale`` similarities
and ``max`` symmetrization (reference), checked against their formulas written out here."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from gidr.pipeline import Pipeline
from gidr.validation import GidrValueError
from gidr_reference import similarity as math_
from gidr_reference import symmetrize as sym
from gidr_reference.stages_graph import MultiscaleSimilarity, Perplexities


@pytest.fixture(scope="module")
def distances():
    """Sorted distances of 40 points to 12 neighbours, some rows far from the origin."""
    rng = np.random.default_rng(3)
    d = np.sort(rng.gamma(2.0, 1.0, size=(40, 12)), axis=1)
    d[5] += 60.0  # a point far from all its neighbours: exp(-d^2 / 2) underflows without the shift
    return d


def test_gaussian_weights_are_the_normalized_kernel(distances):
    near = distances[np.arange(40) != 5]
    e = np.exp(-near**2 / (2 * 1.7**2))
    np.testing.assert_allclose(math_.gaussian_weights(near, 1.7), e / e.sum(axis=1, keepdims=True), rtol=1e-12)


def test_gaussian_weights_stay_finite_where_the_kernel_underflows(distances):
    assert np.exp(-distances[5] ** 2 / 2).sum() == 0.0  # the unshifted formula would give 0 / 0
    w = math_.gaussian_weights(distances, 1.0)
    assert np.all(np.isfinite(w)) and np.allclose(w.sum(axis=1), 1.0)
    assert w[5, 0] == w[5].max() > 0.5  # the nearest neighbour takes most of the weight


def test_uniform_weights(distances):
    np.testing.assert_array_equal(math_.uniform_weights(distances), np.full(distances.shape, 1 / 12))


def test_multiscale_mean_is_the_mean_of_single_scales(distances):
    betas = [math_.tsne_betas(distances, p) for p in (3.0, 8.0)]
    expected = (math_.tsne_weights(distances, betas[0]) + math_.tsne_weights(distances, betas[1])) / 2
    np.testing.assert_allclose(math_.multiscale_weights(distances, betas, False), expected, rtol=1e-12)


def test_multiscale_mixture_is_the_precision_weighted_gaussian_sum(distances):
    near = distances[np.arange(40) != 5]
    betas = [math_.tsne_betas(near, p) for p in (3.0, 8.0)]
    e = sum(np.sqrt(b)[:, None] * np.exp(-b[:, None] * near**2) for b in betas)
    np.testing.assert_allclose(math_.multiscale_weights(near, betas, True), e / e.sum(axis=1, keepdims=True),
                               rtol=1e-10)
    far = math_.multiscale_weights(distances, [math_.tsne_betas(distances, p) for p in (3.0, 8.0)], True)
    assert np.all(np.isfinite(far)) and np.allclose(far.sum(axis=1), 1.0)


@pytest.mark.parametrize("mixture", [False, True])
def test_one_perplexity_is_tsne(distances, mixture):
    beta = math_.tsne_betas(distances, 5.0)
    np.testing.assert_allclose(math_.multiscale_weights(distances, [beta], mixture),
                               math_.tsne_weights(distances, beta), rtol=1e-12, atol=1e-300)


def test_each_scale_reaches_its_perplexity(distances):
    """The stage calibrates every scale from a fresh bracket (openTSNE 1.0.4 keeps the previous
    scale's, so its larger scales stay near the smallest perplexity)."""
    stage = MultiscaleSimilarity(perplexities=[3.0, 8.0])
    for perplexity in stage.perplexities:
        w = math_.tsne_weights(distances, stage.betas(distances, perplexity))
        achieved = np.exp(-(w * np.log(np.where(w > 0, w, 1.0))).sum(axis=1))
        np.testing.assert_allclose(achieved, perplexity, rtol=1e-6)


def test_maximum_symmetrization():
    rng = np.random.default_rng(0)
    A = sp.random(30, 30, density=0.2, random_state=1, format="csr") + sp.eye(30)
    A.data[:] = rng.random(A.nnz)
    P = sym.maximum(A)
    dense = A.toarray()
    np.fill_diagonal(dense, 0)
    np.testing.assert_array_equal(P.toarray(), np.maximum(dense, dense.T))
    assert (P != P.T).nnz == 0 and P.diagonal().sum() == 0


def test_perplexities_parameter():
    assert Perplexities().convert([30, 5, 30.0]) == (5.0, 30.0)
    assert Perplexities().convert(7) == (7.0,)
    for bad in ([], [5, -1], "30", [np.inf], None):
        assert not Perplexities().is_satisfied_by(bad)
    with pytest.raises(GidrValueError, match=r"'perplexities' parameter of similarity 'multiscale' must be a "
                                             r"positive float or a non-empty list of positive floats"):
        Pipeline.from_preset("tsne", similarity="multiscale", perplexities=[])


@pytest.mark.parametrize("similarity, extra", [("gaussian", {"sigma": 2.0, "n_neighbors": 10}),
                                               ("uniform", {"n_neighbors": 10}),
                                               ("multiscale", {"perplexities": [5, 15]}),
                                               ("multiscale", {"perplexities": [5, 15], "mixture": True})])
@pytest.mark.parametrize("symmetrize", ["mean", "max", "none"])
def test_the_kernels_run_in_a_pipeline(similarity, extra, symmetrize):
    from sklearn.datasets import load_digits

    X = load_digits().data[:200]
    result = Pipeline.from_preset("tsne", similarity=similarity, symmetrize=symmetrize, n_epochs=30,
                                  random_state=0, backend="reference", **extra).run(X)
    P = result.affinities.P
    assert np.isclose(P.sum(), 1.0) and np.all(np.isfinite(result.embedding))
    if symmetrize != "none":
        assert (abs(P - P.T) > 1e-15).nnz == 0
    k = 45 if similarity == "multiscale" else 10
    assert result.graph.n_neighbors == k


@pytest.mark.parametrize("backend", ["reference", "numba"])
@pytest.mark.parametrize("self_in_target, target", [(False, np.log2(9)), (True, np.log2(10))])
def test_umap_bandwidths_aim_at_log2_k_or_log2_k_plus_one(backend, self_in_target, target):
    """k = 9 neighbours: sum_j exp(-(d_ij - rho_i) / sigma_i) is log2(9), or log2(10) when the
    point itself is counted (umap-learn's n_neighbors=10)."""
    if backend == "numba":
        from gidr_numba.similarity import umap_sigmas
    else:
        from gidr_reference.similarity import umap_sigmas
    d = np.sort(np.random.default_rng(0).uniform(0.1, 3.0, size=(50, 9)), axis=1)
    sigma, rho = umap_sigmas(d, True, self_in_target=self_in_target)
    sums = np.exp(-np.maximum(d - rho[:, None], 0.0) / sigma[:, None]).sum(axis=1)
    np.testing.assert_allclose(sums, target, rtol=1e-12)


def test_umap_self_in_target_twins_agree():
    from gidr_numba.similarity import umap_row_weights
    from gidr_reference.similarity import umap_sigmas, umap_weights

    d = np.sort(np.random.default_rng(1).uniform(0.0, 2.0, size=(80, 14)), axis=1)
    for pseudo in (True, False):
        sigma, rho = umap_sigmas(d, pseudo, self_in_target=True)
        np.testing.assert_allclose(umap_row_weights(d, pseudo, True), umap_weights(d, sigma, rho, pseudo), rtol=1e-10)


def test_gidr_umap_graph_is_umap_learns():
    """gidr.UMAP(n_neighbors=10) builds umap-learn's fuzzy graph from the same exact neighbours
    (the point and 9 others, bandwidths aiming at log2(10)): to umap-learn's float32 precision."""
    umap_ = pytest.importorskip("umap.umap_")
    from sklearn.datasets import load_digits

    import gidr
    from gidr_reference.neighbors import exact_knn

    X = load_digits().data[:300]
    graph = exact_knn(X, 9)
    n = len(X)
    knn_indices = np.column_stack([np.arange(n), graph.indices])
    knn_dists = np.column_stack([np.zeros(n), graph.distances])
    theirs, _, _ = umap_.fuzzy_simplicial_set(X, 10, 0, "euclidean", knn_indices=knn_indices, knn_dists=knn_dists)
    ours = gidr.UMAP(n_neighbors=10, n_epochs=10, random_state=0).fit(X).graph_
    assert ours.nnz == theirs.nnz
    # umap-learn's bisection stops within 1e-5 of its target (SMOOTH_K_TOLERANCE), in float32: measured
    # 2.6e-6 at most here; counting the neighbours only (gidr.GDR's convention) is 0.05 away
    np.testing.assert_allclose(ours.toarray(), theirs.toarray(), atol=2e-5)
    other = gidr.GDR(n_neighbors=9, scalars="fit", n_epochs=10, random_state=0).fit(X).graph_
    assert np.abs(other.toarray() - theirs.toarray()).max() > 0.01
