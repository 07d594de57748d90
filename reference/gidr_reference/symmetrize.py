"""Symmetrization of directed similarities p_{j|i} into P (SPEC §3).

Every function returns a new CSR matrix with sorted indices, no explicit zeros and
nothing on the diagonal; the input is never modified. The elementwise formulas are
written with commuting operations only, so ``P[i, j] == P[j, i]`` holds bit for bit.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["clean", "fuzzy_union", "mean", "maximum", "directed"]


def clean(P: sp.spmatrix) -> sp.csr_matrix:
    """A float64 CSR copy of ``P`` without diagonal entries, explicit zeros or duplicates.

    Parameters
    ----------
    P : sparse matrix of shape (n_samples, n_samples)

    Returns
    -------
    csr_matrix of shape (n_samples, n_samples), sorted indices
    """
    coo = sp.coo_matrix(P, dtype=np.float64, copy=True)
    coo.sum_duplicates()
    keep = (coo.row != coo.col) & (coo.data != 0)
    out = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=coo.shape)
    out.sort_indices()
    return out


def fuzzy_union(P_directed: sp.spmatrix, set_op_mix_ratio: float = 1.0) -> sp.csr_matrix:
    """UMAP's fuzzy set union: ``p_ij = p_{j|i} + p_{i|j} - p_{j|i} p_{i|j}``.

    With ``set_op_mix_ratio = m < 1`` (umap-learn's parameter), the union is mixed with the
    fuzzy intersection ``p_{j|i} p_{i|j}``: ``m * union + (1 - m) * intersection``.

    Parameters
    ----------
    P_directed : sparse matrix of shape (n_samples, n_samples)
        Row i holds p_{j|i}.
    set_op_mix_ratio : float in [0, 1]

    Returns
    -------
    P : csr_matrix of shape (n_samples, n_samples), symmetric
    """
    A = clean(P_directed)
    At = A.T.tocsr()
    if set_op_mix_ratio == 1.0:
        return clean(A + At - A.multiply(At))
    product = A.multiply(At)
    return clean(set_op_mix_ratio * (A + At - product) + (1.0 - set_op_mix_ratio) * product)


def mean(P_directed: sp.spmatrix) -> sp.csr_matrix:
    """t-SNE's symmetrization (before normalization): ``p_ij = (p_{j|i} + p_{i|j}) / 2``.

    With rows of P_directed summing to 1, dividing by n_samples afterwards gives t-SNE's
    ``(p_{j|i} + p_{i|j}) / (2n)``; the pipeline's normalization does that.

    Parameters
    ----------
    P_directed : sparse matrix of shape (n_samples, n_samples)

    Returns
    -------
    P : csr_matrix of shape (n_samples, n_samples), symmetric
    """
    A = clean(P_directed)
    return clean((A + A.T.tocsr()) * 0.5)


def maximum(P_directed: sp.spmatrix) -> sp.csr_matrix:
    """The larger direction: ``p_ij = max(p_{j|i}, p_{i|j})`` (an entry stored in one
    direction only counts as 0 in the other). With uniform rows of k neighbours
    (openTSNE's ``Uniform(symmetrize="max")``) every edge of the kNN graph, listed in
    either direction, gets the same value 1/k.

    Parameters
    ----------
    P_directed : sparse matrix of shape (n_samples, n_samples)

    Returns
    -------
    P : csr_matrix of shape (n_samples, n_samples), symmetric
    """
    A = clean(P_directed)
    return clean(A.maximum(A.T.tocsr()))


def directed(P_directed: sp.spmatrix) -> sp.csr_matrix:
    """No symmetrization: ``p_ij = p_{j|i}``. The result is in general NOT symmetric.

    Kept for the paper's ablations (Table 2, "symmetrization"); stages downstream that
    need a symmetric matrix (e.g. the spectral init) symmetrize their own copy.

    Parameters
    ----------
    P_directed : sparse matrix of shape (n_samples, n_samples)

    Returns
    -------
    P : csr_matrix of shape (n_samples, n_samples)
    """
    return clean(P_directed)
