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

Discrete targets (``"ordinal"``, ``"count"``, ``"string"``: umap-learn's other discrete metrics)
    every stored edge ``(i, j)`` of P is multiplied by ``exp(-far * d(y_i, y_j))``, with the
    same ``far`` and a distance ``d`` whose parameters are read from y itself
    (:func:`discrete_parameters`; umap-learn's ``get_discrete_params`` ignores
    ``target_metric_kwds`` here too): :func:`ordinal_distance`, :func:`count_distance` and
    :func:`string_distance`. Two equal targets are at distance 0 (the edge is kept); the two
    extreme ordinal or count values are at distance 2.

Either way the result is then given back its local connectivity (:func:`reset_local_connectivity`):
each row scaled so that its largest entry is 1, then the fuzzy union ``A + A^T - A * A^T``.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.special import gammaln

from gidr_reference.symmetrize import clean, fuzzy_union

__all__ = ["far_distance", "categorical_intersection", "general_intersection", "reset_local_connectivity",
           "rows_scaled_to_max", "stored_floor", "pattern_values", "UNKNOWN_DISTANCE", "DISCRETE_METRICS",
           "ordinal_distance", "count_distance", "string_distance", "edit_distance", "discrete_parameters",
           "discrete_edge_distances", "discrete_intersection"]

#: The distance of an unknown label (-1) from any label.
UNKNOWN_DISTANCE = 1.0

#: umap-learn's discrete target metrics besides "categorical": one value per point, a distance
#: between two values whose parameters come from all of y.
DISCRETE_METRICS = ("ordinal", "count", "string")


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


def ordinal_distance(a: float, b: float, support_size: float) -> float:
    """umap-learn's ordinal distance ``d(a, b) = |a - b| / support_size``.

    :func:`discrete_parameters` sets ``support_size`` to half the range of y,
    ``(max(y) - min(y)) / 2``, so that the two extreme values are at distance 2.
    """
    return 0.0 if a == b else abs(a - b) / support_size


def poisson_surprisal(k: np.ndarray, poisson_lambda: float) -> np.ndarray:
    """``-log Pois(k; λ) = λ - k log λ + log k!``, elementwise over the counts ``k``."""
    k = np.asarray(k, dtype=np.float64)
    return poisson_lambda - k * math.log(poisson_lambda) + gammaln(k + 1.0)


def count_distance(a: int, b: int, poisson_lambda: float, normalisation: float) -> float:
    """umap-learn's count distance, a Poisson model of the counts:

    ``d(a, b) = (1 / normalisation) * sum_{k = min(a, b)}^{max(a, b) - 1} -log Pois(k; λ)``

    the surprisal (:func:`poisson_surprisal`) of the counts one passes on the way from one to
    the other. Each term is positive, so the distance grows with the gap, and faster through
    counts that are unlikely under ``λ``. :func:`discrete_parameters` sets ``λ`` to the mean of
    y and ``normalisation`` to half the distance between ``min(y)`` and ``max(y)``, which are
    then at distance 2.

    umap-learn 0.5.12 (``umap.distances.count_distance``) means this sum, but its loop
    accumulates ``log (k-1)!`` in place of ``log k!`` (below 10), switches to
    ``log Gamma(lo + 1)`` from 10 on, and adds ``log 0`` at ``k = 0``: its distances can be
    negative, and any pair that spans 0 to 2 is ``nan``. gidr computes the sum as written.
    """
    lo, hi = int(min(a, b)), int(max(a, b))
    return float(poisson_surprisal(np.arange(lo, hi), poisson_lambda).sum()) / normalisation


def edit_distance(a: str, b: str, max_distance: float = math.inf) -> float:
    """The Levenshtein distance between ``a`` and ``b`` (insertions, deletions and
    substitutions of one character, each costing 1), with umap-learn's early exit.

    The table row ``i`` holds the distances from ``a[:i]`` to every prefix of ``b``. The result
    is ``max_distance`` when the lengths differ by more than ``max_distance`` or when a whole
    row exceeds it (the distance can only be larger); otherwise it is the distance itself,
    which can then exceed ``max_distance`` (umap-learn's ``levenshtein`` does the same).
    """
    if abs(len(a) - len(b)) > max_distance:
        return float(max_distance)
    previous = np.arange(len(b) + 1, dtype=np.float64)  # from "" to b[:j]: j insertions
    for i, char in enumerate(a):
        current = np.empty_like(previous)
        current[0] = i + 1  # from a[:i + 1] to "": i + 1 deletions
        for j, other in enumerate(b):
            current[j + 1] = min(previous[j + 1] + 1.0, current[j] + 1.0, previous[j] + (char != other))
        if current.min() > max_distance:
            return float(max_distance)
        previous = current
    return float(previous[-1])


def string_distance(a: str, b: str, normalisation: float, max_distance: float) -> float:
    """umap-learn's string distance ``d(a, b) = edit_distance(a, b, max_distance) / normalisation``
    (:func:`edit_distance`). :func:`discrete_parameters` sets both ``normalisation`` and
    ``max_distance`` to a third of the longest string's length, so any two strings that differ
    in most of their characters are at distance 1: short labels act as categories."""
    return 0.0 if a == b else edit_distance(a, b, max_distance) / normalisation


def discrete_parameters(values: np.ndarray, metric: str) -> dict:
    """The parameters of ``metric``'s distance, read from all the targets ``values`` as
    umap-learn's ``get_discrete_params`` reads them.

    ordinal
        ``support_size = (max - min) / 2``.
    count
        ``poisson_lambda = mean``, ``normalisation = count_distance(min, max, λ, 1) / 2``.
    string
        ``normalisation = max_distance = L / 3``, ``L`` the length of the longest string.
    """
    if metric == "ordinal":
        return {"support_size": (float(values.max()) - float(values.min())) / 2.0}
    if metric == "count":
        poisson_lambda = float(np.mean(values))
        span = count_distance(values.min(), values.max(), poisson_lambda, 1.0)
        return {"poisson_lambda": poisson_lambda, "normalisation": span / 2.0}
    if metric == "string":
        third = max(len(value) for value in values) / 3.0
        return {"normalisation": third, "max_distance": third}
    raise ValueError(f"no discrete metric {metric!r}; expected one of {DISCRETE_METRICS}")


def discrete_edge_distances(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, metric: str) -> np.ndarray:
    """``d(values[rows], values[cols])`` for ``metric`` with :func:`discrete_parameters`, one per
    edge: elementwise for ordinal; for count through each distinct value's distance from
    ``min(values)`` (the sum of :func:`count_distance` is additive along the counts: one float
    of memory per integer from the smallest count to the largest); for string once for each
    distinct pair of strings on an edge.

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        float64 for ordinal and count (non-negative whole numbers), str for string.
    rows, cols : ndarray of shape (n_edges,), int
    """
    params = discrete_parameters(values, metric)
    if metric == "ordinal":
        gap = np.abs(values[rows] - values[cols])
        return np.divide(gap, params["support_size"], out=np.zeros_like(gap), where=gap != 0)
    distinct, codes = np.unique(values, return_inverse=True)
    codes = codes.ravel()
    if metric == "count":
        low = int(distinct[0])
        surprisal = poisson_surprisal(np.arange(low, int(distinct[-1])), params["poisson_lambda"])
        from_low = np.concatenate(([0.0], np.cumsum(surprisal)))[distinct.astype(np.int64) - low]
        gap = np.abs(from_low[codes[rows]] - from_low[codes[cols]])
        return np.divide(gap, params["normalisation"], out=np.zeros_like(gap), where=gap != 0)
    if metric != "string":
        raise ValueError(f"no discrete metric {metric!r}; expected one of {DISCRETE_METRICS}")
    first, second = np.minimum(codes[rows], codes[cols]), np.maximum(codes[rows], codes[cols])
    pairs, pair_of_edge = np.unique(first * len(distinct) + second, return_inverse=True)
    table = np.array([string_distance(str(distinct[p // len(distinct)]), str(distinct[p % len(distinct)]), **params)
                      for p in pairs], dtype=np.float64)
    return table[pair_of_edge.ravel()]


def discrete_intersection(P: sp.spmatrix, values: np.ndarray, metric: str, target_weight: float, *,
                          reset: bool = True) -> sp.csr_matrix:
    """P's edges scaled by ``exp(-far_distance(target_weight) * d(y_i, y_j))`` for a discrete
    ``metric`` (see the module docstring), then :func:`reset_local_connectivity` when ``reset``.

    Parameters
    ----------
    P : sparse matrix of shape (n, n)
    values : ndarray of shape (n,)
        The targets, as :func:`discrete_edge_distances` takes them.
    metric : {"ordinal", "count", "string"}
    target_weight : float in [0, 1]
    reset : bool
        As in :func:`categorical_intersection`.
    """
    P = sp.coo_matrix(P, dtype=np.float64, copy=True)
    P.data *= np.exp(-far_distance(target_weight) * discrete_edge_distances(values, P.row, P.col, metric))
    return reset_local_connectivity(P) if reset else clean(P)
