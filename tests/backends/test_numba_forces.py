"""numba force functions and repulsion estimators against the reference backend.

The losses are the reference classes; the numba backend registers their kernels through the
``gidr_register_kernels`` hook (:func:`gidr_numba.forces.builtin_loss_kernels`)."""
from __future__ import annotations

import itertools
import logging

import os

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from gidr.registry import Registry  # noqa: E402
from gidr.stages import Loss, Repulsion  # noqa: E402
from gidr.types import Context  # noqa: E402
from gidr.validation import GidrValueError, Interval, Param  # noqa: E402
from gidr_numba import barnes_hut, forces  # noqa: E402
from gidr_numba.repulsion import sampled_repulsion  # noqa: E402
from gidr_numba.stages_forces import STAGES, BarnesHutRepulsion, ExactRepulsion, SampledRepulsion  # noqa: E402
from gidr_reference import repulsion as reference_repulsion  # noqa: E402
from gidr_reference import stages_forces as reference  # noqa: E402
from gidr_reference.stages_forces import KL, Frobenius  # noqa: E402
from tests.helpers import assert_matches  # noqa: E402
from tests.reference.test_repulsion import (BH_CHANNEL_BOUND, BH_SUM_W2_BOUND, BH_SUM_W_BOUND,  # noqa: E402
                                            clustered, with_duplicates)

# (loss name, normalized, a, b, loss parameters): every force pair and channel shape
CASES = [
    ("kl", True, 1.0, 1.0, {}),
    ("kl", True, 1.577, 0.895, {}),
    ("kl", False, 1.577, 0.895, {}),
    ("kl", False, 1.0, 1.0, {"epsilon": 0.0}),
    ("kl", False, 1.0, 1.0, {"epsilon": 0.3}),
    ("frobenius", True, 1.577, 0.895, {}),
    ("frobenius", True, 1.0, 1.0, {}),
    ("frobenius", False, 1.0, 1.0, {}),
    ("frobenius", False, 1.577, 0.895, {}),
    ("kl", True, 1.0, 1.0, {"dof": 0.5}),  # the heavy-tailed kernels (1 + a D^b / dof)^(-dof)
    ("kl", True, 1.577, 0.895, {"dof": 2.0}),
]
IDS = ["kl-norm", "kl-norm-ab", "kl-unnorm-ab", "kl-unnorm-eps0", "kl-unnorm-eps0.3", "frob-norm-ab",
       "frob-norm", "frob-unnorm", "frob-unnorm-ab", "kl-dof0.5", "kl-dof2-ab"]
LOSSES = {"kl": KL, "frobenius": Frobenius}


def make_case(name, normalized, a, b, params, Y):
    """The loss (a reference class: numba only registers its kernels) and the context of one case."""
    ctx = Context(n_samples=Y.shape[0], n_components=Y.shape[1], normalized=normalized, a=a, b=b, seed=3)
    return LOSSES[name](**params), ctx


@pytest.fixture
def all_threads():
    """Restore numba's thread count after a test that changes it."""
    yield numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


# --------------------------------------------------------------------------- force functions

@pytest.mark.parametrize("name, normalized, a, b, params", CASES, ids=IDS)
def test_force_functions_match_the_reference_loss(name, normalized, a, b, params):
    rng = np.random.default_rng(0)
    D = np.concatenate([[0.0, 1e-300, 1e-9], rng.exponential(3.0, 60), [1e6]])
    p = rng.uniform(0, 1, D.size)
    loss, ctx = make_case(name, normalized, a, b, params, np.zeros((2, 2)))
    kernels = forces.loss_kernels(loss, ctx)  # through the gidr_register_kernels hook
    attraction, repulsion, parameters = kernels.attraction, kernels.repulsion, kernels.params
    actual = np.array([attraction(x, q, a, b, parameters) for x in D for q in (p[0], 1.0)]).reshape(D.size, 2, 2)
    expected_attraction = np.stack([loss.attraction(D, np.full(D.size, q), ctx) for q in (p[0], 1.0)], axis=1)
    assert_matches(actual=actual[..., 0], reference=expected_attraction, rtol=1e-12)
    assert_matches(actual=actual[:, 0, 1], reference=loss.kernel(D, ctx), rtol=1e-12)
    assert_matches(actual=[attraction(x, q, a, b, parameters)[0] for x, q in zip(D, p)],
                   reference=loss.attraction(D, p, ctx), rtol=1e-12)
    channels = np.zeros((D.size, 3))
    channels[:, :loss.n_channels] = loss.repulsion_channels(D, ctx)
    channels[:, 2] = loss.kernel(D, ctx)
    assert_matches(actual=[repulsion(x, a, b, parameters) for x in D], reference=channels, rtol=1e-12)


