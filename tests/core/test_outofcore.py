"""Out-of-core input (np.memmap, h5py, zarr) read in row chunks, and the chunked PCA (gidr.outofcore)."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import gidr
from gidr import memory, outofcore
from gidr.validation import GidrValueError
from tests.helpers import assert_matches

ROOT = Path(__file__).resolve().parents[2]
#: A chunk of 100 rows of digits' 64 features (float64): every input below spans several chunks.
SMALL_CHUNK = 100 * 64 * 8
#: The chunked PCA against scikit-learn's exact PCA (``svd_solver="full"``: its default picks a
#: randomized solver for 600 x 64, itself off by 1.5e-3): scores agree to
#: this share of the largest score. Measured on digits: 5e-8 (the float32 rounding of the
#: scores); the bound leaves a factor 200 for other BLAS and LAPACK builds.
PCA_RTOL = 1e-5


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    return np.ascontiguousarray(load_digits().data[:600], dtype=np.float32)


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(outofcore, "CHUNK_BYTES", SMALL_CHUNK)


def _memmap(X, path, mode="r"):
    mm = np.lib.format.open_memmap(path / "X.npy", mode="w+", dtype=X.dtype, shape=X.shape)
    mm[:] = X
    mm.flush()
    del mm
    return np.load(path / "X.npy", mmap_mode=mode)


def _h5py(X, path):
    h5py = pytest.importorskip("h5py")
    handle = h5py.File(path / "X.h5", "w")
    handle.create_dataset("X", data=X, chunks=(min(64, len(X)), X.shape[1]))
    return handle["X"]


def _zarr(X, path):
    zarr = pytest.importorskip("zarr")
    array = zarr.open_array(str(path / "X.zarr"), mode="w", shape=X.shape, chunks=(128, X.shape[1]), dtype=X.dtype)
    array[:] = X
    return array


STORES = {"memmap": _memmap, "h5py": _h5py, "zarr": _zarr}


def _store(kind, X, path):
    return STORES[kind](X, path)


def _run(X, **overrides):
    return gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=20, **overrides).run(X)


def _sklearn_scores(X, k):
    from sklearn.decomposition import PCA

    return PCA(k, svd_solver="full").fit_transform(np.asarray(X, dtype=np.float64))


def _assert_same_up_to_sign(actual, reference, rtol):
    signs = np.sign(np.sum(actual * reference, axis=0))
    assert np.all(signs != 0)
    assert_matches(actual=actual, reference=reference * signs, atol=rtol * np.abs(reference).max(), rtol=0)


# ---------------------------------------------------------------------- recognition and metadata
@pytest.mark.parametrize("kind", list(STORES))
def test_each_kind_is_recognised_and_an_ndarray_is_not(kind, digits, tmp_path):
    assert outofcore.is_out_of_core(_store(kind, digits, tmp_path))
    assert not outofcore.is_out_of_core(digits)
    assert not outofcore.is_out_of_core(sp.csr_matrix(digits))


def test_a_three_dimensional_dataset_is_refused_from_its_metadata(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "cube.h5", "w") as handle:
        handle.create_dataset("X", shape=(10, 4, 4), dtype="f4")
    with h5py.File(tmp_path / "cube.h5", "r") as handle:
        with pytest.raises(GidrValueError, match=r"The input X \(h5py Dataset\) must be a 2-D array of shape "
                                                 r"\(n_samples, n_features\)\. Got an array with 3 dimension"):
            _run(handle["X"])


def test_a_complex_memmap_is_refused(tmp_path):
    X = _memmap(np.ones((10, 3), dtype=np.complex64), tmp_path)
    with pytest.raises(GidrValueError, match=r"X \(numpy memmap\) must be a real-valued array\. Got dtype complex64"):
        _run(X)


def test_a_string_dataset_is_refused(tmp_path):
    zarr = pytest.importorskip("zarr")
    X = zarr.open_array(str(tmp_path / "s.zarr"), mode="w", shape=(10, 3), dtype="int32")
    outofcore.row_source(X)  # an integer store is accepted
    with pytest.raises(GidrValueError, match=r"must be an array of real or integer numbers\. Got dtype <U3"):
        outofcore.row_source(np.memmap(tmp_path / "u.bin", mode="w+", dtype="<U3", shape=(10, 3)))


def test_a_single_row_is_refused(tmp_path):
    with pytest.raises(GidrValueError, match=r"at least 2 samples\. Got 1 sample\(s\)"):
        _run(_memmap(np.ones((1, 3), dtype=np.float32), tmp_path))


# ---------------------------------------------------------------------- same bits as in memory
@pytest.mark.parametrize("pca", [None, 10])
@pytest.mark.parametrize("kind", list(STORES))
def test_each_kind_embeds_to_the_same_bits_as_in_memory(kind, pca, digits, tmp_path, small_chunks):
    expected = _run(digits, pca=pca)
    result = _run(_store(kind, digits, tmp_path), pca=pca)
    np.testing.assert_array_equal(result.embedding, expected.embedding)
    np.testing.assert_array_equal(result.graph.indices, expected.graph.indices)
    assert ("pca" in result.config["resolved"]) == (pca is not None)
    assert list(result.timings)[0] == ("load" if pca is None else "pca")


def test_a_float64_memmap_is_loaded_as_float32(digits, tmp_path, small_chunks):
    X64 = digits.astype(np.float64) / 7.0
    loaded = outofcore.load_float32(outofcore.row_source(_memmap(X64, tmp_path)))
    assert loaded.dtype == np.float32 and loaded.flags.c_contiguous
    np.testing.assert_array_equal(loaded, X64.astype(np.float32))


def test_a_float64_value_beyond_float32_is_refused_with_its_row(tmp_path, small_chunks):
    X = np.ones((300, 64))
    X[250, 3] = 1e300
    with pytest.raises(GidrValueError, match=r"values within float32's range .* Got a value beyond \+-3\.4e38 in "
                                             r"row 250\. Rescale the data, or pass pca=50"):
        _run(_memmap(X, tmp_path))


def test_the_pca_scores_feed_the_neighbours_and_the_pca_init(digits, tmp_path, small_chunks):
    """A run with pca=10 and init='pca' is a run on the in-memory scores: both stages read them."""
    scores = outofcore.chunked_pca(outofcore.row_source(digits), 10).scores
    expected = _run(scores, init="pca")
    result = _run(_memmap(digits, tmp_path), pca=10, init="pca")
    np.testing.assert_array_equal(result.embedding, expected.embedding)


def test_sparse_input_gets_the_centred_pca_of_its_dense_twin(digits, small_chunks):
    dense = _run(digits, pca=10)
    result = _run(sp.csr_matrix(digits), pca=10)
    np.testing.assert_array_equal(result.embedding, dense.embedding)
    _assert_same_up_to_sign(outofcore.chunked_pca(outofcore.row_source(sp.csr_matrix(digits)), 10).scores,
                            _sklearn_scores(digits, 10), PCA_RTOL)


# ---------------------------------------------------------------------- the PCA itself
@pytest.mark.parametrize("kind", ["memory", *STORES])
def test_the_chunked_pca_equals_sklearn_up_to_sign(kind, digits, tmp_path, small_chunks):
    from sklearn.decomposition import PCA

    X = digits if kind == "memory" else _store(kind, digits, tmp_path)
    fitted = outofcore.chunked_pca(outofcore.row_source(X), 12)
    reference = PCA(12, svd_solver="full").fit(digits.astype(np.float64))
    assert fitted.method == "covariance_eigh" and fitted.scores.dtype == np.float32
    _assert_same_up_to_sign(fitted.scores, reference.transform(digits.astype(np.float64)), PCA_RTOL)
    assert_matches(actual=fitted.explained_variance_ratio, reference=reference.explained_variance_ratio_, rtol=1e-9)
    assert_matches(actual=fitted.mean, reference=reference.mean_, rtol=1e-9)
    # the sign convention: each axis's largest-magnitude loading is positive
    rows = np.arange(12)
    assert np.all(fitted.components[rows, np.argmax(np.abs(fitted.components), axis=1)] > 0)


def test_the_pipeline_records_the_pca(digits):
    from sklearn.decomposition import PCA

    result = gidr.Pipeline.from_preset("gdr-umap", pca=12, random_state=0, n_epochs=5).run(digits)
    record = result.config["resolved"]["pca"]
    assert result.config["pipeline"]["pca"] == 12
    assert record["n_components"] == 12 and record["method"] == "covariance_eigh"
    assert record["seconds"] == result.timings["pca"] > 0
    assert record["components"].shape == (12, 64) and record["mean"].shape == (64,)
    total = PCA(12, svd_solver="full").fit(digits.astype(np.float64)).explained_variance_ratio_.sum()
    assert record["explained_variance_ratio"] == pytest.approx(total, rel=1e-9)


def test_wide_data_gets_the_randomized_pca(monkeypatch):
    """Above EXACT_MAX_FEATURES: a low-rank signal (decaying spectrum) plus noise, 300 x 5000.
    A clear spectral gap after the 20th axis: measured 6e-8 of the largest score, as exact."""
    rng = np.random.default_rng(1)
    signal = rng.normal(size=(300, 20)) * np.geomspace(30, 3, 20) @ rng.normal(size=(20, 5000)) / 70
    X = (signal + rng.normal(scale=0.1, size=(300, 5000))).astype(np.float32)
    monkeypatch.setattr(outofcore, "CHUNK_BYTES", 64 * 5000 * 8)
    fitted = outofcore.chunked_pca(outofcore.row_source(X), 8, np.random.default_rng(0))
    assert fitted.method == "randomized"
    _assert_same_up_to_sign(fitted.scores, _sklearn_scores(X, 8), PCA_RTOL)


def test_the_randomized_pca_on_digits(digits, monkeypatch, small_chunks):
    """The randomized method forced on digits (64 features, 10 components: a slowly decaying
    spectrum, the hard case): each component within 1 % of its largest score (measured: 3.5e-4 at
    the ninth, 4e-8 at the first four)."""
    monkeypatch.setattr(outofcore, "EXACT_MAX_FEATURES", 16)
    fitted = outofcore.chunked_pca(outofcore.row_source(digits), 10, np.random.default_rng(0))
    reference = _sklearn_scores(digits, 10)
    signs = np.sign(np.sum(fitted.scores * reference, axis=0))
    error = np.abs(fitted.scores - reference * signs).max(axis=0) / np.abs(reference).max(axis=0)
    assert fitted.method == "randomized" and np.all(error < 0.01), error


@pytest.mark.parametrize("exact_max_features", [4096, 16])
def test_same_bits_for_the_same_chunks_whatever_the_thread_count(exact_max_features, digits, monkeypatch,
                                                                 small_chunks):
    from threadpoolctl import threadpool_limits

    monkeypatch.setattr(outofcore, "EXACT_MAX_FEATURES", exact_max_features)
    runs = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="blas"):
            runs.append(outofcore.chunked_pca(outofcore.row_source(digits), 10, np.random.default_rng(3)))
    np.testing.assert_array_equal(runs[0].scores, runs[1].scores)
    np.testing.assert_array_equal(runs[0].components, runs[1].components)


def test_another_chunk_size_changes_only_the_rounding(digits, monkeypatch):
    whole = outofcore.chunked_pca(outofcore.row_source(digits), 10)
    monkeypatch.setattr(outofcore, "CHUNK_BYTES", 7 * 64 * 8)  # 7 rows a chunk
    chunked = outofcore.chunked_pca(outofcore.row_source(digits), 10)
    assert whole.chunk_rows > len(digits) and chunked.chunk_rows == 7
    assert_matches(actual=chunked.scores, reference=whole.scores, atol=PCA_RTOL * np.abs(whole.scores).max(), rtol=0)


def test_pca_scores_of_new_rows_use_the_fitted_axes(digits):
    fitted = outofcore.chunked_pca(outofcore.row_source(digits[:400]), 5)
    new = outofcore.pca_scores(outofcore.row_source(digits[400:]), fitted.mean, fitted.components)
    expected = (digits[400:].astype(np.float64) - fitted.mean) @ fitted.components.T
    assert_matches(actual=new, reference=expected, rtol=0, atol=1e-6 * np.abs(expected).max())


# ---------------------------------------------------------------------- bad values and parameters
@pytest.mark.parametrize("pca", [None, 5])
@pytest.mark.parametrize("kind", list(STORES))
def test_a_nan_deep_in_a_chunk_reports_its_row(kind, pca, digits, tmp_path, small_chunks):
    X = digits.copy()
    X[437, 17] = np.nan
    X[520, 2] = np.inf
    with pytest.raises(GidrValueError, match=r"The input X must contain only finite values\. Got 1 NaN or infinite "
                                             r"value\(s\) in rows 400-499 \(one chunk\), the first in row 437\."):
        _run(_store(kind, X, tmp_path), pca=pca)


@pytest.mark.parametrize("value, expected", [(0, r"an int in \[1, inf\) or None\. Got 0\."),
                                             (2.5, r"an int in \[1, inf\) or None\. Got 2\.5\.")])
def test_a_bad_pca_value_is_refused(value, expected):
    with pytest.raises(GidrValueError, match=r"The 'pca' parameter of the pipeline must be " + expected):
        gidr.Pipeline.from_preset("gdr-umap", pca=value)


def test_more_components_than_features_are_refused(digits):
    with pytest.raises(GidrValueError, match=r"The 'pca' parameter of the pipeline must be an int in \[1, 64\] "
                                             r"\(min\(n_samples, n_features\) of X, shape \(600, 64\)\)\. Got 65"):
        _run(digits, pca=65)


def test_pca_with_precomputed_neighbours_is_refused(digits):
    with pytest.raises(GidrValueError, match=r"'pca' parameter of the pipeline must be None for neighbors "
                                             r"'precomputed'.*no data matrix to reduce"):
        _run(np.zeros((10, 10)), neighbors="precomputed", pca=5)


# ---------------------------------------------------------------------- memory
def _no_reads(monkeypatch):
    def refuse(self):
        raise AssertionError("the input was read before the memory check")
        yield  # pragma: no cover

    monkeypatch.setattr(outofcore.RowSource, "blocks", refuse)


def test_a_memmap_too_big_to_load_stops_before_any_read(digits, tmp_path, monkeypatch):
    X = _memmap(digits, tmp_path)
    monkeypatch.setattr(memory, "available_bytes", lambda: 1_000_000)
    _no_reads(monkeypatch)
    needed = memory.out_of_core_estimate(600, 64, 15, 2, pca=None, copy_bytes_per_value=4)
    assert needed == 4 * 600 * 64 + memory.estimate_bytes(600, 64, 15, 2, copy_bytes_per_value=4)
    with pytest.raises(GidrValueError, match=r"The run needs about 0\.1 GiB: the input \(600 points x 64 features, "
                                             r"stored as float32\) is read into memory as float32 .* only 0\.0 GiB "
                                             r"are available\. Ways out: pass pca=50 to the pipeline"):
        gidr.Pipeline.from_preset("gdr-umap", random_state=0, neighbors="nndescent").run(X)


def test_a_pca_run_too_big_stops_before_any_read(digits, tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1_000_000)
    _no_reads(monkeypatch)
    with pytest.raises(GidrValueError, match=r"the chunked PCA of 600 points x 64 features \(stored as float32\) to "
                                             r"10 components.*Ways out: a smaller pca"):
        _run(_h5py(digits, tmp_path), pca=10)


def test_the_pca_estimate_is_chunk_plus_square_plus_scores(monkeypatch):
    monkeypatch.setattr(outofcore, "CHUNK_BYTES", 2**20)
    rows = 2**20 // (8 * 784)
    assert memory.pca_bytes(10**6, 784, 50) == 2 * 8 * 784 * rows + 8 * 4 * 784**2 + 4 * 10**6 * 50
    wide = memory.pca_bytes(10**6, 20_000, 50)
    assert wide == 2 * 8 * 20_000 * max(1, 2**20 // (8 * 20_000)) + 8 * 6 * 20_000 * 100 + 4 * 10**6 * 50


_PEAK_SCRIPT = textwrap.dedent("""
    import json, sys, tracemalloc
    import numpy as np
    from gidr import outofcore
    from gidr.memory import peak_resident_bytes
    outofcore.CHUNK_BYTES = int(sys.argv[2])
    X = np.load(sys.argv[1], mmap_mode="r")
    np.ones((512, 512)) @ np.ones((512, 512))  # BLAS's buffers, before the baseline
    before = peak_resident_bytes()
    tracemalloc.start()
    fitted = outofcore.chunked_pca(outofcore.row_source(X), 10)
    traced = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"traced": traced, "resident": peak_resident_bytes() - before,
                      "ratio": float(fitted.explained_variance_ratio.sum())}))
