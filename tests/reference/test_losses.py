"""Reference losses: exact gradients against finite differences, the force decomposition
against the gradient, stage parameters and metadata."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from gidr.stages import Loss
from gidr.testing import check_loss_forces, check_loss_gradient
from gidr.types import Affinities, Context, PairTotals
from gidr.validation import GidrValueError
from gidr_reference import loss_estimate, losses
from gidr_reference.repulsion import exact_repulsion
from gidr_reference.stages_forces import KL, Frobenius
from tests.helpers import assert_matches

N_POINTS = 30
KERNELS = [(1.0, 1.0), (1.577, 0.895)]
SETTINGS = [True, False]


def random_affinities(n: int, normalized: bool, seed: int = 0, density: float = 0.2) -> sp.csr_matrix:
    """A random sparse symmetric P with zero diagonal (summing to one when normalized)."""
    rng = np.random.default_rng(seed)
    upper = sp.random(n, n, density=density, random_state=rng, data_rvs=lambda k: rng.uniform(0.05, 1.0, k))
    upper = sp.triu(upper, k=1)
    P = sp.csr_matrix(upper + upper.T)
    P.sort_indices()
    if normalized:
        P = P / P.sum()
    return sp.csr_matrix(P)


def random_embedding(n: int, d: int = 2, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def central_differences(f, Y: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Gradient of ``f`` at ``Y`` by central differences, coordinate by coordinate."""
    grad = np.zeros_like(Y)
    for index in np.ndindex(Y.shape):
        step = np.zeros_like(Y)
        step[index] = h
        grad[index] = (f(Y + step) - f(Y - step)) / (2 * h)
    return grad


def relative_error(actual: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(actual - reference) / np.linalg.norm(reference))


def make_loss(name: str, **params) -> Loss:
    return {"kl": KL, "frobenius": Frobenius}[name](**params)


def make_ctx(n: int, normalized: bool, a: float, b: float, d: int = 2) -> Context:
    return Context(n_samples=n, n_components=d, normalized=normalized, a=a, b=b, seed=0)


# --------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("name", ["kl", "frobenius"])
@pytest.mark.parametrize("normalized", SETTINGS)
@pytest.mark.parametrize("a, b", KERNELS)
def test_gradient_matches_finite_differences(name, normalized, a, b):
    P = random_affinities(N_POINTS, normalized)
    Y = random_embedding(N_POINTS)
    loss, ctx = make_loss(name), make_ctx(N_POINTS, normalized, a, b)
    numeric = central_differences(lambda Z: loss.value(P, Z, ctx), Y)
    assert relative_error(loss.gradient(P, Y, ctx), numeric) < 1e-5


@pytest.mark.parametrize("name", ["kl", "frobenius"])
@pytest.mark.parametrize("normalized", SETTINGS)
def test_gradient_passes_scipy_check_grad(name, normalized):
    from scipy.optimize import check_grad

    P = random_affinities(N_POINTS, normalized, seed=3)
    Y = random_embedding(N_POINTS, seed=4)
    loss, ctx = make_loss(name), make_ctx(N_POINTS, normalized, 1.577, 0.895)
    shape = Y.shape

    def value(flat):
        return loss.value(P, flat.reshape(shape), ctx)

    def gradient(flat):
        return loss.gradient(P, flat.reshape(shape), ctx).ravel()

    error = check_grad(value, gradient, Y.ravel(), epsilon=1e-7)  # forward differences
    assert error / np.linalg.norm(gradient(Y.ravel())) < 1e-5


def test_gradient_in_three_dimensions():
    P = random_affinities(20, normalized=True)
    Y = random_embedding(20, d=3)
    loss, ctx = KL(), make_ctx(20, True, 1.577, 0.895, d=3)
    numeric = central_differences(lambda Z: loss.value(P, Z, ctx), Y)
    assert relative_error(loss.gradient(P, Y, ctx), numeric) < 1e-5