@pytest.mark.parametrize("dof", [0.5, 2.0])
@pytest.mark.parametrize("a, b", [(1.0, 1.0), (1.577, 0.895)])
def test_heavy_tailed_force_functions_match_numpy(dof, a, b):
    """``kl_heavy_tailed_attraction/repulsion`` against the NumPy ``attraction``,
    ``repulsion_channels`` and ``kernel`` of ``KL(dof)``, at many (D, p)."""
    rng = np.random.default_rng(4)
    D = np.concatenate([[0.0, 1e-12], rng.exponential(2.0, 200), rng.uniform(0, 1e4, 20)])
    p = rng.uniform(0, 1, D.size)
    loss, ctx = KL(dof=dof), Context(n_samples=5, normalized=True, a=a, b=b)
    kernels = forces.builtin_loss_kernels(loss, ctx)
    assert kernels.attraction is forces.kl_heavy_tailed_attraction
    assert kernels.repulsion is forces.kl_heavy_tailed_repulsion
    attraction = np.array([kernels.attraction(x, q, a, b, kernels.params) for x, q in zip(D, p)])
    repulsion = np.array([kernels.repulsion(x, a, b, kernels.params) for x in D])
    assert_matches(actual=attraction[:, 0], reference=loss.attraction(D, p, ctx), rtol=1e-12)
    assert_matches(actual=attraction[:, 1], reference=loss.kernel(D, ctx), rtol=1e-12)
    assert_matches(actual=repulsion[:, 0], reference=loss.repulsion_channels(D, ctx)[:, 0], rtol=1e-12)
    assert_matches(actual=repulsion[:, 1], reference=np.zeros(D.size))
    assert_matches(actual=repulsion[:, 2], reference=loss.kernel(D, ctx), rtol=1e-12)
    assert not np.allclose(repulsion[:, 2], 1 / (1 + a * D**b))  # not t-SNE's kernel


def test_builtin_kernels_carry_the_loss_parameters_and_pick_the_force_pair():
    normalized, unnormalized = Context(n_samples=5, normalized=True), Context(n_samples=5, normalized=False)
    cases = [(KL(), normalized, [1e-3, 1.0, 1.0], forces.kl_normalized_attraction),
             (KL(epsilon=0.25), unnormalized, [0.25, 1.0, 1.0], forces.kl_unnormalized_attraction),
             (KL(repulsion_strength=3.0), unnormalized, [1e-3, 1.0, 3.0], forces.kl_unnormalized_attraction),
             (KL(dof=0.5), normalized, [1e-3, 0.5, 1.0], forces.kl_heavy_tailed_attraction),
             (Frobenius(), normalized, [], forces.frobenius_normalized_attraction),
             (Frobenius(), unnormalized, [], forces.frobenius_unnormalized_attraction)]
    for loss, ctx, params, attraction in cases:
        kernels = forces.builtin_loss_kernels(loss, ctx)
        assert isinstance(kernels, forces.LossKernels)
        assert kernels.attraction is attraction, loss
        # a tuple of MAX_PARAMS floats (an array was reference-counted at every call: 2x slower)
        assert isinstance(kernels.params, tuple) and len(kernels.params) == forces.MAX_PARAMS
        assert kernels.params == tuple(params) + (0.0,) * (forces.MAX_PARAMS - len(params))
        assert forces.loss_kernels(loss, ctx).attraction is attraction  # the registered factory


