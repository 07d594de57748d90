"""densMAP's density term: the reference formulas, its gradient, the pipeline switches and the
estimators' umap-learn parameters (reference backend unless said otherwise)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits, make_blobs

import gidr
from gidr.pipeline import Pipeline
from gidr.stages import Optimizer
from gidr.types import KNNGraph
from gidr.validation import GidrValueError
from gidr_reference import densmap

#: umap-learn's kernel for min_dist=0.1, spread=1 (b != 1 exercises the D^(b-1) terms).
UMAP_A, UMAP_B = 1.577, 0.895


def knn_problem(n=40, k=6, seed=0):
    """A fuzzy-union P on a small kNN graph, its graph, and a random embedding."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)) * np.repeat([0.3, 1.0, 3.0, 1.0], n // 4)[:, None]
    distances = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    indices = np.argsort(distances, axis=1)[:, 1:k + 1]
    d = np.take_along_axis(distances, indices, axis=1)
    weights = np.exp(-(d - d[:, :1]) / d.mean(axis=1, keepdims=True))
    rows = np.repeat(np.arange(n), k)
    P = sp.csr_matrix((weights.ravel(), (rows, indices.ravel())), shape=(n, n))
    P = (P + P.T - P.multiply(P.T)).tocsr()
    P.sort_indices()
    return P, KNNGraph(indices.astype(np.int64), d), rng.normal(size=(n, 2)) * 3.0


def target_of(P, graph, n_epochs=100, **settings):
    settings = {"dens_lambda": 2.0, "dens_frac": 0.3, "dens_var_shift": 0.1, **settings}
    return densmap.density_target(P, graph, n_epochs, **settings)


def varied_blobs(n=450):
    """Three blobs whose standard deviations differ by 10x: local radii that vary a lot."""
    X, _ = make_blobs(n, centers=[[0] * 8, [8] * 8, [-8] * 8], cluster_std=[0.25, 1.0, 2.5], n_features=8,
                      random_state=0)
    return X


# ---------------------------------------------------------------------- the formulas
def test_data_radii_follow_their_definition_entry_by_entry():
    P, graph, _ = knn_problem()
    mask = densmap.term_entries(P, 100)
    radii = densmap.data_radii(P, graph, mask)
    distance = {}
    for i in range(graph.n_samples):
        for j, dij in zip(graph.indices[i], graph.distances[i]):
            distance[i, j] = max(distance.get((i, j), 0.0), dij)
            distance[j, i] = max(distance.get((j, i), 0.0), dij)
    numerator, denominator = np.zeros(P.shape[0]), np.zeros(P.shape[0])
    coo = P.tocoo()
    for e, (i, j, p) in enumerate(zip(coo.row, coo.col, coo.data)):
        if mask[e]:
            for end in (i, j):
                numerator[end] += p * distance[i, j] ** 2
                denominator[end] += p
    np.testing.assert_allclose(radii, np.log(densmap.EPSILON + numerator / denominator), rtol=1e-12)


def test_term_entries_drop_weights_below_max_over_n_epochs():
    P = sp.csr_matrix(np.array([[0, 1.0, 0.004], [1.0, 0, 0.5], [0.004, 0.5, 0]]))
    np.testing.assert_array_equal(densmap.term_entries(P, 200), [True, False, True, True, False, True])
    assert densmap.term_entries(P, 250).all()  # 0.004 >= 1 / 250


def test_standardized_radii_have_mean_zero_and_unit_spread_over_active_points():
    P, graph, _ = knn_problem()
    target = target_of(P, graph)
    assert target.active.all()
    assert abs(target.standardized.mean()) < 1e-12 and abs(target.standardized.std() - 1.0) < 1e-12
    assert target.weight == pytest.approx(float(P.data[target.entries].sum()))


def test_a_point_without_entries_has_no_radius_and_stays_out_of_the_correlation():
    P, graph, Y = knn_problem()
    P = P.tolil()
    P[0, :] = 0
    P[:, 0] = 0
    P = P.tocsr()
    P.eliminate_zeros()
    target = target_of(P, graph)
    assert np.isnan(target.rad_orig[0]) and not target.active[0] and target.active[1:].all()
    F = densmap.density_forces(Y, P, target, UMAP_A, UMAP_B, weight=1.0)
    assert np.all(np.isfinite(F)) and np.all(F[0] == 0)


def test_active_at_is_the_last_dens_frac_of_the_epochs():
    P, graph, _ = knn_problem()
    assert [target_of(P, graph, dens_frac=0.3).active_at(t, 10) for t in range(10)] == [False] * 7 + [True] * 3
    assert not any(target_of(P, graph, dens_frac=0.0).active_at(t, 10) for t in range(10))
    assert all(target_of(P, graph, dens_frac=1.0).active_at(t, 10) for t in range(10))
    assert not target_of(P, graph, dens_lambda=0.0).active_at(9, 10)


