"""densMAP's density term in numba (:mod:`gidr_numba.densmap`) against the reference
(:mod:`gidr_reference.densmap`), in the optimizers, and across thread counts.

Tolerances: one evaluation of the forces repeats the reference's arithmetic but for the order
of the per-point sums (each point's incident entries in order here, NumPy's ``bincount``
there), so it agrees to ~1e-12 relative. Optimizer runs are compared over 5 epochs, for the
reason given in tests/backends/test_numba_optim.py (UMAP's forces amplify rounding
differences by up to ~x10 per epoch), at 1e-8 of the embedding's scale.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from gidr.pipeline import Pipeline  # noqa: E402
from gidr.types import Affinities, Context, Monitor  # noqa: E402
from gidr_numba import densmap as numba_densmap  # noqa: E402
from gidr_numba import gdr, stages_forces  # noqa: E402
from gidr_numba.stages_optim import GDROptimizer, UmapSGDOptimizer  # noqa: E402
from gidr_reference import densmap  # noqa: E402
from gidr_reference import stages_forces as reference_forces  # noqa: E402
from gidr_reference import stages_optim as reference  # noqa: E402
from tests.core.test_densmap import UMAP_A, UMAP_B, knn_problem, target_of, varied_blobs  # noqa: E402
from tests.backends.test_numba_optim import all_threads, always_parallel  # noqa: E402,F401 (fixtures)
from tests.helpers import assert_matches  # noqa: E402


def thread_counts():
    return [t for t in (1, 2) if t <= numba.config.NUMBA_NUM_THREADS]


def asymmetric(P):
    """P with one stored value changed, so that it is no longer symmetric bit for bit (the kernels
    then walk every entry instead of every pair)."""
    P = P.copy()
    P.data[0] *= 1.0 + 1e-3
    return P


@pytest.mark.parametrize("a, b", [(1.0, 1.0), (UMAP_A, UMAP_B)], ids=["a=b=1", "umap-ab"])
@pytest.mark.parametrize("bound, rate_scale", [(math.inf, 1.0), (0.01, 0.7)], ids=["gradient", "clipped"])
@pytest.mark.parametrize("symmetric", [True, False], ids=["pairs", "entries"])
def test_forces_match_the_reference(a, b, bound, rate_scale, symmetric):
    P, graph, Y = knn_problem(n=80, k=8)
    P = P if symmetric else asymmetric(P)
    target = target_of(P, graph, n_epochs=20)
    field = numba_densmap.DensityField(P, target, a, b, weight=target.weight, bound=bound, rate_scale=rate_scale)
    assert field.multiplicity == (2.0 if symmetric else 1.0)
    actual = field(Y)
    expected = densmap.density_forces(Y, P, target, a, b, weight=target.weight, bound=bound, rate_scale=rate_scale)
    assert np.abs(expected).max() > 1e-3
    assert_matches(actual=actual, reference=expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("symmetric", [True, False], ids=["pairs", "entries"])
def test_per_point_sums_and_radii_match_the_reference(symmetric):
    P, graph, Y = knn_problem(n=80, k=8)
    P = P if symmetric else asymmetric(P)
    target = target_of(P, graph, n_epochs=20)
    field = numba_densmap.DensityField(P, target, UMAP_A, UMAP_B, weight=1.0)
    field(Y)
    D, phi, _, _ = densmap.embedding_sums(Y, field.heads, field.tails, UMAP_A, UMAP_B)
    assert_matches(actual=field.D, reference=D, rtol=1e-14)
    assert_matches(actual=field.phi, reference=phi, rtol=1e-14)
    rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))[target.entries]
    _, _, S, T = densmap.embedding_sums(Y, rows, P.indices[target.entries].astype(np.int64), UMAP_A, UMAP_B)
    assert_matches(actual=field.S, reference=S, rtol=1e-12)
    assert_matches(actual=field.T, reference=T, rtol=1e-12)
    assert_matches(actual=field.r, reference=densmap.radii_from_sums(S, T), rtol=1e-12)


def test_clipped_step_plus_adds_the_extra_forces_before_the_clip():
    rng = np.random.default_rng(0)
    n, d = 30, 2
    parts = (rng.normal(size=(n, d)), rng.normal(size=(1, n, d)), np.ones(n))
    weights = (1.0, np.array([0.5]))
    extra = rng.normal(size=(n, d)) * 3
    Y = rng.normal(size=(n, d))
    expected = Y - 0.1 * np.clip(gdr.forces_array(parts, weights) + extra, -2.0, 2.0)
    numba_densmap.clipped_step_plus(Y, parts, weights, extra, 0.1, 2.0)
    assert_matches(actual=Y, reference=expected, rtol=1e-14)


def densmap_problem(n_samples=300):
    """P of umap's graph on varied blobs, a start, and a target active in every epoch."""
    X = varied_blobs(n_samples)
    result = Pipeline.from_preset("umap", backend="numba", random_state=0, n_epochs=1).run(X)
    P = result.affinities.P
    target = densmap.density_target(P, result.graph, 200, dens_lambda=2.0, dens_frac=1.0, dens_var_shift=0.1)
    Y0 = np.random.default_rng(0).normal(size=(n_samples, 2)) * 3.0
    return P, target, Y0


