"""openTSNE's affinity classes, indexes, callbacks and gradient functions in :mod:`gidr.opentsne`."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial.distance import cdist, pdist, squareform
from sklearn.datasets import load_digits, load_iris

from gidr.opentsne import TSNE, affinity, callbacks, nearest_neighbors, utils
from gidr.opentsne.tsne import GRADIENT_SCALE, TooManyDimensions, kl_divergence_bh, kl_divergence_fft
from gidr.validation import GidrValueError


@pytest.fixture(scope="module")
def iris():
    rng = np.random.default_rng(0)
    return load_iris().data + rng.normal(0, 1e-3, (150, 4))  # iris has duplicate rows


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400], y[:400]


def _gaussian_P(X, sigma, k, symmetrize=True):
    """FixedSigmaNN's P written out: Gaussian rows on the k nearest, (P + P^T) / 2, sum one."""
    D = squareform(pdist(X))
    np.fill_diagonal(D, np.inf)
    P = np.zeros_like(D)
    for i, row in enumerate(D):
        nearest = np.argsort(row, kind="stable")[:k]
        w = np.exp(-row[nearest] ** 2 / (2 * sigma**2))
        P[i, nearest] = w / w.sum()
    if symmetrize:
        P = (P + P.T) / 2
    return P / P.sum()


def test_fixed_sigma_is_the_written_out_kernel(iris):
    aff = affinity.FixedSigmaNN(iris, sigma=0.5, k=10, method="exact")
    np.testing.assert_allclose(aff.P.toarray(), _gaussian_P(iris, 0.5, 10), rtol=1e-10, atol=1e-16)
    unsymmetrized = affinity.FixedSigmaNN(iris, sigma=0.5, k=10, method="exact", symmetrize=False)
    np.testing.assert_allclose(unsymmetrized.P.toarray(), _gaussian_P(iris, 0.5, 10, False), rtol=1e-10, atol=1e-16)
    new = aff.to_new(iris[:7] + 0.01)
    np.testing.assert_allclose(np.asarray(new.sum(axis=1)).ravel(), 1.0)
    wider = aff.to_new(iris[:7] + 0.01, k=20, sigma=2.0)
    assert wider.nnz == 7 * 20


@pytest.mark.parametrize("symmetrize, values", [(True, 1), ("max", 1), ("mean", 2), (False, 1), ("none", 1)])
def test_uniform_values(iris, symmetrize, values):
    aff = affinity.Uniform(iris, k_neighbors=10, method="exact", symmetrize=symmetrize)
    assert len(np.unique(np.round(aff.P.data, 15))) == values
    assert np.isclose(aff.P.sum(), 1.0)
    symmetric = symmetrize not in (False, "none")
    assert ((aff.P != aff.P.T).nnz == 0) == symmetric
    new = aff.to_new(iris[:5])
    np.testing.assert_allclose(new.data, 0.1)


def test_multiscale_with_one_perplexity_is_perplexity_based(iris):
    single = affinity.PerplexityBasedNN(iris, perplexity=20, method="exact")
    for cls in (affinity.Multiscale, affinity.MultiscaleMixture):
        multi = cls(iris, perplexities=[20], method="exact")
        np.testing.assert_allclose(multi.P.toarray(), single.P.toarray(), rtol=1e-10, atol=1e-18)
        np.testing.assert_allclose(multi.to_new(iris[:9]).toarray(), single.to_new(iris[:9]).toarray(),
                                   rtol=1e-10, atol=1e-18)


def test_multiscale_is_the_mean_of_its_scales(iris):
    """Each scale on the neighbours of the largest: the mean of two single-perplexity P's
    computed on the same 3 x 30 neighbours."""
    index = nearest_neighbors.GidrNeighbors(iris, 90, method="exact")
    ten = affinity.PerplexityBasedNN(perplexity=10, knn_index=index)
    thirty = affinity.PerplexityBasedNN(perplexity=30, knn_index=index)
    both = affinity.Multiscale(perplexities=[10, 30], knn_index=index)
    np.testing.assert_allclose(both.P.toarray(), (ten.P.toarray() + thirty.P.toarray()) / 2, rtol=1e-10, atol=1e-18)
    mixture = affinity.MultiscaleMixture(perplexities=[10, 30], knn_index=index)
    assert not np.allclose(mixture.P.toarray(), both.P.toarray())  # one kernel, not a mean


