"""Out-of-core input read in row chunks, and a chunked PCA.

An ``np.memmap``, an ``h5py.Dataset`` or a ``zarr.Array`` may be larger than memory. gidr
never converts one whole: :func:`row_source` checks its metadata (two dimensions, a real
numeric dtype, enough rows and columns) and :meth:`RowSource.blocks` reads it in row chunks
whose float64 working copy holds at most :data:`CHUNK_BYTES`, checking each chunk's values
(a NaN in row r is reported as row r) as it goes. h5py and zarr are imported by the caller,
never here: an object of theirs can only exist once they are.

Without ``pca`` the pipeline loads such an input chunk by chunk into one float32 array
(:func:`load_float32`, after the memory check of :func:`gidr.memory.check_memory` allowed it).
With ``pca=k`` it reduces the input to its top ``k`` principal components first
(:func:`chunked_pca`), reading it twice (or a few times for very wide data) and holding only
one chunk, the ``d x d`` scatter matrix and the ``n x k`` float32 scores:

* ``d <= EXACT_MAX_FEATURES``: one pass sums the columns and the ``d x d`` Gram matrix of
  ``Z = X - s`` in float64, ``s`` the first chunk's column mean (the shift keeps the
  cancellation in ``Z^T Z - n m m^T`` small: ``m`` is the mean of ``Z``, near zero); the
  covariance's eigenvectors are the principal axes (what scikit-learn's
  ``svd_solver="covariance_eigh"`` computes in memory).
* wider data: a randomized range finder (Halko, Martinsson & Tropp 2011) on the covariance,
  ``N_POWER_ITERATIONS`` subspace iterations of one pass each, with ``k + max(N_OVERSAMPLES, k)``
  columns, then Rayleigh-Ritz; the random start comes from the pipeline's seed.

A second pass projects each chunk, centred, on the axes: float32 scores. Each axis's sign
makes its largest-magnitude loading positive (scikit-learn's convention since 1.5). The
result is the same bits for the same chunk size, whatever the thread count (BLAS's eigen-
and QR decompositions run on one thread: their last bits depend on the thread count); a
different chunk size changes the rounding of the sums, not more.

A sparse matrix with ``pca`` gets the same, centred PCA: each chunk is densified (at most
:data:`CHUNK_BYTES` at a time), so the data is never densified whole.
"""
from __future__ import annotations

import contextlib
import mmap
import sys
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp

from gidr.validation import Described, GidrValueError, finite_rows_error, format_error

__all__ = ["CHUNK_BYTES", "EXACT_MAX_FEATURES", "N_POWER_ITERATIONS", "N_OVERSAMPLES", "is_out_of_core",
           "RowSource", "row_source", "chunk_rows", "load_float32", "PCAResult", "chunked_pca", "pca_scores"]

#: Bytes of a chunk's float64 working copy, at most (a chunk holds at least one row).
CHUNK_BYTES = 64 * 2**20
#: Up to this many features the PCA is exact (covariance eigendecomposition); above, randomized.
EXACT_MAX_FEATURES = 4096
#: Subspace iterations (one pass over the data each) of the randomized PCA.
N_POWER_ITERATIONS = 6
#: Extra columns of the randomized PCA's subspace (at least this many, and at least k).
N_OVERSAMPLES = 10

_FIX_NONFINITE = "Remove or impute them first (e.g. write a cleaned copy of the file)."


def is_out_of_core(X: Any) -> bool:
    """Whether ``X`` is an ``np.memmap``, an ``h5py.Dataset`` or a ``zarr.Array`` (checked
    without importing h5py or zarr: an object of theirs exists only once they are imported)."""
    if isinstance(X, np.memmap):
        return True
    for module, attribute in (("h5py", "Dataset"), ("zarr", "Array")):
        cls = getattr(sys.modules.get(module), attribute, None)
        if isinstance(cls, type) and isinstance(X, cls):
            return True
    return False