def test_force_weight_halves_for_asymmetric_attraction():
    P, graph, _ = knn_problem()
    target = target_of(P, graph)
    assert target.force_weight(True) == target.weight and target.force_weight(False) == 0.5 * target.weight


# ---------------------------------------------------------------------- the gradient
@pytest.mark.parametrize("a, b", [(1.0, 1.0), (UMAP_A, UMAP_B)], ids=["a=b=1", "umap-ab"])
@pytest.mark.parametrize("var_shift", [0.0, 0.1])
def test_density_forces_are_minus_lambda_w_times_the_gradient_of_the_correlation(a, b, var_shift):
    P, graph, Y = knn_problem()
    target = target_of(P, graph, dens_lambda=1.5, dens_var_shift=var_shift)
    weight = 3.0
    forces = densmap.density_forces(Y, P, target, a, b, weight=weight)
    step = 1e-6
    numeric = np.zeros_like(Y)
    for i in range(Y.shape[0]):
        for c in range(Y.shape[1]):
            up, down = Y.copy(), Y.copy()
            up[i, c] += step
            down[i, c] -= step
            numeric[i, c] = (densmap.correlation_of(up, P, target, a, b)
                             - densmap.correlation_of(down, P, target, a, b)) / (2 * step)
    # central differences of a smooth function: error O(step^2) against forces of order 1e-2
    np.testing.assert_allclose(forces, -1.5 * weight * numeric, rtol=1e-5, atol=1e-9)
    assert np.abs(forces).max() > 1e-3


def test_the_bounded_form_is_the_expectation_of_per_edge_clipped_steps():
    P, graph, Y = knn_problem()
    target = target_of(P, graph)
    plain = densmap.density_forces(Y, P, target, UMAP_A, UMAP_B, weight=10.0)
    unbounded = densmap.density_forces(Y, P, target, UMAP_A, UMAP_B, weight=10.0, bound=math.inf, rate_scale=0.5)
    np.testing.assert_allclose(unbounded, 0.5 * plain, rtol=1e-12, atol=1e-15)
    bounded = densmap.density_forces(Y, P, target, UMAP_A, UMAP_B, weight=10.0, bound=1e-3, rate_scale=1.0)
    degree = np.bincount(P.tocoo().row, minlength=P.shape[0]) * 2  # entries touching each point
    p_max = float(P.data.max())
    assert np.all(np.abs(bounded) <= degree[:, None] * p_max * 1e-3 + 1e-15)
    assert not np.allclose(bounded, plain)


def test_following_the_forces_raises_the_correlation():
    P, graph, Y = knn_problem()
    target = target_of(P, graph, dens_lambda=1.0)
    before = densmap.correlation_of(Y, P, target, 1.0, 1.0)
    for _ in range(100):
        Y = Y - 2.0 * densmap.density_forces(Y, P, target, 1.0, 1.0, weight=1.0)
    # measured: 0.24 -> 0.82
    assert densmap.correlation_of(Y, P, target, 1.0, 1.0) > before + 0.4


# ---------------------------------------------------------------------- the pipeline
@pytest.mark.parametrize("preset", ["umap", "gdr-umap"])
def test_densmap_makes_embedding_radii_follow_the_data_radii(preset):
    X = varied_blobs()

    def correlation(densmap_on):
        result = Pipeline.from_preset(preset, backend="reference", random_state=0, n_epochs=150, densmap=densmap_on,
                                      output_dens=True).run(X)
        return np.corrcoef(result.densities["rad_orig"], result.densities["rad_emb"])[0, 1]

    without, with_term = correlation(False), correlation(True)
    # measured (reference, seed 0): umap 0.05 -> 0.93, gdr-umap 0.11 -> 0.91; umap-learn 0.5.12 0.12 -> 0.94
    assert with_term > 0.7 and with_term > without + 0.4


def test_the_switches_are_recorded_and_densmap_adds_200_default_epochs():
    X = load_digits().data[:150]
    pipeline = Pipeline.from_preset("gdr-umap", backend="reference", random_state=0, densmap=True, dens_lambda=1.0,
                                    dens_frac=0.1, dens_var_shift=0.2)
    assert pipeline.n_epochs_for(150) == 700 and Pipeline.from_preset("gdr-umap").n_epochs_for(150) == 500
    result = pipeline.replace(n_epochs=20).run(X)
    config = result.config["pipeline"]
    assert (config["densmap"], config["dens_lambda"], config["dens_frac"], config["dens_var_shift"]) \
        == (True, 1.0, 0.1, 0.2)
    assert result.config["resolved"]["n_epochs"] == 20 and result.config["resolved"]["epochs_run"] == 20
    assert set(result.densities) == {"rad_orig"} and result.affinities.density is not None


