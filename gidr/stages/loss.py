"""Contract of the loss stage.

A loss between P and the low-dimensional similarities is written, for optimization, as
forces along ``y_i - y_j``. With ``D = ||y_i - y_j||^2`` and ``w = 1/(1 + a D^b)``::

    F_i = sum_{j in edges(i)} attraction(D_ij, p_ij) (y_i - y_j)
        + sum_c theta_c * sum_{k != i} phi_c(D_ik) (y_i - y_k)

where ``phi_c = repulsion_channels(D)[..., c]`` depends on D only, and the channel
weights ``theta = repulsion_weights(totals)`` depend on global sums (Z, ...), so that a
repulsion estimator (exact, Barnes-Hut, sampled) only ever evaluates ``phi``.
``F`` is ``force_scale(totals) * dL/dY`` for the loss's exact value ``L`` (for unnormalized
losses, with p_ik replaced by the mean of P off the graph, paper §4); descent moves
``y_i -= lr * F_i``.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from gidr.stages.base import Stage
from gidr.types import Context, PairTotals


class Loss(Stage):
    """Loss value, exact gradient, and the force decomposition used by optimizers."""

    kind = "loss"
    #: number of repulsion channels phi_c (1 or 2).
    n_channels: ClassVar[int] = 1

    @abstractmethod
    def value(self, P: sp.csr_matrix, Y: np.ndarray, ctx: Context) -> float:
        """Exact loss value (O(n^2))."""

    @abstractmethod
    def gradient(self, P: sp.csr_matrix, Y: np.ndarray, ctx: Context) -> np.ndarray:
        """Exact gradient dL/dY of shape (n_samples, n_components) (O(n^2))."""

    @abstractmethod
    def attraction(self, D: np.ndarray, p: np.ndarray, ctx: Context) -> np.ndarray:
        """Attraction coefficient of each edge, same shape as ``D``."""

    @abstractmethod
    def repulsion_channels(self, D: np.ndarray, ctx: Context) -> np.ndarray:
        """phi_c(D) of shape ``D.shape + (n_channels,)``."""

    @abstractmethod
    def repulsion_weights(self, totals: PairTotals, ctx: Context) -> np.ndarray:
        """theta of shape (n_channels,), from global sums."""

    def force_scale(self, totals: PairTotals, ctx: Context) -> float:
        """The positive factor s with ``forces = s * dL/dY``. Default 1."""
        return 1.0

    def numba_forces(self, ctx: Context):
        """Jitted scalar force functions for the numba optimizers, or None.

        Returns ``(attraction, repulsion)``, two ``numba.njit`` functions of float64 scalars:
        ``attraction(D, p, a, b) -> float`` and ``repulsion(D, a, b, epsilon) -> (phi_0, phi_1)``
        (``phi_1 = 0.0`` for a one-channel loss; ``epsilon`` is the loss's parameter of that
        name, or 0.0, and may be ignored). See :mod:`gidr_numba.forces`. A loss that returns
        None runs on the reference optimizers and estimators.
        """
        return None