def test_built_in_force_functions_reach_kernels_as_markers():
    for loss in (KL(), KL(dof=0.5), Frobenius()):
        for normalized in ((True,) if loss.values.get("dof", 1.0) != 1.0 else (True, False)):
            kernels = forces.builtin_loss_kernels(loss, Context(n_samples=5, normalized=normalized))
            attraction, repulsion, params = kernels.attraction, kernels.repulsion, kernels.params
            marker = forces.kernel_argument(repulsion)
            assert forces.is_marker(marker) and forces.kernel_argument(attraction) == marker
            assert forces.call_repulsion(marker, 0.7, 1.5, 0.9, params) == repulsion(0.7, 1.5, 0.9, params)
            assert forces.call_attraction(marker, 0.7, 0.2, 1.5, 0.9, params) == \
                attraction(0.7, 0.2, 1.5, 0.9, params)
    assert type(forces.kernel_argument(forces.kl_heavy_tailed_repulsion)) is forces.KLHeavyTailed
    assert forces.kernel_argument(gaussian_repulsion) is gaussian_repulsion
    assert not forces.is_marker(gaussian_repulsion)


@pytest.mark.parametrize("loss, normalized", [(KL(), True), (Frobenius(), False), (KL(dof=0.5), True)],
                         ids=["kl", "frobenius", "kl-dof0.5"])
def test_specialized_and_pointer_kernels_agree_bit_for_bit(loss, normalized):
    Y = with_duplicates(70, 2)
    kernels = forces.builtin_loss_kernels(loss, Context(n_samples=70, normalized=normalized))
    marker = forces.kernel_argument(kernels.repulsion)
    results = []
    for kernel, argument in ((barnes_hut._traverse_markers, marker),
                             (barnes_hut._traverse_functions, kernels.repulsion)):
        out, totals = np.zeros((loss.n_channels, 70, 2)), np.zeros((70, 2))
        kernel(Y, barnes_hut.build_tree(Y, 30), argument, 1.577, 0.895, kernels.params, 0.5, out, totals)
        results.append((out, totals))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert np.abs(results[0][0]).max() > 0


def test_the_numba_backend_has_no_loss_classes_of_its_own():
    from gidr.plugins import get_registry

    registry = get_registry()
    assert not any(issubclass(stage_class, Loss) for stage_class in STAGES)
    for name, reference_class in LOSSES.items():
        assert registry.get("loss", name, "numba") is reference_class
        assert registry.kernels.has(reference_class, "numba")
        for normalized in (True, False):
            ctx = Context(n_samples=5, normalized=normalized)
            registered, builtin = (forces.loss_kernels(reference_class(), ctx),
                                   forces.builtin_loss_kernels(reference_class(), ctx))
            assert (registered.attraction, registered.repulsion) == (builtin.attraction, builtin.repulsion)
            assert registered.params == builtin.params


def test_loss_kernels_must_be_loss_kernels():
    registry = Registry()
    registry.kernels.add(GaussianLoss, "numba", lambda loss, ctx: (gaussian_attraction, gaussian_repulsion))
    ctx = Context(n_samples=5, registry=registry)
    with pytest.raises(TypeError, match=r"^the numba kernels registered for loss 'test_gaussian' must be a "
                                        r"gidr_numba\.forces\.LossKernels; got tuple$"):
        forces.loss_kernels(GaussianLoss(), ctx)


# --------------------------------------------------------------------------- exact

@pytest.mark.parametrize("name, normalized, a, b, params", CASES, ids=IDS)
def test_exact_matches_the_reference(name, normalized, a, b, params):
    Y = with_duplicates(70, 3)
    loss, ctx = make_case(name, normalized, a, b, params, Y)
    actual = ExactRepulsion().estimate(Y, loss, ctx, epoch=0)
    expected = reference.ExactRepulsion().estimate(Y, loss, ctx, epoch=0)
    assert actual.channels.shape == (loss.n_channels, 70, 3)
    assert_matches(actual=actual.channels, reference=expected.channels, rtol=1e-10,
                   atol=1e-12 * np.abs(expected.channels).max())
    assert_matches(actual=[actual.sum_w, actual.sum_w2], reference=[expected.sum_w, expected.sum_w2], rtol=1e-10)