def test_output_dens_alone_gives_both_radii_without_changing_the_embedding():
    X = load_digits().data[:150]
    plain = Pipeline.from_preset("umap", backend="reference", random_state=0, n_epochs=20).run(X)
    with_radii = Pipeline.from_preset("umap", backend="reference", random_state=0, n_epochs=20,
                                      output_dens=True).run(X)
    np.testing.assert_array_equal(plain.embedding, with_radii.embedding)
    assert plain.densities == {} and with_radii.affinities.density is None
    assert with_radii.densities["rad_orig"].shape == (150,) and with_radii.densities["rad_emb"].shape == (150,)
    assert np.all(np.isfinite(with_radii.densities["rad_emb"]))


@pytest.mark.parametrize("switch, value, expected", [
    ("dens_lambda", -1.0, r"'dens_lambda' parameter of the pipeline must be a float in \[0, inf\)"),
    ("dens_frac", 1.5, r"'dens_frac' parameter of the pipeline must be a float in \[0, 1\]"),
    ("dens_frac", -0.1, r"'dens_frac' parameter of the pipeline must be a float in \[0, 1\]"),
    ("dens_var_shift", -0.1, r"'dens_var_shift' parameter of the pipeline must be a float in \[0, inf\)"),
    ("densmap", "yes", r"'densmap' parameter of the pipeline must be a bool"),
    ("output_dens", 2, r"'output_dens' parameter of the pipeline must be a bool"),
])
def test_bad_switches_are_named(switch, value, expected):
    with pytest.raises(GidrValueError, match=expected):
        Pipeline.from_preset("umap", **{switch: value})


def test_optimizers_without_a_density_term_refuse_densmap():
    with pytest.raises(GidrValueError, match=r"'densmap' switch used with optimizer 'tsne'.*must be False"):
        Pipeline.from_preset("tsne", densmap=True)
    with pytest.raises(GidrValueError, match=r"'densmap' switch used with optimizer 'gdr'.*normalized=True"):
        Pipeline.from_preset("gdr-tsne", densmap=True)


def test_a_third_party_optimizer_is_refused_unless_it_declares_the_term():
    class Plain(Optimizer):
        name, backend = "plain", "reference"

        def default_n_epochs(self, n_samples):
            return 1

        def optimize(self, Y, affinities, loss, repulsion, ctx, monitor):
            return Y.copy()

    with pytest.raises(GidrValueError, match=r"optimizer 'plain'.*must be False.*no density term"):
        Plain().check_density({"normalized": False})


# ---------------------------------------------------------------------- the estimators
@pytest.mark.parametrize("estimator", [gidr.UMAP, gidr.GDR])
def test_estimators_output_dens_as_umap_learn(estimator):
    X = varied_blobs(240)
    model = estimator(densmap=True, output_dens=True, n_epochs=60, random_state=0, backend="reference")
    embedding, rad_orig, rad_emb = model.fit_transform(X)
    assert embedding.shape == (240, 2) and rad_orig.shape == (240,) and rad_emb.shape == (240,)
    np.testing.assert_array_equal(rad_orig, model.rad_orig_)
    np.testing.assert_array_equal(rad_emb, model.rad_emb_)
    assert not hasattr(estimator(densmap=True, n_epochs=5, random_state=0, backend="reference").fit(X),
                       "rad_emb_")
    with pytest.raises(NotImplementedError, match=r"'densmap' parameter of .* for transform must be False"):
        model.transform(X[:3])


def test_estimator_defaults_are_umap_learns():
    model = gidr.UMAP()
    assert (model.densmap, model.dens_lambda, model.dens_frac, model.dens_var_shift, model.output_dens) \
        == (False, 2.0, 0.3, 0.1, False)


@pytest.mark.parametrize("parameter, value", [("dens_lambda", -2.0), ("dens_frac", 1.2), ("dens_var_shift", -1.0)])
def test_estimator_errors_name_the_users_parameter(parameter, value):
    with pytest.raises(GidrValueError, match=rf"The '{parameter}' parameter of UMAP must be a float"):
        gidr.UMAP(densmap=True, **{parameter: value}).fit(load_digits().data[:60])


def test_gdr_normalized_refuses_densmap():
    with pytest.raises(GidrValueError, match=r"'densmap' switch .* must be False with normalized=True"):
        gidr.GDR(normalized=True, densmap=True).fit(load_digits().data[:60])


def test_unique_rows_share_their_radii():
    X = load_digits().data[:120]
    doubled = np.vstack([X, X[:20]])
    model = gidr.UMAP(unique=True, output_dens=True, n_epochs=10, random_state=0, backend="reference").fit(doubled)
    assert model.rad_orig_.shape == (140,)
    np.testing.assert_array_equal(model.rad_orig_[120:], model.rad_orig_[:20])
