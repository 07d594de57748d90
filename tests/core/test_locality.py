"""Renumbering for locality (gidr.locality): the permutation, the renumbered P, and the
pipeline's ``locality`` switch, whose results come back in the caller's order."""
from __future__ import annotations

import contextlib

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

import gidr
from gidr import locality
from gidr.locality import (can_set_aside, inverse_permutation, morton_order, renumbered_affinities, renumbered_csr,
                           renumbered_entries, set_aside, uses_renumbering)
from gidr.validation import GidrValueError


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:400]


def _z_code_by_hand(point: tuple[int, ...], bits: int) -> int:
    """The Z-order code of integer coordinates, bit by bit (coordinate c's bit b at b*d + c)."""
    code = 0
    for b in range(bits):
        for c, value in enumerate(point):
            code |= ((value >> b) & 1) << (b * len(point) + c)
    return code


def test_morton_order_on_a_grid_is_the_z_curve():
    # A 4 x 4 integer grid spans its bounding box exactly: with 21 bits a cell's quantized
    # coordinates are the grid's times (2**21 - 1) / 3, so compare with the codes by hand.
    xs, ys = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    Y = np.column_stack([xs.ravel(), ys.ravel()]).astype(float)
    order = morton_order(Y)
    top = (1 << 21) - 1
    codes = [_z_code_by_hand((int(x * top / 3), int(y * top / 3)), 21) for x, y in Y]
    np.testing.assert_array_equal(order, np.argsort(codes, kind="stable"))
    # the first four points are the lower-left 2 x 2 quadrant
    assert {tuple(p) for p in Y[order[:4]]} == {(0, 0), (1, 0), (0, 1), (1, 1)}


@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_morton_order_is_a_permutation_and_keeps_neighbours_close(d):
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(5000, d))
    order = morton_order(Y)
    np.testing.assert_array_equal(np.sort(order), np.arange(5000))
    # consecutive points along the curve are much closer than random pairs
    step = np.linalg.norm(np.diff(Y[order], axis=0), axis=1)
    random_pairs = np.linalg.norm(Y[rng.permutation(5000)] - Y, axis=1)
    assert np.median(step) < 0.5 * np.median(random_pairs)


def test_morton_order_handles_a_constant_column_and_rejects_empty_input():
    Y = np.column_stack([np.arange(10.0), np.zeros(10)])
    np.testing.assert_array_equal(morton_order(Y), np.arange(10))
    with pytest.raises(ValueError, match="non-empty 2-D"):
        morton_order(np.empty((0, 2)))


def test_renumbered_csr_is_the_permuted_matrix_with_sorted_indices():
    rng = np.random.default_rng(1)
    P = sp.random(300, 300, density=0.05, random_state=2, format="csr")
    P = (P + P.T).tocsr()
    order = rng.permutation(300)
    inverse = inverse_permutation(order)
    np.testing.assert_array_equal(inverse[order], np.arange(300))
    R = renumbered_csr(P, order, inverse)
    expected = P[order][:, order].tocsr()
    expected.sort_indices()
    assert R.has_sorted_indices
    for row in range(300):
        assert np.all(np.diff(R.indices[R.indptr[row]:R.indptr[row + 1]]) > 0)
    np.testing.assert_array_equal(R.indptr, expected.indptr)
    np.testing.assert_array_equal(R.indices, expected.indices)
    np.testing.assert_array_equal(R.data, expected.data)
    assert (R - R.T).count_nonzero() == 0


def test_auto_threshold():
    assert not uses_renumbering("auto", locality.LOCALITY_MIN_POINTS - 1)
    assert uses_renumbering("auto", locality.LOCALITY_MIN_POINTS)
    assert uses_renumbering("morton", 10) and not uses_renumbering("none", 10**7)


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_renumbered_run_is_the_same_embedding_in_the_callers_order(digits, backend):
    # t-SNE with exact repulsion draws nothing at random: renumbering only reorders its sums,
    # so the two runs agree to rounding, point by point, in the caller's order. A callback sees
    # the caller's order too.
    Y0 = np.random.default_rng(0).normal(size=(len(digits), 2))
    runs = {}
    for mode in ("none", "morton"):
        seen = {}
        result = gidr.Pipeline.from_preset("tsne", repulsion="exact", init=Y0, n_epochs=30, random_state=0,
                                           locality=mode, backend=backend).run(
            digits, callback=lambda epoch, loss, Y: seen.__setitem__(epoch, np.array(Y)), callback_every=10)
        assert result.config["resolved"]["locality"] == mode
        np.testing.assert_array_equal(seen[30], result.embedding)
        runs[mode] = result.embedding
    extent = np.ptp(runs["none"], axis=0).max()
    assert not np.array_equal(morton_order(Y0), np.arange(len(digits)))
    np.testing.assert_allclose(runs["morton"], runs["none"], rtol=0, atol=1e-5 * extent)


def test_renumbered_sampling_run_keeps_quality_and_order(digits):
    # gdr-umap draws its negatives by point number: renumbered, the bits differ, the picture's
    # quality does not, and each point stays with its own neighbours (caller's order).
    labels = load_digits().target[:400]
    embeddings = {mode: gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=200, locality=mode)
                  .run(digits).embedding for mode in ("none", "morton")}
    assert not np.array_equal(embeddings["none"], embeddings["morton"])
    for Y in embeddings.values():
        assert cross_val_score(KNeighborsClassifier(10), Y, labels, cv=4).mean() > 0.9


