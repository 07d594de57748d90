"""Directed high-dimensional similarities p_{j|i} on the edges of a kNN graph.

Both searches (UMAP's sigma, t-SNE's beta) are bisections run on every row at once:
each of the fixed number of iterations is a handful of NumPy operations over the whole
(n_samples, k) distance array, so the code reads like the one-row textbook version.
"""
from __future__ import annotations

import warnings

import numpy as np


__all__ = [
    "SIGMA_FLOOR_SCALE",
    "umap_rho",
    "umap_sigmas",
    "umap_target",
    "umap_weights",
    "effective_perplexity",
    "tsne_betas",
    "tsne_weights",
    "gaussian_weights",
    "uniform_weights",
    "multiscale_weights",
]

#: sigma_i is floored at SIGMA_FLOOR_SCALE * mean(d_i.) (umap-learn's MIN_K_DIST_SCALE).
SIGMA_FLOOR_SCALE = 1e-3


def umap_rho(distances: np.ndarray) -> np.ndarray:
    """rho_i: the distance to the nearest neighbour at non-zero distance (0 if none).

    Parameters
    ----------
    distances : ndarray of shape (n_samples, k)

    Returns
    -------
    rho : ndarray of shape (n_samples,)
    """
    positive = np.where(distances > 0, distances, np.inf)
    rho = positive.min(axis=1)
    return np.where(np.isfinite(rho), rho, 0.0)


def _umap_shifted(distances: np.ndarray, rho: np.ndarray, pseudo_distance: bool) -> np.ndarray:
    """x_ij = max(0, d_ij - rho_i) with the pseudo-distance, else d_ij."""
    if pseudo_distance:
        return np.maximum(distances - rho[:, None], 0.0)
    return np.array(distances, dtype=np.float64)


def umap_target(k: int, self_in_target: bool = False) -> float:
    """The sum UMAP's bandwidth search aims at: ``log2(k)`` for k neighbours, or
    ``log2(k + 1)`` when the point itself is counted (umap-learn: its ``n_neighbors`` lists
    the point, so k = n_neighbors - 1 others aim at ``log2(n_neighbors)``)."""
    return float(np.log2(k + 1 if self_in_target else k))


