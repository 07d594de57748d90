"""The Hellinger loss between unnormalized P and the low-dimensional kernel w.

With ``D_ij = ||y_i - y_j||^2`` and ``w_ij = 1 / (1 + a D_ij^b)``, summed over unordered
pairs (``p_ij = 0`` off the kNN graph)::

    L = sum_{i<j} (sqrt(p_ij) - sqrt(w_ij))^2

    dL/dy_i = sum_{j != i} 2ab D_ij^(b-1) (sqrt(p_ij) w_ij^(3/2) - w_ij^2) (y_i - y_j)

gidr's optimizers need the gradient split into forces (see :mod:`gidr.stages.loss`)::

    attraction(D, p) = 2ab D^(b-1) sqrt(p) w^(3/2)       over the stored entries of P
    phi_0(D)         = ab D^(b-1) w^2,   theta_0 = -2     over all other points
    force_scale      = 1                                  (forces are exactly dL/dY)

Unlike the unnormalized KL loss, no unknown ``p_ik`` enters the repulsion, so the
decomposition is exact. The class binds the stage contract; the math lives in the
module-level functions below.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from gidr.kernel import kernel
from gidr.stages import Loss
from gidr.types import Context, PairTotals
from gidr.validation import GidrValueError, format_error

__all__ = ["HellingerLoss", "hellinger_value", "hellinger_gradient", "hellinger_attraction",
           "hellinger_repulsion"]

#: Rows of the pairwise block handled at once by the O(n^2) value and gradient: memory
#: stays O(block * n) whatever n.
_BLOCK_ENTRIES = 2_000_000


def _power_b_minus_1(D: np.ndarray, b: float) -> np.ndarray:
    """D^(b-1), defined as 0 where D == 0 and b != 1 (the vector y_i - y_j is 0 there)."""
    if b == 1.0:
        return np.ones_like(D)
    out = np.zeros_like(D)
    np.power(D, b - 1.0, out=out, where=D > 0)
    return out


def hellinger_attraction(D: np.ndarray, p: np.ndarray, a: float, b: float) -> np.ndarray:
    """Attraction coefficient ``2ab D^(b-1) sqrt(p) w^(3/2)`` of each edge.

    Parameters
    ----------
    D : ndarray of shape (n_edges,)
        Squared low-dimensional distances of the edges.
    p : ndarray of shape (n_edges,)
        Their values in P.
    a, b : float
        Kernel parameters.

    Returns
    -------
    ndarray of shape (n_edges,)
    """
    w = kernel(D, a, b)
    return 2.0 * a * b * _power_b_minus_1(D, b) * np.sqrt(p) * w * np.sqrt(w)


def hellinger_repulsion(D: np.ndarray, a: float, b: float) -> np.ndarray:
    """Repulsion channel ``phi_0 = ab D^(b-1) w^2`` (its weight is theta_0 = -2).

    Parameters
    ----------
    D : ndarray of any shape
        Squared low-dimensional distances.

    Returns
    -------
    ndarray of the shape of ``D``
    """
    w = kernel(D, a, b)
    return a * b * _power_b_minus_1(D, b) * w * w


def _row_blocks(n_samples: int):
    step = max(1, _BLOCK_ENTRIES // max(n_samples, 1))
    for start in range(0, n_samples, step):
        yield np.arange(start, min(start + step, n_samples))


def _squared_distances(Y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """D[r, k] = ||y_rows[r] - y_k||^2, summed coordinate by coordinate (no cancellation)."""
    D = np.zeros((len(rows), len(Y)))
    for dim in range(Y.shape[1]):
        D += (Y[rows, dim, None] - Y[None, :, dim]) ** 2
    return D


def _edges(P: sp.csr_matrix, Y: np.ndarray):
    coo = sp.coo_matrix(P)
    diff = Y[coo.row] - Y[coo.col]
    return coo, np.einsum("ij,ij->i", diff, diff)


def hellinger_value(P: sp.csr_matrix, Y: np.ndarray, a: float, b: float) -> float:
    """Exact ``L = sum_{i<j} (sqrt(p_ij) - sqrt(w_ij))^2`` in O(n^2) time, O(n) memory blocks.

    Expanded as ``sum_{i<j} w + sum_{i<j} p - 2 sum_{i<j} sqrt(p w)``; P is symmetric, so
    each sum over unordered pairs is half the sum over stored (ordered) entries.

    Parameters
    ----------
    P : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        Symmetric, zero diagonal.
    Y : ndarray of shape (n_samples, n_components)
    a, b : float

    Returns
    -------
    float
    """
    n_samples = len(Y)
    sum_w = 0.0  # over ordered pairs k != l
    for rows in _row_blocks(n_samples):
        w = kernel(_squared_distances(Y, rows), a, b)
        w[np.arange(len(rows)), rows] = 0.0
        sum_w += float(w.sum())
    coo, D_edges = _edges(P, Y)
    cross = float(np.sum(np.sqrt(coo.data * kernel(D_edges, a, b))))
    return 0.5 * sum_w + 0.5 * float(coo.data.sum()) - cross


def hellinger_gradient(P: sp.csr_matrix, Y: np.ndarray, a: float, b: float) -> np.ndarray:
    """Exact ``dL/dy_i = sum_{j != i} 2ab D^(b-1) (sqrt(p) w^(3/2) - w^2) (y_i - y_j)``.

    Computed as the attraction over the stored entries of P minus twice the repulsion
    channel summed over all other points, in O(n^2) time and O(block * n) memory.

    Parameters
    ----------
    P : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
    Y : ndarray of shape (n_samples, n_components)
    a, b : float

    Returns
    -------
    ndarray of shape (n_samples, n_components)
    """
    n_samples = len(Y)
    coo, D_edges = _edges(P, Y)
    coef = sp.csr_matrix((hellinger_attraction(D_edges, coo.data, a, b), (coo.row, coo.col)),
                         shape=(n_samples, n_samples))
    attraction = np.asarray(coef.sum(axis=1)) * Y - coef @ Y
    repulsion = np.zeros_like(Y, dtype=np.float64)
    for rows in _row_blocks(n_samples):
        phi = hellinger_repulsion(_squared_distances(Y, rows), a, b)
        phi[np.arange(len(rows)), rows] = 0.0
        repulsion[rows] = phi.sum(axis=1)[:, None] * Y[rows] - phi @ Y
    return attraction - 2.0 * repulsion


class HellingerLoss(Loss):
    """The Hellinger loss ``sum_{i<j} (sqrt(p_ij) - sqrt(w_ij))^2`` (unnormalized only).

    Its backend is ``"example"``: a third-party backend with only this stage. Asked for
    with ``backend="auto"`` or any other backend, the registry falls back to it, as the
    only provider of ``loss 'hellinger'``.
    """

    name = "hellinger"
    backend = "example"
    priority = 0
    params = ()
    n_channels = 1

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        """Refuse ``normalized=True``: the loss is defined on unnormalized P and w."""
        if settings["normalized"]:
            raise GidrValueError(format_error(
                f"The 'normalized' switch with {self.describe()}", "False", True,
                "The Hellinger loss compares sqrt(p_ij) with sqrt(w_ij) pair by pair and is defined "
                "for unnormalized P and Q only; use normalized=False (e.g. preset 'gdr-umap' or "
                "'gdr-hellinger'), or loss='kl' or loss='frobenius' for a normalized embedding.",
            ))

    def value(self, P: sp.csr_matrix, Y: np.ndarray, ctx: Context) -> float:
        return hellinger_value(P, Y, ctx.a, ctx.b)

    def gradient(self, P: sp.csr_matrix, Y: np.ndarray, ctx: Context) -> np.ndarray:
        return hellinger_gradient(P, Y, ctx.a, ctx.b)

    def attraction(self, D: np.ndarray, p: np.ndarray, ctx: Context) -> np.ndarray:
        return hellinger_attraction(D, p, ctx.a, ctx.b)

    def repulsion_channels(self, D: np.ndarray, ctx: Context) -> np.ndarray:
        return hellinger_repulsion(D, ctx.a, ctx.b)[..., None]

    def repulsion_weights(self, totals: PairTotals, ctx: Context) -> np.ndarray:
        return np.array([-2.0])

    def value_edge_terms(self, D: np.ndarray, p: np.ndarray, ctx: Context) -> np.ndarray:
        """Per stored entry: ``(p - 2 sqrt(p w),)``: with P symmetric, half its sum is the edges'
        share of ``L`` (see :func:`hellinger_value`)."""
        w = kernel(D, ctx.a, ctx.b)
        return (p - 2.0 * np.sqrt(p * w))[:, None]

    def value_pair_terms(self, D: np.ndarray, ctx: Context) -> np.ndarray:
        """Per ordered pair: ``(w,)``."""
        return kernel(D, ctx.a, ctx.b)[:, None]

    def value_from_sums(self, edge_sums: np.ndarray, pair_sums: np.ndarray, ctx: Context) -> float:
        """``L = (sum_pairs w + sum_edges p - 2 sum_edges sqrt(p w)) / 2`` over ordered pairs, i.e.
        ``sum_{i<j} (sqrt(p) - sqrt(w))^2``."""
        return float(0.5 * (pair_sums[0] + edge_sums[0]))