def test_normalized_kl_value_matches_dense_formula():
    P = random_affinities(15, normalized=True)
    Y = random_embedding(15)
    ctx = make_ctx(15, True, 1.577, 0.895)
    D = ((Y[:, None] - Y[None]) ** 2).sum(-1)
    W = 1 / (1 + ctx.a * D**ctx.b)
    np.fill_diagonal(W, 0.0)
    Q = W / W.sum()
    p = P.toarray()
    mask = p > 0
    assert_matches(actual=KL().value(P, Y, ctx), reference=np.sum(p[mask] * np.log(p[mask] / Q[mask])), rtol=1e-12)


def test_unnormalized_losses_match_dense_formulas():
    P = random_affinities(15, normalized=False)
    Y = random_embedding(15)
    ctx = make_ctx(15, False, 1.577, 0.895)
    D = ((Y[:, None] - Y[None]) ** 2).sum(-1)
    W = 1 / (1 + ctx.a * D**ctx.b)
    p = P.toarray()
    upper = np.triu_indices(15, k=1)
    pu, wu = p[upper], W[upper]
    with np.errstate(divide="ignore", invalid="ignore"):
        cross_entropy = np.where(pu > 0, pu * np.log(pu / wu), 0.0) + np.where(
            pu < 1, (1 - pu) * np.log((1 - pu) / (1 - wu)), 0.0)
    assert_matches(actual=KL().value(P, Y, ctx), reference=cross_entropy.sum(), rtol=1e-12)
    assert_matches(actual=Frobenius().value(P, Y, ctx), reference=((pu - wu) ** 2).sum(), rtol=1e-12)


def test_blocks_do_not_change_exact_results(monkeypatch):
    P = random_affinities(N_POINTS, normalized=True)
    Y = random_embedding(N_POINTS)
    ctx = make_ctx(N_POINTS, True, 1.577, 0.895)
    whole = Frobenius().gradient(P, Y, ctx), Frobenius().value(P, Y, ctx)
    monkeypatch.setattr(losses, "BLOCK_ELEMENTS", 7 * N_POINTS * 2)  # blocks of 7 rows
    blocked = Frobenius().gradient(P, Y, ctx), Frobenius().value(P, Y, ctx)
    assert_matches(actual=blocked[0], reference=whole[0], rtol=1e-13)
    assert_matches(actual=blocked[1], reference=whole[1], rtol=1e-13)


# --------------------------------------------------------------------------- forces

def exact_forces(loss, P, Y, ctx):
    sums = exact_repulsion(Y, lambda D: loss.repulsion_channels(D, ctx), lambda D: loss.kernel(D, ctx))
    return losses.loss_forces(loss, P, Y, ctx, sums)


