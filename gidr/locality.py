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

import numpy as np
import scipy.sparse as sp

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
    """``P[order][:, order]`` with sorted indices, without scipy's column fancy indexing (a
    sparse product): the rows are gathered, their column numbers mapped through ``inverse``,
    and each row sorted."""
    rows = P.tocsr()[order]
    renumbered = sp.csr_matrix((rows.data, inverse[rows.indices].astype(rows.indices.dtype, copy=False),
                                rows.indptr), shape=P.shape)
    renumbered.has_sorted_indices = False
    renumbered.sort_indices()
    return renumbered