def test_exact_has_no_sample_limit():
    assert ExactRepulsion.max_samples is None


# --------------------------------------------------------------------------- Barnes-Hut

@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("name, normalized, a, b, params", CASES, ids=IDS)
def test_barnes_hut_at_theta_zero_is_exact(name, normalized, a, b, params, d):
    Y = with_duplicates(120, d)
    loss, ctx = make_case(name, normalized, a, b, params, Y)
    exact = ExactRepulsion().estimate(Y, loss, ctx, epoch=0)
    tree = BarnesHutRepulsion(theta=0.0).estimate(Y, loss, ctx, epoch=0)
    scale = np.abs(exact.channels).max()
    assert_matches(actual=tree.channels, reference=exact.channels, rtol=1e-10, atol=1e-10 * scale)
    assert_matches(actual=[tree.sum_w, tree.sum_w2], reference=[exact.sum_w, exact.sum_w2], rtol=1e-10)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("name, normalized, a, b, params", [CASES[0], CASES[2], CASES[5]],
                         ids=[IDS[0], IDS[2], IDS[5]])
def test_barnes_hut_error_at_default_theta_is_small(name, normalized, a, b, params, d):
    # the bounds of tests/reference/test_repulsion.py
    Y = clustered(500, d)
    loss, ctx = make_case(name, normalized, a, b, params, Y)
    exact = ExactRepulsion().estimate(Y, loss, ctx, epoch=0)
    tree = BarnesHutRepulsion().estimate(Y, loss, ctx, epoch=0)
    for c in range(loss.n_channels):
        error = np.linalg.norm(tree.channels[c] - exact.channels[c]) / np.linalg.norm(exact.channels[c])
        assert error < BH_CHANNEL_BOUND
    assert abs(tree.sum_w / exact.sum_w - 1) < BH_SUM_W_BOUND
    assert abs(tree.sum_w2 / exact.sum_w2 - 1) < BH_SUM_W2_BOUND


@pytest.mark.parametrize("theta", [0.3, 0.5, 1.0])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_barnes_hut_uses_the_reference_tree(d, theta):
    # same cells, same opening rule: the same interactions, up to rounding in the centres of mass
    Y = with_duplicates(200, d) * 3.0
    loss, ctx = make_case("frobenius", True, 1.577, 0.895, {}, Y)
    actual = BarnesHutRepulsion(theta=theta).estimate(Y, loss, ctx, epoch=0)
    expected = reference.BarnesHutRepulsion(theta=theta).estimate(Y, loss, ctx, epoch=0)
    assert_matches(actual=actual.channels, reference=expected.channels, rtol=1e-9,
                   atol=1e-12 * np.abs(expected.channels).max())
    assert_matches(actual=[actual.sum_w, actual.sum_w2], reference=[expected.sum_w, expected.sum_w2], rtol=1e-12)


def test_tree_has_at_most_two_nodes_per_point_and_partitions_them():
    Y = with_duplicates(300, 2)
    order, start, stop, is_leaf, first_child, n_children, width, com = barnes_hut.build_tree(Y, 30)
    assert start.size <= 2 * 300
    leaves = np.flatnonzero(is_leaf)
    np.testing.assert_array_equal(np.sort(np.concatenate([order[start[v]:stop[v]] for v in leaves])), np.arange(300))
    internal = np.flatnonzero(~is_leaf)
    assert ((n_children[internal] >= 2) & (n_children[internal] <= 4)).all()
    np.testing.assert_array_equal(start[first_child[internal]], start[internal])
    np.testing.assert_array_equal(stop[first_child[internal] + n_children[internal] - 1], stop[internal])
    assert (width[first_child[internal]] <= width[internal] / 2).all()
    expected_com = np.array([Y[order[s:e]].mean(axis=0) for s, e in zip(start, stop)])
    assert_matches(actual=com, reference=expected_com, rtol=1e-12, atol=1e-14)