def chunk_rows(n_features: int) -> int:
    """Rows per chunk: as many as fit :data:`CHUNK_BYTES` in float64, at least one."""
    return max(1, int(CHUNK_BYTES) // (8 * max(1, int(n_features))))


@dataclass(frozen=True)
class RowSource:
    """A 2-D array read in row chunks, checked from its metadata by :func:`row_source`.

    Attributes
    ----------
    array : np.memmap, h5py.Dataset, zarr.Array, ndarray or scipy sparse matrix
    shape : tuple of (n_samples, n_features)
    dtype : numpy.dtype
        The stored dtype.
    name : str
        How messages name the input.
    """

    array: Any
    shape: tuple
    dtype: np.dtype
    name: str = "X"

    ndim = 2

    @property
    def n_samples(self) -> int:
        return self.shape[0]

    @property
    def n_features(self) -> int:
        return self.shape[1]

    @property
    def out_of_core(self) -> bool:
        """Whether the array lives outside memory (memmap, h5py, zarr)."""
        return is_out_of_core(self.array)

    @property
    def chunk_rows(self) -> int:
        return chunk_rows(self.n_features)

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(first_row, block)`` for each row chunk in order: ``block`` a dense ndarray of
        the stored dtype, its values checked. For a memmap it is a view, valid until the next
        block (its pages then leave this process's resident memory): copy what you keep."""
        step = self.chunk_rows
        for lo in range(0, self.n_samples, step):
            hi = min(lo + step, self.n_samples)
            block = self.array[lo:hi]
            block = block.toarray() if sp.issparse(block) else np.asarray(block)
            if block.dtype.kind == "f":
                error = finite_rows_error(block, lo, self.name, fix=_FIX_NONFINITE)
                if error is not None:
                    raise error
            yield lo, block
            _release_pages(self.array, block)
            del block  # before the next read: one block at a time


def row_source(X: Any, *, name: str = "X", min_samples: int = 2) -> RowSource:
    """Check ``X``'s metadata (never its values: :meth:`RowSource.blocks` does, chunk by chunk).

    Rejects, each with its own message: a dtype that is not real numbers, a shape that is not
    2-D, fewer than ``min_samples`` rows, zero columns.
    """
    shape = tuple(int(s) for s in X.shape)
    dtype = np.dtype(X.dtype)
    what = f"The input {name} ({type(X).__module__.split('.')[0]} {type(X).__name__})"
    if dtype.kind == "c":
        raise GidrValueError(format_error(what, "a real-valued array", Described(f"dtype {dtype}"),
                                          "Store the real part, the modulus, or both as columns."))
    if dtype.kind not in "fiub":
        raise GidrValueError(format_error(what, "an array of real or integer numbers", Described(f"dtype {dtype}"),
                                          "Store the data as numbers, e.g. float32."))
    if len(shape) != 2:
        raise GidrValueError(format_error(what, "a 2-D array of shape (n_samples, n_features)",
                                          Described(f"an array with {len(shape)} dimension(s), shape {shape}"),
                                          "Store it as (n_samples, n_features), one row per sample."))
    if shape[0] < min_samples:
        raise GidrValueError(format_error(what, f"an array with at least {min_samples} samples",
                                          Described(f"{shape[0]} sample(s)"), "An embedding needs at least two points."))
    if shape[1] < 1:
        raise GidrValueError(format_error(what, "an array with at least 1 feature", Described(f"shape {shape}")))
    return RowSource(X, shape, dtype, name)


def load_float32(source: RowSource) -> np.ndarray:
    """The whole input as one C-contiguous float32 array, filled chunk by chunk (no float64
    copy). A float64 value beyond float32's range is refused with its row."""
    out = np.empty(source.shape, dtype=np.float32)
    for lo, block in source.blocks():
        rows = out[lo:lo + len(block)]
        with np.errstate(over="ignore"):
            rows[...] = block
        narrowed = block.dtype.itemsize > 4 and block.dtype.kind == "f"
        del block
        if narrowed and not np.isfinite(rows).all():
            row = lo + int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])
            raise GidrValueError(format_error(
                f"The input {source.name}", "values within float32's range (gidr reads it as float32)",
                Described(f"a value beyond +-3.4e38 in row {row}"), "Rescale the data, or pass pca=50."))
    return out