CASES = {
    "umap_sgd": (UmapSGDOptimizer, lambda: stages_forces.SampledRepulsion(n_negative=5), {}),
    "gdr": (GDROptimizer, lambda: stages_forces.SampledRepulsion(), {}),
    "gdr-symmetric": (GDROptimizer, lambda: stages_forces.SampledRepulsion(), {"symmetric_attraction": True}),
}


@pytest.mark.parametrize("name", ["gdr", "gdr-symmetric"])
def test_gdr_with_the_term_matches_the_reference(name):
    optimizer_class, make_repulsion, params = CASES[name]
    P, target, Y0 = densmap_problem()
    ctx = Context(n_samples=P.shape[0], n_components=2, normalized=False, a=UMAP_A, b=UMAP_B, seed=3, n_epochs=5)
    loss = reference_forces.KL()
    with_term = Affinities(P, False, density=target)
    actual = optimizer_class(**params).optimize(Y0, with_term, loss, make_repulsion(), ctx, Monitor())
    expected = reference.GDROptimizer(**params).optimize(Y0, with_term, loss, make_repulsion(), ctx, Monitor())
    without = optimizer_class(**params).optimize(Y0, Affinities(P, False), loss, make_repulsion(), ctx, Monitor())
    scale = float(np.abs(expected).max())
    assert_matches(actual=actual, reference=expected, atol=1e-8 * scale)
    assert np.abs(actual - without).max() > 1e-3 * scale  # the term did act


@pytest.mark.parametrize("optimizer_class", [UmapSGDOptimizer, reference.UmapSGDOptimizer],
                         ids=["numba", "reference"])
def test_umap_sgd_adds_the_expected_clipped_density_step(optimizer_class):
    """numba's umap_sgd orders its updates unlike the reference's batch (see gidr_numba.umap_sgd), so
    the two loops are compared through what the term adds to one epoch: ``-lr F(Y0)`` with the
    reference's forces bounded by ``max_step`` at the rate ``1 / max(P)``."""
    P, target, Y0 = densmap_problem()
    ctx = Context(n_samples=P.shape[0], n_components=2, normalized=False, a=UMAP_A, b=UMAP_B, seed=3, n_epochs=1)
    loss, optimizer = reference_forces.KL(), optimizer_class(learning_rate=0.5)
    with_term = optimizer.optimize(Y0, Affinities(P, False, density=target), loss,
                                   stages_forces.SampledRepulsion(n_negative=5), ctx, Monitor())
    without = optimizer.optimize(Y0, Affinities(P, False), loss, stages_forces.SampledRepulsion(n_negative=5), ctx,
                                 Monitor())
    forces = densmap.density_forces(Y0, P, target, UMAP_A, UMAP_B, weight=target.force_weight(True), bound=4.0,
                                    rate_scale=1.0 / float(P.data.max()))
    assert np.abs(forces).max() > 1e-2
    assert_matches(actual=with_term - without, reference=-0.5 * forces, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_is_bit_identical_whatever_the_thread_count(name, all_threads, always_parallel):
    optimizer_class, make_repulsion, params = CASES[name]
    P, target, Y0 = densmap_problem()
    ctx = Context(n_samples=P.shape[0], n_components=2, normalized=False, a=UMAP_A, b=UMAP_B, seed=11, n_epochs=40)
    results = []
    for n_threads in thread_counts():
        numba.set_num_threads(n_threads)
        results.append(optimizer_class(**params).optimize(Y0, Affinities(P, False, density=target),
                                                          reference_forces.KL(), make_repulsion(), ctx, Monitor()))
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


@pytest.mark.parametrize("preset", ["umap", "gdr-umap"])
def test_pipeline_runs_are_bit_identical_at_one_and_two_threads(preset, all_threads):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 numba threads")
    X = varied_blobs(600)  # 600 points: above gdr.PARALLEL_MIN_WORK, the kernels run in parallel
    runs = []
    for n_threads in (1, 2):
        numba.set_num_threads(n_threads)
        result = Pipeline.from_preset(preset, backend="numba", random_state=5, n_epochs=60, densmap=True,
                                      dens_frac=0.5, output_dens=True).run(X)
        runs.append(result)
    np.testing.assert_array_equal(runs[0].embedding, runs[1].embedding)
    np.testing.assert_array_equal(runs[0].densities["rad_emb"], runs[1].densities["rad_emb"])


@pytest.mark.parametrize("preset", ["umap", "gdr-umap"])
def test_numba_densmap_makes_radii_follow_the_data(preset):
    X = varied_blobs(600)

    def correlation(densmap_on):
        result = Pipeline.from_preset(preset, backend="numba", random_state=0, densmap=densmap_on,
                                      output_dens=True).run(X)
        return np.corrcoef(result.densities["rad_orig"], result.densities["rad_emb"])[0, 1]

    without, with_term = correlation(False), correlation(True)
    assert with_term > 0.7 and with_term > without + 0.4
