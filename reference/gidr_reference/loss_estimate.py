"""A loss value for progress reports on inputs too large for the exact O(n^2) value.

Each loss writes its value as sums of per-edge and per-pair terms
(:meth:`gidr.stages.Loss.value_edge_terms`, :meth:`~gidr.stages.Loss.value_pair_terms`,
:meth:`~gidr.stages.Loss.value_from_sums`); this module estimates those sums and is the
one estimator every optimizer (reference and numba) uses:

- the edge sums are exact over the stored entries of P when ``n <= MAX_ROWS``; above, over
  the rows of ``MAX_ROWS`` random points, scaled by ``n / MAX_ROWS``;
- the pair sums are estimated from ``m_i = max(nnz_i, 1)`` uniform draws ``k != i`` per
  chosen row ``i``, each weighted ``(n - 1) / m_i`` (and by ``n / rows`` when rows are
  sampled): unbiased for the sums over all ordered pairs.

Draws come from ``np.random.default_rng([seed, epoch])``: the same (seed, epoch) gives the
same estimate. A loss without value terms reports its exact value up to
:data:`EXACT_MAX_SAMPLES` points, and NaN above.
"""
from __future__ import annotations

import numpy as np

from gidr.types import Affinities, Context

__all__ = ["estimate_loss", "EXACT_MAX_SAMPLES", "MAX_ROWS"]

#: Largest n for which a loss without value terms reports its exact O(n^2) value.
EXACT_MAX_SAMPLES = 3000
#: Rows read by one estimate: 3,000 rows (about 65,000 stored entries of a 15-NN graph, and
#: as many pair draws) cost 5 ms a call; 10,000 cost 15 ms, 20 calls adding 0.3 s to a 2 s
#: gdr-tsne run at 20,000 points. The monitor needs a trend, not four digits.
MAX_ROWS = 3_000


def estimate_loss(loss, affinities: Affinities, Y: np.ndarray, ctx: Context, epoch: int) -> float:
    """An estimate of ``loss.value(affinities.P, Y, ctx)`` (see the module docstring)."""
    P = affinities.P
    n = Y.shape[0]
    probe = loss.value_edge_terms(np.zeros(1), np.zeros(1), ctx) if n >= 2 else None
    if probe is None:
        return float(loss.value(P, Y, ctx)) if n <= EXACT_MAX_SAMPLES else float("nan")
    rng = np.random.default_rng([ctx.seed, epoch])
    rows = np.arange(n) if n <= MAX_ROWS else np.sort(rng.choice(n, MAX_ROWS, replace=False))
    counts = np.diff(P.indptr)[rows]
    owner = np.repeat(rows, counts)
    entries = _row_entries(P.indptr, rows, counts)
    cols, p = P.indices[entries], P.data[entries]
    edge_sums = loss.value_edge_terms(_squared(Y, owner, cols), p, ctx).sum(axis=0) * (n / rows.size)
    draws = np.maximum(counts, 1)
    source = np.repeat(rows, draws)
    other = (source + rng.integers(1, n, size=source.size)) % n  # uniform over k != i
    # each row's draws stand for its n - 1 pairs (unbiased whatever the rows' draw counts)
    per_draw = np.repeat((n - 1) / draws, draws) * (n / rows.size)
    # a weighted column sum, not ``per_draw @ terms``: a BLAS call here woke OpenBLAS's threads,
    # which then competed with numba's for the 2 cores and doubled the next epochs' kernels
    pair_sums = (per_draw[:, None] * loss.value_pair_terms(_squared(Y, source, other), ctx)).sum(axis=0)
    return float(loss.value_from_sums(edge_sums, pair_sums, ctx))


def _row_entries(indptr: np.ndarray, rows: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Positions in ``P.data`` of the stored entries of ``rows``, row after row."""
    starts = np.repeat(indptr[rows], counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return starts + offsets


def _squared(Y: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    diff = Y[i] - Y[j]
    return np.einsum("ij,ij->i", diff, diff)
