"""Datasets for examples, tests and benchmarks.

:func:`load` returns ``(X, y)`` for one of :func:`available`:

=================  ===============  =======================  =====================
name               X                y                        source
=================  ===============  =======================  =====================
``digits``         (1797, 64) f8    int64 class 0-9          scikit-learn
``fashion-mnist``  (70000, 784) f4  int64 class 0-9          the original IDX files
``swiss-roll``     (5000, 3) f8     float64 roll position t  ``make_swiss_roll``
``blobs``          (2000, 50) f8    int64 center 0-9         ``make_blobs``
=================  ===============  =======================  =====================

Fashion-MNIST is the 60,000 training images followed by the 10,000 test images, pixel
values 0-255 stored as float32 (not rescaled). Its four gzip files are looked for, in order,
in ``data_home``, ``$GIDR_FASHION_MNIST_DIR``, ``/usr/share/datasets/fashion-mnist`` and the
cache ``$GIDR_DATA_HOME/fashion-mnist`` (default ``~/.cache/gidr/fashion-mnist``); the first
directory holding all four is used. When none does, they are downloaded into the cache from
the official source.

Checksums: every file is checked once per process against the official MD5 of the archive
(as published by Zalando Research). A file re-compressed by a packager (same images, other
gzip header) does not match that, so a file also passes when the MD5 of its *decompressed*
content matches the official IDX content (the checksums torchvision publishes); uncompressed
``.../train-images-idx3-ubyte`` files are accepted on the same ground. IDX files are parsed
with NumPy, never unpickled.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gidr.validation import GidrValueError, Interval, Param, check_choice, format_error, resolve_seed

__all__ = ["available", "canonical_name", "load", "load_fashion_mnist", "upsample", "FASHION_MNIST_URL"]

FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

# file stem -> (MD5 of the official .gz archive, MD5 of its decompressed IDX content)
_FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
    "train-labels-idx1-ubyte": ("25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9"),
    "t10k-images-idx3-ubyte": ("bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"),
    "t10k-labels-idx1-ubyte": ("bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965"),
}

# IDX type byte -> big-endian numpy dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def available() -> list[str]:
    """Names :func:`load` accepts.

    Returns
    -------
    list of str
    """
    return list(_LOADERS)


def canonical_name(name: Any) -> str | None:
    """The :func:`available` name that ``name`` spells (case and ``_``/``-`` do not matter),
    or None: ``"Swiss_Roll"`` is ``"swiss-roll"``.

    Returns
    -------
    str or None
    """
    if not isinstance(name, str):
        return None
    key = name.lower().replace("_", "-")
    return key if key in _LOADERS else None


def load(
    name: str,
    *,
    n_samples: int | None = None,
    random_state: Any = 0,
    data_home: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load a dataset by name.

    Parameters
    ----------
    name : str
        One of :func:`available` (case and ``_``/``-`` do not matter).
    n_samples : int or None, default=None
        For real datasets, a seeded random subsample of this many rows (without replacement,
        kept in the dataset's order); for synthetic ones, the number of points generated
        (default 5000 for ``swiss-roll``, 2000 for ``blobs``).
    random_state : int, Generator or None, default=0
        Seed of the subsample or of the generator.
    data_home : str or path-like or None, default=None
        First directory searched for files of datasets that need them (``fashion-mnist``).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The data (float64, or float32 for ``fashion-mnist``).
    y : ndarray of shape (n_samples,)
        Labels (int64), or the roll position (float64) for ``swiss-roll``.
    """
    key = check_choice(canonical_name(name) or name, available(), "The 'name' parameter of load()")
    n_samples = Param("n_samples", None, (Interval(int, 1, None),), allow_none=True).validate(
        n_samples, "load()"
    )
    seed = resolve_seed(random_state)
    loader, is_synthetic = _LOADERS[key]
    if is_synthetic:
        return loader(n_samples, seed)
    X, y = loader(data_home)
    if n_samples is None:
        return X, y
    if n_samples > X.shape[0]:
        raise GidrValueError(
            format_error("The 'n_samples' parameter of load()",
                         f"at most the size of {key!r} ({X.shape[0]})", n_samples)
        )
    rows = np.sort(np.random.default_rng(seed).choice(X.shape[0], size=n_samples, replace=False))
    return X[rows], y[rows]


