"""Issue 12, estimators: numpy booleans, min_dist/spread, generators as random_state, degenerate
or huge init arrays, huge seeds, huge learning rates, error messages in the estimator's own
parameter names, plot() of a fitted estimator. Each test failed before the fix."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

import gidr
from gidr.estimators import GDR, TSNE, UMAP
from gidr.kernel import fit_ab
from gidr.types import PairTotals
from gidr.validation import GidrValueError, resolve_seed
from gidr_reference import losses


@pytest.fixture(scope="module")
def X():
    return load_digits().data[:150]


# ---------------------------------------------------------------------- normalized=np.True_
def test_numpy_true_selects_gdr_tsne(X):
    est = GDR(normalized=np.True_, n_epochs=5, random_state=0).fit(X)
    assert est.pipeline_.config["pipeline"]["preset"] == "gdr-tsne"
    assert bool(est.pipeline_.config["pipeline"]["normalized"])


def test_numpy_false_selects_gdr_umap(X):
    est = GDR(normalized=np.False_, n_epochs=5, random_state=0).fit(X)
    assert est.pipeline_.config["pipeline"]["preset"] == "gdr-umap"


# ---------------------------------------------------------------------- min_dist / spread
@pytest.mark.parametrize("name, value", [("min_dist", 0.5), ("spread", 2.0)])
def test_gdr_min_dist_spread_ignored_by_scalars_one_are_rejected(X, name, value):
    with pytest.raises(GidrValueError, match=rf"^The '{name}' parameter of GDR with scalars='one' \(a = b = 1\) "
                                             rf"must be .* \(unused\)\. Got {value}\. Pass scalars='fit'"):
        GDR(**{name: value}, n_epochs=5).fit(X)


def test_gdr_min_dist_with_scalars_fit_is_honoured(X):
    est = GDR(min_dist=0.5, scalars="fit", n_epochs=5, random_state=0).fit(X)
    a, b = fit_ab(0.5, 1.0)
    assert (est.result_.config["resolved"]["a"], est.result_.config["resolved"]["b"]) == (a, b)


@pytest.mark.parametrize("estimator", [UMAP, lambda **kw: GDR(scalars="fit", **kw), GDR],
                         ids=["UMAP", "GDR-fit", "GDR-one"])
def test_min_dist_above_spread_is_rejected_as_in_umap_learn(X, estimator):
    with pytest.raises(GidrValueError, match=r"The 'min_dist' parameter of (UMAP|GDR) must be a float in "
                                             r"\[0, spread=1\.0\]\. Got 2\.0\. As in umap-learn"):
        estimator(min_dist=2.0, n_epochs=5).fit(X)


# ---------------------------------------------------------------------- Generator / RandomState
@pytest.mark.parametrize("make", [np.random.default_rng, np.random.RandomState], ids=["Generator", "RandomState"])
def test_generator_is_advanced_per_fit_and_reproducible(X, make):
    est = GDR(n_epochs=5, random_state=make(3))
    fits = [est.fit_transform(X).copy() for _ in range(3)]
    assert not np.array_equal(fits[0], fits[1]) and not np.array_equal(fits[1], fits[2])
    again = GDR(n_epochs=5, random_state=make(3))
    np.testing.assert_array_equal(again.fit_transform(X), fits[0])


# ---------------------------------------------------------------------- init arrays
@pytest.mark.parametrize("value", [0.0, 3.0])
def test_constant_init_is_rejected(X, value):
    with pytest.raises(GidrValueError, match=r"^The 'init' parameter of UMAP must be an array whose rows are not "
                                             rf"all equal\. Got an array of shape \(150, 2\) with every row equal "
                                             rf"to \[{value}, {value}\]\."):
        UMAP(init=np.full((150, 2), value), n_epochs=5).fit(X)


def test_init_with_a_constant_column_warns(X):
    init = np.column_stack([np.random.default_rng(0).normal(size=150), np.zeros(150)])
    with pytest.warns(UserWarning, match=r"The 'init' parameter of GDR has constant column\(s\) \[1\]"):
        GDR(init=init, n_epochs=5, random_state=0).fit(X)


def test_huge_init_is_rejected_before_dividing_by_zero(X):
    init = np.random.default_rng(0).normal(size=(150, 2)) * 1e200
    with pytest.raises(GidrValueError, match=r"^The 'init' parameter of TSNE must be an array with coordinates "
                                             r"of magnitude at most 1e\+06\. Got an array whose largest "
                                             r"\|coordinate\| is .*e\+200\. Rescale it"):
        TSNE(init=init, max_iter=5, random_state=0).fit(X)


# ---------------------------------------------------------------------- huge seeds
@pytest.mark.parametrize("seed", [2**63, 10**23])
def test_huge_seed_is_reduced_deterministically(X, seed):
    first = GDR(n_epochs=5, random_state=seed).fit_transform(X)
    np.testing.assert_array_equal(GDR(n_epochs=5, random_state=seed).fit_transform(X), first)
    assert 0 <= resolve_seed(seed) < 2**63 and resolve_seed(seed) == resolve_seed(seed)
    assert resolve_seed(seed) != resolve_seed(seed + 1)
    assert resolve_seed(2**63 - 1) == 2**63 - 1  # 63-bit seeds are used as they are


def test_negative_seed_names_random_state_of_the_estimator(X):
    with pytest.raises(GidrValueError, match=r"^The 'random_state' parameter of GDR must be a non-negative int"):
        GDR(n_epochs=5, random_state=-1).fit(X)


# ---------------------------------------------------------------------- learning rate, Z == 0
@pytest.mark.parametrize("estimator, message", [
    (lambda: TSNE(learning_rate=1e300, max_iter=5),
     r"^The 'learning_rate' parameter of TSNE must be one of 'auto' or a float in \(0, 100000000\]\. Got 1e\+300\."),
    (lambda: GDR(normalized=True, learning_rate=1e300, n_epochs=5),
     r"^The 'learning_rate' parameter of GDR must be one of 'auto' or a float in \(0, 100000000\]\. Got 1e\+300\."),
    (lambda: UMAP(learning_rate=float("inf"), n_epochs=5),
     r"^The 'learning_rate' parameter of UMAP must be a float in \(0, 100000000\]\. Got inf\."),
])
def test_huge_learning_rate_is_rejected(X, estimator, message):
    with pytest.raises(GidrValueError, match=message):
        estimator().fit(X)


@pytest.mark.parametrize("weights", [losses.kl_repulsion_weights, losses.frobenius_repulsion_weights])
@pytest.mark.parametrize("Z", [0.0, np.inf, np.nan])
def test_repulsion_weights_reject_a_vanished_normalization(weights, Z):
    totals = PairTotals(sum_w=Z, sum_w2=1.0, p_mean=0.1, sum_pw=0.1)
    with pytest.raises(GidrValueError, match=r"^The normalization Z of the low-dimensional similarities .* must "
                                             r"be a positive finite number\. Got .*\. The embedding diverged.*lower "
                                             r"the 'learning_rate', or rescale the init array"):
        weights(totals, True)
    assert np.all(np.isfinite(weights(totals, False)))  # unnormalized weights do not use Z


# ---------------------------------------------------------------------- messages
@pytest.mark.parametrize("estimator, message", [
    (lambda: UMAP(negative_sample_rate=0, n_epochs=5),
     r"^The 'negative_sample_rate' parameter of UMAP must be an int in \[1, inf\)\. Got 0\.$"),
    (lambda: GDR(negative_sample_rate=-2, n_epochs=5),
     r"^The 'negative_sample_rate' parameter of GDR must be an int in \[1, inf\)\. Got -2\.$"),
    (lambda: TSNE(max_iter=0),
     r"^The 'max_iter' parameter of TSNE must be an int in \[1, inf\) or None\. Got 0\.$"),
    (lambda: TSNE(angle=-1.0, max_iter=5),
     r"^The 'angle' parameter of TSNE must be a float in \[0, 1\]\. Got -1\.0\.$"),  # scikit-learn's bounds
    (lambda: UMAP(init=np.random.default_rng(0).normal(size=(10, 2)), n_epochs=5),
     r"^The 'init' parameter of UMAP must be an array of shape \(150, 2\)"),
])
def test_errors_name_the_estimators_own_parameter(X, estimator, message):
    with pytest.raises(GidrValueError, match=message):
        estimator().fit(X)


def test_same_named_parameters_keep_the_stage_in_the_message(X):
    with pytest.raises(GidrValueError, match=r"^The 'n_neighbors' parameter of similarity 'umap' must be an int"):
        GDR(n_neighbors=-3, n_epochs=5).fit(X)  # (UMAP checks its own: umap-learn's count, the point included)


def test_precomputed_graph_message_is_one_sentence(X):
    from sklearn.neighbors import NearestNeighbors

    distances, indices = NearestNeighbors(n_neighbors=3).fit(X).kneighbors(X)
    graph = (indices[:, 1:], distances[:, 1:])  # self dropped: 2 neighbours where 14 are needed
    with pytest.raises(GidrValueError, match=r"^The number of neighbour columns of the precomputed kNN graph must "
                                             r"be at least 14"):  # UMAP's n_neighbors=15: the point and 14
        UMAP(metric="precomputed", n_neighbors=15, n_epochs=5).fit(graph)


# ---------------------------------------------------------------------- plot
def test_plot_accepts_a_fitted_estimator(X):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    est = GDR(n_epochs=5, random_state=0).fit(X)
    ax = gidr.plot(est)
    np.testing.assert_array_equal(ax.collections[0].get_offsets().shape, (150, 2))
    with pytest.raises(GidrValueError, match=r"^The input embedding of plot\(\) must be an array, a Result or a "
                                             r"fitted estimator\. Got an unfitted GDR\. Call its fit\(X\) first"):
        gidr.plot(GDR())


# ---------------------------------------------------------------------- precomputed and init (issue 14)
def test_pca_init_with_a_precomputed_metric_is_refused_as_in_scikit_learn(X):
    from scipy.spatial.distance import cdist

    D = cdist(X[:60], X[:60])
    with pytest.raises(GidrValueError, match=r'The parameter init="pca" cannot be used with '
                                             r'metric="precomputed" \(TSNE\)\. Pass init="spectral"'):
        TSNE(metric="precomputed", max_iter=30).fit(D)  # TSNE's default init is "pca", as scikit-learn's
    Y = TSNE(metric="precomputed", init="spectral", max_iter=30, random_state=0).fit_transform(D)
    assert Y.shape == (60, 2) and np.all(np.isfinite(Y))


def test_an_init_array_with_a_precomputed_metric_is_used():
    """It used to raise numpy's 'truth value of an array is ambiguous' (the array compared with "pca")."""
    from scipy.spatial.distance import cdist

    X = load_digits().data[:80]
    init = np.random.default_rng(0).normal(size=(80, 2))
    Y = TSNE(metric="precomputed", init=init, max_iter=30, random_state=0).fit_transform(cdist(X, X))
    assert Y.shape == (80, 2) and np.all(np.isfinite(Y))
