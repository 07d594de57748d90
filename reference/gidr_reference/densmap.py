"""densMAP's density term (Narayan, Berger & Cho 2021), in plain NumPy: the oracle.

densMAP adds to an unnormalized loss ``L`` (UMAP's cross-entropy) a term that rewards an
embedding whose local radii correlate with the data's::

    L_dens = L - dens_lambda * W * C(Y)

over the *term's entries*: the stored entries ``e = (h_e, t_e)`` of P with
``p_e >= max(P) / n_epochs`` (umap-learn drops the others from its graph), both directions
of every pair. With ``D_e = ||y_h - y_t||^2`` and the low-dimensional kernel
``phi_e = 1 / (1 + a D_e^b)``, each point's embedding radius is::

    T_i = sum_{e touching i} phi_e,   S_i = sum_{e touching i} phi_e D_e,
    r_i = log(eps + S_i / T_i),       eps = 1e-8

("touching": ``h_e == i`` or ``t_e == i``, so that a pair stored twice counts twice at both
ends, as in umap-learn). The data radii ``R`` are the same formula in the data space with
P's weights in place of ``phi`` and the kNN graph's true distances (squared) in place of
``D`` (:func:`data_radii`), standardized over the points that have an entry. The
correlation, over those ``n`` points, is::

    C = cov(r, R) / sigma,   cov = mean((r - mean r) R),   sigma = sqrt(var(r) + dens_var_shift)

(``var`` with 1/n; umap-learn divides its covariance by n - 1 and its variance by n, a
factor n/(n - 1) on C that this module does not copy, so that its gradient is exactly the
gradient of ``C``). ``W`` is the sum of P over the term's entries, halved when the
optimizer's attraction is asymmetric (each edge then pulls one end: its forces are those of
half the loss), so that the term weighs against the cross-entropy as in umap-learn.

The term's forces (``F = dL/dY`` as in :mod:`gidr.stages.loss`) come from the chain rule
through ``D_e``::

    F_i = sum_{e touching i} x_e(i),      x_e(i) = -dens_lambda W c_e 2 (y_i - y_other)
    c_e = g_h dr_h/dD_e + g_t dr_t/dD_e,   g_p = dC/dr_p
    dr_p/dD_e = (phi_e + phi'_e (D_e - rho_p)) / (T_p (eps + rho_p)),   rho_p = S_p / T_p
    phi'_e = -a b D_e^(b-1) phi_e^2 = -b phi_e (1 - phi_e) / D_e,   c_e = 0 when D_e = 0

umap-learn's SGD applies the term per sampled edge, scaled by ``W / p_e`` and each
coordinate clipped to ``±4``; with ``bound`` and ``rate_scale`` :func:`density_forces`
gives that step's expectation per epoch, ``sum_e rate_scale p_e clip(x_e / p_e, ±bound)``
(``rate_scale = 1 / max(P)``: edge ``e`` is processed ``p_e / max(P)`` times an epoch), and
the plain gradient with ``bound = inf, rate_scale = 1``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gidr.types import DensityTarget, KNNGraph

__all__ = ["EPSILON", "term_entries", "data_radii", "density_target", "radii_from_sums", "embedding_sums",
           "embedding_radii", "Correlation", "correlation", "radius_gradient", "entry_coefficients",
           "density_forces", "correlation_of", "output_radii"]

#: umap-learn's guard in ``log(eps + S / T)``.
EPSILON = 1e-8


def term_entries(P: sp.csr_matrix, n_epochs: int) -> np.ndarray:
    """The entries of P the term uses: ``p_e >= max(P) / n_epochs`` (boolean mask over
    ``P.data``, CSR order). umap-learn zeroes the others in its graph before computing the
    radii; its (and gidr's ``umap_sgd``) schedule never processes them."""
    data = np.asarray(P.data, dtype=np.float64)
    if data.size == 0:
        return np.zeros(0, dtype=bool)
    return (data > 0) & (data >= data.max() / float(n_epochs))


def _entry_ends(P: sp.csr_matrix, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.repeat(np.arange(P.shape[0], dtype=np.int64), np.diff(P.indptr))
    return rows[mask], np.asarray(P.indices, dtype=np.int64)[mask]


def radii_from_sums(S: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``log(eps + S / T)``, NaN where ``T == 0`` (a point without entries has no radius)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(T > 0, np.log(EPSILON + S / np.where(T > 0, T, 1.0)), np.nan)


def _sums_at_ends(values: np.ndarray, heads: np.ndarray, tails: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(heads, weights=values, minlength=n) + np.bincount(tails, weights=values, minlength=n)


def _graph_distances(graph: KNNGraph, heads: np.ndarray, tails: np.ndarray, n: int) -> np.ndarray:
    """The kNN graph's distance between ``heads[e]`` and ``tails[e]``: the larger of the two
    directions the graph holds, 0 for a pair it does not hold (umap-learn's ``graph_dists``)."""
    if heads.size == 0:
        return np.zeros(0)
    k = graph.indices.shape[1]
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    columns = np.asarray(graph.indices, dtype=np.int64).ravel()
    valid = columns >= 0
    directed = sp.csr_matrix((np.asarray(graph.distances, dtype=np.float64).ravel()[valid], (rows[valid], columns[valid])),
                             shape=(n, n))
    return np.asarray(directed.maximum(directed.T).tocsr()[heads, tails], dtype=np.float64).ravel()


def data_radii(P: sp.csr_matrix, graph: KNNGraph, mask: np.ndarray) -> np.ndarray:
    """Each point's log radius in the data space (umap-learn's ``rad_orig``)::

        R_i = log(eps + sum_{e touching i} p_e d_e^2 / sum_{e touching i} p_e)

    over the entries in ``mask``; ``d_e`` is the kNN graph's distance between the two points
    (the larger of the two directions, 0 for a pair the graph does not hold, as umap-learn's
    ``graph_dists``). NaN for a point without entries.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    n = P.shape[0]
    heads, tails = _entry_ends(P, mask)
    d = _graph_distances(graph, heads, tails, n)
    p = np.asarray(P.data, dtype=np.float64)[mask]
    return radii_from_sums(_sums_at_ends(p * d * d, heads, tails, n), _sums_at_ends(p, heads, tails, n))


def density_target(P: sp.csr_matrix, graph: KNNGraph, n_epochs: int, *, dens_lambda: float, dens_frac: float,
                   dens_var_shift: float) -> DensityTarget:
    """The :class:`~gidr.types.DensityTarget` of a fit: the term's entries, the data radii and
    their standardized values."""
    P = sp.csr_matrix(P)
    mask = term_entries(P, n_epochs)
    rad_orig = data_radii(P, graph, mask)
    active = np.isfinite(rad_orig)
    standardized = np.zeros_like(rad_orig)
    if active.any():
        values = rad_orig[active]
        spread = float(np.std(values))
        standardized[active] = (values - values.mean()) / (spread if spread > 0 else 1.0)
    return DensityTarget(entries=mask, rad_orig=rad_orig, standardized=standardized, active=active,
                         weight=float(np.sum(np.asarray(P.data, dtype=np.float64)[mask])), dens_lambda=dens_lambda,
                         dens_frac=dens_frac, dens_var_shift=dens_var_shift)


def embedding_sums(Y: np.ndarray, heads: np.ndarray, tails: np.ndarray, a: float, b: float):
    """``(D, phi, S, T)``: the entries' squared distances and kernel values, and each point's
    sums ``S_i``, ``T_i`` (see the module docstring)."""
    diff = Y[heads] - Y[tails]
    D = np.einsum("ij,ij->i", diff, diff)
    phi = 1.0 / (1.0 + a * D ** b)
    n = Y.shape[0]
    return D, phi, _sums_at_ends(phi * D, heads, tails, n), _sums_at_ends(phi, heads, tails, n)


def embedding_radii(Y: np.ndarray, heads: np.ndarray, tails: np.ndarray, a: float, b: float) -> np.ndarray:
    """``r_i = log(eps + S_i / T_i)`` at positions ``Y``, shape (n_samples,), NaN without entries."""
    _, _, S, T = embedding_sums(Y, heads, tails, a, b)
    return radii_from_sums(S, T)


@dataclass(frozen=True)
class Correlation:
    """``C = cov / sigma`` and the statistics it is made of (over the active points)."""

    value: float
    mean: float
    sigma: float
    cov: float
    n_active: int


def correlation(r: np.ndarray, target: DensityTarget) -> Correlation:
    """C of the embedding radii ``r`` with the standardized data radii (module docstring)."""
    active = target.active
    values, R = r[active], target.standardized[active]
    n = int(values.size)
    if n == 0:  # no point has an entry: no correlation to follow
        return Correlation(value=0.0, mean=0.0, sigma=1.0, cov=0.0, n_active=0)
    mean = float(values.mean())
    sigma = math.sqrt(float(np.mean((values - mean) ** 2)) + target.dens_var_shift)
    cov = float(np.mean((values - mean) * R))
    return Correlation(value=cov / sigma, mean=mean, sigma=sigma, cov=cov, n_active=n)


def radius_gradient(r: np.ndarray, target: DensityTarget, stats: Correlation) -> np.ndarray:
    """``g_p = dC/dr_p = (R_p - mean R) / (n sigma) - cov (r_p - mean r) / (n sigma^3)``; 0 for
    inactive points. Shape (n_samples,)."""
    active = target.active
    R = target.standardized
    g = np.zeros_like(r)
    n, sigma = stats.n_active, stats.sigma
    if n == 0:
        return g
    g[active] = ((R[active] - R[active].mean()) / (n * sigma)
                 - stats.cov * (r[active] - stats.mean) / (n * sigma ** 3))
    return g


def entry_coefficients(D, phi, S, T, g, heads, tails, b: float) -> np.ndarray:
    """``c_e = g_h dr_h/dD_e + g_t dr_t/dD_e`` per entry (module docstring); 0 where ``D_e = 0``."""
    positive = D > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        dphi = np.where(positive, -b * phi * (1.0 - phi) / np.where(positive, D, 1.0), 0.0)
        rho = S / np.where(T > 0, T, 1.0)

        def dr(p):
            return (phi + dphi * (D - rho[p])) / (T[p] * (EPSILON + rho[p]))

        return np.where(positive, g[heads] * dr(heads) + g[tails] * dr(tails), 0.0)


def density_forces(Y: np.ndarray, P: sp.csr_matrix, target: DensityTarget, a: float, b: float, *,
                   weight: float, bound: float = math.inf, rate_scale: float = 1.0) -> np.ndarray:
    """The term's forces at ``Y``: ``F_i = sum_{e touching i} rate_scale p_e clip(x_e(i) / p_e,
    ±bound)`` with ``x_e(i) = -dens_lambda weight c_e 2 (y_i - y_other)`` (module docstring;
    ``bound = inf, rate_scale = 1`` is ``-dens_lambda weight dC/dY``).

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components)
    P : scipy.sparse.csr_matrix
        The fitted P (the term's entries are ``target.entries`` of its stored values).
    target : DensityTarget
    a, b : float
        The low-dimensional kernel.
    weight : float
        ``W``.
    bound, rate_scale : float

    Returns
    -------
    ndarray of shape (n_samples, n_components)
    """
    P = sp.csr_matrix(P)
    heads, tails = _entry_ends(P, target.entries)
    p = np.asarray(P.data, dtype=np.float64)[target.entries]
    D, phi, S, T = embedding_sums(Y, heads, tails, a, b)
    r = radii_from_sums(S, T)
    g = radius_gradient(r, target, correlation(r, target))
    c = entry_coefficients(D, phi, S, T, g, heads, tails, b)
    diff = Y[heads] - Y[tails]
    x = (-target.dens_lambda * weight * 2.0 * c)[:, None] * diff  # on the head; the tail gets -x
    step = (rate_scale * p)[:, None] * np.clip(x / p[:, None], -bound, bound)
    n, d = Y.shape
    out = np.zeros((n, d))
    for column in range(d):
        out[:, column] = (np.bincount(heads, weights=step[:, column], minlength=n)
                          - np.bincount(tails, weights=step[:, column], minlength=n))
    return out


def correlation_of(Y: np.ndarray, P: sp.csr_matrix, target: DensityTarget, a: float, b: float) -> float:
    """``C(Y)``: the objective whose gradient :func:`density_forces` follows (for tests)."""
    heads, tails = _entry_ends(sp.csr_matrix(P), target.entries)
    return correlation(embedding_radii(Y, heads, tails, a, b), target).value


def output_radii(Y: np.ndarray, P_embedding: sp.csr_matrix) -> np.ndarray:
    """umap-learn's ``rad_emb``: log radii in the embedding from a fuzzy graph built on the
    embedding itself (``P_embedding``), weighted by that graph, with the embedding distances
    *not* squared (as umap-learn 0.5 computes it, while ``rad_orig`` squares)::

        r_i = log(eps + sum_{e touching i} mu_e |y_h - y_t| / sum_{e touching i} mu_e)

    Returns
    -------
    ndarray of shape (n_samples,), NaN for a point without entries.
    """
    P_embedding = sp.csr_matrix(P_embedding)
    mask = np.asarray(P_embedding.data) > 0
    heads, tails = _entry_ends(P_embedding, mask)
    mu = np.asarray(P_embedding.data, dtype=np.float64)[mask]
    d = np.sqrt(np.einsum("ij,ij->i", Y[heads] - Y[tails], Y[heads] - Y[tails]))
    n = P_embedding.shape[0]
    return radii_from_sums(_sums_at_ends(mu * d, heads, tails, n), _sums_at_ends(mu, heads, tails, n))