#: Rows per block of :func:`upsample`'s interpolation (bounds its temporaries).
UPSAMPLE_BLOCK_ROWS = 1 << 18


def upsample(X: Any, n_samples: int, *, n_neighbors: int = 15, random_state: Any = 0) -> tuple[np.ndarray, np.ndarray]:
    """``X`` grown to ``n_samples`` rows along its data manifold, for scaling studies.

    The original rows come first, unchanged. Each new row is drawn from a uniformly chosen
    source row ``i`` and one of its ``n_neighbors`` nearest neighbours ``j`` (exact, Euclidean,
    the row itself excluded), also chosen uniformly, and moved a uniform random fraction
    ``u`` of the way toward it: ``x_i + u (x_j - x_i)``. New points therefore lie on the
    segments of the kNN graph, where the data already is. Copies with isotropic noise added
    do not: their nearest neighbours become the other copies of the same point (at
    1,000,000 points upsampled from Fashion-MNIST's 50 PCs, ``gdr-umap``'s 100-NN accuracy
    fell from 0.78 to 0.47 when noise of 10 % of each coordinate's spread was used).

    Parameters
    ----------
    X : array-like of shape (n, n_features)
        Finite data; float32 stays float32, anything else becomes float64.
    n_samples : int
        Rows wanted, at least ``n``.
    n_neighbors : int, default=15
        Neighbours each new point may move toward (``1 <= n_neighbors < n``).
    random_state : int, Generator or None, default=0
        Seed of the draws: the sources, then the neighbour ranks, then the fractions (float32),
        each one vector drawn at once.

    Returns
    -------
    X_up : ndarray of shape (n_samples, n_features)
    source : ndarray of shape (n_samples,), int64
        The row of ``X`` each row was drawn from (``arange(n)`` for the originals); a label
        carries over as ``y[source]``.
    """
    from sklearn.neighbors import NearestNeighbors

    base = np.asarray(X)
    if base.ndim != 2 or base.shape[0] < 2:
        raise GidrValueError(f"upsample() needs X as a 2-D array of at least 2 rows; got shape {base.shape}")
    base = base if base.dtype == np.float32 else base.astype(np.float64)
    if not np.all(np.isfinite(base)):
        raise GidrValueError("upsample() needs finite X: it contains NaN or infinity; remove or impute those rows")
    n = base.shape[0]
    n_samples = Param("n_samples", None, (Interval(int, n, None),)).validate(n_samples, "upsample()")
    n_neighbors = Param("n_neighbors", None, (Interval(int, 1, n - 1),)).validate(n_neighbors, "upsample()")
    rng = np.random.default_rng(resolve_seed(random_state))
    _, neighbours = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(base).kneighbors(base)
    source = np.concatenate([np.arange(n), rng.integers(0, n, n_samples - n)])
    toward = neighbours[source, rng.integers(1, n_neighbors + 1, n_samples)]
    fraction = rng.random(n_samples, dtype=np.float32)
    out = np.empty((n_samples, base.shape[1]), dtype=base.dtype)
    for start in range(0, n_samples, UPSAMPLE_BLOCK_ROWS):
        rows = slice(start, min(n_samples, start + UPSAMPLE_BLOCK_ROWS))
        origin = base[source[rows]]
        out[rows] = origin + fraction[rows, None] * (base[toward[rows]] - origin)
    out[:n] = base
    return out, source


def _load_digits(data_home: Any) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X.astype(np.float64), y.astype(np.int64)


