"""Contract of the repulsion estimator stage.

Capabilities (class attributes; optimizers ask for them, never for a stage's name):

``per_edge_sampler``
    The estimate is GDR's negative sampling: for each stored entry of row ``i`` of P,
    :meth:`Repulsion.draws_per_edge` uniform points ``k != i``, drawn with the counter hash
    ``negative_sample(seed, epoch, i, slot, n)`` (:mod:`gidr_reference.random`) or, where
    :meth:`Repulsion.negative_pool_size` is ``P > 0``, ``pooled_negative_sample(seed, epoch,
    i, slot, n, negative_pool(seed, epoch, n, P))``, the sums
    rescaled by :func:`sample_scaling`. An optimizer may then fuse the draws into its own
    pass over P instead of calling :meth:`Repulsion.estimate` (the numba ``gdr`` does;
    ``umap_sgd`` needs it). A subclass that overrides ``estimate`` without declaring
    ``per_edge_sampler`` itself again is not fused: its own ``estimate`` is called.

``interpolates_kernels``
    The estimate interpolates the loss's kernels on a grid (``fft``): no parameter makes it
    exact, so conformance does not hold it to the exact sums at a tight tolerance (its own
    tests state its error against ``exact``).
"""
from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np

from gidr.stages.base import Stage
from gidr.types import Context, RepulsionSums

__all__ = ["Repulsion", "sample_scaling"]


def sample_scaling(n_samples: int, samples_per_point: np.ndarray, normalized: bool) -> tuple[np.ndarray, float]:
    """How sampled sums stand for sums over all pairs: the one home of the rescaling.

    Parameters
    ----------
    n_samples : int
    samples_per_point : ndarray of shape (n_samples,)
        ``m_i``, the draws of point ``i``.
    normalized : bool

    Returns
    -------
    channel_scale : ndarray of shape (n_samples,)
        Factor on point ``i``'s sampled channel sums: ``(n - 1) / m_i`` when normalized
        (unbiased for the sum over all ``n - 1`` others; 0 where ``m_i == 0``), else 1
        (UMAP: the plain sum over the points visited).
    pair_scale : float
        Factor on the sums of ``w`` and ``w^2`` over all draws: ``n (n - 1) / sum m``
        (unbiased for the sums over all ordered pairs; 0 when nothing was drawn).
    """
    m = np.asarray(samples_per_point)
    n = int(n_samples)
    total = int(m.sum())
    pair_scale = n * (n - 1) / total if total > 0 else 0.0
    if normalized:
        channel_scale = np.divide(n - 1, m, out=np.zeros(n), where=m > 0)
    else:
        channel_scale = np.ones(n)
    return channel_scale, float(pair_scale)


class Repulsion(Stage):
    """Estimate, for every point, the sums over all other points of the loss's
    repulsion channels, and the global sums of w and w^2 (see :mod:`gidr.stages.loss`).

    Normalized: estimates stand for the sum over all n-1 other points (unbiased).
    Unnormalized (UMAP): the estimate is the plain sum over the points visited.
    """

    kind = "repulsion"
    #: See the module docstring.
    per_edge_sampler: ClassVar[bool] = False
    #: See the module docstring.
    interpolates_kernels: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # An estimator that replaces ``estimate`` is called, not fused, unless it says again
        # that it samples per edge exactly as the contract describes.
        if "estimate" in cls.__dict__ and "per_edge_sampler" not in cls.__dict__:
            cls.per_edge_sampler = False

    def draws_per_edge(self) -> int:
        """Negative samples per stored entry of P (only for a ``per_edge_sampler``)."""
        raise NotImplementedError(f"{self.describe()} does not sample per edge")

    def negative_pool_size(self, n_samples: int) -> int:
        """Points in each epoch's negative pool for ``n_samples`` points (only for a
        ``per_edge_sampler``): 0, the default, draws from all points."""
        return 0

    @abstractmethod
    def estimate(
        self,
        Y: np.ndarray,
        loss,
        ctx: Context,
        epoch: int,
        n_edges: np.ndarray | None = None,
    ) -> RepulsionSums:
        """Return the repulsion sums at positions ``Y``.

        Parameters
        ----------
        Y : ndarray of shape (n_samples, n_components)
        loss : Loss
            Supplies ``repulsion_channels`` (phi), ``kernel`` (w) and the kernel parameters.
        ctx : Context
        epoch : int
            Used by stochastic estimators to derive their random draws: the same
            (seed, epoch) gives the same draws.
        n_edges : ndarray of shape (n_samples,), optional
            Number of attractive edges of each point; a per-edge sampler draws
            ``draws_per_edge()`` points per edge.
        """