def test_perplexities_are_lowered_and_dropped_as_in_opentsne():
    X = np.random.default_rng(1).normal(100, 50, (91, 4))
    assert affinity.Multiscale(X, perplexities=[20, 40, 60], method="exact").effective_perplexities_ == [20, 30.0]
    aff = affinity.PerplexityBasedNN(X, perplexity=140, method="exact")
    assert aff.perplexity == 140 and aff.effective_perplexity_ == 30.0  # 90 neighbours / 3
    ms = affinity.Multiscale(X, perplexities=[15, 25], method="exact")
    ms.set_perplexities([10, 20])
    assert ms.effective_perplexities_ == [10, 20] and ms.P.nnz < affinity.Multiscale(X, perplexities=[15, 25]).P.nnz
    with pytest.raises(RuntimeError, match=r"'new_perplexities' parameter of Multiscale.set_perplexities"):
        ms.set_perplexities([20, 30])


def test_a_knn_index_replaces_the_search(iris):
    exact = affinity.PerplexityBasedNN(iris, perplexity=10, method="exact")
    sk = nearest_neighbors.Sklearn(iris, k=30)
    from_sklearn = affinity.PerplexityBasedNN(perplexity=10, knn_index=sk)
    assert from_sklearn.knn_index is sk and from_sklearn.n_samples == 150
    np.testing.assert_allclose(from_sklearn.P.toarray(), exact.P.toarray(), rtol=1e-10, atol=1e-18)
    indices, distances = exact.knn_index.build()
    listed = affinity.PerplexityBasedNN(perplexity=10, knn_index=nearest_neighbors.PrecomputedNeighbors(indices,
                                                                                                       distances))
    np.testing.assert_array_equal(listed.P.toarray(), exact.P.toarray())
    np.testing.assert_allclose(from_sklearn.to_new(iris[:6]).toarray(), exact.to_new(iris[:6]).toarray(),
                               rtol=1e-10, atol=1e-18)
    with pytest.raises(GidrValueError, match="A query of PrecomputedNeighbors"):
        listed.to_new(iris[:6])


def test_knn_kwargs_reach_scikit_learn_with_the_exact_method(iris):
    aff = affinity.PerplexityBasedNN(iris, perplexity=10, method="exact", knn_kwargs={"algorithm": "kd_tree",
                                                                                       "leaf_size": 10})
    assert isinstance(aff.knn_index, nearest_neighbors.Sklearn)
    assert aff.knn_index.index.get_params()["algorithm"] == "kd_tree"


def test_precomputed_distances(iris):
    D = squareform(pdist(iris))
    for make in (lambda X, **kw: affinity.PerplexityBasedNN(X, perplexity=10, **kw),
                 lambda X, **kw: affinity.Uniform(X, k_neighbors=5, **kw)):
        from_distances = make(D, metric="precomputed")
        assert isinstance(from_distances.knn_index, nearest_neighbors.PrecomputedDistanceMatrix)
        np.testing.assert_allclose(from_distances.P.toarray(), make(iris, method="exact").P.toarray(),
                                   rtol=1e-10, atol=1e-18)


def test_transform_of_precomputed_distances(digits):
    X, _ = digits
    fitted = TSNE(metric="precomputed", random_state=0, n_iter=100, early_exaggeration_iter=50).fit(
        squareform(pdist(X)))
    from_rows = fitted.transform(cdist(X[:20] + 0.5, X), n_iter=50)
    assert from_rows.shape == (20, 2) and np.all(np.isfinite(from_rows))
    # a new point beside training point i lands among i's neighbours in the embedding
    nearest = np.linalg.norm(np.asarray(fitted)[None] - np.asarray(from_rows)[:, None], axis=2).argsort(axis=1)
    assert np.mean([i in nearest[i, :10] for i in range(20)]) >= 0.8