def test_barnes_hut_handles_identical_and_single_points():
    Y = np.ones((7, 2))
    ctx = Context(n_samples=7, normalized=True)
    tree = BarnesHutRepulsion().estimate(Y, KL(), ctx, epoch=0)
    assert_matches(actual=tree.channels, reference=np.zeros((1, 7, 2)))
    assert tree.sum_w == 42.0 and tree.sum_w2 == 42.0
    single = BarnesHutRepulsion().estimate(np.zeros((1, 3)), Frobenius(), ctx, epoch=0)
    assert single.channels.shape == (2, 1, 3) and single.sum_w == 0.0


def test_barnes_hut_rejects_four_dimensional_positions():
    Y = np.zeros((10, 4))
    with pytest.raises(GidrValueError, match=r"The 'n_components' setting for repulsion 'barnes_hut' must be "
                                             r"at most 3 .* Use repulsion 'exact' or 'sampled'"):
        BarnesHutRepulsion().estimate(Y, KL(), Context(n_samples=10, n_components=4), epoch=0)


# --------------------------------------------------------------------------- sampled

@pytest.mark.parametrize("name, normalized, a, b, params", CASES, ids=IDS)
def test_sampled_draws_and_sums_match_the_reference(name, normalized, a, b, params):
    Y = clustered(80, 2)
    n_edges = np.random.default_rng(1).integers(0, 6, size=80)
    loss, ctx = make_case(name, normalized, a, b, params, Y)
    for (epoch, edges), pool_size in itertools.product(((0, n_edges), (7, n_edges), (3, None)), (0, 20)):
        actual = SampledRepulsion(n_negative=2, pool_size=pool_size).estimate(Y, loss, ctx, epoch, edges)
        expected = reference.SampledRepulsion(n_negative=2, pool_size=pool_size).estimate(Y, loss, ctx, epoch, edges)
        assert_matches(actual=actual.channels, reference=expected.channels, rtol=1e-12,
                       atol=1e-14 * np.abs(expected.channels).max())
        assert_matches(actual=[actual.sum_w, actual.sum_w2], reference=[expected.sum_w, expected.sum_w2],
                       rtol=1e-12)


def test_sampled_depends_on_seed_and_epoch_only():
    Y = clustered(60, 2)
    ctx = Context(n_samples=60, normalized=True, seed=5)
    stage = SampledRepulsion()
    first, again = stage.estimate(Y, KL(), ctx, 4), stage.estimate(Y, KL(), ctx, 4)
    np.testing.assert_array_equal(first.channels, again.channels)
    assert not np.array_equal(first.channels, stage.estimate(Y, KL(), ctx, 5).channels)


def test_sampled_with_too_few_points_is_zero():
    sums = SampledRepulsion().estimate(np.ones((1, 2)), Frobenius(), Context(n_samples=1), 0)
    assert sums.channels.shape == (2, 1, 2) and not sums.channels.any() and sums.sum_w == 0.0


# --------------------------------------------------------------------------- determinism

def _estimators():
    return [ExactRepulsion(), BarnesHutRepulsion(), BarnesHutRepulsion(theta=0.0), SampledRepulsion(n_negative=3),
            SampledRepulsion(n_negative=3, pool_size=50)]


@pytest.mark.parametrize("d", [2, 3])
def test_results_are_bit_identical_whatever_the_thread_count(all_threads, d):
    Y = clustered(400, d)
    n_edges = np.full(400, 5)
    results = {}
    for threads in sorted({1, all_threads}):
        numba.set_num_threads(threads)
        for name in ("kl", "frobenius"):
            loss, ctx = make_case(name, True, 1.577, 0.895, {}, Y)
            for k, stage in enumerate(_estimators()):
                results.setdefault((name, k), []).append(stage.estimate(Y, loss, ctx, 2, n_edges))
    for runs in results.values():
        for run in runs[1:]:
            np.testing.assert_array_equal(run.channels, runs[0].channels)
            assert (run.sum_w, run.sum_w2) == (runs[0].sum_w, runs[0].sum_w2)


