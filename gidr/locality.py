"""Renumbering the points for memory locality before the optimizer runs (issue #13, item 4).

An epoch reads the position of every stored edge's partner ``y_j``. In the caller's order
those partners are scattered over the whole embedding: once the embedding no longer fits a
core's cache (about 100,000 points of 2-D float64), almost every read is a cache miss. The
optimizer does not care how the points are numbered, so the pipeline renumbers them along a
Z-order (Morton) curve of the start layout: points near each other in the layout, which are
the graph's neighbours, get nearby numbers, and an edge's partner is mostly in a cache line
already read. The sampled negatives stay uniformly random (they are misses either way).

The optimizer runs on ``P[order][:, order]`` and ``Y0[order]``; what it returns, and every
embedding a callback sees, is put back in the caller's order. The renumbering changes which
random draws each point gets (the draws are keyed by point number), so the embedding differs
from the unrenumbered run's in its bits, not in its quality; it is a pure function of the
start layout, so a given ``random_state`` still gives the same bits with any number of threads.

Measured (Fashion-MNIST, the ``gdr-umap`` optimizer, one thread, CPU seconds, alternated):
70,000 points 3.20-3.28 s -> 2.72-2.88 s per 100 epochs; 1,000,000 points (50 PCs upsampled
along the manifold) 33.4-36.1 s -> 27.0-31.6 s per 20 epochs (``/tmp/bench/locality.py``;
see ``docs/performance.rst``).
"""
from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import scipy.sparse as sp

from gidr.types import Affinities

#: ``locality="auto"`` renumbers from this many points on: below it the embedding fits in a
#: core's cache and the renumbering would only cost its own time.
LOCALITY_MIN_POINTS = 50_000

#: The values of the pipeline's ``locality`` switch.
LOCALITY_OPTIONS = ("auto", "morton", "none")


def uses_renumbering(locality: str, n_samples: int) -> bool:
    """Whether the pipeline's ``locality`` switch renumbers a run of ``n_samples`` points."""
    return locality == "morton" or (locality == "auto" and n_samples >= LOCALITY_MIN_POINTS)


