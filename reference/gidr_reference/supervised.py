"""Supervised and semi-supervised P: the data's graph combined with a graph of the targets y.

umap-learn's model (McInnes et al., the "supervised UMAP" of its documentation), written for
gidr's symmetric P:

Categorical targets (``target_metric="categorical"``)
    every stored edge ``(i, j)`` of P is multiplied by ``exp(-far)`` when both labels are known
    and differ, and by ``exp(-unknown)`` (``unknown = 1``) when either label is unknown (-1);
    ``far = 2.5 / (1 - target_weight)`` (``1e12`` for ``target_weight = 1``), so that
    ``target_weight = 0.5`` scales an edge between two classes by ``exp(-5)``.
Continuous targets (any other metric)
    the target graph T is the fuzzy graph of y (same similarity as the data's, with
    ``target_n_neighbors``); on the union of the two patterns, with ``p`` and ``t`` the values
    (a missing one replaced by a floor: half the smallest stored value, at least 1e-8, and for
    T at most 1e-4), an entry where either exceeds its floor becomes
    ``p * t**(w / (1 - w))`` for ``w < 0.5`` and ``p**((1 - w) / w) * t`` otherwise; an entry
    where neither does keeps the plain sum of the stored values. (P's explicit zeros are
    removed first: gidr's P stores none; umap-learn's graph may, and reads them as 0.)

Either way the result is then given back its local connectivity (:func:`reset_local_connectivity`):
each row scaled so that its largest entry is 1, then the fuzzy union ``A + A^T - A * A^T``.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from gidr_reference.symmetrize import clean, fuzzy_union

__all__ = ["far_distance", "categorical_intersection", "general_intersection", "reset_local_connectivity",
           "rows_scaled_to_max", "stored_floor", "pattern_values", "UNKNOWN_DISTANCE"]

#: The distance of an unknown label (-1) from any label.
UNKNOWN_DISTANCE = 1.0


def far_distance(target_weight: float) -> float:
    """The distance between two different known labels for ``target_weight`` in [0, 1]."""
    return 2.5 / (1.0 - target_weight) if target_weight < 1.0 else 1.0e12


def rows_scaled_to_max(P: sp.spmatrix) -> sp.csr_matrix:
    """A :func:`~gidr_reference.symmetrize.clean` copy of ``P`` with each row scaled to a
    largest entry of 1 (empty rows stay empty)."""
    A = clean(P)
    row_max = np.zeros(A.shape[0])
    nonempty = np.diff(A.indptr) > 0
    row_max[nonempty] = np.maximum.reduceat(A.data, A.indptr[:-1][nonempty])
    A.data /= np.repeat(np.where(row_max > 0, row_max, 1.0), np.diff(A.indptr))
    return A


def reset_local_connectivity(P: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to a largest entry of 1 (:func:`rows_scaled_to_max`), then the fuzzy union
    with the transpose (:func:`gidr_reference.symmetrize.fuzzy_union`); sorted indices,
    explicit zeros removed."""
    return fuzzy_union(rows_scaled_to_max(P))


def categorical_intersection(P: sp.spmatrix, codes: np.ndarray, target_weight: float,
                             unknown_distance: float = UNKNOWN_DISTANCE, *, reset: bool = True) -> sp.csr_matrix:
    """P's edges scaled by the labels' agreement (see the module docstring).

    Parameters
    ----------
    P : sparse matrix of shape (n, n)
    codes : ndarray of shape (n,), int
        One code per point; -1 marks an unknown label.
    target_weight : float in [0, 1]
    reset : bool
        Apply :func:`reset_local_connectivity` (umap-learn's graph); False keeps the scaled P
        (a normalized pipeline's).
    """
    P = sp.coo_matrix(P, dtype=np.float64, copy=True)
    ci, cj = codes[P.row], codes[P.col]
    unknown = (ci == -1) | (cj == -1)
    differ = ~unknown & (ci != cj)
    P.data[unknown] *= np.exp(-unknown_distance)
    P.data[differ] *= np.exp(-far_distance(target_weight))
    return reset_local_connectivity(P) if reset else clean(P)


def stored_floor(values: np.ndarray, cap: float | None = None) -> float:
    """The value read for an entry a graph does not store: half its smallest stored value, at
    least 1e-8 and at most ``cap``."""
    low = max(float(values.min()) / 2.0, 1.0e-8) if values.size else 1.0e-8
    return min(low, cap) if cap is not None else low


def pattern_values(P: sp.spmatrix, T: sp.spmatrix):
    """``(rows, cols, p, t)``: the entries of the union of the two patterns and each graph's
    stored value there (0 where it stores none)."""
    pattern = (abs(P) + abs(T)).tocoo()
    rows, cols = pattern.row, pattern.col
    return (rows, cols, np.asarray(P[rows, cols], dtype=np.float64).ravel(),
            np.asarray(T[rows, cols], dtype=np.float64).ravel())


def general_intersection(P: sp.spmatrix, T: sp.spmatrix, target_weight: float, *,
                         reset: bool = True) -> sp.csr_matrix:
    """The data's graph ``P`` and the targets' graph ``T`` combined with weight ``target_weight``
    (see the module docstring), then :func:`reset_local_connectivity` when ``reset``."""
    P, T = clean(P), clean(T)
    p_floor, t_floor = stored_floor(P.data), stored_floor(T.data, cap=1.0e-4)
    rows, cols, p_stored, t_stored = pattern_values(P, T)
    p = np.where(p_stored != 0, p_stored, p_floor)
    t = np.where(t_stored != 0, t_stored, t_floor)
    w = float(target_weight)
    if w < 0.5:
        values = p * t ** (w / (1.0 - w))
    else:
        values = p ** ((1.0 - w) / w) * t
    # an entry where neither value exceeds its floor keeps the plain sum (umap-learn's rule)
    keep = (p > p_floor) | (t > t_floor)
    combined = sp.csr_matrix((np.where(keep, values, p_stored + t_stored), (rows, cols)), shape=P.shape)
    return reset_local_connectivity(combined) if reset else clean(combined)
