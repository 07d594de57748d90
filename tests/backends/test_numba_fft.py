"""numba FFT-interpolated repulsion against the reference, across threads, and inside t-SNE."""
from __future__ import annotations

import logging

import numpy as np
import pytest

numba = pytest.importorskip("numba")

import gidr  # noqa: E402
from gidr.metrics import knn_accuracy  # noqa: E402
from gidr.types import Context  # noqa: E402
from gidr.validation import GidrValueError  # noqa: E402
from gidr_numba import fft  # noqa: E402
from gidr_numba.stages_forces import FFTRepulsion  # noqa: E402
from gidr_reference import fft as reference_fft  # noqa: E402
from gidr_reference import stages_forces as reference  # noqa: E402
from gidr_reference.stages_forces import KL, Frobenius  # noqa: E402
from tests.backends.test_numba_forces import CASES, IDS, make_case  # noqa: E402
from tests.helpers import assert_matches  # noqa: E402
from tests.reference.test_fft import naive_sums, quadratic_kernels, spread_blobs  # noqa: E402


@pytest.fixture
def all_threads():
    """Restore numba's thread count after a test that changes it."""
    yield numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("name, normalized, a, b, params", CASES, ids=IDS)
def test_matches_the_reference(name, normalized, a, b, params, d):
    # the same grid and sums; only rounding differs (the kernel's FFT is a DCT here, the
    # totals come from the spectra): measured at most 3e-13 of the largest channel. The sums
    # are compared for every kernel, also those the stage refuses as unresolved (UMAP's).
    from gidr_numba.forces import loss_kernels

    Y = spread_blobs(600, d, span=60.0)
    loss, ctx = make_case(name, normalized, a, b, params, Y)
    kernels = loss_kernels(loss, ctx)
    grid = FFTRepulsion().values
    actual = fft.fft_repulsion(Y, kernels.repulsion, ctx.a, ctx.b, kernels.params, loss.n_channels, **grid)
    expected = reference_fft.fft_repulsion(Y, lambda D: loss.repulsion_channels(D, ctx),
                                           lambda D: loss.kernel(D, ctx), **grid)
    assert actual.channels.shape == (loss.n_channels, 600, d)
    assert_matches(actual=actual.channels, reference=expected.channels, rtol=1e-9,
                   atol=1e-11 * np.abs(expected.channels).max())
    assert_matches(actual=[actual.sum_w, actual.sum_w2], reference=[expected.sum_w, expected.sum_w2], rtol=1e-11)


@numba.njit(cache=True)
def quadratic_repulsion(D, a, b, params):
    return 1.0 + D, 2.0 - D / 10, 1.0 - D / 1000


@pytest.mark.parametrize("d", [1, 2])
def test_a_kernel_the_nodes_interpolate_exactly_gives_the_exact_sums(d):
    # a force function passed by pointer (the path of third-party losses)
    Y = spread_blobs(300, d, span=20.0, seed=1)
    sums = fft.fft_repulsion(Y, quadratic_repulsion, 1.0, 1.0, (0.0,) * 4, 2, n_interpolation_points=5,
                             min_boxes=7, max_box_width=1.0)
    channels, sum_w, sum_w2 = naive_sums(Y, *quadratic_kernels())
    assert_matches(actual=sums.channels, reference=channels, rtol=1e-9, atol=1e-9 * np.abs(channels).max())
    assert_matches(actual=[sums.sum_w, sums.sum_w2], reference=[sum_w, sum_w2], rtol=1e-10)


@pytest.mark.parametrize("d", [1, 2])
def test_results_are_bit_identical_whatever_the_thread_count(all_threads, d):
    Y = spread_blobs(5000, d, span=90.0)
    results = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        for name in ("kl", "frobenius"):
            loss, ctx = make_case(name, True, 1.0, 1.0, {}, Y)
            results.append((threads, name, FFTRepulsion().estimate(Y, loss, ctx, 0)))
    by_loss = {}
    for threads, name, sums in results:
        by_loss.setdefault(name, []).append(sums)
    for first, second in by_loss.values():
        np.testing.assert_array_equal(first.channels, second.channels)
        assert (first.sum_w, first.sum_w2) == (second.sum_w, second.sum_w2)


def test_kernel_spectrum_is_the_circulants_fft():
    # its first N + 1 rows; the others mirror them (row k is row 2 N - k)
    N = 7
    table = np.random.default_rng(0).uniform(size=(N, N))
    expected = np.fft.rfftn(reference_fft.circulant(table))
    assert_matches(actual=fft.kernel_spectrum(table), reference=expected.real[:N + 1], rtol=1e-12, atol=1e-12)
    assert_matches(actual=expected.real[N + 1:], reference=expected.real[N - 1:0:-1], rtol=1e-12, atol=1e-12)
    assert np.abs(expected.imag).max() < 1e-12


