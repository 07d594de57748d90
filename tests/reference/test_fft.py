"""Reference FFT-interpolated repulsion (``repulsion="fft"``) against exact sums."""
from __future__ import annotations

import numpy as np
import pytest

import gidr
from gidr.types import Context
from gidr.validation import GidrValueError
from gidr_reference import fft
from gidr_reference.stages_forces import ExactRepulsion, FFTRepulsion, Frobenius, KL
from tests.helpers import assert_matches


def spread_blobs(n: int, d: int, span: float = 80.0, seed: int = 0) -> np.ndarray:
    """Ten Gaussian clusters over a box of side ``span``, like a t-SNE embedding of 10 classes."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-span / 2, span / 2, size=(10, d))
    return centers[rng.integers(0, 10, n)] + rng.normal(scale=span / 25, size=(n, d))


def relative_errors(estimate, exact) -> list[float]:
    """Relative L2 error of each channel field, then of sum_w and sum_w2."""
    channels = [float(np.linalg.norm(estimate.channels[c] - exact.channels[c]) / np.linalg.norm(exact.channels[c]))
                for c in range(exact.channels.shape[0]) if np.any(exact.channels[c])]
    return channels + [abs(estimate.sum_w / exact.sum_w - 1), abs(estimate.sum_w2 / exact.sum_w2 - 1)]


def quadratic_kernels():
    """phi(D) = (1 + D, 2 - D/10) and w(D) = 1 - D/1000: quadratic in each coordinate (w^2
    quartic), so that 5-point Lagrange interpolation reproduces them: the estimate is exact."""
    return (lambda D: np.stack([1.0 + D, 2.0 - D / 10], axis=-1)), (lambda D: 1.0 - D / 1000)


def naive_sums(Y, phi, weight):
    diff = Y[:, None, :] - Y[None, :, :]
    D = np.sum(diff**2, axis=-1)
    off = ~np.eye(len(Y), dtype=bool)
    channels = np.einsum("ikc,ikd->cid", phi(D) * off[..., None], diff)
    w = weight(D)[off]
    return channels, float(w.sum()), float((w * w).sum())


# (loss, normalized): the kernels FFT interpolation is meant for (smooth at the box scale)
SMOOTH_CASES = [(KL(), True), (Frobenius(), True), (KL(dof=0.5), True), (Frobenius(), False)]
SMOOTH_IDS = ["kl-normalized", "frobenius-normalized", "kl-dof0.5", "frobenius-unnormalized"]

# Measured at the defaults on spread_blobs(2000, d) (span 80: 80 boxes of side 1 per axis):
# relative L2 error of the channels phi ~ w^2 (kl, frobenius phi_0, kl dof 0.5) 1.7-1.9e-2 in
# 2-D, 3.1-4.2e-2 in 1-D; of the channels ~ w^3 (frobenius phi_1 normalized, phi_0 unnormalized)
# 8.0e-2 in 2-D, 1.1e-1 in 1-D; sum_w at most 6e-5 and sum_w2 at most 5e-4 (both dimensions).
# openTSNE 1.0.4's own FFT gradient on the 2-D points of this kind (3,000 points) is off by
# 2.1e-2. The bounds leave a factor of 2 to 3.
CHANNEL_BOUND = {1: (0.1, 0.25), 2: (0.05, 0.2)}  # d -> (w^2 channels, w^3 channels)
SUM_W_BOUND, SUM_W2_BOUND = 2e-4, 1.5e-3


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("loss, normalized", SMOOTH_CASES, ids=SMOOTH_IDS)
def test_error_against_exact_at_the_defaults(loss, normalized, d):
    Y = spread_blobs(2000, d)
    ctx = Context(n_samples=len(Y), n_components=d, normalized=normalized)
    errors = relative_errors(FFTRepulsion().estimate(Y, loss, ctx, 0), ExactRepulsion().estimate(Y, loss, ctx, 0))
    cubic = isinstance(loss, Frobenius)  # phi_1 ~ w^3 normalized, phi_0 ~ w^3 unnormalized
    bounds = ([CHANNEL_BOUND[d][0], CHANNEL_BOUND[d][1]] if cubic and normalized
              else [CHANNEL_BOUND[d][1 if cubic else 0]])
    assert len(errors) == len(bounds) + 2
    for error, bound in zip(errors, bounds + [SUM_W_BOUND, SUM_W2_BOUND]):
        assert error < bound


@pytest.mark.parametrize("d", [1, 2])
def test_error_shrinks_with_the_boxes_like_their_cube(d):
    # cubic interpolation: half the box side, an eighth of the error (measured 7-11 times less)
    Y = spread_blobs(2000, d)
    ctx = Context(n_samples=len(Y), n_components=d, normalized=True)
    exact = ExactRepulsion().estimate(Y, Frobenius(), ctx, 0)
    coarse = relative_errors(FFTRepulsion(max_box_width=1.0).estimate(Y, Frobenius(), ctx, 0), exact)
    fine = relative_errors(FFTRepulsion(max_box_width=0.5).estimate(Y, Frobenius(), ctx, 0), exact)
    assert all(c > 5 * f for c, f in zip(coarse[:2], fine[:2]))


def test_more_interpolation_points_are_more_accurate():
    Y = spread_blobs(1500, 2)
    ctx = Context(n_samples=len(Y), n_components=2, normalized=True)
    exact = ExactRepulsion().estimate(Y, KL(), ctx, 0)
    errors = [relative_errors(FFTRepulsion(n_interpolation_points=p).estimate(Y, KL(), ctx, 0), exact)[0]
              for p in (2, 3, 5)]
    assert errors[0] > 3 * errors[1] > 9 * errors[2]


@pytest.mark.parametrize("d", [1, 2])
def test_a_kernel_the_nodes_interpolate_exactly_gives_the_exact_sums(d):
    # every step but the interpolation error: charges to nodes, the circulant FFT, the way
    # back, the channels y_i S[1] - S[y] and the self terms of the totals
    Y = spread_blobs(300, d, span=20.0, seed=1)
    phi, weight = quadratic_kernels()
    sums = fft.fft_repulsion(Y, phi, weight, n_interpolation_points=5, min_boxes=7, max_box_width=1.0)
    channels, sum_w, sum_w2 = naive_sums(Y, phi, weight)
    assert_matches(actual=sums.channels, reference=channels, rtol=1e-9, atol=1e-9 * np.abs(channels).max())
    assert_matches(actual=[sums.sum_w, sums.sum_w2], reference=[sum_w, sum_w2], rtol=1e-10)


def test_lagrange_weights_sum_to_one_and_reproduce_polynomials():
    t = np.linspace(0.0, 1.0, 41)
    for p in (1, 2, 3, 5):
        weights = fft.lagrange_weights(t, p)
        nodes = (np.arange(p) + 0.5) / p
        assert_matches(actual=weights.sum(axis=1), reference=np.ones(t.size), rtol=1e-12)
        cubic = lambda x: 2.0 - x + 3 * x**2 - x**3  # noqa: E731
        if p >= 4:
            assert_matches(actual=weights @ cubic(nodes), reference=cubic(t), rtol=1e-12)


def test_grid_has_fast_sizes_and_boxes_no_wider_than_asked():
    assert [fft.fast_size(n) for n in (1, 7, 50, 77, 121, 1001)] == [1, 8, 50, 80, 125, 1024]
    Y = spread_blobs(500, 2, span=300.0)
    grid = fft.interpolation_grid(Y, 3, 50, 1.0)
    span = float(np.ptp(Y, axis=0).max())
    assert grid.n_boxes == fft.fast_size(int(np.ceil(span))) and grid.box_width <= 1.0
    assert grid.n_nodes == 3 * grid.n_boxes and grid.spacing == grid.box_width / 3
    small = fft.interpolation_grid(spread_blobs(500, 2, span=5.0), 3, 50, 1.0)
    assert small.n_boxes == 50 and small.box_width < 0.2


def test_circulant_holds_each_offset_once():
    table = np.arange(12.0).reshape(3, 4)[:3, :3] + 1.0
    column = fft.circulant(table)
    assert column.shape == (6, 6)
    assert column[1, 2] == table[1, 2] and column[5, 4] == table[1, 2] and column[5, 1] == table[1, 1]
    assert not column[3].any() and not column[:, 3].any()


def test_all_points_identical_and_single_points():
    Y = np.full((6, 2), 3.0)
    sums = FFTRepulsion().estimate(Y, KL(), Context(n_samples=6, normalized=True), 0)
    assert_matches(actual=sums.channels, reference=np.zeros((1, 6, 2)), atol=1e-12)
    # w = 1 at D = 0, interpolated from nodes a third of a box away (measured 2e-7 off)
    assert_matches(actual=[sums.sum_w, sums.sum_w2], reference=[30.0, 30.0], rtol=1e-5)
    single = FFTRepulsion().estimate(np.zeros((1, 1)), Frobenius(), Context(n_samples=1, n_components=1), 0)
    assert single.channels.shape == (2, 1, 1) and single.sum_w == 0.0 and not single.channels.any()


def test_does_not_modify_its_input():
    Y = spread_blobs(100, 2)
    before = Y.copy()
    FFTRepulsion().estimate(Y, KL(), Context(n_samples=100, normalized=True), 0)
    np.testing.assert_array_equal(Y, before)


def test_three_dimensions_are_refused_in_settings_and_positions():
    with pytest.raises(GidrValueError, match=r"^The 'n_components' setting for repulsion 'fft' must be at most 2 "
                                             r"\(its interpolation grid is 1-D or 2-D\)\. Got 3\. Use repulsion "
                                             r"'barnes_hut'"):
        FFTRepulsion().check_settings({"n_components": 3})
    with pytest.raises(GidrValueError, match=r"repulsion 'fft' must be at most 2"):
        FFTRepulsion().estimate(np.zeros((5, 3)), KL(), Context(n_samples=5, n_components=3), 0)


def test_pipeline_refuses_three_components_at_build_time():
    with pytest.raises(GidrValueError, match=r"The 'n_components' setting for repulsion 'fft' must be at most 2"):
        gidr.Pipeline.from_preset("tsne", backend="reference", repulsion="fft", n_components=3)


@pytest.mark.parametrize("preset", ["tsne", "gdr-tsne"])
def test_presets_select_it_by_one_override(preset):
    pipeline = gidr.Pipeline.from_preset(preset, backend="reference", repulsion="fft", min_boxes=60)
    stage = pipeline.stages["repulsion"]
    assert isinstance(stage, FFTRepulsion) and stage.min_boxes == 60 and stage.n_interpolation_points == 3


@pytest.mark.parametrize("param, bad, expected", [
    ("n_interpolation_points", 0, r"an int in \[1, inf\)"),
    ("min_boxes", 2.5, r"an int in \[1, inf\)"),
    ("max_box_width", 0.0, r"a float in \(0, inf\)"),
])
def test_bad_parameters_are_rejected(param, bad, expected):
    with pytest.raises(GidrValueError, match=rf"^The '{param}' parameter of repulsion 'fft' must be {expected}\. "
                                             rf"Got {bad}\.$"):
        FFTRepulsion(**{param: bad})


def test_defaults_are_fit_snes():
    stage = FFTRepulsion()
    assert (stage.n_interpolation_points, stage.min_boxes, stage.max_box_width) == (3, 50, 1.0)
    assert not FFTRepulsion.per_edge_sampler


def test_resolution_error_of_the_kernels():
    """t-SNE's kernels are resolved by the default grid, UMAP's unnormalized channel is not."""
    from gidr_reference.fft import MAX_RESOLUTION_ERROR, resolution_error

    def student(D):
        return 1.0 / (1.0 + D)

    assert resolution_error(student, 1.0, 3) == pytest.approx(0.0456, abs=0.005)
    assert resolution_error(lambda D: student(D) ** 2, 1.0, 3) == pytest.approx(0.106, abs=0.01)
    assert resolution_error(lambda D: 1.0 + 0.0 * D, 1.0, 3) == pytest.approx(0.0, abs=1e-12)  # constants: exact
    assert resolution_error(lambda D: 0.0 * D, 1.0, 3) == 0.0
    # a softened 1/D (UMAP's unnormalized channel, epsilon 1e-3) is not resolved at any usual box width
    assert resolution_error(lambda D: 2.0 / ((1e-3 + D) * (1.0 + D)), 1.0, 3) > 0.9
    assert resolution_error(lambda D: 2.0 / ((1e-3 + D) * (1.0 + D)), 0.3, 3) > MAX_RESOLUTION_ERROR
    assert resolution_error(lambda D: 2.0 / ((1e-3 + D) * (1.0 + D)), 0.03, 3) < 0.1  # resolved on tiny boxes
    # smaller boxes resolve a smooth kernel better
    assert resolution_error(lambda D: student(D) ** 2, 0.5, 3) < resolution_error(lambda D: student(D) ** 2, 1.0, 3) / 4


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_unnormalized_kl_is_refused_with_the_way_out(backend):
    X = np.random.default_rng(0).normal(size=(60, 5))
    pipeline = gidr.Pipeline.from_preset("gdr-umap", backend=backend, repulsion="fft", n_epochs=2)
    with pytest.raises(GidrValueError, match=r"^The repulsion 'fft' cannot resolve the kernels of loss 'kl' "
                                             r"\(normalized=False.*off by 9\d% of their peak.*"
                                             r"Use repulsion='sampled'.*normalized=True with a=b=1 \(scalars='one', as t-SNE\)\.$"):
        pipeline.run(X)
    assert np.isfinite(gidr.Pipeline.from_preset("gdr-umap", backend=backend, repulsion="fft", normalized=True,
                                                 scalars="one", n_epochs=2).run(X).embedding).all()
