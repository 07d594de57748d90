"""Tests of gidr.datasets: shapes, dtypes, seeding, IDX parsing, file search and download."""
from __future__ import annotations

import gzip
import hashlib
import io
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from gidr import datasets
from gidr.datasets import available, load, load_fashion_mnist, parse_idx
from gidr.validation import GidrValueError

FASHION_DIR = datasets.FASHION_MNIST_SYSTEM_DIR
HAS_FASHION = all((FASHION_DIR / f"{stem}.gz").is_file() for stem in datasets._FASHION_MNIST_MD5)


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def _write_fake_fashion(directory: Path, n_train: int = 6, n_test: int = 4) -> dict[str, tuple[str, str]]:
    """Write four small IDX gzip files; return their checksums in the module's table format."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) + 3) % 10,
    }
    checksums = {}
    for stem, array in arrays.items():
        content = _idx_bytes(array)
        archive = gzip.compress(content, mtime=0)
        (directory / f"{stem}.gz").write_bytes(archive)
        checksums[stem] = (hashlib.md5(archive).hexdigest(), hashlib.md5(content).hexdigest())
    return checksums


@pytest.fixture
def isolated_search(monkeypatch, tmp_path) -> Path:
    """No environment directory, an empty system directory and an empty cache."""
    monkeypatch.delenv("GIDR_FASHION_MNIST_DIR", raising=False)
    monkeypatch.setenv("GIDR_DATA_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "system")
    datasets._read_idx_files.cache_clear()
    return tmp_path


def test_available_names() -> None:
    assert available() == ["digits", "fashion-mnist", "swiss-roll", "blobs"]


def test_digits_shape_and_dtype() -> None:
    X, y = load("digits")
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert set(np.unique(y)) == set(range(10))


def test_digits_subsample_is_deterministic_and_without_replacement() -> None:
    X1, y1 = load("digits", n_samples=300, random_state=4)
    X2, y2 = load("digits", n_samples=300, random_state=4)
    X3, _ = load("digits", n_samples=300, random_state=5)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    full, _ = load("digits")
    rows = [int(np.flatnonzero((full == row).all(axis=1))[0]) for row in X1[:20]]
    assert rows == sorted(rows)  # kept in dataset order


def test_digits_subsample_larger_than_dataset_is_rejected() -> None:
    with pytest.raises(GidrValueError, match=r"'n_samples' parameter of load\(\) must be at most the size of 'digits' \(1797\)"):
        load("digits", n_samples=2000)


def test_swiss_roll_sizes_and_position() -> None:
    X, t = load("swiss-roll")
    assert X.shape == (5000, 3) and t.shape == (5000,) and t.dtype == np.float64
    X_small, _ = load("swiss-roll", n_samples=300, random_state=1)
    assert X_small.shape == (300, 3)
    np.testing.assert_array_equal(X_small, load("swiss-roll", n_samples=300, random_state=1)[0])


def test_blobs_sizes() -> None:
    X, y = load("blobs")
    assert X.shape == (2000, 50) and y.dtype == np.int64
    assert np.unique(y).size == 10
    assert load("blobs", n_samples=123)[0].shape == (123, 50)


def test_name_is_normalised() -> None:
    assert load("Swiss_Roll", n_samples=10)[0].shape == (10, 3)


def test_unknown_name_lists_the_options() -> None:
    with pytest.raises(GidrValueError, match=r"'name' parameter of load\(\) must be one of 'digits', 'fashion-mnist', 'swiss-roll', 'blobs'\. Got 'mnist'"):
        load("mnist")


def test_n_samples_must_be_positive_int() -> None:
    with pytest.raises(GidrValueError, match=r"'n_samples' parameter of load\(\) must be an int in \[1, inf\) or None\. Got 0"):
        load("blobs", n_samples=0)


@pytest.mark.skipif(not HAS_FASHION, reason=f"Fashion-MNIST not in {FASHION_DIR}")
def test_fashion_mnist_from_the_system_directory(monkeypatch) -> None:
    monkeypatch.delenv("GIDR_FASHION_MNIST_DIR", raising=False)
    X, y = load("fashion-mnist")
    assert X.shape == (70000, 784) and X.dtype == np.float32
    assert y.shape == (70000,) and y.dtype == np.int64
    assert y.min() == 0 and y.max() == 9
    assert X.min() == 0.0 and X.max() == 255.0  # not rescaled
    np.testing.assert_array_equal(y[:5], [9, 0, 0, 3, 0])  # first training labels
    X_small, y_small = load("fashion-mnist", n_samples=500, random_state=2)
    assert X_small.shape == (500, 784) and np.array_equal(y_small, load("fashion-mnist", n_samples=500, random_state=2)[1])


def test_fake_fashion_read_through_data_home_with_checksums(isolated_search, monkeypatch) -> None:
    home = isolated_search / "home"
    home.mkdir()
    monkeypatch.setattr(datasets, "_FASHION_MNIST_MD5", _write_fake_fashion(home))
    X, y = load("fashion-mnist", data_home=home)
    assert X.shape == (10, 784) and X.dtype == np.float32
    np.testing.assert_array_equal(y, [0, 1, 2, 3, 4, 5, 3, 4, 5, 6])  # train, then test


def test_fake_fashion_without_verification(isolated_search) -> None:
    home = isolated_search / "home"
    home.mkdir()
    _write_fake_fashion(home, n_train=3, n_test=2)
    X, y = load_fashion_mnist(home, verify=False)
    assert X.shape == (5, 784) and y.dtype == np.int64
    X[:] = -1.0  # the returned arrays are fresh copies, not the cached ones
    assert load_fashion_mnist(home, verify=False)[0].min() >= 0


def test_fake_fashion_checksum_mismatch_is_an_error(isolated_search) -> None:
    home = isolated_search / "home"
    home.mkdir()
    _write_fake_fashion(home)
    with pytest.raises(GidrValueError, match=r"train-images-idx3-ubyte\.gz must be the official Fashion-MNIST file"):
        load("fashion-mnist", data_home=home)


def test_environment_directory_is_searched(isolated_search, monkeypatch) -> None:
    env_dir = isolated_search / "env"
    env_dir.mkdir()
    _write_fake_fashion(env_dir, n_train=2, n_test=1)
    monkeypatch.setenv("GIDR_FASHION_MNIST_DIR", str(env_dir))
    assert load_fashion_mnist(verify=False)[0].shape == (3, 784)


def test_failed_download_explains_where_and_how(isolated_search, monkeypatch) -> None:
    def offline(url, timeout=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(GidrValueError, match=r"(?s)Fashion-MNIST files .* must be in one of these directories: .*system.*cache.*fetching http://fashion-mnist\.s3-website.*failed \(no network\).*data_home=.*GIDR_FASHION_MNIST_DIR"):
        load("fashion-mnist", data_home=isolated_search / "missing")


def test_download_with_bad_checksum_is_an_error(isolated_search, monkeypatch) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(b"not the file"))
    with pytest.raises(GidrValueError, match=r"must be the official Fashion-MNIST file \(MD5 8d4fb7e6c68d591d4c3dfef9ec88bf0d\)"):
        load_fashion_mnist()
    assert not list((isolated_search / "cache").glob("**/*.gz"))


def test_download_writes_the_cache(isolated_search, monkeypatch) -> None:
    source = isolated_search / "source"
    source.mkdir()
    monkeypatch.setattr(datasets, "_FASHION_MNIST_MD5", _write_fake_fashion(source))
    served = []

    def fake_urlopen(url, timeout=None):
        served.append(url)
        return io.BytesIO((source / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    X, _ = load_fashion_mnist()
    assert X.shape == (10, 784) and len(served) == 4
    assert sorted(p.name for p in (isolated_search / "cache" / "fashion-mnist").iterdir()) == sorted(
        f"{stem}.gz" for stem in datasets._FASHION_MNIST_MD5)


def test_no_download_when_disabled(isolated_search) -> None:
    with pytest.raises(GidrValueError, match=r"No download either: download=False was passed"):
        load_fashion_mnist(download=False)


def test_parse_idx_round_trip() -> None:
    array = np.arange(24).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(_idx_bytes(array)), array)


def test_parse_idx_big_endian_floats() -> None:
    values = np.array([1.5, -2.0, 3.25])
    content = bytes([0, 0, 0x0E, 1]) + np.array([3], ">i4").tobytes() + values.astype(">f8").tobytes()
    np.testing.assert_array_equal(parse_idx(content), values)


def test_parse_idx_rejects_a_bad_magic_number() -> None:
    with pytest.raises(GidrValueError, match=r"must be an IDX file \(magic number"):
        parse_idx(b"\x1f\x8b\x08\x00" + bytes(20))


def test_parse_idx_rejects_a_truncated_file() -> None:
    with pytest.raises(GidrValueError, match=r"must be 28 bytes for shape \(4, 4\)\. Got '20 bytes'"):
        parse_idx(_idx_bytes(np.zeros((4, 4)))[:20])


# ---------------------------------------------------------------------- upsample
def _segment_position(X, grown, source, n_neighbors):
    """For each new row: (rank of the neighbour whose segment from its source holds it, fraction)."""
    from sklearn.neighbors import NearestNeighbors

    _, neighbours = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(X).kneighbors(X)
    found = []
    for row in range(len(X), len(grown)):
        origin = X[source[row]]
        for rank in range(1, n_neighbors + 1):
            direction = X[neighbours[source[row], rank]] - origin
            u = float((grown[row] - origin) @ direction / (direction @ direction))
            if np.allclose(origin + u * direction, grown[row], rtol=0, atol=1e-5):
                found.append((rank, u))
                break
        else:
            found.append((None, None))
    return found


def test_upsample_keeps_the_originals_and_puts_new_points_on_neighbour_segments() -> None:
    X, y = load("blobs", n_samples=300, random_state=1)
    grown, source = datasets.upsample(X, 1200, n_neighbors=5, random_state=3)
    assert grown.shape == (1200, X.shape[1]) and grown.dtype == np.float64 and source.dtype == np.int64
    np.testing.assert_array_equal(grown[:300], X)
    np.testing.assert_array_equal(source[:300], np.arange(300))
    assert source.min() >= 0 and source.max() < 300
    positions = _segment_position(X, grown, source, 5)
    assert all(rank is not None and 0.0 <= u < 1.0 for rank, u in positions), positions[:5]
    ranks = np.array([rank for rank, _ in positions])
    assert set(ranks.tolist()) == {1, 2, 3, 4, 5}  # every neighbour rank drawn, never the point itself
    # a label carries over from the source; blobs are far apart, so each new point stays in its blob
    centers = np.array([X[y == label].mean(axis=0) for label in range(10)])
    nearest_center = np.argmin(((grown[300:, None, :] - centers[None]) ** 2).sum(axis=2), axis=1)
    np.testing.assert_array_equal(nearest_center, y[source[300:]])


def test_upsample_is_seeded_and_independent_of_its_block_size(monkeypatch) -> None:
    X = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    first, source = datasets.upsample(X, 1000, random_state=7)
    assert first.dtype == np.float32
    monkeypatch.setattr(datasets, "UPSAMPLE_BLOCK_ROWS", 97)
    again, source_again = datasets.upsample(X, 1000, random_state=7)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(source, source_again)
    other, _ = datasets.upsample(X, 1000, random_state=8)
    assert not np.array_equal(first[200:], other[200:])
    same, _ = datasets.upsample(X, 200)
    np.testing.assert_array_equal(same, X)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_samples": 99}, "n_samples"),
    ({"n_samples": 500, "n_neighbors": 100}, "n_neighbors"),
    ({"n_samples": 500, "n_neighbors": 0}, "n_neighbors"),
])
def test_upsample_refuses_bad_sizes(kwargs, match) -> None:
    X = np.random.default_rng(0).normal(size=(100, 3))
    with pytest.raises(GidrValueError, match=match):
        datasets.upsample(X, **kwargs)


def test_upsample_refuses_non_finite_or_one_dimensional_input() -> None:
    X = np.random.default_rng(0).normal(size=(100, 3))
    X[5, 1] = np.nan
    with pytest.raises(GidrValueError, match="finite"):
        datasets.upsample(X, 200)
    with pytest.raises(GidrValueError, match="2-D"):
        datasets.upsample(np.arange(10.0), 20)