def test_estimators_do_not_modify_their_inputs():
    Y = np.asfortranarray(clustered(50, 2)).astype(np.float32)
    n_edges = np.full(50, 2)
    Y_copy, edges_copy = Y.copy(), n_edges.copy()
    ctx = Context(n_samples=50, normalized=True)
    for stage in _estimators():
        stage.estimate(Y, Frobenius(), ctx, 0, n_edges)
    np.testing.assert_array_equal(Y, Y_copy)
    np.testing.assert_array_equal(n_edges, edges_copy)


# --------------------------------------------------------------------------- other losses

@numba.njit(cache=True)
def gaussian_attraction(D, p, a, b, params):
    w = np.exp(-a * D)
    return 2.0 * p * w, w


@numba.njit(cache=True)
def gaussian_repulsion(D, a, b, params):
    w = np.exp(-a * D)
    return w / (params[0] + 1.0), b * D, w


def gaussian_kernels(loss, ctx):
    return forces.LossKernels(gaussian_attraction, gaussian_repulsion, [loss.epsilon])


class GaussianLoss(Loss):
    """A third-party loss with a jitted force pair (two channels), a parameter of its own and
    a kernel of its own (``w = exp(-a D)``: the estimators must sum it, not 1 / (1 + a D^b))."""

    name = "test_gaussian"
    n_channels = 2
    params = (Param("epsilon", 0.5, (Interval(float, 0, None),), "Scale of the first channel."),)

    def value(self, P, Y, ctx):
        raise NotImplementedError

    def gradient(self, P, Y, ctx):
        raise NotImplementedError

    def attraction(self, D, p, ctx):
        return 2.0 * p * np.exp(-ctx.a * D)

    def repulsion_channels(self, D, ctx):
        return np.stack([np.exp(-ctx.a * D) / (self.epsilon + 1.0), ctx.b * D], axis=-1)

    def repulsion_weights(self, totals, ctx):
        return np.array([-1.0, 0.0])

    def kernel(self, D, ctx):
        return np.exp(-ctx.a * D)


def gaussian_registry() -> Registry:
    """A registry whose kernels serve GaussianLoss on the numba backend (as a plugin's hook would)."""
    registry = Registry()
    registry.add(GaussianLoss)
    registry.kernels.add(GaussianLoss, "numba", gaussian_kernels)
    return registry


@pytest.mark.parametrize("normalized", [True, False])
def test_a_third_party_force_pair_runs_through_the_estimators(normalized):
    Y = clustered(60, 2)
    loss = GaussianLoss(epsilon=0.25)
    ctx = Context(n_samples=60, normalized=normalized, a=0.7, b=1.3, seed=9, registry=gaussian_registry())
    n_edges = np.full(60, 4)
    for numba_stage, reference_stage in ((SampledRepulsion(), reference.SampledRepulsion()),
                                         (ExactRepulsion(), reference.ExactRepulsion())):
        actual = numba_stage.estimate(Y, loss, ctx, 1, n_edges)
        expected = reference_stage.estimate(Y, loss, ctx, 1, n_edges)
        assert_matches(actual=actual.channels, reference=expected.channels, rtol=1e-10,
                       atol=1e-13 * np.abs(expected.channels).max())
        assert_matches(actual=[actual.sum_w, actual.sum_w2], reference=[expected.sum_w, expected.sum_w2],
                       rtol=1e-10)


class NoKernelsKL(reference.KL):
    """KL's math under another class: kernels are matched on the exact class, so none."""


def test_a_loss_without_kernels_runs_on_the_reference_estimator(caplog):
    Y = clustered(40, 2)
    ctx = Context(n_samples=40, normalized=True, seed=2)
    n_edges = np.full(40, 3)
    loss = NoKernelsKL()
    assert forces.loss_kernels(loss, ctx) is None
    with caplog.at_level(logging.DEBUG, logger="gidr"):
        for numba_stage, reference_stage in ((SampledRepulsion(), reference.SampledRepulsion()),
                                             (BarnesHutRepulsion(), reference.BarnesHutRepulsion()),
                                             (ExactRepulsion(), reference.ExactRepulsion())):
            actual = numba_stage.estimate(Y, loss, ctx, 1, n_edges)
            expected = reference_stage.estimate(Y, loss, ctx, 1, n_edges)
            np.testing.assert_array_equal(actual.channels, expected.channels)
    assert "kl' has no numba kernels: repulsion 'exact' runs on the reference backend" in caplog.text


