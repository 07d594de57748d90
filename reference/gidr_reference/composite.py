"""Fuzzy graphs of two fits on the same points combined: umap-learn's composite models.

``umap1 + umap2``, ``umap1 * umap2`` and ``umap1 - umap2`` combine the two models' fuzzy graphs
P and Q (symmetric, entries in (0, 1]) on the union of their patterns and embed the result.
A value one graph does not store is read as its floor: half its smallest stored value, at
least 1e-8 (for the right-hand graph of ``*`` also at most 1e-4), as umap-learn does, so that an edge only one model has is kept, weakly. With ``p`` and ``q`` the two values
of an entry:

``union`` (``+``)
    ``p + q - p q``.
``intersection`` (``*``)
    ``p q`` where either value exceeds its floor, else the plain sum of the stored values
    (umap-learn's rule, the supervised graph's with weight 0.5:
    :func:`gidr_reference.supervised.general_intersection`).
``difference`` (``-``)
    ``p (1 - q)``: the first graph's edges that the second does not have. A value the second
    graph does not store is read as 0 (so ``1 - q = 1``: the edge is kept whole).
    umap-learn reads it as the floor of ``1 - q`` instead, which makes an edge the second
    model lacks as weak as one it is sure of.

Then each row is scaled to a largest entry of 1 and, for ``+`` and ``*``, raised to the power
that makes its sum ``log2(15)`` (umap-learn's ``reset_local_metrics``: the combined rows get
the spread of a 15-neighbour fuzzy set again), and the graph is symmetrized by the fuzzy union
``A + A^T - A * A^T`` (:func:`gidr_reference.supervised.reset_local_connectivity` without the
power).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from gidr_reference.supervised import (general_intersection, pattern_values, reset_local_connectivity,
                                      rows_scaled_to_max, stored_floor)
from gidr_reference.symmetrize import clean

__all__ = ["OPERATIONS", "combine", "rows_to_local_metric"]

#: The operations, by the operator that asks for them.
OPERATIONS = {"+": "union", "*": "intersection", "-": "difference"}
#: umap-learn's neighbour count for the rows' target sum log2(k) after a union or intersection.
TARGET_NEIGHBORS = 15
_BISECTION_STEPS = 64
_TOLERANCE = 1e-5


def rows_to_local_metric(data: np.ndarray, indptr: np.ndarray, k: int = TARGET_NEIGHBORS) -> np.ndarray:
    """Each row of a CSR matrix's ``data`` (values in (0, 1]) raised to the power ``m`` with
    ``sum(row**m) = log2(k)``: one bisection over all rows' powers at once (each row's sum
    falls as its power grows). A row that no power brings to the target, with too few values
    or too many equal to 1, is kept."""
    target = np.log2(k)
    lengths = np.diff(indptr)
    owner = np.repeat(np.arange(lengths.size), lengths)
    ones = np.bincount(owner, weights=(data >= 1.0).astype(np.float64), minlength=lengths.size)
    solvable = (lengths > target) & (ones < target)
    low, high = np.zeros(lengths.size), np.full(lengths.size, np.inf)
    power = np.ones(lengths.size)
    for _ in range(_BISECTION_STEPS):
        total = np.bincount(owner, weights=data ** power[owner], minlength=lengths.size)
        done = np.abs(total - target) < _TOLERANCE
        below = (total < target) & ~done  # too small: a smaller power raises values below 1
        above = (total >= target) & ~done
        high = np.where(below, power, high)
        low = np.where(above, power, low)
        power = np.where(done, power, np.where(np.isinf(high), power * 2.0, (low + high) / 2.0))
    return np.where(solvable[owner], data ** power[owner], data)


def combine(P: sp.spmatrix, Q: sp.spmatrix, operation: str) -> sp.csr_matrix:
    """The two fuzzy graphs combined by ``operation`` (``"union"``, ``"intersection"`` or
    ``"difference"``; see the module docstring): symmetric CSR, sorted indices, no diagonal."""
    if operation not in OPERATIONS.values():
        raise ValueError(f"operation must be one of {sorted(OPERATIONS.values())}; got {operation!r}")
    P, Q = clean(P), clean(Q)
    if operation == "intersection":  # the supervised graph's rule with weight 0.5: p q
        A = general_intersection(P, Q, 0.5, reset=False)
    else:
        rows, cols, p, q = pattern_values(P, Q)
        p = np.where(p != 0, p, stored_floor(P.data))
        if operation == "union":
            q = np.where(q != 0, q, stored_floor(Q.data))
            values = p + q - p * q
        else:
            values = p * (1.0 - q)  # q = 0 where Q stores no value
        A = clean(sp.csr_matrix((values, (rows, cols)), shape=P.shape))
    if operation != "difference":
        A = rows_scaled_to_max(A)
        A.data = rows_to_local_metric(A.data, A.indptr)
    return reset_local_connectivity(A)