@pytest.mark.parametrize("name, normalized", [("kl", True), ("frobenius", True), ("frobenius", False)])
@pytest.mark.parametrize("a, b", KERNELS)
def test_force_decomposition_is_scaled_gradient(name, normalized, a, b):
    P = random_affinities(N_POINTS, normalized)
    Y = random_embedding(N_POINTS)
    loss, ctx = make_loss(name), make_ctx(N_POINTS, normalized, a, b)
    scale = loss.force_scale(losses.pair_totals(P, Y, a, b), ctx)
    expected = scale * loss.gradient(P, Y, ctx)
    assert_matches(actual=exact_forces(loss, P, Y, ctx), reference=expected, rtol=1e-9,
                   atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("a, b", KERNELS)
def test_unnormalized_kl_forces_are_the_surrogate_gradient(a, b):
    P = random_affinities(N_POINTS, normalized=False)
    Y = random_embedding(N_POINTS)
    ctx = make_ctx(N_POINTS, False, a, b)
    p_mean = float(P.data.mean())
    numeric = central_differences(lambda Z: losses.kl_surrogate_value(P, Z, a, b, p_mean), Y)
    forces = exact_forces(KL(epsilon=0.0), P, Y, ctx)
    assert relative_error(forces, numeric) < 1e-5
    softened = exact_forces(KL(), P, Y, ctx)  # epsilon = 1e-3 softens the 1/D of close pairs
    assert not np.array_equal(softened, forces)


def test_surrogate_equals_cross_entropy_when_p_is_constant():
    # with every pair on the graph at the same p, pbar = p and L_sur = L - constant
    n = 12
    P = sp.csr_matrix(np.full((n, n), 0.3) - 0.3 * np.eye(n))
    Y = random_embedding(n)
    ctx = make_ctx(n, False, 1.577, 0.895)
    assert_matches(actual=exact_forces(KL(epsilon=0.0), P, Y, ctx), reference=KL().gradient(P, Y, ctx),
                   rtol=1e-10)


def test_force_scale_is_one_except_normalized_frobenius():
    totals = PairTotals(sum_w=7.0, sum_w2=3.0, p_mean=0.2, sum_pw=0.1)
    for normalized in SETTINGS:
        ctx = make_ctx(5, normalized, 1.0, 1.0)
        assert KL().force_scale(totals, ctx) == 1.0
    assert Frobenius().force_scale(totals, make_ctx(5, False, 1.0, 1.0)) == 1.0
    assert Frobenius().force_scale(totals, make_ctx(5, True, 1.0, 1.0)) == 7.0


def test_repulsion_weights_follow_the_brief():
    totals = PairTotals(sum_w=8.0, sum_w2=2.0, p_mean=0.25, sum_pw=0.125)
    assert_matches(actual=KL().repulsion_weights(totals, make_ctx(5, True, 1, 1)), reference=[-0.5])
    assert_matches(actual=KL().repulsion_weights(totals, make_ctx(5, False, 1, 1)), reference=[-0.75])
    S = 2.0 / 8.0 - 0.125
    assert_matches(actual=Frobenius().repulsion_weights(totals, make_ctx(5, True, 1, 1)),
                   reference=[8 * S / 8.0, -1.0])
    assert_matches(actual=Frobenius().repulsion_weights(totals, make_ctx(5, False, 1, 1)), reference=[-4.0, 0.0])


@pytest.mark.parametrize("loss", [KL(), KL(epsilon=0.0), Frobenius()])
@pytest.mark.parametrize("normalized", SETTINGS)
@pytest.mark.parametrize("a, b", KERNELS)
def test_coefficients_are_finite_at_zero_distance(loss, normalized, a, b):
    ctx = make_ctx(5, normalized, a, b)
    D = np.array([0.0, 0.5, 2.0])
    phi = loss.repulsion_channels(D, ctx)
    assert phi.shape == (3, loss.n_channels)
    assert np.isfinite(phi).all()
    assert np.isfinite(loss.attraction(D, np.full(3, 0.1), ctx)).all()
    if b != 1:
        assert loss.attraction(D, np.full(3, 0.1), ctx)[0] == 0.0


def test_kl_channel_is_softened_by_epsilon():
    ctx = make_ctx(5, False, 1.577, 0.895)
    D = np.array([0.0, 1e-3, 1.0])
    expected = 2 * 0.895 / ((1e-3 + D) * (1 + 1.577 * D**0.895))
    assert_matches(actual=KL().repulsion_channels(D, ctx)[:, 0], reference=expected, rtol=1e-14)
    assert KL(epsilon=0.0).repulsion_channels(D, ctx)[0, 0] == 0.0


def test_channels_keep_the_shape_of_distances():
    ctx = make_ctx(5, True, 1.0, 1.0)
    D = np.ones((4, 3))
    assert KL().repulsion_channels(D, ctx).shape == (4, 3, 1)
    assert Frobenius().repulsion_channels(D, ctx).shape == (4, 3, 2)


def test_losses_do_not_modify_inputs():
    P = random_affinities(N_POINTS, normalized=True)
    Y = random_embedding(N_POINTS)
    P_copy, Y_copy = P.copy(), Y.copy()
    ctx = make_ctx(N_POINTS, True, 1.0, 1.0)
    for loss in (KL(), Frobenius()):
        loss.value(P, Y, ctx)
        loss.gradient(P, Y, ctx)
        exact_forces(loss, P, Y, ctx)
    np.testing.assert_array_equal(Y, Y_copy)
    np.testing.assert_array_equal(P.toarray(), P_copy.toarray())


# --------------------------------------------------------------------------- stages

def test_loss_stage_metadata():
    assert (KL.name, KL.backend, KL.priority, KL.n_channels) == ("kl", "reference", 0, 1)
    assert (Frobenius.name, Frobenius.backend, Frobenius.n_channels) == ("frobenius", "reference", 2)
    assert KL().epsilon == 1e-3 and KL().dof == 1.0
    # capabilities, not names: what the optimizers ask (backend kernels come through a hook)
    assert (KL.edge_sampling_sgd, KL.auto_rate_factor) == (True, 2.0)
    assert (Frobenius.edge_sampling_sgd, Frobenius.auto_rate_factor) == (False, 1.0)
    assert not hasattr(Loss, "numba_forces") and not hasattr(KL(), "numba_forces")
    assert pickle.loads(pickle.dumps(KL(epsilon=0.5))).epsilon == 0.5


def test_negative_epsilon_is_rejected():
    with pytest.raises(GidrValueError, match=r"^The 'epsilon' parameter of loss 'kl' must be a float in "
                                             r"\[0, inf\)\. Got -1\.0\.$"):
        KL(epsilon=-1.0)


def test_non_numeric_epsilon_is_rejected():
    with pytest.raises(GidrValueError, match=r"The 'epsilon' parameter of loss 'kl' must be a float .* Got 'big'\."):
        KL(epsilon="big")


def test_frobenius_takes_no_parameters():
    with pytest.raises(GidrValueError, match=r"A parameter name of loss 'frobenius' must be .* Got 'epsilon'\."):
        Frobenius(epsilon=0.1)


# --------------------------------------------------------------------------- heavy-tailed KL

DOFS = [0.5, 1.0, 2.0]


@pytest.mark.parametrize("dof", DOFS)
@pytest.mark.parametrize("a, b", KERNELS)
def test_heavy_tailed_gradient_matches_finite_differences(dof, a, b):
    check_loss_gradient(KL(dof=dof), make_ctx(25, True, a, b))


@pytest.mark.parametrize("dof", DOFS)
@pytest.mark.parametrize("a, b", KERNELS)
def test_heavy_tailed_forces_are_the_scaled_gradient(dof, a, b):
    check_loss_forces(KL(dof=dof), make_ctx(25, True, a, b))


@pytest.mark.parametrize("dof", [0.5, 2.0])
def test_heavy_tailed_kl_value_matches_dense_formula(dof):
    """``w = (1 + a D^b / dof)^(-dof)``, ``q = w / Z``: the value really depends on ``dof``."""
    P = random_affinities(15, normalized=True)
    Y = random_embedding(15)
    ctx = make_ctx(15, True, 1.577, 0.895)
    D = ((Y[:, None] - Y[None]) ** 2).sum(-1)
    W = (1 + ctx.a * D**ctx.b / dof) ** (-dof)
    np.fill_diagonal(W, 0.0)
    Q = W / W.sum()
    p = P.toarray()
    mask = p > 0
    expected = np.sum(p[mask] * np.log(p[mask] / Q[mask]))
    assert_matches(actual=KL(dof=dof).value(P, Y, ctx), reference=expected, rtol=1e-12)
    assert abs(KL(dof=dof).value(P, Y, ctx) - KL().value(P, Y, ctx)) > 1e-3 * abs(expected)
    assert_matches(actual=KL(dof=dof).kernel(D, ctx)[~np.eye(15, dtype=bool)], reference=W[~np.eye(15, dtype=bool)],
                   rtol=1e-14)


def test_heavy_tailed_kernel_is_the_student_t_kernel_at_dof_one():
    D = np.array([0.0, 0.3, 2.0, 50.0])
    assert_matches(actual=losses.heavy_tailed_kernel(D, 1.577, 0.895, 1.0), reference=1 / (1 + 1.577 * D**0.895),
                   rtol=1e-15)
    # unnormalized, the kernel stays UMAP's whatever dof (dof != 1 is refused there anyway)
    assert_matches(actual=KL(dof=0.5).kernel(D, make_ctx(5, False, 1.0, 1.0)), reference=1 / (1 + D), rtol=1e-15)


def test_heavy_tailed_kl_is_refused_unnormalized():
    KL(dof=0.5).check_settings({"normalized": True, "n_components": 2})
    KL(dof=1.0).check_settings({"normalized": False, "n_components": 2})
    with pytest.raises(GidrValueError, match=r"^The 'dof' parameter of loss 'kl' with normalized=False must be "
                                             r"1\.0\. Got 0\.5\. The heavy-tailed kernel is t-SNE's"):
        KL(dof=0.5).check_settings({"normalized": False, "n_components": 2})


def test_heavy_tailed_kl_is_refused_unnormalized_by_the_pipeline():
    from gidr import Pipeline

    with pytest.raises(GidrValueError, match=r"The 'dof' parameter of loss 'kl' with normalized=False must be 1\.0"):
        Pipeline.from_preset("gdr-umap", dof=0.5)


@pytest.mark.parametrize("dof", [0.0, -1.0])
def test_non_positive_dof_is_rejected(dof):
    with pytest.raises(GidrValueError, match=rf"^The 'dof' parameter of loss 'kl' must be a float in \(0, inf\)\. "
                                             rf"Got {dof}\.$"):
        KL(dof=dof)


# --------------------------------------------------------------------------- value estimate

def ring_affinities(n: int, k: int, normalized: bool, seed: int = 0) -> sp.csr_matrix:
    """Symmetric P where every row stores exactly 2k entries (i -> i +- 1..k, mod n), random
    values in (0.05, 0.95): with equal rows, the estimate's pair sums are unbiased."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), k)
    cols = (rows + np.tile(np.arange(1, k + 1), n)) % n
    upper = sp.csr_matrix((rng.uniform(0.05, 0.95, rows.size), (rows, cols)), shape=(n, n))
    P = sp.csr_matrix(upper + upper.T)
    P.sort_indices()
    return sp.csr_matrix(P / P.sum()) if normalized else P


class RecordingKL(KL):
    """KL that records the sums handed to value_from_sums."""

    seen: list = []

    def value_from_sums(self, edge_sums, pair_sums, ctx):
        RecordingKL.seen.append((np.array(edge_sums), np.array(pair_sums)))
        return super().value_from_sums(edge_sums, pair_sums, ctx)


class RecordingFrobenius(Frobenius):
    seen: list = []

    def value_from_sums(self, edge_sums, pair_sums, ctx):
        RecordingFrobenius.seen.append((np.array(edge_sums), np.array(pair_sums)))
        return super().value_from_sums(edge_sums, pair_sums, ctx)


def exact_term_sums(loss, P, Y, ctx):
    """The sums of the loss's edge terms over every stored entry and of its pair terms over
    every ordered pair, and the per-row variance of the pair terms (for the standard error)."""
    n = Y.shape[0]
    coo = P.tocoo()
    edge_terms = loss.value_edge_terms(((Y[coo.row] - Y[coo.col]) ** 2).sum(1), coo.data, ctx)
    D = ((Y[:, None] - Y[None]) ** 2).sum(-1)
    off = ~np.eye(n, dtype=bool)
    pair_terms = loss.value_pair_terms(D[off], ctx).reshape(n, n - 1, -1)  # row i: its n - 1 others
    return edge_terms.sum(0), pair_terms.sum((0, 1)), pair_terms.var(axis=1)


ESTIMATE_CASES = [(RecordingKL, True, {}), (RecordingKL, False, {}), (RecordingKL, True, {"dof": 0.5}),
                  (RecordingFrobenius, True, {}), (RecordingFrobenius, False, {})]
ESTIMATE_IDS = ["kl-normalized", "kl-unnormalized", "kl-dof0.5", "frobenius-normalized", "frobenius-unnormalized"]


@pytest.mark.parametrize("loss_class, normalized, params", ESTIMATE_CASES, ids=ESTIMATE_IDS)
def test_value_terms_sum_to_the_exact_value(loss_class, normalized, params):
    P = ring_affinities(60, 4, normalized)
    Y = random_embedding(60)
    loss, ctx = loss_class(**params), make_ctx(60, normalized, 1.577, 0.895)
    edge_sums, pair_sums, _ = exact_term_sums(loss, P, Y, ctx)
    assert_matches(actual=loss.value_from_sums(edge_sums, pair_sums, ctx), reference=loss.value(P, Y, ctx),
                   rtol=1e-10)


@pytest.mark.parametrize("loss_class, normalized, params", ESTIMATE_CASES, ids=ESTIMATE_IDS)
def test_value_estimate_reads_every_edge_and_samples_pairs_without_bias(loss_class, normalized, params):
    """n = 300 <= MAX_ROWS: every stored entry is read, so the edge sums are the exact ones
    (rtol 1e-12: only the order of the sum may differ). The pair sums come from 2k = 12
    uniform draws k != i per row (3,600 of the 89,700 ordered pairs), stratified by row, so
    their standard error is ``n (n - 1) / M * sqrt(sum_i m_i var_i)``; the estimate must be
    within 5 standard errors (a false alarm has probability < 1e-6 per sum), and the value
    within what 5 standard errors of the pair sums move ``value_from_sums``."""
    n, k = 300, 6
    P = ring_affinities(n, k, normalized, seed=2)
    Y = random_embedding(n, seed=3) * 2.0
    loss, ctx = loss_class(**params), make_ctx(n, normalized, 1.577, 0.895)
    assert n <= loss_estimate.MAX_ROWS
    edge_sums, pair_sums, row_variance = exact_term_sums(loss, P, Y, ctx)
    m = np.full(n, 2 * k)
    standard_error = n * (n - 1) / m.sum() * np.sqrt((m[:, None] * row_variance).sum(0))
    loss_class.seen.clear()
    estimate = loss_estimate.estimate_loss(loss, Affinities(P, normalized), Y, ctx, epoch=5)
    (seen_edges, seen_pairs), = loss_class.seen
    assert_matches(actual=seen_edges, reference=edge_sums, rtol=1e-12)
    assert np.all(np.abs(seen_pairs - pair_sums) < 5 * standard_error), (seen_pairs, pair_sums, standard_error)
    assert np.all(standard_error < 0.05 * np.abs(pair_sums))  # the bound is not vacuous
    exact = loss.value(P, Y, ctx)
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * pair_sums.size)).reshape(pair_sums.size, -1).T
    tolerance = max(abs(loss.value_from_sums(edge_sums, pair_sums + 5 * s * standard_error, ctx) - exact)
                    for s in signs)
    assert abs(estimate - exact) <= tolerance


@pytest.mark.parametrize("loss_class, normalized, params", ESTIMATE_CASES[:2] + ESTIMATE_CASES[3:4],
                         ids=ESTIMATE_IDS[:2] + ESTIMATE_IDS[3:4])
def test_value_estimate_is_deterministic_per_seed_and_epoch(loss_class, normalized, params):
    P = ring_affinities(300, 6, normalized, seed=2)
    Y = random_embedding(300, seed=3)
    affinities, loss = Affinities(P, normalized), loss_class(**params)
    ctx, other_seed = make_ctx(300, normalized, 1.0, 1.0), Context(n_samples=300, normalized=normalized, seed=1)
    first = loss_estimate.estimate_loss(loss, affinities, Y, ctx, 7)
    assert loss_estimate.estimate_loss(loss, affinities, Y, ctx, 7) == first
    assert loss_estimate.estimate_loss(loss, affinities, Y, ctx, 8) != first
    assert loss_estimate.estimate_loss(loss, affinities, Y, other_seed, 7) != first


def test_a_loss_without_value_terms_reports_its_exact_value_up_to_the_limit(monkeypatch):
    class NoTerms(KL):
        def value_edge_terms(self, D, p, ctx):
            return None

    P = ring_affinities(40, 3, True)
    Y = random_embedding(40)
    ctx = make_ctx(40, True, 1.0, 1.0)
    affinities = Affinities(P, True)
    assert loss_estimate.estimate_loss(NoTerms(), affinities, Y, ctx, 0) == NoTerms().value(P, Y, ctx)
    monkeypatch.setattr(loss_estimate, "EXACT_MAX_SAMPLES", 39)
    assert np.isnan(loss_estimate.estimate_loss(NoTerms(), affinities, Y, ctx, 0))


# ---------------------------------------------------------------------- repulsion_strength (gamma)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 3.0])
@pytest.mark.parametrize("a, b", [(1.0, 1.0), (1.577, 0.895)])
def test_repulsion_strength_gradient_matches_finite_differences(gamma, a, b):
    check_loss_gradient(KL(repulsion_strength=gamma), make_ctx(25, False, a, b))


@pytest.mark.parametrize("gamma", [0.0, 0.5, 3.0])
@pytest.mark.parametrize("a, b", KERNELS)
def test_repulsion_strength_forces_are_the_surrogate_gradient(gamma, a, b):
    P = random_affinities(N_POINTS, normalized=False)
    Y = random_embedding(N_POINTS)
    ctx = make_ctx(N_POINTS, False, a, b)
    p_mean = float(P.data.mean())
    numeric = central_differences(lambda Z: losses.kl_surrogate_value(P, Z, a, b, p_mean, gamma), Y)
    forces = exact_forces(KL(epsilon=0.0, repulsion_strength=gamma), P, Y, ctx)
    assert relative_error(forces, numeric) < 1e-5


def _points_and_graph(n, density, seed):
    """n random 2-D points and a random symmetric graph on them."""
    Y = np.random.default_rng(seed).normal(size=(n, 2))
    P = sp.random(n, n, density=density, random_state=seed + 1, format="csr")
    return Y, ((P + P.T) / 2).tocsr()


def test_repulsion_strength_weights_the_repulsive_part_of_the_cross_entropy():
    """``L = sum_{i<j} p log(p/w) + gamma (1-p) log((1-p)/(1-w))``, against the dense formula."""
    ctx = make_ctx(15, False, 1.577, 0.895)
    Y, P = _points_and_graph(15, 0.3, 3)
    P.data = np.minimum(P.data, 0.9)
    D = ((Y[:, None] - Y[None]) ** 2).sum(-1)
    W = 1 / (1 + ctx.a * D**ctx.b)
    Pd = P.toarray()
    upper = np.triu(np.ones((15, 15), dtype=bool), 1)
    from scipy.special import xlogy

    attraction = (xlogy(Pd, Pd) - xlogy(Pd, W))[upper].sum()
    repulsive = (xlogy(1 - Pd, 1 - Pd) - xlogy(1 - Pd, 1 - W))[upper].sum()
    for gamma in (0.0, 1.0, 2.5):
        assert_matches(actual=KL(repulsion_strength=gamma).value(P, Y, ctx), reference=attraction + gamma * repulsive,
                       rtol=1e-10)


def test_repulsion_strength_estimate_terms_give_the_exact_value():
    """The sampled loss estimate's terms (edges and pairs) add up to the exact value with gamma."""
    ctx = make_ctx(12, False, 1.0, 1.0)
    Y, P = _points_and_graph(12, 0.4, 5)
    P.setdiag(0)
    P.eliminate_zeros()
    loss = KL(repulsion_strength=2.0)
    coo = P.tocoo()
    D_edges = ((Y[coo.row] - Y[coo.col]) ** 2).sum(1)
    i, j = np.nonzero(~np.eye(12, dtype=bool))
    D_pairs = ((Y[i] - Y[j]) ** 2).sum(1)
    value = loss.value_from_sums(loss.value_edge_terms(D_edges, coo.data, ctx).sum(0),
                                 loss.value_pair_terms(D_pairs, ctx).sum(0) / 2 * 2, ctx)
    assert_matches(actual=value, reference=loss.value(P, Y, ctx), rtol=1e-10)


def test_repulsion_strength_is_refused_normalized():
    KL(repulsion_strength=2.0).check_settings({"normalized": False, "n_components": 2})
    with pytest.raises(GidrValueError, match=r"^The 'repulsion_strength' parameter of loss 'kl' with normalized=True "
                                             r"must be 1.0\. Got 2.0\. .*exaggeration"):
        KL(repulsion_strength=2.0).check_settings({"normalized": True, "n_components": 2})
    with pytest.raises(GidrValueError, match=r"repulsion_strength.*\[0, inf\)"):
        KL(repulsion_strength=-1.0)