def test_sampled_kernel_takes_any_force_pair_directly():
    Y = clustered(30, 3)
    m = np.arange(30) % 3
    actual = sampled_repulsion(Y, gaussian_repulsion, 0.7, 1.3, forces.LossKernels(None, None, [0.25]).params, 2,
                               seed=1, epoch=2, m=m,
                               normalized=True)
    loss = GaussianLoss(epsilon=0.25)
    ctx = Context(n_samples=30, n_components=3, a=0.7, b=1.3)
    expected = reference_repulsion.sampled_repulsion(Y, lambda D: loss.repulsion_channels(D, ctx),
                                                     lambda D: loss.kernel(D, ctx), seed=1, epoch=2, m=m,
                                                     normalized=True)
    assert_matches(actual=actual.channels, reference=expected.channels, rtol=1e-12, atol=1e-15)
    assert_matches(actual=[actual.sum_w, actual.sum_w2], reference=[expected.sum_w, expected.sum_w2], rtol=1e-12)


# --------------------------------------------------------------------------- stage metadata

def test_stages_mirror_the_reference_stages():
    by_name = {s.name: s for s in reference.STAGES}
    assert [s.name for s in STAGES] == [s.name for s in reference.STAGES if issubclass(s, Repulsion)]
    for stage_class in STAGES:
        assert (stage_class.backend, stage_class.priority) == ("numba", 10)
        assert issubclass(stage_class, by_name[stage_class.name])
        assert stage_class.params == by_name[stage_class.name].params
        assert stage_class.per_edge_sampler == by_name[stage_class.name].per_edge_sampler
    assert BarnesHutRepulsion().theta == 0.5 and SampledRepulsion().n_negative == 1
    # the numba sampler overrides estimate and says again that it samples per edge
    assert SampledRepulsion.per_edge_sampler and SampledRepulsion(n_negative=3).draws_per_edge() == 3
    assert not ExactRepulsion.per_edge_sampler and not BarnesHutRepulsion.per_edge_sampler


def test_exit_freeze_is_opt_in():
    """GIDR_EXIT_FREEZE=1 registers the exit-time gc.freeze (it saves about 0.3 s but keeps
    __del__ of objects in reference cycles from running); by default nothing is registered."""
    import subprocess
    import sys

    code = "import atexit, gidr_numba; print(atexit._ncallbacks())"
    counts = [int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                 env={**os.environ, "GIDR_EXIT_FREEZE": value}).stdout) for value in ("", "1")]
    assert counts[1] == counts[0] + 1


def test_repulsion_strength_scales_the_numba_unnormalized_repulsion_as_the_reference():
    from gidr_reference import losses

    D = np.concatenate([[0.0, 1e-9], np.geomspace(1e-4, 1e4, 60)])
    for gamma in (0.0, 0.5, 1.0, 3.0):
        params = (1e-3, 1.0, gamma, 0.0)
        for a, b in ((1.0, 1.0), (1.577, 0.895)):
            actual = np.array([forces.kl_unnormalized_repulsion(d, a, b, params)[0] for d in D])
            expected = losses.kl_repulsion_channels(D, a, b, False, 1e-3, 1.0, gamma)[:, 0]
            np.testing.assert_allclose(actual, expected, rtol=1e-13, atol=0)
    # gamma = 1 keeps the bits of the unweighted force
    assert forces.kl_unnormalized_repulsion(0.7, 1.577, 0.895, (1e-3, 1.0, 1.0, 0.0))[0] == (
        2.0 * 0.895 / ((1e-3 + 0.7) * (1.0 + 1.577 * 0.7**0.895)))
