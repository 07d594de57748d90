"""Reference repulsion estimators: exact (all pairs) and sampled (GDR's negative samples).

Every estimator returns :class:`~gidr.types.RepulsionSums` for channel functions ``phi``
(``phi(D)`` has shape ``D.shape + (n_channels,)``; see :mod:`gidr.stages.loss`)::

    channels[c, i] ~ sum_{k != i} phi_c(D_ik) (y_i - y_k)
    sum_w  ~ sum_{k != l} w_kl,    sum_w2 ~ sum_{k != l} w_kl^2,    w = 1 / (1 + a D^b)

The Barnes-Hut estimator lives in :mod:`gidr_reference.barnes_hut`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from gidr.types import RepulsionSums
from gidr.stages.repulsion import sample_scaling
from gidr_reference.losses import pair_blocks
from gidr_reference.random import negative_pool, negative_sample, pooled_negative_sample

__all__ = ["exact_repulsion", "sampled_repulsion", "samples_per_point", "accumulate_pairs"]

#: Negative samples per point when the number of edges is not given.
DEFAULT_EDGES = 15

Channels = Callable[[np.ndarray], np.ndarray]


def exact_repulsion(Y: np.ndarray, phi: Channels, weight: Callable[[np.ndarray], np.ndarray]) -> RepulsionSums:
    """All pairs, O(n^2) time and O(block * n) memory.

    ``channels[c, i] = sum_{k != i} phi_c(D_ik) (y_i - y_k)``; ``sum_w`` and ``sum_w2`` sum
    ``w`` and ``w^2`` over all ordered pairs ``k != l``.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components)
    phi : callable
        ``phi(D) -> ndarray of shape D.shape + (n_channels,)``.
    weight : callable
        The loss's kernel ``w(D)`` (:meth:`gidr.stages.Loss.kernel`).
    """
    n, d = Y.shape
    channels = None
    sum_w = sum_w2 = 0.0
    for rows, diff, D, off, _ in pair_blocks(Y):
        coefficient = np.where(off[..., None], phi(D), 0.0)  # (rows, n, C)
        if channels is None:
            channels = np.zeros((coefficient.shape[-1], n, d))
        channels[:, rows] = np.einsum("ijc,ijk->cik", coefficient, diff)
        w = weight(D[off])
        sum_w += float(w.sum())
        sum_w2 += float((w * w).sum())
    return RepulsionSums(channels=channels, sum_w=sum_w, sum_w2=sum_w2)


def accumulate_pairs(
    n_samples: int,
    owner: np.ndarray,
    vector: np.ndarray,
    D: np.ndarray,
    phi: Channels,
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """``out[c, i] = sum_{s: owner_s = i} weight_s phi_c(D_s) vector_s``.

    Parameters
    ----------
    n_samples : int
    owner : ndarray of int, shape (m,)
        The point each interaction acts on.
    vector : ndarray of shape (m, n_components)
        ``y_i - y_k`` (or ``y_i - centre of mass``).
    D : ndarray of shape (m,)
        ``||vector||^2``.
    phi : callable
    weight : ndarray of shape (m,), optional
        Multiplicity of each interaction (cell counts); 1 when omitted.

    Returns
    -------
    ndarray of shape (n_channels, n_samples, n_components)
    """
    coefficient = phi(D)  # (m, C)
    if weight is not None:
        coefficient = coefficient * weight[:, None]
    n_channels, d = coefficient.shape[1], vector.shape[1]
    out = np.empty((n_channels, n_samples, d))
    for c in range(n_channels):
        for k in range(d):
            out[c, :, k] = np.bincount(owner, weights=coefficient[:, c] * vector[:, k], minlength=n_samples)
    return out


def samples_per_point(n_samples: int, n_negative: int, n_edges: np.ndarray | None) -> np.ndarray:
    """``m_i = n_negative * n_edges[i]`` (``n_negative * 15`` when ``n_edges`` is None)."""
    if n_edges is None:
        return np.full(n_samples, n_negative * DEFAULT_EDGES, dtype=np.int64)
    return n_negative * np.asarray(n_edges, dtype=np.int64)


def sampled_repulsion(
    Y: np.ndarray,
    phi: Channels,
    weight: Callable[[np.ndarray], np.ndarray],
    *,
    seed: int,
    epoch: int,
    m: np.ndarray,
    normalized: bool,
    pool_size: int = 0,
) -> RepulsionSums:
    """GDR's estimate from ``m_i`` uniform negative samples per point.

    Point ``i`` draws ``k_s = negative_sample(seed, epoch, i, s, n)``, ``s = 0 .. m_i - 1``
    (uniform over the points other than ``i``); with ``0 < pool_size < n``,
    ``k_s = pooled_negative_sample(seed, epoch, i, s, n, pool)`` through the epoch's
    ``pool = negative_pool(seed, epoch, n, pool_size)`` (also uniform over the others, see
    :mod:`gidr_reference.random`). With ``M = sum_i m_i``::

        normalized:    channels[c, i] = (n - 1) / m_i * sum_s phi_c(D_ik_s) (y_i - y_k_s)
        unnormalized:  channels[c, i] =                 sum_s phi_c(D_ik_s) (y_i - y_k_s)
        sum_w  = n (n - 1) / M * sum over all M samples of w,   sum_w2 likewise

    The normalized channels are unbiased for the exact sums; the unnormalized ones
    estimate ``m_i / (n - 1)`` times them (UMAP). Points with ``m_i = 0`` get zero channels.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components)
    phi : callable
        ``phi(D) -> ndarray of shape D.shape + (n_channels,)``.
    weight : callable
        The loss's kernel ``w(D)`` (:meth:`gidr.stages.Loss.kernel`).
    seed, epoch : int
        The counter-hash coordinates: the same (seed, epoch) gives the same draws.
    m : ndarray of int, shape (n_samples,)
        Samples per point (see :func:`samples_per_point`).
    normalized : bool
    pool_size : int
        Points in the epoch's negative pool; 0, or at least ``n``, draws from all points.
    """
    n, d = Y.shape
    m = np.asarray(m, dtype=np.int64)
    owner = np.repeat(np.arange(n), m)
    slot = np.arange(owner.size) - np.repeat(np.cumsum(m) - m, m)  # 0 .. m_i - 1 within each point
    if n < 2 or owner.size == 0:
        n_channels = phi(np.zeros(1)).shape[-1]
        return RepulsionSums(channels=np.zeros((n_channels, n, d)), sum_w=0.0, sum_w2=0.0)
    if 0 < pool_size < n:
        other = pooled_negative_sample(seed, epoch, owner, slot, n, negative_pool(seed, epoch, n, pool_size))
    else:
        other = negative_sample(seed, epoch, owner, slot, n)
    vector = Y[owner] - Y[other]
    D = np.einsum("ij,ij->i", vector, vector)
    channels = accumulate_pairs(n, owner, vector, D, phi)
    channel_scale, pair_scale = sample_scaling(n, m, normalized)
    channels *= channel_scale[None, :, None]
    w = weight(D)
    return RepulsionSums(channels=channels, sum_w=pair_scale * float(w.sum()),
                         sum_w2=pair_scale * float((w * w).sum()))
