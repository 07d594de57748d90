"""Reference repulsion estimators (exact, Barnes-Hut, sampled) and the counter-based hash."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

from gidr.stages import Repulsion
from gidr.types import Context
from gidr.validation import GidrValueError
from gidr_reference import MAX_SAMPLES, barnes_hut, losses
from gidr_reference import random as counter
from gidr_reference.repulsion import samples_per_point, sampled_repulsion
from gidr_reference.stages_forces import (STAGES, BarnesHutRepulsion, ExactRepulsion, Frobenius, KL,
                                          SampledRepulsion)
from tests.helpers import assert_matches

# (loss, normalized, a, b): every channel shape the losses produce
CHANNEL_CASES = [
    (KL(), True, 1.0, 1.0),
    (KL(), False, 1.577, 0.895),
    (KL(epsilon=0.0), False, 1.0, 1.0),
    (Frobenius(), True, 1.577, 0.895),
    (Frobenius(), False, 1.0, 1.0),
    (KL(dof=0.5), True, 1.577, 0.895),  # heavy-tailed kernel: the estimators sum the loss's own w
]
CASE_IDS = ["kl-normalized", "kl-unnormalized", "kl-eps0", "frobenius-normalized", "frobenius-unnormalized",
            "kl-dof0.5"]


def ctx_for(Y: np.ndarray, normalized: bool, a: float = 1.0, b: float = 1.0, seed: int = 0) -> Context:
    return Context(n_samples=Y.shape[0], n_components=Y.shape[1], normalized=normalized, a=a, b=b, seed=seed)


def clustered(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Six Gaussian clusters, well separated."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=8.0, size=(6, d))
    return centers[rng.integers(0, 6, n)] + rng.normal(size=(n, d))


def with_duplicates(n: int, d: int, seed: int = 0) -> np.ndarray:
    Y = np.random.default_rng(seed).normal(size=(n, d))
    Y[[5, 9, 17]] = Y[3]  # four copies of one point
    Y[40] = Y[41]
    return Y


def kernel_one(D):
    """``w = 1 / (1 + D)`` (a = b = 1), the weight callable of the estimator functions."""
    return 1.0 / (1.0 + D)


def naive_repulsion(Y, phi, weight):
    """Plain double loop: channels[c, i] = sum_{k != i} phi_c(D_ik) (y_i - y_k); sums of w(D), w(D)^2."""
    n = len(Y)
    n_channels = phi(np.zeros(1)).shape[-1]
    channels, sum_w, sum_w2 = np.zeros((n_channels, n, Y.shape[1])), 0.0, 0.0
    for i in range(n):
        for k in range(n):
            if k != i:
                D = float(np.sum((Y[i] - Y[k]) ** 2))
                channels[:, i] += phi(np.array([D]))[0][:, None] * (Y[i] - Y[k])
                w = float(weight(np.array([D]))[0])
                sum_w, sum_w2 = sum_w + w, sum_w2 + w * w
    return channels, sum_w, sum_w2


# --------------------------------------------------------------------------- exact

@pytest.mark.parametrize("loss, normalized, a, b", CHANNEL_CASES, ids=CASE_IDS)
def test_exact_matches_a_double_loop(loss, normalized, a, b):
    dof = loss.values.get("dof", 1.0)
    Y = with_duplicates(45, 2)
    ctx = ctx_for(Y, normalized, a, b)
    sums = ExactRepulsion().estimate(Y, loss, ctx, epoch=0)
    channels, sum_w, sum_w2 = naive_repulsion(Y, lambda D: loss.repulsion_channels(D, ctx),
                                              lambda D: (1 + a * D**b / dof) ** (-dof))
    assert sums.channels.shape == (loss.n_channels, 45, 2)
    assert_matches(actual=sums.channels, reference=channels, rtol=1e-12, atol=1e-12)
    assert_matches(actual=[sums.sum_w, sums.sum_w2], reference=[sum_w, sum_w2], rtol=1e-12)


def test_exact_in_blocks_matches_one_block(monkeypatch):
    Y = clustered(60, 3)
    ctx = ctx_for(Y, True)
    whole = ExactRepulsion().estimate(Y, Frobenius(), ctx, epoch=0)
    monkeypatch.setattr(losses, "BLOCK_ELEMENTS", 60 * 3 * 7)  # blocks of 7 rows
    blocked = ExactRepulsion().estimate(Y, Frobenius(), ctx, epoch=0)
    assert_matches(actual=blocked.channels, reference=whole.channels, rtol=1e-13)
    assert_matches(actual=[blocked.sum_w, blocked.sum_w2], reference=[whole.sum_w, whole.sum_w2], rtol=1e-13)


def test_exact_refuses_more_than_max_samples():
    Y = np.zeros((MAX_SAMPLES + 1, 2))
    with pytest.raises(GidrValueError, match=r"The number of samples for repulsion 'exact' in backend "
                                             r"'reference' must be at most 20000"):
        ExactRepulsion().estimate(Y, KL(), ctx_for(Y, True), epoch=0)


# --------------------------------------------------------------------------- Barnes-Hut

@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("loss, normalized, a, b", CHANNEL_CASES, ids=CASE_IDS)
def test_barnes_hut_at_theta_zero_is_exact(loss, normalized, a, b, d):
    Y = with_duplicates(120, d)
    ctx = ctx_for(Y, normalized, a, b)
    exact = ExactRepulsion().estimate(Y, loss, ctx, epoch=0)
    tree = BarnesHutRepulsion(theta=0.0).estimate(Y, loss, ctx, epoch=0)
    scale = np.abs(exact.channels).max()
    assert_matches(actual=tree.channels, reference=exact.channels, rtol=1e-10, atol=1e-10 * scale)
    assert_matches(actual=[tree.sum_w, tree.sum_w2], reference=[exact.sum_w, exact.sum_w2], rtol=1e-10)


def test_barnes_hut_handles_all_points_identical():
    Y = np.ones((7, 2))
    ctx = ctx_for(Y, True)
    tree = BarnesHutRepulsion().estimate(Y, KL(), ctx, epoch=0)
    assert_matches(actual=tree.channels, reference=np.zeros((1, 7, 2)))
    assert tree.sum_w == 42.0 and tree.sum_w2 == 42.0


def test_tree_cells_partition_the_points():
    Y = clustered(300, 2)
    tree = barnes_hut.build_tree(Y)
    leaves = np.flatnonzero(tree.is_leaf)
    held = np.concatenate([tree.order[tree.start[v]:tree.stop[v]] for v in leaves])
    np.testing.assert_array_equal(np.sort(held), np.arange(300))
    internal = np.flatnonzero(~tree.is_leaf)
    assert (tree.n_children[internal] >= 1).all() and (tree.n_children[internal] <= 4).all()
    first, last = tree.first_child[internal], tree.first_child[internal] + tree.n_children[internal] - 1
    np.testing.assert_array_equal(tree.start[first], tree.start[internal])
    np.testing.assert_array_equal(tree.stop[last], tree.stop[internal])
    np.testing.assert_array_equal(tree.width[first], tree.width[internal] / 2)


# Measured on these 500 clustered points at theta = 0.5: relative L2 error of the channel
# field 0.8 % (kl normalized), 1.2 % (kl unnormalized), 1.7 % (frobenius phi_1) in 2-D,
# at most 1.1 % in 3-D; sum_w -0.4 %, sum_w2 -0.7 %. The bounds below leave room.
BH_CHANNEL_BOUND, BH_SUM_W_BOUND, BH_SUM_W2_BOUND = 0.03, 0.01, 0.02


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("loss, normalized, a, b", CHANNEL_CASES[:2] + CHANNEL_CASES[3:4],
                         ids=CASE_IDS[:2] + CASE_IDS[3:4])
def test_barnes_hut_error_at_default_theta_is_small(loss, normalized, a, b, d):
    Y = clustered(500, d)
    ctx = ctx_for(Y, normalized, a, b)
    exact = ExactRepulsion().estimate(Y, loss, ctx, epoch=0)
    tree = BarnesHutRepulsion().estimate(Y, loss, ctx, epoch=0)
    for c in range(loss.n_channels):
        error = np.linalg.norm(tree.channels[c] - exact.channels[c]) / np.linalg.norm(exact.channels[c])
        assert error < BH_CHANNEL_BOUND
    assert abs(tree.sum_w / exact.sum_w - 1) < BH_SUM_W_BOUND
    assert abs(tree.sum_w2 / exact.sum_w2 - 1) < BH_SUM_W2_BOUND


def test_barnes_hut_error_grows_with_theta():
    Y = clustered(300, 2)
    ctx = ctx_for(Y, True)
    exact = ExactRepulsion().estimate(Y, KL(), ctx, epoch=0).channels
    errors = [np.linalg.norm(BarnesHutRepulsion(theta=t).estimate(Y, KL(), ctx, epoch=0).channels - exact)
              for t in (0.2, 0.5, 1.0, 2.0)]
    assert errors == sorted(errors) and errors[0] > 0


def test_barnes_hut_never_lets_a_point_repel_itself():
    # at a huge theta every cell not holding y_i is one point: the root is always opened
    Y = clustered(50, 2)
    ctx = ctx_for(Y, True)
    tree = BarnesHutRepulsion(theta=100.0).estimate(Y, KL(), ctx, epoch=0)
    assert np.isfinite(tree.channels).all()
    assert tree.sum_w < 50 * 49  # w <= 1 for each of the n (n - 1) ordered pairs


def test_barnes_hut_rejects_four_dimensions_in_settings():
    with pytest.raises(GidrValueError, match=r"The 'n_components' setting for repulsion 'barnes_hut' must be "
                                             r"at most 3 .* Got 4\. Use repulsion 'exact' or 'sampled'"):
        BarnesHutRepulsion().check_settings({"n_components": 4, "normalized": True})


def test_barnes_hut_rejects_four_dimensional_positions():
    Y = np.zeros((10, 4))
    with pytest.raises(GidrValueError, match=r"repulsion 'exact' or 'sampled'"):
        BarnesHutRepulsion().estimate(Y, KL(), ctx_for(Y, True), epoch=0)


def test_barnes_hut_accepts_three_dimensions_in_settings():
    BarnesHutRepulsion().check_settings({"n_components": 3})


def test_negative_theta_is_rejected():
    with pytest.raises(GidrValueError, match=r"^The 'theta' parameter of repulsion 'barnes_hut' must be a float "
                                             r"in \[0, inf\)\. Got -0\.1\.$"):
        BarnesHutRepulsion(theta=-0.1)


# --------------------------------------------------------------------------- sampled

N_EPOCHS = 400


def sampled_runs(loss, ctx, Y, n_edges, n_negative=1):
    """Channels (epochs, C, n, d) and totals (epochs, 2) over N_EPOCHS epochs."""
    stage = SampledRepulsion(n_negative=n_negative)
    runs = [stage.estimate(Y, loss, ctx, epoch, n_edges) for epoch in range(N_EPOCHS)]
    channels = np.stack([r.channels for r in runs])
    totals = np.array([[r.sum_w, r.sum_w2] for r in runs])
    return channels, totals


def z_scores(samples: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """(mean - expected) / standard error, along the first axis."""
    standard_error = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    return (samples.mean(axis=0) - expected) / standard_error


@pytest.mark.parametrize("loss, normalized, a, b", [CHANNEL_CASES[0], CHANNEL_CASES[1], CHANNEL_CASES[3]],
                         ids=[CASE_IDS[0], CASE_IDS[1], CASE_IDS[3]])
def test_sampled_estimate_is_unbiased(loss, normalized, a, b):
    Y = np.random.default_rng(2).normal(scale=2.0, size=(40, 2))
    n_edges = np.random.default_rng(3).integers(1, 7, size=40)
    ctx = ctx_for(Y, normalized, a, b, seed=11)
    exact = ExactRepulsion().estimate(Y, loss, ctx, epoch=0)
    channels, totals = sampled_runs(loss, ctx, Y, n_edges, n_negative=2)
    # normalized: unbiased for the sum over all n - 1 points; unnormalized: for m_i / (n - 1) of it
    scale = 1.0 if normalized else 2 * n_edges[None, :, None] / 39
    z = z_scores(channels, scale * exact.channels)
    assert np.abs(z).max() < 4.5  # 40 points x 2 coordinates x channels, nearly Gaussian
    assert 0.6 < np.mean(z**2) < 1.5
    # the component of the total force along the exact direction, on a few points
    target = (scale * exact.channels)[0, :5]
    direction = target / np.linalg.norm(target, axis=-1, keepdims=True)
    along = np.einsum("eij,ij->ei", channels[:, 0, :5], direction)
    assert np.abs(z_scores(along, np.linalg.norm(target, axis=-1))).max() < 4


def test_sampled_totals_are_unbiased_with_equal_samples_per_point():
    # sum_w = n (n - 1) / M * (sum of w over the M draws) is unbiased when every m_i is equal
    # (here n_edges=None: 15 draws per point); see test_sampled_totals_lean_to_points_with_more_edges
    Y = np.random.default_rng(2).normal(scale=2.0, size=(40, 2))
    ctx = ctx_for(Y, True, 1.577, 0.895, seed=11)
    exact = ExactRepulsion().estimate(Y, KL(), ctx, epoch=0)
    _, totals = sampled_runs(KL(), ctx, Y, n_edges=None)
    assert np.abs(z_scores(totals, np.array([exact.sum_w, exact.sum_w2]))).max() < 3


def test_sampled_totals_lean_to_points_with_more_edges():
    # With unequal m_i the contract's pooled estimate has mean n * sum_i (m_i / M) R_i, where
    # R_i = sum_{k != i} w_ik, not sum_i R_i: pin that (known, reported) behaviour.
    Y = np.random.default_rng(2).normal(scale=2.0, size=(40, 2))
    n_edges = np.random.default_rng(3).integers(1, 7, size=40)
    ctx = ctx_for(Y, True, seed=11)
    _, totals = sampled_runs(KL(), ctx, Y, n_edges)
    D = ((Y[:, None] - Y[None]) ** 2).sum(-1)
    W = 1 / (1 + D)
    np.fill_diagonal(W, 0.0)
    expected = 40 * np.sum(n_edges / n_edges.sum() * W.sum(1))
    assert abs(z_scores(totals[:, :1], np.array([expected]))[0]) < 3
    assert abs(z_scores(totals[:, :1], np.array([W.sum()]))[0]) > 3


def test_sampled_draws_fifteen_per_point_without_edges():
    np.testing.assert_array_equal(samples_per_point(4, 2, None), [30, 30, 30, 30])
    np.testing.assert_array_equal(samples_per_point(3, 2, np.array([1, 0, 4])), [2, 0, 8])


def test_sampled_gives_zero_force_to_points_without_samples():
    Y = np.random.default_rng(0).normal(size=(10, 2))
    m = np.array([0, 3, 1, 0, 2, 2, 2, 2, 2, 2])
    for normalized in (True, False):
        sums = sampled_repulsion(Y, lambda D: KL().repulsion_channels(D, ctx_for(Y, normalized)), kernel_one,
                                 seed=0, epoch=0, m=m, normalized=normalized)
        assert_matches(actual=sums.channels[:, [0, 3]], reference=np.zeros((1, 2, 2)))
        assert np.isfinite(sums.channels).all()


def test_normalized_sampled_is_the_rescaled_plain_sum():
    Y = np.random.default_rng(0).normal(size=(30, 2))
    m = np.arange(30) % 4 + 1
    phi = lambda D: Frobenius().repulsion_channels(D, ctx_for(Y, True))
    plain = sampled_repulsion(Y, phi, kernel_one, seed=3, epoch=5, m=m, normalized=False)
    rescaled = sampled_repulsion(Y, phi, kernel_one, seed=3, epoch=5, m=m, normalized=True)
    assert_matches(actual=rescaled.channels, reference=plain.channels * (29 / m)[None, :, None], rtol=1e-14)
    assert (plain.sum_w, plain.sum_w2) == (rescaled.sum_w, rescaled.sum_w2)


def test_sampled_totals_average_w_over_the_draws():
    Y = np.random.default_rng(0).normal(size=(30, 2))
    m = np.full(30, 2)
    sums = sampled_repulsion(Y, lambda D: KL().repulsion_channels(D, ctx_for(Y, True)), kernel_one,
                             seed=3, epoch=5, m=m, normalized=True)
    owner = np.repeat(np.arange(30), 2)
    other = counter.negative_sample(3, 5, owner, np.tile([0, 1], 30), 30)
    w = 1 / (1 + ((Y[owner] - Y[other]) ** 2).sum(1))
    assert_matches(actual=sums.sum_w, reference=30 * 29 * w.mean(), rtol=1e-13)


def test_sampled_is_deterministic_per_seed_and_epoch():
    Y = clustered(60, 2)
    n_edges = np.full(60, 3)
    stage = SampledRepulsion(n_negative=2)
    first = stage.estimate(Y, KL(), ctx_for(Y, True, seed=5), 7, n_edges)
    again = stage.estimate(Y, KL(), ctx_for(Y, True, seed=5), 7, n_edges)
    next_epoch = stage.estimate(Y, KL(), ctx_for(Y, True, seed=5), 8, n_edges)
    other_seed = stage.estimate(Y, KL(), ctx_for(Y, True, seed=6), 7, n_edges)
    np.testing.assert_array_equal(first.channels, again.channels)
    assert first.sum_w == again.sum_w
    assert not np.array_equal(first.channels, next_epoch.channels)
    assert not np.array_equal(first.channels, other_seed.channels)


def test_sampled_does_not_modify_its_inputs():
    Y = clustered(20, 2)
    n_edges = np.full(20, 2)
    Y_copy, edges_copy = Y.copy(), n_edges.copy()
    SampledRepulsion().estimate(Y, KL(), ctx_for(Y, True), 0, n_edges)
    BarnesHutRepulsion().estimate(Y, KL(), ctx_for(Y, True), 0)
    np.testing.assert_array_equal(Y, Y_copy)
    np.testing.assert_array_equal(n_edges, edges_copy)


@pytest.mark.parametrize("bad", [0, 1.5])
def test_bad_n_negative_is_rejected(bad):
    with pytest.raises(GidrValueError, match=rf"^The 'n_negative' parameter of repulsion 'sampled' must be an int "
                                             rf"in \[1, inf\)\. Got {bad}\.$"):
        SampledRepulsion(n_negative=bad)


def test_repulsion_stage_metadata():
    assert [s.name for s in STAGES if issubclass(s, Repulsion)] == ["exact", "barnes_hut", "sampled", "fft"]
    assert all(s.backend == "reference" and s.priority == 0 for s in STAGES)
    assert ExactRepulsion.max_samples == MAX_SAMPLES
    assert BarnesHutRepulsion().theta == 0.5 and SampledRepulsion().n_negative == 1


# --------------------------------------------------------------------------- counter hash

# Pinned outputs: the numba twin must reproduce these literals bit for bit.
PINNED_HASHES = [
    ((0, 0, 0, 0), 3746585686858627171, 0.20310281705476096),
    ((42, 7, 3, 5), 654270394263875780, 0.03546806914269207),
    ((2**63 - 1, 499, 19999, 74), 13378431390649212008, 0.7252462189095071),
    ((123456789, 0, 1, 0), 4185024783450346127, 0.22687064810612712),
]
# k = floor(h * (n - 1) / 2**64), shifted past i (the high word of the product, not h % (n - 1))
PINNED_SAMPLES = [
    ((0, 0, 0, 0, 10), 2),
    ((42, 7, 3, 5, 1000), 36),
    ((2**63 - 1, 499, 19999, 74, 20000), 14504),
    ((123456789, 0, 1, 0, 2), 0),
]


def test_mix_is_splitmix64():
    # splitmix64's first two outputs from state 0 (Vigna's reference implementation)
    assert counter.mix_scalar(counter.GOLDEN_GAMMA) == 0xE220A8397B1DCDAF
    assert counter.mix_scalar(2 * counter.GOLDEN_GAMMA) == 0x6E789E6AA1B965F4
    assert int(counter.mix(np.uint64(counter.GOLDEN_GAMMA))) == 0xE220A8397B1DCDAF


@pytest.mark.parametrize("args, expected_hash, expected_uniform", PINNED_HASHES)
def test_pinned_hash_values(args, expected_hash, expected_uniform):
    assert counter.counter_hash_scalar(*args) == expected_hash
    assert int(counter.counter_hash(*args)) == expected_hash
    assert counter.uniform_scalar(*args) == expected_uniform
    assert float(counter.uniform(*args)) == expected_uniform


@pytest.mark.parametrize("args, expected", PINNED_SAMPLES)
def test_pinned_negative_samples(args, expected):
    assert counter.negative_sample_scalar(*args) == expected
    assert int(counter.negative_sample(*args)) == expected


@pytest.mark.parametrize("m", [1, 2, 7, 20_000, 2**31 + 11, 2**32 - 1, 2**32, 2**32 + 3, 2**63 + 5])
def test_below_is_the_high_word_of_the_product_below_two_to_the_32(m):
    rng = np.random.default_rng(m % 1000)
    h = rng.integers(0, 2**63, 500, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, 500, dtype=np.uint64)
    h = np.concatenate([h, np.array([0, 1, 2**64 - 1, 2**63, 2**32 - 1, 2**32], dtype=np.uint64)])
    expected = [(int(x) * m) >> 64 if m < 2**32 else int(x) % m for x in h]
    assert [int(v) for v in counter.below(h, m)] == expected
    assert [counter.below_scalar(int(x), m) for x in h] == expected
    assert all(0 <= v < m for v in expected)


def test_below_maps_hashes_uniformly():
    h = counter.counter_hash(5, 0, np.arange(70_000), 0)
    counts = np.bincount(counter.below(h, 7).astype(np.int64), minlength=7)
    chi2 = float(((counts - 10_000.0) ** 2 / 10_000.0).sum())
    assert chi2 < 22.5  # 6 degrees of freedom: p = 0.001


def test_vectorised_equals_scalar():
    i = np.repeat(np.arange(25), 8)
    slot = np.tile(np.arange(8), 25)
    seed, epoch, n = 2**40 + 17, 123, 25
    samples = counter.negative_sample(seed, epoch, i, slot, n)
    uniforms = counter.uniform(seed, epoch, i, slot)
    assert samples.dtype == np.int64 and uniforms.dtype == np.float64
    assert samples.tolist() == [counter.negative_sample_scalar(seed, epoch, int(a), int(s), n) for a, s in zip(i, slot)]
    assert uniforms.tolist() == [counter.uniform_scalar(seed, epoch, int(a), int(s)) for a, s in zip(i, slot)]


def test_negative_samples_exclude_the_point_and_are_uniform():
    n, n_slots = 20, 4000
    i = np.repeat(np.arange(n), n_slots)
    slot = np.tile(np.arange(n_slots), n)
    k = counter.negative_sample(9, 3, i, slot, n)
    assert not (k == i).any()
    assert k.min() >= 0 and k.max() == n - 1
    for point in (0, 7, n - 1):
        counts = np.bincount(k[i == point], minlength=n)
        assert counts[point] == 0
        assert chisquare(np.delete(counts, point)).pvalue > 1e-3


def test_uniform_is_in_the_unit_interval_and_flat():
    u = counter.uniform(1, 2, np.arange(20000), 0)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert chisquare(np.bincount((u * 20).astype(int), minlength=20)).pvalue > 1e-3


def test_negative_sample_needs_two_points():
    with pytest.raises(ValueError, match="at least 2 points"):
        counter.negative_sample(0, 0, 0, 0, 1)


# --------------------------------------------------------------------------- the negative pool
def test_negative_pool_draws_every_point_uniformly_and_differs_between_epochs():
    pool = counter.negative_pool(4, 2, 9, 90_000)
    assert pool.dtype == np.int64 and pool.min() == 0 and pool.max() == 8
    assert chisquare(np.bincount(pool, minlength=9)).pvalue > 1e-3
    assert not np.array_equal(counter.negative_pool(4, 3, 9, 50), counter.negative_pool(4, 2, 9, 50))
    # the pool's hashes are not any point's own: row POOL_ROW is above every point index
    assert not np.array_equal(pool[:50], counter.below(counter.counter_hash(4, 2, 0, np.arange(50)), 9))


def test_pooled_draws_are_uniform_over_the_others_across_epochs():
    # A pool of 2 among 6 points: within one epoch the draws fall on the pool (or, where the pool
    # entry is the point itself, on a redraw); over epochs every other point is equally likely.
    n, epochs = 6, 40_000
    i, slot = np.arange(n), np.zeros(n, dtype=np.int64)
    draws = np.stack([counter.pooled_negative_sample(7, epoch, i, slot, n, counter.negative_pool(7, epoch, n, 2))
                      for epoch in range(epochs)])
    assert not (draws == i).any()
    for point in range(n):
        counts = np.delete(np.bincount(draws[:, point], minlength=n), point)
        assert chisquare(counts).pvalue > 1e-3
    pool = counter.negative_pool(7, 0, n, 2)
    one_epoch = counter.pooled_negative_sample(7, 0, np.repeat(i, 50), np.tile(np.arange(50), n), n, pool)
    outside = ~np.isin(np.repeat(i, 50), pool)
    assert outside.any() and set(one_epoch[outside]) <= set(pool)  # only the points in the pool redraw


def test_pooled_draws_redraw_only_a_point_s_own_entry():
    n = 50
    pool = counter.negative_pool(3, 1, n, 8)
    i = np.repeat(np.arange(n), 40)
    slot = np.tile(np.arange(40), n)
    h = counter.counter_hash(3, 1, i, slot)
    entry = pool[counter.below(h, pool.size).astype(np.int64)]
    k = counter.pooled_negative_sample(3, 1, i, slot, n, pool)
    own = entry == i
    assert own.any() and (~own).any()
    np.testing.assert_array_equal(k[~own], entry[~own])
    redrawn = counter.below(counter.mix(h[own]), n - 1).astype(np.int64)
    np.testing.assert_array_equal(k[own], redrawn + (redrawn >= i[own]))
    assert counter.pooled_negative_sample(3, 1, 5, 2, n, pool).shape == ()


def test_sampled_through_a_pool_is_unbiased():
    # the normalized estimate stays unbiased for the exact sums when the draws go through a pool
    loss, normalized, a, b = CHANNEL_CASES[0]
    Y = np.random.default_rng(2).normal(scale=2.0, size=(40, 2))
    n_edges = np.random.default_rng(3).integers(1, 7, size=40)
    ctx = ctx_for(Y, normalized, a, b, seed=11)
    exact = ExactRepulsion().estimate(Y, loss, ctx, epoch=0)
    stage = SampledRepulsion(n_negative=2, pool_size=10)
    assert stage.negative_pool_size(40) == 10 and stage.negative_pool_size(10) == 0
    runs = [stage.estimate(Y, loss, ctx, epoch, n_edges) for epoch in range(N_EPOCHS)]
    channels = np.stack([r.channels for r in runs])
    z = z_scores(channels, exact.channels)
    assert np.abs(z).max() < 4.5
    assert 0.6 < np.mean(z**2) < 1.5
    totals = np.array([r.sum_w for r in runs])
    assert abs(z_scores(totals[:, None], np.array([exact.sum_w]))[0]) < 4.5
    # and it is not the pool-less estimate
    assert not np.array_equal(runs[0].channels, SampledRepulsion(n_negative=2).estimate(Y, loss, ctx, 0, n_edges)
                              .channels)


def test_a_pool_as_large_as_the_data_is_not_used():
    loss, normalized, a, b = CHANNEL_CASES[1]
    Y = clustered(30, 2)
    ctx = ctx_for(Y, normalized, a, b, seed=3)
    plain = SampledRepulsion(n_negative=2).estimate(Y, loss, ctx, 4)
    for size in (30, 31, 1000):
        pooled = SampledRepulsion(n_negative=2, pool_size=size).estimate(Y, loss, ctx, 4)
        np.testing.assert_array_equal(pooled.channels, plain.channels)


@pytest.mark.parametrize("bad", [-1, 1.5, "64"])
def test_bad_pool_size_is_rejected(bad):
    with pytest.raises(GidrValueError, match="pool_size"):
        SampledRepulsion(pool_size=bad)


def test_umap_sgd_refuses_a_pool():
    from gidr import Pipeline

    with pytest.raises(GidrValueError, match="repulsion's 'pool_size' used with optimizer 'umap_sgd' must be 0"):
        Pipeline.from_preset("umap", repulsion__pool_size=4096)