def test_grid_sum_is_the_sum_over_the_nodes():
    rng = np.random.default_rng(1)
    N = 6
    table, charges = rng.uniform(size=(N, N)), rng.uniform(size=(N, N))
    charge_spectrum = np.fft.rfftn(charges, s=(2 * N, 2 * N), axes=(0, 1))
    potential = np.fft.irfftn(np.fft.rfftn(reference_fft.circulant(table)) * charge_spectrum, s=(2 * N, 2 * N),
                              axes=(0, 1))[:N, :N]
    assert_matches(actual=fft.grid_sum(charge_spectrum, fft.kernel_spectrum(table)),
                   reference=float(np.sum(charges * potential)), rtol=1e-12)


@pytest.mark.parametrize("d", [1, 2])
def test_sort_by_box_is_a_stable_sort_whose_runs_cover_every_box(d):
    # points only in the grid's middle, so that the first and last boxes are empty
    Y = np.concatenate([spread_blobs(3000, d, span=10.0, seed=2), np.full((1, d), -30.0), np.full((1, d), 30.0)])
    grid = reference_fft.interpolation_grid(Y, 3, 50, 1.0)
    frame = (grid.lower, grid.center, float(grid.box_width), int(grid.n_boxes))
    order, box_start, tasks = fft.sort_by_box(Y, frame)
    scaled = np.clip(np.floor((Y - grid.lower) / grid.box_width), 0, grid.n_boxes - 1).astype(np.int64)
    box = np.ravel_multi_index(tuple(scaled.T), (grid.n_boxes,) * d)
    np.testing.assert_array_equal(order, np.argsort(box, kind="stable"))
    counts = np.bincount(box, minlength=grid.n_boxes**d)
    np.testing.assert_array_equal(box_start, np.concatenate([[0], np.cumsum(counts)]))
    assert tasks[0] == 0 and tasks[-1] == grid.n_boxes**d and np.all(np.diff(tasks) >= 0)
    points_per_task = np.diff(box_start[tasks])  # balanced: at most n / n_tasks plus one box
    assert points_per_task.max() <= len(Y) / (tasks.size - 1) + counts.max(), points_per_task


@pytest.mark.parametrize("n", [2, 40])
def test_identical_points_match_the_reference(n):
    # span 0: all points in the first box (one task holds them all, the others only empty boxes)
    Y, loss, ctx = np.full((n, 2), 3.0), KL(), Context(n_samples=n, normalized=True)
    expected = reference_fft.fft_repulsion(Y, lambda D: loss.repulsion_channels(D, ctx), lambda D: loss.kernel(D, ctx))
    actual = FFTRepulsion().estimate(Y, loss, ctx, 0)
    assert_matches(actual=actual.channels, reference=expected.channels, atol=1e-12)
    assert_matches(actual=[actual.sum_w, actual.sum_w2], reference=[expected.sum_w, expected.sum_w2], rtol=1e-11)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_positions_are_refused(bad):
    Y = spread_blobs(50, 2)
    Y[7, 1] = bad
    with pytest.raises(ValueError, match="needs a finite embedding"):
        fft.fft_repulsion(Y, quadratic_repulsion, 1.0, 1.0, (0.0,) * 4, 2)


class NoKernelsKL(reference.KL):
    """KL's math under another class: kernels are matched on the exact class, so none."""


def test_a_loss_without_kernels_runs_on_the_reference_estimator(caplog):
    Y = spread_blobs(200, 2)
    ctx = Context(n_samples=200, normalized=True)
    with caplog.at_level(logging.DEBUG, logger="gidr"):
        actual = FFTRepulsion(min_boxes=20).estimate(Y, NoKernelsKL(), ctx, 0)
    expected = reference.FFTRepulsion(min_boxes=20).estimate(Y, NoKernelsKL(), ctx, 0)
    np.testing.assert_array_equal(actual.channels, expected.channels)
    assert "repulsion 'fft' runs on the reference backend" in caplog.text


def test_does_not_modify_its_input():
    Y = np.asfortranarray(spread_blobs(100, 2)).astype(np.float32)
    before = Y.copy()
    sums = FFTRepulsion().estimate(Y, Frobenius(), Context(n_samples=100, normalized=True), 0)
    np.testing.assert_array_equal(Y, before)
    assert np.isfinite(sums.channels).all()


def test_three_dimensions_are_refused():
    with pytest.raises(GidrValueError, match=r"The 'n_components' setting for repulsion 'fft' must be at most 2"):
        FFTRepulsion().estimate(np.zeros((5, 3)), KL(), Context(n_samples=5, n_components=3), 0)


def test_tsne_with_fft_embeds_digits_as_well_as_barnes_hut():
    # measured: 100-NN accuracy 0.9488 (fft) and 0.9505 (barnes_hut); 10-NN 0.9878 and 0.9872
    from sklearn.datasets import load_digits

    X, labels = load_digits(return_X_y=True)
    accuracy = {}
    for repulsion in ("fft", "barnes_hut"):
        pipeline = gidr.Pipeline.from_preset("tsne", backend="numba", repulsion=repulsion, random_state=0)
        assert pipeline.stages["repulsion"].name == repulsion
        accuracy[repulsion] = knn_accuracy(np.asarray(pipeline.run(X)), labels, k=100)
    assert accuracy["fft"] > 0.93, accuracy
    assert abs(accuracy["fft"] - accuracy["barnes_hut"]) < 0.015, accuracy