# ---------------------------------------------------------------------- PCA
@dataclass(frozen=True)
class PCAResult:
    """The outcome of :func:`chunked_pca`.

    Attributes
    ----------
    scores : ndarray of shape (n_samples, n_components), float32
        The centred rows projected on the principal axes.
    mean : ndarray of shape (n_features,), float64
    components : ndarray of shape (n_components, n_features), float64
        The principal axes (unit rows), by decreasing variance.
    explained_variance : ndarray of shape (n_components,)
        The variance along each axis (denominator n - 1, as scikit-learn).
    explained_variance_ratio : ndarray of shape (n_components,)
        Each axis's share of the total variance.
    method : str
        ``"covariance_eigh"`` or ``"randomized"``.
    chunk_rows : int
        Rows per chunk.
    """

    scores: np.ndarray
    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    method: str
    chunk_rows: int


def chunked_pca(source: RowSource, n_components: int, rng: np.random.Generator | None = None) -> PCAResult:
    """The top ``n_components`` principal components of ``source``, read in row chunks.

    Parameters
    ----------
    source : RowSource
        From :func:`row_source`.
    n_components : int
        In [1, min(n_samples, n_features)].
    rng : numpy.random.Generator, optional
        The random start of the randomized method (data wider than
        :data:`EXACT_MAX_FEATURES`); default seed 0.

    Returns
    -------
    PCAResult
    """
    n, d = source.shape
    k = int(n_components)
    if not 1 <= k <= min(n, d):
        raise GidrValueError(format_error(f"The 'pca' parameter for the input {source.name} of shape {source.shape}",
                                          f"an int in [1, {min(n, d)}] (min(n_samples, n_features))", k,
                                          "Ask for fewer components, or pca=None for no reduction."))
    if d <= EXACT_MAX_FEATURES:
        mean, values, vectors, total = _covariance_eigh(source, k)
        method = "covariance_eigh"
    else:
        mean, values, vectors, total = _randomized(source, k, rng if rng is not None else np.random.default_rng(0))
        method = "randomized"
    components = _flip_signs(vectors.T)
    values = np.maximum(values, 0.0)
    ratio = values / total if total > 0 else np.zeros_like(values)
    return PCAResult(pca_scores(source, mean, components), mean, components, values, ratio, method,
                     source.chunk_rows)


