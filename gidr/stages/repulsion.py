"""Contract of the repulsion estimator stage."""
from __future__ import annotations

from abc import abstractmethod

import numpy as np

from gidr.stages.base import Stage
from gidr.types import Context, RepulsionSums


class Repulsion(Stage):
    """Estimate, for every point, the sums over all other points of the loss's
    repulsion channels, and the global sums of w and w^2 (see :mod:`gidr.stages.loss`).

    Normalized: estimates stand for the sum over all n-1 other points (unbiased).
    Unnormalized (UMAP): the estimate is the plain sum over the points visited.
    """

    kind = "repulsion"

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
            Supplies ``repulsion_channels`` (phi) and the kernel parameters.
        ctx : Context
        epoch : int
            Used by stochastic estimators to derive their random draws: the same
            (seed, epoch) gives the same draws.
        n_edges : ndarray of shape (n_samples,), optional
            Number of attractive edges of each point; the ``sampled`` estimator draws
            ``n_negative`` points per edge.
        """