def umap_sigmas(
    distances: np.ndarray, pseudo_distance: bool = True, n_iter: int = 64, self_in_target: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """UMAP's bandwidths: sigma_i with sum_j exp(-x_ij / sigma_i) = log2(k) (log2(k + 1) with
    ``self_in_target``, :func:`umap_target`).

    ``x_ij = max(0, d_ij - rho_i)`` (pseudo-distance) or ``x_ij = d_ij``. The sum is
    increasing in sigma, so sigma_i is found by bisection on ``[0, hi_i]`` with
    ``hi_i = max_j x_ij / ln(k / log2 k)`` (there the sum is already >= log2 k). Then
    ``sigma_i = max(sigma_i, 1e-3 * mean_j d_ij)``; when row i's mean distance is 0 the
    floor is 1e-3 times the mean of all distances, and 1 when that is 0 too (all points
    identical: every p is then exp(0) = 1).

    Parameters
    ----------
    distances : ndarray of shape (n_samples, k)
        True kNN distances, sorted in each row.
    pseudo_distance : bool
    n_iter : int
        Bisection steps (64 reaches the resolution of float64).
    self_in_target : bool
        Count the point itself in the target, as umap-learn does.

    Returns
    -------
    sigma : ndarray of shape (n_samples,)
        Positive, finite.
    rho : ndarray of shape (n_samples,)
        The rho_i used (computed even when ``pseudo_distance`` is off).
    """
    distances = np.asarray(distances, dtype=np.float64)
    k = distances.shape[1]
    target = umap_target(k, self_in_target)
    rho = umap_rho(distances)
    x = _umap_shifted(distances, rho, pseudo_distance)
    x_max = x.max(axis=1)
    ratio = np.log(k / target) if k > 1 else 1.0
    lo = np.zeros(len(x))
    hi = np.where(x_max > 0, x_max / ratio, 1.0)
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        total = np.exp(-x / mid[:, None]).sum(axis=1)  # mid > 0 always
        too_large = total > target
        hi = np.where(too_large, mid, hi)
        lo = np.where(too_large, lo, mid)
    sigma = 0.5 * (lo + hi)
    return np.maximum(sigma, _sigma_floor(distances)), rho


def _sigma_floor(distances: np.ndarray) -> np.ndarray:
    row_mean = distances.mean(axis=1)
    overall = distances.mean()
    fallback = SIGMA_FLOOR_SCALE * overall if overall > 0 else 1.0
    return np.where(row_mean > 0, SIGMA_FLOOR_SCALE * row_mean, fallback)


def umap_weights(
    distances: np.ndarray, sigma: np.ndarray, rho: np.ndarray, pseudo_distance: bool = True
) -> np.ndarray:
    """p_{j|i} = exp(-max(0, d_ij - rho_i) / sigma_i) (or exp(-d_ij / sigma_i)).

    Parameters
    ----------
    distances : ndarray of shape (n_samples, k)
    sigma, rho : ndarray of shape (n_samples,)
    pseudo_distance : bool

    Returns
    -------
    weights : ndarray of shape (n_samples, k), values in [0, 1]
        With k = 1 every weight is 1 (see the comment in the code).
    """
    x = _umap_shifted(np.asarray(distances, dtype=np.float64), rho, pseudo_distance)
    if x.shape[1] == 1:
        # log2(1) = 0 cannot be met by a positive weight: the lone neighbour is a full member
        # (umap-learn's limit sigma -> inf with n_neighbors=2, i.e. one neighbour besides self).
        return np.ones_like(x)
    return np.exp(-x / sigma[:, None])


def effective_perplexity(perplexity: float, n_neighbors: int) -> float:
    """The perplexity actually used with k neighbours: ``min(perplexity, k)``.

    The entropy of a distribution over k points is at most log k, so a perplexity above k
    cannot be reached; it is lowered to k (uniform weights over the k neighbours) with a
    :class:`UserWarning`.
    """
    if perplexity > n_neighbors:
        warnings.warn(
            f"The 'perplexity' parameter of similarity 'tsne' ({perplexity!r}) is larger than the {n_neighbors} "
            f"neighbour(s) available per point, and the entropy over k points is at most log(k); using "
            f"perplexity {float(n_neighbors)!r}. Lower 'perplexity' (below n_samples - 1) to silence this.",
            UserWarning, stacklevel=3,
        )
        return float(n_neighbors)
    return float(perplexity)


def _tsne_squared(distances: np.ndarray, pseudo_distance: bool) -> np.ndarray:
    """s_ij = d_ij^2 (or max(0, d_ij - rho_i)^2), shifted so that min_j s_ij = 0."""
    distances = np.asarray(distances, dtype=np.float64)
    if pseudo_distance:
        distances = np.maximum(distances - umap_rho(distances)[:, None], 0.0)
    s = distances**2
    return s - s.min(axis=1, keepdims=True)


def _entropy(s: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """H_i = log sum_j exp(-beta_i s_ij) + beta_i sum_j p_j|i s_ij (natural log)."""
    e = np.exp(-beta[:, None] * s)
    total = e.sum(axis=1)
    return np.log(total) + beta * (e * s).sum(axis=1) / total


def tsne_betas(
    distances: np.ndarray, perplexity: float, pseudo_distance: bool = False, n_iter: int = 100
) -> np.ndarray:
    """t-SNE's precisions: beta_i with H(p_{.|i}) = log(perplexity).

    ``p_{j|i} = exp(-beta_i s_ij) / sum_l exp(-beta_i s_il)`` with ``s_ij = d_ij^2`` (or
    ``max(0, d_ij - rho_i)^2`` with the pseudo-distance). H decreases with beta from
    log k (beta = 0); the search doubles beta from ``1 / mean_j s_ij`` until it brackets
    the target, then bisects. A target that cannot be reached (perplexity above k, or
    below the number of neighbours tied at the smallest distance) drives beta to its
    bound, giving uniform weights over all, or over the tied, neighbours.

    Parameters
    ----------
    distances : ndarray of shape (n_samples, k)
    perplexity : float
        Positive; at most k for an exact match.
    pseudo_distance : bool
    n_iter : int

    Returns
    -------
    beta : ndarray of shape (n_samples,), non-negative and finite
    """
    s = _tsne_squared(distances, pseudo_distance)
    target = np.log(perplexity)
    scale = s.mean(axis=1)
    beta = 1.0 / np.where(scale > 0, scale, 1.0)
    lo = np.zeros_like(beta)
    hi = np.full_like(beta, np.inf)
    for _ in range(n_iter):
        with np.errstate(over="ignore"):  # beta * s may overflow: exp(-inf) = 0 is right
            too_flat = _entropy(s, beta) > target  # entropy too high: sharpen (raise beta)
        lo = np.where(too_flat, beta, lo)
        hi = np.where(too_flat, hi, beta)
        beta = np.where(np.isinf(hi), 2.0 * beta, 0.5 * (lo + hi))
    return beta


def tsne_weights(distances: np.ndarray, beta: np.ndarray, pseudo_distance: bool = False) -> np.ndarray:
    """p_{j|i} = exp(-beta_i s_ij) / sum_l exp(-beta_i s_il); each row sums to 1.

    Returns
    -------
    weights : ndarray of shape (n_samples, k)
    """
    s = _tsne_squared(distances, pseudo_distance)
    with np.errstate(over="ignore"):
        e = np.exp(-beta[:, None] * s)
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------- openTSNE's other kernels
def gaussian_weights(distances: np.ndarray, sigma: float) -> np.ndarray:
    """One bandwidth for every point (openTSNE's ``FixedSigmaNN``):
    ``p_{j|i} = exp(-d_ij^2 / (2 sigma^2)) / sum_l exp(-d_il^2 / (2 sigma^2))``.

    The squared distances are shifted by the row's smallest before the exponential, which
    the normalization cancels: a point whose neighbours are all far beyond ``sigma`` keeps
    finite weights (its nearest neighbours' share) where the unshifted formula gives 0 / 0.

    Parameters
    ----------
    distances : ndarray of shape (n_points, k)
    sigma : float
        Positive.

    Returns
    -------
    weights : ndarray of shape (n_points, k); each row sums to 1
    """
    s = np.asarray(distances, dtype=np.float64) ** 2
    e = np.exp(-(s - s.min(axis=1, keepdims=True)) / (2.0 * float(sigma) ** 2))
    return e / e.sum(axis=1, keepdims=True)


def uniform_weights(distances: np.ndarray) -> np.ndarray:
    """``p_{j|i} = 1 / k`` on each of the point's k neighbours (openTSNE's ``Uniform``).

    Returns
    -------
    weights : ndarray of the shape of ``distances``
    """
    distances = np.asarray(distances, dtype=np.float64)
    return np.full(distances.shape, 1.0 / distances.shape[1])


def multiscale_weights(distances: np.ndarray, betas: list[np.ndarray], mixture: bool) -> np.ndarray:
    """Several perplexities at once (openTSNE's ``Multiscale`` and ``MultiscaleMixture``).

    ``betas[h]`` holds each point's t-SNE precision for the h-th perplexity
    (:func:`tsne_betas`). Two ways to combine the scales:

    - ``mixture=False`` (``Multiscale``, Lee et al. 2015): the mean over the scales of the
      single-scale conditional probabilities, ``p_{j|i} = (1/H) sum_h
      exp(-beta_ih d_ij^2) / sum_l exp(-beta_ih d_il^2)``;
    - ``mixture=True`` (``MultiscaleMixture``): one kernel, a mixture of Gaussians each
      weighted by the square root of its precision (openTSNE's normalization of each
      component), ``p_{j|i} = sum_h sqrt(beta_ih) exp(-beta_ih d_ij^2) / sum_{h,l}
      sqrt(beta_ih) exp(-beta_ih d_il^2)``. Computed in log space, shifted by the row's
      largest term, so no row underflows to 0 / 0.

    With one perplexity both are :func:`tsne_weights`.

    Parameters
    ----------
    distances : ndarray of shape (n_points, k)
    betas : list of ndarray of shape (n_points,)
        Non-negative precisions, one array per scale.
    mixture : bool

    Returns
    -------
    weights : ndarray of shape (n_points, k); each row sums to 1
    """
    distances = np.asarray(distances, dtype=np.float64)
    if not mixture:
        return sum(tsne_weights(distances, beta) for beta in betas) / len(betas)
    s = distances**2
    tiny = np.finfo(np.float64).tiny  # a precision driven to 0 gives its component no weight
    logs = np.stack([0.5 * np.log(np.maximum(beta, tiny))[:, None] - beta[:, None] * s for beta in betas])
    top = logs.max(axis=(0, 2))
    e = np.exp(logs - top[None, :, None]).sum(axis=0)
    return e / e.sum(axis=1, keepdims=True)
