"""Contract of the loss stage.

A loss between P and the low-dimensional similarities is written, for optimization, as
forces along ``y_i - y_j``. With ``D = ||y_i - y_j||^2`` and the loss's kernel
``w = kernel(D)`` (default ``1/(1 + a D^b)``)::

    F_i = sum_{j in edges(i)} attraction(D_ij, p_ij) (y_i - y_j)
        + sum_c theta_c * sum_{k != i} phi_c(D_ik) (y_i - y_k)

where ``phi_c = repulsion_channels(D)[..., c]`` depends on D only, and the channel
weights ``theta = repulsion_weights(totals)`` depend on global sums (Z, ...), so that a
repulsion estimator (exact, Barnes-Hut, sampled) only ever evaluates ``phi``.
``F`` is ``force_scale(totals) * dL/dY`` for the loss's exact value ``L`` (for unnormalized
losses, with p_ik replaced by the mean of P off the graph, paper §4); descent moves
``y_i -= lr * F_i``.

Capabilities (class attributes; optimizers ask for them, never for a loss's name):

``edge_sampling_sgd``
    The loss is UMAP's cross-entropy, whose factors ``p`` and ``1 - p`` umap-learn's SGD
    replaces by sampling edges in proportion to ``p`` (``umap_sgd`` needs it).
``auto_rate_factor``
    Factor on the normalized ``gdr`` optimizer's ``"auto"`` learning rate.
``auto_rate_unnormalized``
    The unnormalized ``gdr`` optimizer's ``"auto"`` learning rate (its initial step, before
    the linear decay).

A loss's value estimate (for progress reports on large inputs) comes from its own
:meth:`Loss.value_edge_terms`, :meth:`Loss.value_pair_terms` and
:meth:`Loss.value_from_sums`; a loss that does not define them reports its exact value
on small inputs only. Backend kernels (jitted force functions, ...) are not part of this
contract: backends register them through the ``gidr_register_kernels`` hook.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from gidr.kernel import kernel
from gidr.stages.base import Stage
from gidr.types import Context, PairTotals


class Loss(Stage):
    """Loss value, exact gradient, and the force decomposition used by optimizers."""

    kind = "loss"
    #: number of repulsion channels phi_c (1 or 2).
    n_channels: ClassVar[int] = 1
    #: See the module docstring.
    edge_sampling_sgd: ClassVar[bool] = False
    #: See the module docstring.
    auto_rate_factor: ClassVar[float] = 1.0
    #: See the module docstring.
    auto_rate_unnormalized: ClassVar[float] = 1.0

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

    def kernel(self, D: np.ndarray, ctx: Context) -> np.ndarray:
        """The low-dimensional similarity ``w`` at squared distances ``D`` (its sums make
        ``Z``). Default: ``1 / (1 + a D^b)``."""
        return kernel(D, ctx.a, ctx.b)

    def value_edge_terms(self, D: np.ndarray, p: np.ndarray, ctx: Context) -> np.ndarray | None:
        """Per stored entry of P, the terms whose sums enter :meth:`value_from_sums`.

        Parameters
        ----------
        D, p : ndarray of shape (m,)
            Squared distances and values of stored entries of P.

        Returns
        -------
        ndarray of shape (m, n_edge_terms), or None when the loss has no value estimate.
        """
        return None

    def value_pair_terms(self, D: np.ndarray, ctx: Context) -> np.ndarray:
        """Per ordered pair ``k != l``, the terms whose sums over all pairs enter
        :meth:`value_from_sums`: ndarray of shape (m, n_pair_terms)."""
        raise NotImplementedError(f"{self.describe()} has no value estimate")

    def value_from_sums(self, edge_sums: np.ndarray, pair_sums: np.ndarray, ctx: Context) -> float:
        """The loss value from the sums of :meth:`value_edge_terms` over every stored entry of
        P and of :meth:`value_pair_terms` over every ordered pair (exact or estimated)."""
        raise NotImplementedError(f"{self.describe()} has no value estimate")
