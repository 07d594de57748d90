"""Reference losses: exact values and gradients, and their force decomposition.

Notation (binding for every backend): ``D_ij = ||y_i - y_j||^2``, ``w = 1 / (1 + a D^b)``,
``Z = sum_{k != l} w_kl`` over ordered pairs. P is a symmetric CSR matrix with zero
diagonal (summing to one when normalized). ``D^(b-1)`` is taken as 0 where ``D == 0`` and
``b != 1``: the vector ``y_i - y_j`` it multiplies is zero there.

Forces (see :mod:`gidr.stages.loss`)::

    F_i = sum_{j in row i of P} attraction(D_ij, p_ij) (y_i - y_j)
        + sum_c theta_c sum_{k != i} phi_c(D_ik) (y_i - y_k)  =  force_scale * dL/dy_i

Exact O(n^2) quantities are accumulated over blocks of rows, so memory is O(block * n).
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import scipy.sparse as sp
from scipy.special import xlogy

from gidr.kernel import kernel
from gidr.types import Affinities, PairTotals, RepulsionSums

__all__ = [
    "kernel",
    "d_pow_b_minus_1",
    "pair_blocks",
    "edge_distances",
    "pair_totals",
    "attraction_forces",
    "loss_forces",
    "kl_value",
    "kl_gradient",
    "kl_surrogate_value",
    "kl_attraction",
    "kl_repulsion_channels",
    "kl_repulsion_weights",
    "frobenius_value",
    "frobenius_gradient",
    "frobenius_attraction",
    "frobenius_repulsion_channels",
    "frobenius_repulsion_weights",
    "frobenius_force_scale",
]

#: Upper bound on the elements of one (rows, n, n_components) block of pair differences.
BLOCK_ELEMENTS = 2**21


# ----------------------------------------------------------------------------- helpers

def heavy_tailed_kernel(D: np.ndarray, a: float, b: float, dof: float) -> np.ndarray:
    """``w = (1 + a D^b / dof)^(-dof)``: t-SNE's Student-t kernel with ``dof`` degrees of
    freedom (openTSNE's ``dof``; heavier tails below 1); ``1 / (1 + a D^b)`` at ``dof = 1``."""
    if dof == 1.0:
        return kernel(D, a, b)
    return np.power(1.0 + a * np.power(D, b) / dof, -dof)


def d_pow_b_minus_1(D: np.ndarray, b: float) -> np.ndarray:
    """``D^(b-1)``, element-wise, defined as 0 where ``D == 0`` and ``b != 1``."""
    D = np.asarray(D, dtype=np.float64)
    if b == 1:
        return np.ones_like(D)
    out = np.zeros_like(D)
    positive = D > 0
    out[positive] = D[positive] ** (b - 1.0)
    return out


def pair_blocks(
    Y: np.ndarray, P: sp.spmatrix | None = None, block_elements: int | None = None
) -> Iterator[tuple[slice, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]:
    """Iterate over blocks of rows of every pairwise quantity.

    A block holds about ``block_elements`` (default :data:`BLOCK_ELEMENTS`) pair differences.

    Yields
    ------
    rows : slice
        The rows ``i`` of this block.
    diff : ndarray of shape (n_rows, n_samples, n_components)
        ``y_i - y_j``.
    D : ndarray of shape (n_rows, n_samples)
        ``||y_i - y_j||^2``.
    off_diagonal : ndarray of bool, shape (n_rows, n_samples)
        ``j != i``.
    p : ndarray of shape (n_rows, n_samples) or None
        The dense rows of ``P`` (None when ``P`` is None).
    """
    n, d = Y.shape
    block_elements = BLOCK_ELEMENTS if block_elements is None else block_elements
    step = max(1, block_elements // max(1, n * d))
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        diff = Y[rows, None, :] - Y[None, :, :]
        D = np.einsum("ijk,ijk->ij", diff, diff)
        off_diagonal = np.ones(D.shape, dtype=bool)
        local = np.arange(D.shape[0])
        off_diagonal[local, local + start] = False
        p = None if P is None else P[rows].toarray()
        yield rows, diff, D, off_diagonal, p


def _force_sum(
    Y: np.ndarray, P: sp.spmatrix | None, coefficient: Callable[..., np.ndarray]
) -> np.ndarray:
    """``out_i = sum_{j != i} coefficient(D_ij, p_ij) (y_i - y_j)``, exactly, by blocks."""
    out = np.zeros_like(Y, dtype=np.float64)
    for rows, diff, D, off, p in pair_blocks(Y, P):
        c = coefficient(D, p) if P is not None else coefficient(D)
        c = np.where(off, c, 0.0)
        out[rows] = np.einsum("ij,ijk->ik", c, diff)
    return out


def _pair_sum(Y: np.ndarray, P: sp.spmatrix | None, term: Callable[..., np.ndarray]) -> float:
    """``sum_{i != j} term(D_ij, p_ij)`` over ordered pairs, by blocks."""
    total = 0.0
    for _, _, D, off, p in pair_blocks(Y, P):
        t = term(D, p) if P is not None else term(D)
        total += float(t[off].sum())
    return total


def edge_distances(P: sp.csr_matrix, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stored entries of P as ``(rows, cols, D)``, each of shape (nnz,)."""
    P = sp.csr_matrix(P)
    rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
    cols = P.indices
    diff = Y[rows] - Y[cols]
    return rows, cols, np.einsum("ij,ij->i", diff, diff)


def pair_totals(P: sp.csr_matrix, Y: np.ndarray, a: float, b: float) -> PairTotals:
    """Exact :class:`~gidr.types.PairTotals` (O(n^2) time, O(block * n) memory).

    ``sum_w = sum_{k != l} w``, ``sum_w2 = sum_{k != l} w^2``, ``p_mean`` = mean of the
    stored values of P, ``sum_pw = sum_{(k, l) stored} p_kl w_kl``.
    """
    sum_w = sum_w2 = 0.0
    for _, _, D, off, _ in pair_blocks(Y):
        w = kernel(D[off], a, b)
        sum_w += float(w.sum())
        sum_w2 += float((w * w).sum())
    return Affinities(sp.csr_matrix(P), False).totals(sum_w, sum_w2, _sum_pw(P, Y, a, b))


def _sum_pw(P: sp.csr_matrix, Y: np.ndarray, a: float, b: float) -> float:
    P = sp.csr_matrix(P)
    _, _, D = edge_distances(P, Y)
    return float((P.data * kernel(D, a, b)).sum())


def attraction_forces(
    P: sp.csr_matrix, Y: np.ndarray, attraction: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """``A_i = sum_{j in row i of P} attraction(D_ij, p_ij) (y_i - y_j)``, shape (n, d)."""
    P = sp.csr_matrix(P)
    rows, cols, D = edge_distances(P, Y)
    vectors = attraction(D, P.data)[:, None] * (Y[rows] - Y[cols])
    n, d = Y.shape
    return np.stack([np.bincount(rows, weights=vectors[:, k], minlength=n) for k in range(d)], axis=1)


def loss_forces(loss, P: sp.csr_matrix, Y: np.ndarray, ctx, sums: RepulsionSums) -> np.ndarray:
    """Assemble the forces of a :class:`~gidr.stages.Loss` stage from repulsion sums.

    ``F = attraction_forces + sum_c theta_c * sums.channels[c]`` with
    ``theta = loss.repulsion_weights(totals)`` for the totals of ``sums`` (``sum_pw`` exact over
    the stored edges, with the loss's kernel). With exact ``sums`` this equals
    ``loss.force_scale(totals) * loss.gradient(P, Y)`` (the surrogate's gradient for
    unnormalized kl). Returns an array of shape (n_samples, n_components).
    """
    P = sp.csr_matrix(P)
    _, _, D = edge_distances(P, Y)
    totals = Affinities(P, ctx.normalized).totals(sums.sum_w, sums.sum_w2, float(P.data @ loss.kernel(D, ctx)))
    theta = np.asarray(loss.repulsion_weights(totals, ctx), dtype=np.float64)
    forces = attraction_forces(P, Y, lambda D, p: loss.attraction(D, p, ctx))
    return forces + np.einsum("c,cij->ij", theta, sums.channels)


def _exact_z(Y: np.ndarray, a: float, b: float) -> tuple[float, float]:
    totals = pair_totals(sp.csr_matrix((len(Y), len(Y))), Y, a, b)
    return totals.sum_w, totals.sum_w2


# ----------------------------------------------------------------------------- kl

def _weighted(gamma: float, repulsive: np.ndarray) -> np.ndarray:
    """``gamma * repulsive``, with 0 (not NaN) where gamma is 0 and a term is infinite."""
    if gamma == 0.0:
        return np.zeros_like(repulsive)
    return gamma * repulsive


def kl_value(P: sp.csr_matrix, Y: np.ndarray, a: float, b: float, normalized: bool, dof: float = 1.0,
             gamma: float = 1.0) -> float:
    """Exact KL loss.

    Normalized (t-SNE), ordered pairs, ``q = w / Z`` with ``w`` the
    :func:`heavy_tailed_kernel` (``1 / (1 + a D^b)`` at ``dof = 1``)::

        L = sum_{i != j} p_ij log(p_ij / q_ij)

    Unnormalized (UMAP's fuzzy cross-entropy), unordered pairs, ``p = 0`` off the graph,
    ``0 log 0 = 0``, the repulsive part weighted by ``gamma`` (umap-learn's
    ``repulsion_strength``)::

        L = sum_{i < j} [p log(p / w) + gamma (1 - p) log((1 - p) / (1 - w))]
    """
    if normalized:
        Z = _pair_sum(Y, None, lambda D: heavy_tailed_kernel(D, a, b, dof)) if dof != 1.0 else _exact_z(Y, a, b)[0]
        P = sp.csr_matrix(P)
        _, _, D = edge_distances(P, Y)
        q = heavy_tailed_kernel(D, a, b, dof) / Z
        return float((xlogy(P.data, P.data) - xlogy(P.data, q)).sum())

    def term(D, p):
        w = kernel(D, a, b)
        one_minus_w = a * np.power(D, b) * w  # 1 - w without cancellation
        with np.errstate(divide="ignore"):
            attractive = xlogy(p, p) - xlogy(p, w)
            repulsive = xlogy(1 - p, 1 - p) - xlogy(1 - p, one_minus_w)
            return attractive + _weighted(gamma, repulsive)

    return 0.5 * _pair_sum(Y, P, term)


def kl_gradient(P: sp.csr_matrix, Y: np.ndarray, a: float, b: float, normalized: bool,
                dof: float = 1.0, gamma: float = 1.0) -> np.ndarray:
    """Exact gradient of :func:`kl_value`, shape (n_samples, n_components).

    Normalized (``dw/dD = -ab D^(b-1) w^(1 + 1/dof)``)::

        dL/dy_i = 4ab sum_j D^(b-1) w^(1/dof) (p - w/Z) (y_i - y_j)

    Unnormalized (with ``dL/dw = -p/w + (1-p)/(1-w)``, ``dw/dD = -ab D^(b-1) w^2`` and
    ``1 - w = a D^b w``)::

        dL/dy_i = sum_{j != i} [2ab D^(b-1) w p - 2b gamma (1 - p) / (D (1 + a D^b))] (y_i - y_j)

    The unnormalized gradient is infinite when two points coincide.
    """
    if normalized and dof != 1.0:
        Z = _pair_sum(Y, None, lambda D: heavy_tailed_kernel(D, a, b, dof))

        def coefficient(D, p):
            w = heavy_tailed_kernel(D, a, b, dof)
            return 4 * a * b * d_pow_b_minus_1(D, b) * np.power(w, 1.0 / dof) * (p - w / Z)
    elif normalized:
        Z, _ = _exact_z(Y, a, b)

        def coefficient(D, p):
            w = kernel(D, a, b)
            return 4 * a * b * d_pow_b_minus_1(D, b) * w * (p - w / Z)
    else:
        def coefficient(D, p):
            w = kernel(D, a, b)
            with np.errstate(divide="ignore", invalid="ignore"):
                repulsion = 2 * b * gamma * (1 - p) / (D * (1 + a * np.power(D, b)))
            return 2 * a * b * d_pow_b_minus_1(D, b) * w * p - repulsion
    return _force_sum(Y, P, coefficient)


def kl_surrogate_value(P: sp.csr_matrix, Y: np.ndarray, a: float, b: float, p_mean: float,
                       gamma: float = 1.0) -> float:
    """The unnormalized KL with unknown ``p`` replaced by ``pbar`` in the repulsion (paper §4)::

        L_sur = sum_{i < j} [-p log w - gamma (1 - pbar) log(1 - w)]

    Its gradient is the kl force (``force_scale`` 1) with ``epsilon = 0``.
    """
    def term(D, p):
        w = kernel(D, a, b)
        with np.errstate(divide="ignore"):
            return -xlogy(p, w) - _weighted(gamma, (1 - p_mean) * np.log(a * np.power(D, b) * w))

    return 0.5 * _pair_sum(Y, P, term)


def kl_attraction(D: np.ndarray, p: np.ndarray, a: float, b: float, normalized: bool,
                  dof: float = 1.0) -> np.ndarray:
    """Attraction coefficient of an edge.

    Normalized: ``4ab D^(b-1) w^(1/dof) p``. Unnormalized: ``2ab D^(b-1) w p``.
    """
    if normalized and dof != 1.0:
        w_root = 1.0 / (1.0 + a * np.power(D, b) / dof)
        return 4.0 * a * b * d_pow_b_minus_1(D, b) * w_root * p
    factor = 4.0 if normalized else 2.0
    return factor * a * b * d_pow_b_minus_1(D, b) * kernel(D, a, b) * p


def kl_repulsion_channels(D: np.ndarray, a: float, b: float, normalized: bool, epsilon: float,
                          dof: float = 1.0, gamma: float = 1.0) -> np.ndarray:
    """phi_0(D), shape ``D.shape + (1,)``.

    Normalized: ``phi_0 = ab D^(b-1) w^(1 + 1/dof)`` (``ab D^(b-1) w^2`` at ``dof = 1``).
    Unnormalized: ``phi_0 = 2b gamma / ((epsilon + D)(1 + a D^b))``, 0 where
    ``epsilon + D == 0``.
    """
    D = np.asarray(D, dtype=np.float64)
    if normalized and dof != 1.0:
        base = 1.0 + a * np.power(D, b) / dof
        phi = a * b * d_pow_b_minus_1(D, b) * np.power(base, -dof) / base
    elif normalized:
        w = kernel(D, a, b)
        phi = a * b * d_pow_b_minus_1(D, b) * w * w
    else:
        denominator = (epsilon + D) * (1 + a * np.power(D, b))
        phi = np.zeros_like(D)
        np.divide(2.0 * b * gamma, denominator, out=phi, where=denominator > 0)
    return phi[..., None]


def kl_repulsion_weights(totals: PairTotals, normalized: bool) -> np.ndarray:
    """theta, shape (1,): ``-4 / Z`` normalized; ``-(1 - pbar)`` unnormalized."""
    if normalized:
        return np.array([-4.0 / _checked_z(totals.sum_w)])
    return np.array([-(1.0 - totals.p_mean)])


# ----------------------------------------------------------------------------- frobenius

def frobenius_value(P: sp.csr_matrix, Y: np.ndarray, a: float, b: float, normalized: bool) -> float:
    """Exact Frobenius (squared error) loss.

    Normalized, ordered pairs: ``L = sum_{i != j} (p - w/Z)^2``.
    Unnormalized, unordered pairs: ``L = sum_{i < j} (p - w)^2``.
    """
    if normalized:
        Z, _ = _exact_z(Y, a, b)
        return _pair_sum(Y, P, lambda D, p: (p - kernel(D, a, b) / Z) ** 2)
    return 0.5 * _pair_sum(Y, P, lambda D, p: (p - kernel(D, a, b)) ** 2)


def frobenius_gradient(P: sp.csr_matrix, Y: np.ndarray, a: float, b: float, normalized: bool) -> np.ndarray:
    """Exact gradient of :func:`frobenius_value`, shape (n_samples, n_components).

    Unnormalized: ``dL/dy_i = sum_{j != i} 4ab D^(b-1) (p w^2 - w^3) (y_i - y_j)``.
    Normalized, with ``S = sum_{k != l} (q - p) w = sum_w2 / Z - sum_pw``::

        dL/dy_i = sum_{j != i} 8ab D^(b-1) w^2 [(p - w/Z) / Z + S / Z^2] (y_i - y_j)
    """
    if normalized:
        Z, sum_w2 = _exact_z(Y, a, b)
        S = sum_w2 / Z - _sum_pw(P, Y, a, b)

        def coefficient(D, p):
            w = kernel(D, a, b)
            return 8 * a * b * d_pow_b_minus_1(D, b) * w * w * ((p - w / Z) / Z + S / Z**2)
    else:
        def coefficient(D, p):
            w = kernel(D, a, b)
            return 4 * a * b * d_pow_b_minus_1(D, b) * (p * w * w - w**3)
    return _force_sum(Y, P, coefficient)


def frobenius_attraction(D: np.ndarray, p: np.ndarray, a: float, b: float, normalized: bool) -> np.ndarray:
    """Attraction coefficient: ``8ab D^(b-1) w^2 p`` normalized, ``4ab D^(b-1) w^2 p`` not."""
    factor = 8.0 if normalized else 4.0
    w = kernel(D, a, b)
    return factor * a * b * d_pow_b_minus_1(D, b) * w * w * p


def frobenius_repulsion_channels(D: np.ndarray, a: float, b: float, normalized: bool) -> np.ndarray:
    """(phi_0, phi_1)(D), shape ``D.shape + (2,)``.

    Normalized: ``phi_0 = ab D^(b-1) w^2``, ``phi_1 = ab D^(b-1) w^3``.
    Unnormalized: ``phi_0 = ab D^(b-1) w^3``, ``phi_1 = 0`` (one channel is enough).
    """
    D = np.asarray(D, dtype=np.float64)
    w = kernel(D, a, b)
    base = a * b * d_pow_b_minus_1(D, b) * w * w
    if normalized:
        return np.stack([base, base * w], axis=-1)
    return np.stack([base * w, np.zeros_like(D)], axis=-1)


def _checked_z(Z: float) -> float:
    """``Z``, or a clear error where it is 0 or not finite: the embedding has spread so far
    that every low-dimensional similarity underflowed (or the coordinates overflowed)."""
    Z = float(Z)
    if np.isfinite(Z) and Z > 0:
        return Z
    from gidr.validation import GidrValueError, format_error

    raise GidrValueError(format_error(
        "The normalization Z of the low-dimensional similarities (their sum over pairs)",
        "a positive finite number", Z,
        "The embedding diverged (its coordinates grew so large that the similarities vanished, or "
        "their sum overflowed): lower the 'learning_rate', or rescale the init array (coordinates of "
        "order 1 to 100)."))


def frobenius_repulsion_weights(totals: PairTotals, normalized: bool) -> np.ndarray:
    """theta, shape (2,).

    Normalized, ``S = sum_w2 / Z - sum_pw``: ``(8 S / Z, -8 / Z)``. Unnormalized: ``(-4, 0)``.
    """
    if normalized:
        Z = _checked_z(totals.sum_w)
        S = totals.sum_w2 / Z - totals.sum_pw
        return np.array([8.0 * S / Z, -8.0 / Z])
    return np.array([-4.0, 0.0])


def frobenius_force_scale(totals: PairTotals, normalized: bool) -> float:
    """``Z`` normalized (forces are ``Z dL/dY``: KL-like magnitudes), 1 unnormalized."""
    return float(totals.sum_w) if normalized else 1.0


# ----------------------------------------------------------------------------- value estimates
# Each loss's value as sums of per-edge and per-pair terms (:meth:`gidr.stages.Loss.value_edge_terms`),
# so that a sample of rows and pairs estimates it on inputs too large for the exact O(n^2) value.

def _one_minus_w(D: np.ndarray, a: float, b: float, w: np.ndarray) -> np.ndarray:
    """``1 - w`` as ``a D^b w`` (no cancellation) for ``w = 1 / (1 + a D^b)``."""
    return a * np.power(D, b) * w


def kl_edge_terms(D: np.ndarray, p: np.ndarray, a: float, b: float, normalized: bool, dof: float = 1.0,
                  gamma: float = 1.0) -> np.ndarray:
    """Normalized: ``(p log p - p log w, p)``; unnormalized: (the edge's cross-entropy,
    ``-gamma log(1 - w)``). Shape (m, 2)."""
    with np.errstate(divide="ignore"):
        if normalized:
            w = heavy_tailed_kernel(D, a, b, dof)
            return np.stack([xlogy(p, p) - xlogy(p, w), p], axis=1)
        w = kernel(D, a, b)
        one_minus_w = _one_minus_w(D, a, b, w)
        cross_entropy = (xlogy(p, p) - xlogy(p, w)) + _weighted(gamma, xlogy(1 - p, 1 - p) - xlogy(1 - p, one_minus_w))
        return np.stack([cross_entropy, _weighted(gamma, -np.log(one_minus_w))], axis=1)


def kl_pair_terms(D: np.ndarray, a: float, b: float, normalized: bool, dof: float = 1.0,
                  gamma: float = 1.0) -> np.ndarray:
    """Normalized: ``(w,)``; unnormalized: ``(-gamma log(1 - w),)``. Shape (m, 1)."""
    if normalized:
        return heavy_tailed_kernel(D, a, b, dof)[:, None]
    with np.errstate(divide="ignore"):
        return _weighted(gamma, -np.log(_one_minus_w(D, a, b, kernel(D, a, b))))[:, None]


def kl_value_from_sums(edge_sums: np.ndarray, pair_sums: np.ndarray, normalized: bool) -> float:
    """Normalized: ``sum p log p - sum p log w + (sum p) log Z``; unnormalized: half of the
    edges' cross-entropy plus the off-graph ``-log(1 - w)`` (unordered pairs)."""
    if normalized:
        return float(edge_sums[0] + edge_sums[1] * np.log(pair_sums[0]))
    return float(0.5 * (edge_sums[0] + pair_sums[0] - edge_sums[1]))


def frobenius_edge_terms(D: np.ndarray, p: np.ndarray, a: float, b: float, normalized: bool) -> np.ndarray:
    """Normalized: ``(p^2, p w)``, shape (m, 2); unnormalized: ``((p - w)^2 - w^2,)``, shape (m, 1)."""
    w = kernel(D, a, b)
    if normalized:
        return np.stack([p * p, p * w], axis=1)
    return ((p - w) ** 2 - w * w)[:, None]


def frobenius_pair_terms(D: np.ndarray, a: float, b: float, normalized: bool) -> np.ndarray:
    """Normalized: ``(w, w^2)``; unnormalized: ``(w^2,)``."""
    w = kernel(D, a, b)
    return np.stack([w, w * w], axis=1) if normalized else (w * w)[:, None]


def frobenius_value_from_sums(edge_sums: np.ndarray, pair_sums: np.ndarray, normalized: bool) -> float:
    """Normalized: ``sum p^2 - 2 sum p w / Z + sum w^2 / Z^2``; unnormalized: half of
    ``sum_edges (p - w)^2 + sum_off-graph w^2`` (ordered pairs)."""
    if normalized:
        Z = pair_sums[0]
        return float(edge_sums[0] - 2.0 * edge_sums[1] / Z + pair_sums[1] / Z**2)
    return float(0.5 * (edge_sums[0] + pair_sums[0]))
