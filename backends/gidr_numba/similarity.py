"""Directed similarities p_{j|i} in numba: one bisection per row, rows in parallel.

The formulas, iteration counts, brackets, floors and warnings are those of
:mod:`gidr_reference.similarity` (the tests hold the two to 1e-10); only the loop
order differs: the reference runs every row's bisection at once with NumPy, these
kernels run each row's whole bisection in one task of a ``prange`` loop. Results are
the same whatever the number of threads (rows are independent).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from gidr_reference.similarity import SIGMA_FLOOR_SCALE, umap_target

__all__ = ["umap_sigmas", "umap_row_weights", "tsne_betas", "tsne_row_weights"]


# ---------------------------------------------------------------------- umap
@njit(cache=True)
def _row_rho(d):
    """rho_i: the smallest positive distance of the row (0 if none)."""
    rho = np.inf
    for j in range(d.shape[0]):
        if 0.0 < d[j] < rho:
            rho = d[j]
    return rho if rho < np.inf else 0.0


@njit(cache=True)
def _umap_row_sigma(x, n_iter, target):
    """Bisection for sigma with ``sum_j exp(-x_j / sigma) = target`` (``log2(k)``, or
    ``log2(k + 1)`` counting the point) on ``[0, hi]``, ``hi = max_j x_j / ln(k / target)``
    (1 when every x_j is 0)."""
    k = x.shape[0]
    ratio = math.log(k / target) if k > 1 else 1.0
    x_max = x.max()
    lo, hi = 0.0, (x_max / ratio if x_max > 0 else 1.0)
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        total = 0.0
        for j in range(k):
            total += math.exp(-x[j] / mid)
        if total > target:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


@njit(cache=True, parallel=True)
def _umap_rows(distances, pseudo_distance, n_iter, target, fallback_floor, sigma, rho, weights):
    """sigma_i, rho_i and p_{j|i} = exp(-x_ij / sigma_i) of every row, in parallel (bandwidths
    aiming at ``target``).

    ``x_ij = max(0, d_ij - rho_i)`` with the pseudo-distance, else ``d_ij``; sigma_i is
    floored at ``1e-3 * mean_j d_ij``, or ``fallback_floor`` when that mean is 0.
    """
    n, k = distances.shape
    for i in prange(n):
        d = distances[i]
        rho[i] = _row_rho(d)
        x = np.maximum(d - rho[i], 0.0) if pseudo_distance else d.copy()
        row_mean = d.sum() / k
        floor = SIGMA_FLOOR_SCALE * row_mean if row_mean > 0 else fallback_floor
        sigma[i] = max(_umap_row_sigma(x, n_iter, target), floor)
        for j in range(k):
            weights[i, j] = math.exp(-x[j] / sigma[i])


def _umap_arrays(distances: np.ndarray, pseudo_distance: bool, n_iter: int, self_in_target: bool = False):
    distances = np.ascontiguousarray(distances, dtype=np.float64)
    n = distances.shape[0]
    overall = distances.mean()
    fallback = SIGMA_FLOOR_SCALE * overall if overall > 0 else 1.0
    sigma, rho, weights = np.empty(n), np.empty(n), np.empty(distances.shape)
    target = umap_target(distances.shape[1], self_in_target)
    _umap_rows(distances, bool(pseudo_distance), int(n_iter), target, fallback, sigma, rho, weights)
    return sigma, rho, weights


def umap_sigmas(distances: np.ndarray, pseudo_distance: bool = True, n_iter: int = 64,
                self_in_target: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """UMAP's bandwidths sigma_i and rho_i (see :func:`gidr_reference.similarity.umap_sigmas`).

    Parameters
    ----------
    distances : ndarray of shape (n_samples, k)
    pseudo_distance : bool
    n_iter : int
    self_in_target : bool

    Returns
    -------
    sigma, rho : ndarray of shape (n_samples,)
    """
    sigma, rho, _ = _umap_arrays(distances, pseudo_distance, n_iter, self_in_target)
    return sigma, rho


def umap_row_weights(distances: np.ndarray, pseudo_distance: bool = True, self_in_target: bool = False) -> np.ndarray:
    """UMAP's fuzzy memberships p_{j|i} = exp(-max(0, d_ij - rho_i) / sigma_i).

    Parameters
    ----------
    distances : ndarray of shape (n_points, k)
        Sorted neighbour distances of each point.
    pseudo_distance : bool
    self_in_target : bool
        The bandwidth target counts the point itself (umap-learn's, :func:`gidr_reference.similarity.umap_target`).

    Returns
    -------
    weights : ndarray of shape (n_points, k), values in [0, 1]
    """
    return _umap_arrays(distances, pseudo_distance, 64, self_in_target)[2]


# ---------------------------------------------------------------------- tsne
@njit(cache=True)
def _row_entropy(s, beta):
    """H = log sum_j exp(-beta s_j) + beta sum_j p_j s_j (natural log)."""
    total, weighted = 0.0, 0.0
    for j in range(s.shape[0]):
        e = math.exp(-beta * s[j])
        total += e
        weighted += e * s[j]
    return math.log(total) + beta * weighted / total


@njit(cache=True)
def _tsne_row_beta(s, target, n_iter):
    """Beta doubled from ``1 / mean_j s_j`` until the entropy brackets ``target``, then bisected."""
    scale = s.sum() / s.shape[0]
    beta = 1.0 / (scale if scale > 0 else 1.0)
    lo, hi = 0.0, np.inf
    for _ in range(n_iter):
        if _row_entropy(s, beta) > target:  # too flat: sharpen
            lo = beta
        else:
            hi = beta
        beta = 2.0 * beta if math.isinf(hi) else 0.5 * (lo + hi)
    return beta


@njit(cache=True, parallel=True)
def _tsne_rows(distances, pseudo_distance, target, n_iter, beta, weights):
    """beta_i and p_{j|i} = exp(-beta_i s_ij) / sum_l exp(-beta_i s_il) of every row.

    ``s_ij = d_ij^2`` (or ``max(0, d_ij - rho_i)^2``) minus the row's smallest value.
    """
    n, k = distances.shape
    for i in prange(n):
        d = distances[i]
        if pseudo_distance:
            d = np.maximum(d - _row_rho(d), 0.0)
        s = d**2
        s = s - s.min()
        beta[i] = _tsne_row_beta(s, target, n_iter)
        total = 0.0
        for j in range(k):
            weights[i, j] = math.exp(-beta[i] * s[j])
            total += weights[i, j]
        for j in range(k):
            weights[i, j] = weights[i, j] / total


def _tsne_arrays(distances: np.ndarray, perplexity: float, pseudo_distance: bool, n_iter: int):
    distances = np.ascontiguousarray(distances, dtype=np.float64)
    beta, weights = np.empty(distances.shape[0]), np.empty(distances.shape)
    _tsne_rows(distances, bool(pseudo_distance), math.log(perplexity), int(n_iter), beta, weights)
    return beta, weights


def tsne_betas(distances: np.ndarray, perplexity: float, pseudo_distance: bool = False,
               n_iter: int = 100) -> np.ndarray:
    """t-SNE's precisions beta_i (see :func:`gidr_reference.similarity.tsne_betas`).

    Returns
    -------
    beta : ndarray of shape (n_samples,)
    """
    return _tsne_arrays(distances, perplexity, pseudo_distance, n_iter)[0]


def tsne_row_weights(distances: np.ndarray, perplexity: float, pseudo_distance: bool = False) -> np.ndarray:
    """t-SNE's conditional probabilities p_{j|i} = exp(-beta_i s_ij) / sum_l exp(-beta_i s_il).

    Parameters
    ----------
    distances : ndarray of shape (n_points, k)
    perplexity : float
        At most k (see :func:`gidr_reference.similarity.effective_perplexity`).
    pseudo_distance : bool

    Returns
    -------
    weights : ndarray of shape (n_points, k); each row sums to 1
    """
    return _tsne_arrays(distances, perplexity, pseudo_distance, 100)[1]