@pytest.fixture
def all_threads():
    yield
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_renumbered_run_is_the_same_bits_at_any_thread_count(digits, all_threads, monkeypatch):
    from gidr_numba import gdr

    monkeypatch.setattr(gdr, "PARALLEL_MIN_WORK", 0)
    results = []
    for threads in [t for t in (1, 2) if t <= numba.config.NUMBA_NUM_THREADS]:
        numba.set_num_threads(threads)
        results.append(gidr.Pipeline.from_preset("gdr-umap", random_state=3, n_epochs=50, locality="morton",
                                                 backend="numba").run(digits).embedding)
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def _random_symmetric(n: int, seed: int) -> sp.csr_matrix:
    A = sp.random(n, n, density=0.05, random_state=seed, format="csr")
    P = (A + A.T).tocsr()
    P.setdiag(0)
    P.eliminate_zeros()
    P.sort_indices()
    return P


@pytest.mark.parametrize("fails", [False, True])
def test_set_aside_frees_p_and_gives_back_the_same_arrays(monkeypatch, fails):
    P = _random_symmetric(300, 4)
    before = (P.indptr.copy(), P.indices.copy(), P.data.copy())
    order = np.random.default_rng(5).permutation(300)
    inverse = inverse_permutation(order)
    renumbered = renumbered_csr(P, order, inverse)
    assert not can_set_aside(P)  # far below SET_ASIDE_MIN_BYTES: kept
    monkeypatch.setattr(locality, "SET_ASIDE_MIN_BYTES", 0)
    assert can_set_aside(P) and not can_set_aside(P[:, ::-1].tocsr())  # unsorted columns: kept
    with pytest.raises(RuntimeError) if fails else contextlib.nullcontext():
        with set_aside(P, renumbered, order, inverse):
            assert P.nnz == 0 and P.data.size == 0 and P.shape == (300, 300)
            if fails:
                raise RuntimeError("interrupted")
    for old, new in zip(before, (P.indptr, P.indices, P.data)):
        assert new.dtype == old.dtype
        np.testing.assert_array_equal(new, old)
    assert P.has_sorted_indices


def test_run_sets_its_own_p_aside_only(digits, monkeypatch):
    # The pipeline's own P is freed while the optimizer runs (same embedding, same P after);
    # a caller's P (run_affinities) is never touched.
    runs, seen = {}, []
    original = set_aside

    @contextlib.contextmanager
    def spy(P, *args):
        with original(P, *args):
            seen.append(P.nnz)
            yield

    monkeypatch.setattr(gidr.pipeline, "set_aside", spy)
    for limit in (2**62, 0):
        monkeypatch.setattr(locality, "SET_ASIDE_MIN_BYTES", limit)
        runs[limit] = gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=20, locality="morton").run(digits)
    assert seen[0] > 0 and seen[1] == 0
    np.testing.assert_array_equal(runs[0].embedding, runs[2**62].embedding)
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(runs[0].affinities.P, name), getattr(runs[2**62].affinities.P, name))
    P = runs[0].affinities.P
    gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=5, locality="morton").run_affinities(P)
    assert len(seen) == 2 and P.nnz == runs[2**62].affinities.P.nnz


def test_bad_locality_names_the_parameter():
    with pytest.raises(GidrValueError, match="locality"):
        gidr.Pipeline.from_preset("gdr-umap", locality="hilbert")


def test_renumbered_entries_carry_per_entry_arrays():
    rng = np.random.default_rng(4)
    P = sp.random(200, 200, density=0.05, random_state=5, format="csr")
    P = (P + P.T).tocsr()
    order = rng.permutation(200)
    R, entry_order = renumbered_entries(P, order, inverse_permutation(order))
    np.testing.assert_array_equal(R.data, P.data[entry_order])
    # an entry keeps its two ends: old (order[r], order[c]) for new (r, c)
    rows = np.repeat(np.arange(200), np.diff(R.indptr))
    old_rows = np.repeat(np.arange(200), np.diff(P.indptr))
    np.testing.assert_array_equal(order[rows], old_rows[entry_order])
    np.testing.assert_array_equal(order[R.indices], P.indices[entry_order])


def test_densmap_target_follows_the_renumbering(digits):
    # densMAP's term has per-entry and per-point arrays: renumbered with the points, its
    # forces are the caller's-order forces, renumbered
    from gidr_reference import densmap

    result = gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=60, densmap=True).run(digits)
    affinities, Y = result.affinities, result.embedding
    assert affinities.density is not None
    order = morton_order(Y)
    moved = renumbered_affinities(affinities, order, inverse_permutation(order))
    for field in ("rad_orig", "standardized", "active"):
        np.testing.assert_array_equal(getattr(moved.density, field), getattr(affinities.density, field)[order])
    expected = densmap.density_forces(Y, affinities.P, affinities.density, 1.0, 1.0, weight=1.0)
    actual = densmap.density_forces(Y[order], moved.P, moved.density, 1.0, 1.0, weight=1.0)
    np.testing.assert_allclose(actual, expected[order], rtol=1e-10, atol=1e-12)
    assert np.abs(expected).max() > 0


def test_renumbered_densmap_run_keeps_its_quality(digits):
    from gidr.metrics import knn_accuracy

    labels = load_digits().target[:400]
    for mode in ("none", "morton"):
        result = gidr.Pipeline.from_preset("umap", random_state=0, n_epochs=150, densmap=True, output_dens=True,
                                           locality=mode).run(digits)
        radii = result.densities
        assert np.corrcoef(radii["rad_orig"], radii["rad_emb"])[0, 1] > 0.7  # 0.88-0.91 (0.37-0.39 without)
        assert knn_accuracy(result.embedding, labels, k=10) > 0.8  # 0.905-0.923