def morton_order(Y: np.ndarray) -> np.ndarray:
    """The permutation that sorts the rows of ``Y`` along a Z-order (Morton) curve.

    Each coordinate is quantized to ``63 // d`` bits (at most 21) over the layout's bounding
    box, the bits are interleaved into one 63-bit code per point, and the points are sorted by
    code (a stable sort: ties keep their order). A pure function of ``Y``'s values.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components)
        A finite layout.

    Returns
    -------
    order : ndarray of shape (n_samples,), int64
        ``Y[order]`` is the renumbered layout.
    """
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[0] == 0:
        raise ValueError(f"morton_order needs a non-empty 2-D layout, got shape {Y.shape}")
    d = Y.shape[1]
    bits = min(21, 63 // d)
    lo = Y.min(axis=0)
    extent = Y.max(axis=0) - lo
    extent[extent <= 0] = 1.0
    top = (1 << bits) - 1
    q = np.minimum(((Y - lo) / extent * top).astype(np.uint64), np.uint64(top))
    code = np.zeros(Y.shape[0], dtype=np.uint64)
    for bit in range(bits):
        for c in range(d):
            code |= ((q[:, c] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(bit * d + c)
    return np.argsort(code, kind="stable")


def inverse_permutation(order: np.ndarray) -> np.ndarray:
    """``inverse`` with ``inverse[order] = arange(n)``: ``Y_renumbered[inverse]`` is back in the
    caller's order."""
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size, dtype=order.dtype)
    return inverse


def renumbered_csr(P: sp.csr_matrix, order: np.ndarray, inverse: np.ndarray) -> sp.csr_matrix:
    """``P[order][:, order]`` with sorted indices (see :func:`renumbered_entries`)."""
    return renumbered_entries(P, order, inverse, with_entry_order=False)[0]


#: Stored entries renumbered per block of :func:`renumbered_entries` (bounds its temporaries).
RENUMBER_BLOCK_ENTRIES = 1 << 22


def renumbered_entries(P: sp.csr_matrix, order: np.ndarray, inverse: np.ndarray, *,
                       with_entry_order: bool = True) -> tuple[sp.csr_matrix, np.ndarray | None]:
    """``P[order][:, order]`` with sorted indices, and where each of its stored entries was.

    Built without scipy's column fancy indexing (a sparse product), in blocks of rows of at
    most :data:`RENUMBER_BLOCK_ENTRIES` entries: a block's rows are gathered, their column
    numbers mapped through ``inverse``, and each row sorted by scipy's in-place row sort,
    which carries each entry's old position along as its value. Beyond the result (and
    ``entry_order``), the temporaries are a block's: whole-matrix ones took about 2.5 times
    P's size at the optimizer's start (at 3,000,000 points the run's peak was there).

    Returns
    -------
    renumbered : csr_matrix
    entry_order : ndarray of shape (P.nnz,), int64, or None without ``with_entry_order``
        ``renumbered.data == P.data[entry_order]``: any array over P's stored entries (in CSR
        order) is renumbered as ``values[entry_order]``.
    """
    P = P.tocsr()
    n = P.shape[0]
    lengths = np.diff(P.indptr)[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    nnz = int(indptr[-1])
    indices = np.empty(nnz, dtype=P.indices.dtype)
    data = np.empty(nnz, dtype=P.data.dtype)
    entry_order = np.empty(nnz, dtype=np.int64) if with_entry_order else None
    first = P.indptr[order].astype(np.int64)  # where each new row's entries start in P
    row = 0
    while row < n:
        # the rows of this block: at least one, at most RENUMBER_BLOCK_ENTRIES entries beyond its first
        last = max(row + 1, int(np.searchsorted(indptr, indptr[row] + RENUMBER_BLOCK_ENTRIES, side="right")) - 1)
        last = min(last, n)
        lo, hi = int(indptr[row]), int(indptr[last])
        # the old position of each entry, row by row in the new order, before the row sort
        old = np.repeat(first[row:last] - indptr[row:last], lengths[row:last]) + np.arange(lo, hi, dtype=np.int64)
        block = sp.csr_matrix((old.astype(np.float64), inverse[P.indices[old]].astype(P.indices.dtype),
                               indptr[row:last + 1] - lo), shape=(last - row, n))  # positions < 2**53: exact
        block.has_sorted_indices = False
        block.sort_indices()
        moved = block.data.astype(np.int64)
        indices[lo:hi] = block.indices
        data[lo:hi] = P.data[moved]
        if entry_order is not None:
            entry_order[lo:hi] = moved
        row = last
    renumbered = sp.csr_matrix((data, indices, indptr.astype(P.indptr.dtype)), shape=P.shape)
    renumbered.has_sorted_indices = True
    return renumbered, entry_order


def renumbered_affinities(affinities: Affinities, order: np.ndarray, inverse: np.ndarray) -> Affinities:
    """``affinities`` with the points renumbered: P (:func:`renumbered_entries`) and, with
    densMAP, its :class:`~gidr.types.DensityTarget`'s per-entry (``entries``) and per-point
    (``rad_orig``, ``standardized``, ``active``) arrays."""
    density = affinities.density
    P, entry_order = renumbered_entries(affinities.P, order, inverse, with_entry_order=density is not None)
    if density is not None:
        density = dataclasses.replace(density, entries=density.entries[entry_order],
                                      rad_orig=density.rad_orig[order], standardized=density.standardized[order],
                                      active=density.active[order])
    return Affinities(P, affinities.normalized, density=density)


#: P's stored entries (indices and values) take at least this many bytes for
#: :func:`set_aside` to free them while the optimizer runs: below, their rebuild (1.4 s for
#: 18.6 million entries) would cost more than the memory is worth.
SET_ASIDE_MIN_BYTES = 2**29


def can_set_aside(P: sp.csr_matrix) -> bool:
    """Whether :func:`set_aside` frees P: canonical CSR (sorted, no duplicates, so that the
    rebuild gives its arrays back bit for bit) of at least :data:`SET_ASIDE_MIN_BYTES`."""
    return (sp.isspmatrix_csr(P) and bool(P.has_canonical_format)
            and P.indices.nbytes + P.data.nbytes >= SET_ASIDE_MIN_BYTES)


@contextlib.contextmanager
def set_aside(P: sp.csr_matrix, renumbered: sp.csr_matrix, order: np.ndarray, inverse: np.ndarray):
    """Free P's arrays while the block runs on ``renumbered = P[order][:, order]``, then give
    them back, rebuilt as ``renumbered[inverse][:, inverse]`` (:func:`renumbered_entries`:
    the same indptr, indices and values, bit for bit, in arrays of the same types).

    The optimizer reads only the renumbered copy, so the caller's-order P is dead weight at
    its peak: 12 bytes per stored entry, 2.6 GB at 10,000,000 points. ``P`` (the same object,
    wherever it is referenced) is rebuilt even when the block raises. Nothing is set aside
    unless :func:`can_set_aside`.
    """
    if not can_set_aside(P):
        yield
        return
    dtypes = (P.indptr.dtype, P.indices.dtype, P.data.dtype)
    P.indptr, P.indices, P.data = (np.zeros(P.shape[0] + 1, dtype=dtypes[0]), np.empty(0, dtype=dtypes[1]),
                                   np.empty(0, dtype=dtypes[2]))
    try:
        yield
    finally:
        back = renumbered_csr(renumbered, inverse, order)
        P.indptr, P.indices, P.data = (back.indptr.astype(dtypes[0], copy=False),
                                       back.indices.astype(dtypes[1], copy=False),
                                       back.data.astype(dtypes[2], copy=False))
        P.has_sorted_indices = True
