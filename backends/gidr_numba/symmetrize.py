"""Symmetrization of directed similarities on CSR, in numba (SPEC §3).

The reference (:mod:`gidr_reference.symmetrize`) chains SciPy's sparse additions,
products and a COO round trip (several sorts and copies). Here one pass merges row i of
A with row i of A^T (both sorted) into the union of their columns, in parallel over
rows, giving two aligned value arrays ``a = p_{j|i}`` and ``b = p_{i|j}`` (0 where the
edge is missing); the formulas are then one vectorized expression:

* ``fuzzy_union``: ``(a + b) - a * b``;
* ``mean``: ``(a + b) * 0.5``.

With ``b = 0`` both reduce to the reference's value exactly, and ``+`` and ``*``
commute, so the result equals the reference's bit for bit, and ``P[i, j] == P[j, i]``.
The output has sorted indices, no diagonal and no explicit zeros; the input is never
modified.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from gidr_reference.symmetrize import clean

__all__ = ["fuzzy_union", "mean"]


@njit(cache=True)
def _transpose(indptr, indices, data, n_cols):
    """CSR of the transpose (counting sort by column; rows come out sorted)."""
    counts = np.zeros(n_cols + 1, dtype=np.int64)
    for c in indices:
        counts[c + 1] += 1
    t_ptr = np.cumsum(counts)
    cursor = t_ptr[:-1].copy()
    t_idx = np.empty(indices.shape[0], dtype=np.int64)
    t_val = np.empty(indices.shape[0], dtype=np.float64)
    for row in range(indptr.shape[0] - 1):
        for s in range(indptr[row], indptr[row + 1]):
            c = indices[s]
            t_idx[cursor[c]] = row
            t_val[cursor[c]] = data[s]
            cursor[c] += 1
    return t_ptr, t_idx, t_val


@njit(cache=True)
def _merge_row(idx_a, val_a, idx_b, val_b, out_idx, out_a, out_b):
    """Union of two sorted index lists; returns its length (writes only when out is non-empty)."""
    write = out_idx.shape[0] > 0
    p, q, m = 0, 0, 0
    while p < idx_a.shape[0] or q < idx_b.shape[0]:
        take_a = q >= idx_b.shape[0] or (p < idx_a.shape[0] and idx_a[p] <= idx_b[q])
        take_b = p >= idx_a.shape[0] or (q < idx_b.shape[0] and idx_b[q] <= idx_a[p])
        if write:
            out_idx[m] = idx_a[p] if take_a else idx_b[q]
            out_a[m] = val_a[p] if take_a else 0.0
            out_b[m] = val_b[q] if take_b else 0.0
        p += take_a
        q += take_b
        m += 1
    return m


@njit(cache=True, parallel=True)
def _union(indptr, indices, data, t_ptr, t_idx, t_val):
    """Rows of A and A^T merged: (indptr, indices, a, b) of their union."""
    n = indptr.shape[0] - 1
    counts = np.zeros(n + 1, dtype=np.int64)
    empty_i, empty_v = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    for i in prange(n):
        counts[i + 1] = _merge_row(indices[indptr[i]:indptr[i + 1]], data[indptr[i]:indptr[i + 1]],
                                   t_idx[t_ptr[i]:t_ptr[i + 1]], t_val[t_ptr[i]:t_ptr[i + 1]],
                                   empty_i, empty_v, empty_v)
    out_ptr = np.cumsum(counts)
    out_idx = np.empty(out_ptr[-1], dtype=np.int64)
    out_a = np.empty(out_ptr[-1], dtype=np.float64)
    out_b = np.empty(out_ptr[-1], dtype=np.float64)
    for i in prange(n):
        lo, hi = out_ptr[i], out_ptr[i + 1]
        _merge_row(indices[indptr[i]:indptr[i + 1]], data[indptr[i]:indptr[i + 1]],
                   t_idx[t_ptr[i]:t_ptr[i + 1]], t_val[t_ptr[i]:t_ptr[i + 1]],
                   out_idx[lo:hi], out_a[lo:hi], out_b[lo:hi])
    return out_ptr, out_idx, out_a, out_b


def _canonical(P: sp.spmatrix) -> sp.csr_matrix:
    """``P`` itself when it is already what the reference's ``clean`` returns (float64 CSR,
    sorted, no duplicates, no diagonal, no zeros), else ``clean(P)``."""
    if sp.isspmatrix_csr(P) and P.dtype == np.float64 and P.has_canonical_format:
        rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
        if not np.any(P.data == 0) and not np.any(rows == P.indices):
            return P
    return clean(P)


def _aligned(P_directed: sp.spmatrix):
    """``(indptr, indices, a, b)``: the union pattern of A and A^T with a = A, b = A^T on it."""
    A = _canonical(P_directed)
    indptr = A.indptr.astype(np.int64)
    indices = A.indices.astype(np.int64)
    t_ptr, t_idx, t_val = _transpose(indptr, indices, A.data, A.shape[1])
    return _union(indptr, indices, A.data, t_ptr, t_idx, t_val)


def _csr(shape, indptr, indices, values) -> sp.csr_matrix:
    """CSR from a sorted pattern, dropping the entries whose value is 0."""
    keep = values != 0
    if not keep.all():
        rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=shape[0]))])
        indices, values = indices[keep], values[keep]
    P = sp.csr_matrix((values, indices, indptr), shape=shape)
    P.has_sorted_indices = True
    return P


def fuzzy_union(P_directed: sp.spmatrix, set_op_mix_ratio: float = 1.0) -> sp.csr_matrix:
    """UMAP's fuzzy set union ``p_ij = p_{j|i} + p_{i|j} - p_{j|i} p_{i|j}``, mixed with the
    intersection ``p_{j|i} p_{i|j}`` for ``set_op_mix_ratio < 1`` (the reference's formula).

    Parameters
    ----------
    P_directed : sparse matrix of shape (n_samples, n_samples)
        Row i holds p_{j|i}.

    Returns
    -------
    P : csr_matrix of shape (n_samples, n_samples), symmetric
    """
    indptr, indices, a, b = _aligned(P_directed)
    if set_op_mix_ratio == 1.0:
        return _csr(P_directed.shape, indptr, indices, (a + b) - a * b)
    product = a * b
    return _csr(P_directed.shape, indptr, indices,
                set_op_mix_ratio * ((a + b) - product) + (1.0 - set_op_mix_ratio) * product)


def mean(P_directed: sp.spmatrix) -> sp.csr_matrix:
    """t-SNE's symmetrization (before normalization): ``p_ij = (p_{j|i} + p_{i|j}) / 2``.

    Parameters
    ----------
    P_directed : sparse matrix of shape (n_samples, n_samples)

    Returns
    -------
    P : csr_matrix of shape (n_samples, n_samples), symmetric
    """
    indptr, indices, a, b = _aligned(P_directed)
    return _csr(P_directed.shape, indptr, indices, (a + b) * 0.5)