def pca_scores(source: RowSource, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """``(X - mean) @ components.T`` chunk by chunk, as float32 of shape (n_samples, k) (for
    new rows too, with a fitted ``mean`` and ``components``)."""
    axes = np.ascontiguousarray(np.asarray(components, dtype=np.float64).T)
    if axes.shape[0] != source.n_features:
        raise GidrValueError(format_error(f"The input {source.name}", f"{axes.shape[0]} features (the fitted PCA's)",
                                          Described(f"{source.n_features}")))
    scores = np.empty((source.n_samples, axes.shape[1]), dtype=np.float32)
    for lo, block in source.blocks():
        Z = np.array(block, dtype=np.float64)
        del block
        Z -= mean
        scores[lo:lo + len(Z)] = Z @ axes
        del Z  # before the next chunk's copy
    return scores


@dataclass
class _Moments:
    """Column sums and sums of squares of ``Z = X - shift`` (``shift``: the first chunk's mean)."""

    shift: np.ndarray | None = None
    sums: np.ndarray | None = None
    squares: np.ndarray | None = None
    n: int = 0

    def add(self, block: np.ndarray) -> np.ndarray:
        """``Z`` of one block (a float64 copy), its moments added."""
        Z = np.array(block, dtype=np.float64)
        if self.shift is None:
            self.shift = Z.mean(axis=0)
            self.sums, self.squares = np.zeros(Z.shape[1]), np.zeros(Z.shape[1])
        Z -= self.shift
        self.sums += Z.sum(axis=0)
        self.squares += np.einsum("ij,ij->j", Z, Z)
        self.n += len(Z)
        return Z

    @property
    def mean_shifted(self) -> np.ndarray:
        return self.sums / self.n

    @property
    def mean(self) -> np.ndarray:
        return self.shift + self.mean_shifted

    @property
    def total_variance(self) -> float:
        """The trace of the covariance (denominator n - 1)."""
        m = self.mean_shifted
        return float(np.sum(self.squares - self.n * m * m) / max(self.n - 1, 1))


def _covariance_eigh(source: RowSource, k: int):
    """``(mean, top k variances, their axes as columns (d, k), total variance)`` from one pass:
    the scatter ``sum Z^T Z - n m m^T`` of the shifted rows, eigendecomposed."""
    moments, gram = _Moments(), np.zeros((source.n_features, source.n_features))
    for _, block in source.blocks():
        Z = moments.add(block)
        del block
        gram += Z.T @ Z
        del Z  # before the next chunk's copy
    m = moments.mean_shifted
    covariance = (gram - moments.n * np.outer(m, m)) / max(moments.n - 1, 1)
    del gram
    with _one_blas_thread():
        values, vectors = np.linalg.eigh(covariance)
    return moments.mean, values[::-1][:k], vectors[:, ::-1][:, :k], moments.total_variance


def _randomized(source: RowSource, k: int, rng: np.random.Generator):
    """The same from subspace iteration on the covariance: each pass multiplies the current
    orthonormal basis ``Q`` (d, l) by the scatter (``sum Z^T (Z Q) - n m (m^T Q)``)."""
    n, d = source.shape
    width = min(d, n, k + max(N_OVERSAMPLES, k))
    Q = _orthonormal(rng.standard_normal((d, width)))
    for iteration in range(N_POWER_ITERATIONS + 1):
        moments, product = _Moments(), np.zeros((d, width))
        for _, block in source.blocks():
            Z = moments.add(block)
            del block
            product += Z.T @ (Z @ Q)
            del Z  # before the next chunk's copy
        m = moments.mean_shifted
        product -= moments.n * np.outer(m, m @ Q)
        if iteration < N_POWER_ITERATIONS:
            Q = _orthonormal(product)
    H = Q.T @ product
    with _one_blas_thread():
        values, vectors = np.linalg.eigh((H + H.T) / 2)
    axes = Q @ vectors[:, ::-1][:, :k]
    return moments.mean, values[::-1][:k] / max(n - 1, 1), axes, moments.total_variance


def _orthonormal(A: np.ndarray) -> np.ndarray:
    with _one_blas_thread():
        return np.linalg.qr(A)[0]


def _flip_signs(components: np.ndarray) -> np.ndarray:
    """Each row's largest-magnitude entry made positive (the first of equal magnitudes)."""
    rows = np.arange(len(components))
    signs = np.sign(components[rows, np.argmax(np.abs(components), axis=1)])
    signs[signs == 0] = 1.0
    return np.ascontiguousarray(components * signs[:, None])


def _one_blas_thread():
    """A context limiting BLAS to one thread (no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _release_pages(array: Any, block: np.ndarray) -> None:
    """Drop the pages of a memmap ``block`` from this process's resident memory once read: the
    kernel counts a mapped file's pages in it (``VmHWM``) until they are evicted. Only for
    shared mappings (modes ``r``, ``r+`` and ``w+``), whose pages stay in the page cache and in the
    file; a copy-on-write mapping (``c``) would lose its changes, so it is left alone."""
    if not isinstance(array, np.memmap) or array.mode not in ("r", "r+", "w+"):
        return
    buffer = getattr(array, "_mmap", None)
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if buffer is None or advice is None or not hasattr(buffer, "madvise") or not block.flags.c_contiguous:
        return
    try:
        base = np.frombuffer(buffer, dtype=np.uint8).ctypes.data
        start = block.ctypes.data - base
        end = min(start + block.nbytes, len(buffer))
        start -= start % mmap.PAGESIZE
        if 0 <= start < end:
            buffer.madvise(advice, start, end - start)
    except (ValueError, OSError, TypeError):  # a closed or foreign mapping: nothing to release
        return