def test_refusals_name_the_parameter(iris):
    index = nearest_neighbors.Sklearn(iris, k=30)
    cases = [
        (lambda: affinity.PerplexityBasedNN(), r"'data' parameter of PerplexityBasedNN must be an array"),
        (lambda: affinity.Uniform(iris, knn_index=index), r"'knn_index' parameter of Uniform must be None when data"),
        (lambda: affinity.FixedSigmaNN(iris), r"'sigma' parameter of FixedSigmaNN must be a positive float"),
        (lambda: affinity.FixedSigmaNN(iris, sigma=1, k=150), r"'k' parameter of FixedSigmaNN must be an int in"),
        (lambda: affinity.Uniform(iris, symmetrize="invalid"), r"'symmetrize' parameter of Uniform must be True"),
        (lambda: affinity.PerplexityBasedNN(iris, symmetrize="max"), r"'symmetrize' parameter of PerplexityBasedNN"),
        (lambda: affinity.Multiscale(iris), r"'perplexities' parameter of Multiscale must be"),
        (lambda: nearest_neighbors.Annoy(iris, 10), r"'index' parameter of Annoy .* needs the annoy package"),
        (lambda: nearest_neighbors.PrecomputedNeighbors(np.tile(np.arange(3), (3, 1)), np.ones((3, 3))),
         r"'neighbors' parameter of PrecomputedNeighbors must be each point's neighbours without the point"),
        (lambda: affinity.PerplexityBasedNN(iris, method="annoy"), r"'index' parameter of Annoy"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()


def test_a_list_of_perplexities_fits_the_mixture(digits):
    X, y = digits
    embedding = TSNE(perplexity=[10, 30], random_state=0, n_iter=150).fit(X)
    assert isinstance(embedding.affinities, affinity.MultiscaleMixture)
    from sklearn.neighbors import KNeighborsClassifier

    accuracy = KNeighborsClassifier(10).fit(embedding[:300], y[:300]).score(embedding[300:], y[300:])
    assert accuracy > 0.85  # measured 0.97


def test_partial_exaggeration_scales_the_attraction(digits):
    X, _ = digits
    embedding = TSNE(random_state=0, n_iter=100, early_exaggeration_iter=50).fit(X[:300])
    partial = embedding.prepare_partial(X[300:], perplexity=10)
    assert partial.P.nnz == 100 * 30
    plain, pulled = partial.optimize(30), partial.optimize(30, exaggeration=4)
    again = partial.optimize(30, exaggeration=4)
    np.testing.assert_array_equal(pulled, again)
    centres = np.asarray(embedding)[partial.P.indices.reshape(100, 30)].mean(axis=1)
    # four times the attraction holds the points closer to their neighbours' centre
    assert np.median(np.linalg.norm(pulled - centres, axis=1)) < np.median(np.linalg.norm(plain - centres, axis=1))
    assert partial.optimizer is not embedding.optimizer and partial.optimizer.gains is None


def test_fft_above_two_components_is_a_runtime_error(digits):
    X, _ = digits
    with pytest.raises(TooManyDimensions, match="'negative_gradient_method' parameter of TSNEEmbedding.optimize"):
        TSNE(n_components=3, negative_gradient_method="fft", n_iter=10).fit(X[:100])
    assert issubclass(TooManyDimensions, RuntimeError) and issubclass(TooManyDimensions, GidrValueError)


def _exact_kl(P, Y):
    D = squareform(pdist(Y, "sqeuclidean"))
    W = 1 / (1 + D)
    np.fill_diagonal(W, 0)
    Q = W / W.sum()
    mask = P > 0
    return float(np.sum(P[mask] * np.log(P[mask] / Q[mask])))


@pytest.mark.parametrize("function, params", [(kl_divergence_bh, {"theta": 0.0}),
                                              (kl_divergence_fft, {"n_interpolation_points": 5})])
def test_gradient_functions_against_finite_differences(function, params):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 5))
    P = affinity.PerplexityBasedNN(X, perplexity=10, method="exact").P
    Y = rng.normal(size=(60, 2))
    error, gradient = function(Y, P, 1, params, should_eval_error=True)
    assert error == pytest.approx(_exact_kl(P.toarray(), Y), rel=1e-9)  # exact KL up to 5,000 points
    h, numeric = 1e-6, np.zeros_like(Y)
    for i in range(60):
        for d in range(2):
            step = np.zeros_like(Y)
            step[i, d] = h
            numeric[i, d] = (_exact_kl(P.toarray(), Y + step) - _exact_kl(P.toarray(), Y - step)) / (2 * h)
    # openTSNE's gradient is the KL gradient over t-SNE's factor 4
    relative = np.linalg.norm(gradient * GRADIENT_SCALE - numeric) / np.linalg.norm(numeric)
    assert relative < 1e-5  # measured 1.5e-8 (BH, theta 0) and 1.9e-8 (FFT, 5 points per box)
    assert function(Y, P, 1, params)[0] is None
    embedding = TSNE(negative_gradient_method=function, random_state=0, n_iter=20, early_exaggeration_iter=0).fit(X)
    assert embedding.gradient_descent_params["negative_gradient_method"] is function


def test_verify_exaggeration_error_callback(digits, caplog):
    X, _ = digits
    embedding = TSNE(random_state=0).prepare_initial(X[:200])
    check = callbacks.VerifyExaggerationError(embedding)
    with caplog.at_level(logging.INFO, logger="gidr"):
        embedding.optimize(20, exaggeration=5, callbacks=[check], callbacks_every_iters=5, inplace=True)
    assert sum("reported KL" in r.message for r in caplog.records) == 4
    with pytest.raises(RuntimeError, match="is not the KL divergence of the unexaggerated P"):
        check(1, embedding.kl_divergence * 1.01, embedding)


def test_callback_base_class_hooks(digits):
    X, _ = digits

    class Counting(callbacks.Callback):
        def __init__(self):
            self.starts, self.calls = 0, []

        def optimization_about_to_start(self):
            self.starts += 1

        def __call__(self, iteration, error, embedding):
            self.calls.append(iteration)

    counting = Counting()
    TSNE(random_state=0, n_iter=20, early_exaggeration_iter=10, callbacks=counting, callbacks_every_iters=10).fit(
        X[:100])
    assert counting.starts == 2 and counting.calls == [10, 10, 20]