def _make_swiss_roll(n_samples: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_swiss_roll

    X, t = make_swiss_roll(n_samples=n_samples or 5000, random_state=seed % 2**32)
    return X.astype(np.float64), t.astype(np.float64)


def _make_blobs(n_samples: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=n_samples or 2000, centers=10, n_features=50, random_state=seed % 2**32)
    return X.astype(np.float64), y.astype(np.int64)


def load_fashion_mnist(
    data_home: str | os.PathLike | None = None, *, verify: bool = True, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 Fashion-MNIST images (training set, then test set).

    Parameters
    ----------
    data_home : str or path-like or None, default=None
        First directory searched (see the module docstring for the others).
    verify : bool, default=True
        Check each file against the official MD5 checksums (once per process and file).
    download : bool, default=True
        Download the files into the cache when no directory holds them.

    Returns
    -------
    X : ndarray of shape (70000, 784), float32
        Pixel values 0-255, one row per image.
    y : ndarray of shape (70000,), int64
        Class 0-9.
    """
    directory = _find_fashion_mnist(data_home)
    if directory is None:
        if not download:
            raise GidrValueError(_not_found_message(data_home, "download=False was passed"))
        directory = _download_fashion_mnist(data_home)
    paths = [_idx_path(directory, stem) for stem in _FASHION_MNIST_MD5]
    signature = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    train_x, train_y, test_x, test_y = _read_idx_files(signature, bool(verify))
    _check_pairs(directory, train_x, train_y, test_x, test_y)
    X = np.concatenate([train_x, test_x]).reshape(-1, train_x.shape[1] * train_x.shape[2])
    y = np.concatenate([train_y, test_y]).astype(np.int64)
    return X.astype(np.float32), y


def _check_pairs(directory: Path, *arrays: np.ndarray) -> None:
    train_x, train_y, test_x, test_y = arrays
    if train_x.ndim != 3 or test_x.ndim != 3 or train_y.ndim != 1 or test_y.ndim != 1 \
            or train_x.shape[0] != train_y.shape[0] or test_x.shape[0] != test_y.shape[0] \
            or train_x.shape[1:] != test_x.shape[1:]:
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise GidrValueError(
            format_error(f"The Fashion-MNIST files in {directory}",
                         "3-D image arrays with one 1-D label per image", f"shapes {shapes}")
        )


def _search_dirs(data_home: Any) -> list[Path]:
    dirs = []
    if data_home is not None:
        dirs.append(Path(data_home).expanduser())
    if os.environ.get("GIDR_FASHION_MNIST_DIR"):
        dirs.append(Path(os.environ["GIDR_FASHION_MNIST_DIR"]).expanduser())
    dirs.append(FASHION_MNIST_SYSTEM_DIR)
    dirs.append(_cache_dir())
    return dirs


def _cache_dir() -> Path:
    root = os.environ.get("GIDR_DATA_HOME") or Path("~/.cache/gidr")
    return Path(root).expanduser() / "fashion-mnist"


def _idx_path(directory: Path, stem: str) -> Path:
    """``stem.gz`` if present, else the uncompressed ``stem``."""
    gz = directory / f"{stem}.gz"
    return gz if gz.is_file() else directory / stem


def _find_fashion_mnist(data_home: Any) -> Path | None:
    for directory in _search_dirs(data_home):
        if all(_idx_path(directory, stem).is_file() for stem in _FASHION_MNIST_MD5):
            return directory
    return None


def _not_found_message(data_home: Any, reason: str) -> str:
    places = "; ".join(str(d) for d in _search_dirs(data_home))
    return format_error(
        "The Fashion-MNIST files (train-images-idx3-ubyte.gz and 3 others)",
        f"in one of these directories: {places}",
        "no directory holding all four",
        f"No download either: {reason}. Download the four .gz files from {FASHION_MNIST_URL} "
        "(or https://github.com/zalandoresearch/fashion-mnist) into one directory and pass "
        "data_home=..., or set GIDR_FASHION_MNIST_DIR to it.",
    )


def _download_fashion_mnist(data_home: Any) -> Path:
    """Download the four archives into the cache, checking each MD5; return the cache."""
    cache = _cache_dir()
    for stem, (archive_md5, _) in _FASHION_MNIST_MD5.items():
        target = cache / f"{stem}.gz"
        if target.is_file():
            continue
        url = FASHION_MNIST_URL + target.name
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                payload = response.read()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise GidrValueError(_not_found_message(data_home, f"fetching {url} failed ({reason})")) from error
        digest = hashlib.md5(payload).hexdigest()
        if digest != archive_md5:
            raise GidrValueError(_checksum_message(url, archive_md5, digest))
        cache.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".gz.part")
        partial.write_bytes(payload)
        partial.replace(target)
    return cache


def _checksum_message(source: Any, expected: str, actual: str) -> str:
    return format_error(
        f"The file {source}", f"the official Fashion-MNIST file (MD5 {expected})", f"MD5 {actual}",
        "The file is corrupt or not Fashion-MNIST: delete it and download it again, or pass "
        "verify=False to load_fashion_mnist() to skip the check.",
    )


@functools.lru_cache(maxsize=1)
def _read_idx_files(signature: tuple, verify: bool) -> tuple[np.ndarray, ...]:
    """Parse (and verify) the files named in ``signature`` (path, size, mtime) as uint8 arrays.

    Cached for the last set of files read, so a second load neither re-reads nor re-verifies
    them; callers must copy (``astype``) before handing arrays out.
    """
    arrays = []
    for (path, _, _), stem in zip(signature, _FASHION_MNIST_MD5):
        raw = Path(path).read_bytes()
        content = gzip.decompress(raw) if path.endswith(".gz") else raw
        if verify:
            _verify(path, raw, content, _FASHION_MNIST_MD5[stem])
        array = parse_idx(content, source=path)
        array.setflags(write=False)
        arrays.append(array)
    return tuple(arrays)


def _verify(path: str, raw: bytes, content: bytes, checksums: tuple[str, str]) -> None:
    archive_md5, content_md5 = checksums
    if hashlib.md5(raw).hexdigest() == archive_md5:
        return
    digest = hashlib.md5(content).hexdigest()
    if digest != content_md5:
        raise GidrValueError(_checksum_message(path, f"{archive_md5} or content {content_md5}", digest))


def parse_idx(content: bytes, source: Any = "IDX data") -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file.

    Parameters
    ----------
    content : bytes
        Magic number (two zero bytes, a type byte, the number of dimensions), the dimensions
        as big-endian int32, then the values.
    source : str, default="IDX data"
        Name used in error messages.

    Returns
    -------
    ndarray of shape given by the header
        Values in native byte order.
    """
    header = np.frombuffer(content[:4], dtype=np.uint8) if len(content) >= 4 else np.zeros(0, np.uint8)
    if header.size < 4 or header[0] != 0 or header[1] != 0 or int(header[2]) not in _IDX_DTYPES:
        raise GidrValueError(
            format_error(f"The file {source}", "an IDX file (magic number 0x0000 and a known type byte)",
                         f"first bytes {content[:4]!r}")
        )
    n_dims = int(header[3])
    if len(content) < 4 + 4 * n_dims:
        raise GidrValueError(
            format_error(f"The file {source}", f"an IDX header with {n_dims} dimensions",
                         f"{len(content)} bytes", "The file is truncated or corrupt: download it again.")
        )
    shape = tuple(int(d) for d in np.frombuffer(content, dtype=">i4", count=n_dims, offset=4))
    dtype = np.dtype(_IDX_DTYPES[int(header[2])])
    offset = 4 + 4 * n_dims
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(content) != expected:
        raise GidrValueError(
            format_error(f"The file {source}", f"{expected} bytes for shape {shape}", f"{len(content)} bytes",
                         "The file is truncated or corrupt: download it again.")
        )
    values = np.frombuffer(content, dtype=dtype, offset=offset).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


_LOADERS: dict[str, tuple[Callable, bool]] = {
    "digits": (_load_digits, False),
    "fashion-mnist": (load_fashion_mnist, False),
    "swiss-roll": (_make_swiss_roll, True),
    "blobs": (_make_blobs, True),
}