""")


def test_the_chunked_pca_of_a_200_mb_memmap_stays_far_below_its_size(tmp_path):
    """250,000 x 200 float32 (200 MB) in 16 MiB chunks: numpy's allocations (tracemalloc) peak
    at one float64 chunk, its value check, the d x d matrices and the n x k scores; the
    resident memory (VmHWM, in a fresh process) the same plus the pages being read."""
    n, d, k, chunk = 250_000, 200, 10, 16 * 2**20
    mm = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32, shape=(n, d))
    rng = np.random.default_rng(0)
    for lo in range(0, n, 50_000):
        mm[lo:lo + 50_000] = rng.normal(size=(50_000, d)).astype(np.float32) * np.linspace(1, 3, d)
    mm.flush()
    del mm
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(tmp_path / "big.npy"), str(chunk)],
                         capture_output=True, text=True, cwd=ROOT, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'reference'}:{ROOT / 'backends'}"})
    peaks = json.loads(out.stdout.strip().splitlines()[-1])
    data_bytes = 4 * n * d
    own = 1.25 * chunk + 8 * 4 * d * d + 4 * n * k  # chunk + value check, the d x d matrices, the scores
    assert peaks["traced"] <= own + 2**20, peaks
    # measured: 52 MB, of which 28 traced; without releasing the read pages it would be 230 MB
    assert peaks["resident"] <= own + 32 * 2**20 and peaks["resident"] < data_bytes / 3, peaks