def test_utils_and_metric_lists(iris):
    assert utils.is_package_installed("numpy") and not utils.is_package_installed("no_such_package_gidr")
    assert {"euclidean", "cosine", "manhattan"} <= set(nearest_neighbors.Sklearn(iris, k=5).VALID_METRICS)
    if utils.is_package_installed("pynndescent"):
        assert {"euclidean", "hellinger", "haversine"} <= set(nearest_neighbors.NNDescent.VALID_METRICS)
    with pytest.raises(GidrValueError, match=r"'metric' parameter of Sklearn must be one of"):
        nearest_neighbors.Sklearn(iris, k=5, metric="no-such-metric")


def test_joint_probabilities_nn():
    P = affinity.joint_probabilities_nn(np.array([[1], [0], [1]]), np.array([[1.0], [1.0], [2.0]]), [1.0])
    np.testing.assert_allclose(P.toarray(), np.array([[0, 2, 0], [2, 0, 1], [0, 1, 0]]) / 6)
    new = affinity.joint_probabilities_nn(np.array([[0, 1]]), np.array([[1.0, 2.0]]), 1.5, symmetrize=False,
                                          normalization="point-wise", n_reference_samples=3)
    assert new.shape == (1, 3) and np.isclose(new.sum(), 1.0)


def test_barnes_hut_above_three_components_runs_the_exact_repulsion(digits):
    X, _ = digits
    with pytest.warns(FutureWarning, match="Barnes-Hut handles at most 3 components"):
        embedding = TSNE(n_components=4, negative_gradient_method="bh", random_state=0, n_iter=30,
                         early_exaggeration_iter=20).fit(X[:150])
    assert embedding.shape == (150, 4) and np.all(np.isfinite(embedding))
    with pytest.raises(TooManyDimensions, match="offered up to 10000 points"):
        from gidr.opentsne.tsne import exact_for_many_dimensions

        exact_for_many_dimensions({"repulsion": "barnes_hut", "theta": 0.5}, 10_001, 4, "TSNEEmbedding.optimize")
    P = affinity.PerplexityBasedNN(X[:80], perplexity=10, method="exact").P
    Y = np.random.default_rng(0).normal(size=(80, 4))
    with pytest.warns(FutureWarning):
        error, gradient = kl_divergence_bh(Y, P, 1, {"theta": 0.5}, should_eval_error=True)
    assert error == pytest.approx(_exact_kl(P.toarray(), Y), rel=1e-9) and gradient.shape == (80, 4)


def test_initialization_shapes(digits):
    X, _ = digits
    with pytest.raises(GidrValueError, match=r"'initialization' parameter of TSNE must be an array of "
                                             r"n_components = 2 columns"):
        TSNE(n_components=2, initialization=np.zeros((10, 4)))
    fitted = TSNE(random_state=0, n_iter=50, early_exaggeration_iter=25).fit(X[:200])
    start = np.asarray(fitted)[:20] + 0.01
    placed = fitted.transform(X[200:220], initialization=start, n_iter=0)
    np.testing.assert_array_equal(placed, start)
    moved = fitted.transform(X[200:220], initialization=start, n_iter=30)
    assert not np.array_equal(moved, start) and np.all(np.isfinite(moved))
    with pytest.raises(GidrValueError, match=r"'initialization' parameter of TSNEEmbedding.prepare_partial"):
        fitted.transform(X[200:220], initialization=start[:5])


def test_spectral_is_the_diffusion_map():
    from sklearn.manifold import SpectralEmbedding

    from gidr.opentsne import initialization

    rng = np.random.default_rng(42)
    x = rng.normal(size=(100, 20))
    x[:, 0] *= 5
    P = affinity.PerplexityBasedNN(x, method="exact").P
    ours = initialization.spectral(P, tol=0, add_jitter=False, random_state=0)
    theirs = SpectralEmbedding(affinity="precomputed", random_state=0).fit_transform(P)
    for c in range(2):  # both are D^(-1/2)-scaled eigenvectors of the normalized Laplacian
        assert abs(np.corrcoef(ours[:, c], theirs[:, c])[0, 1]) > 0.99999  # measured 1 - 4e-16
    assert np.std(ours[:, 0]) == pytest.approx(1e-4)
    np.testing.assert_array_equal(ours, initialization.spectral(P, tol=0, add_jitter=False, random_state=0))
    two = sp.block_diag([P, P], format="csr")  # two components: laid out one by one, all finite
    with pytest.warns(UserWarning, match="2 connected components"):
        split = initialization.spectral(two, add_jitter=False, random_state=0)
    assert split.shape == (200, 2) and np.all(np.isfinite(split))
