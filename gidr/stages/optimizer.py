"""Contract of the optimizer stage."""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, Mapping

import numpy as np

from gidr.stages.base import Stage
from gidr.types import Affinities, Context, Monitor, NewEdges
from gidr.validation import GidrValueError, format_error


class Optimizer(Stage):
    """The epoch loop that applies attractive and repulsive forces."""

    kind = "optimizer"

    def check_compatible(self, loss, repulsion, settings: Mapping[str, Any]) -> None:
        """Raise GidrValueError when this optimizer cannot run with these stages.

        ``settings`` holds the pipeline's validated switches (``normalized``,
        ``n_components``, ...). Called when the pipeline is built. Decide from the stages'
        declared capabilities (``repulsion.per_edge_sampler``, ``loss.edge_sampling_sgd``,
        ...), never from their names.
        """

    def check_density(self, settings: Mapping[str, Any]) -> None:
        """Raise GidrValueError unless this optimizer adds densMAP's density term
        (``affinities.density``, :class:`~gidr.types.DensityTarget`) to the loss's forces with
        these ``settings``. Called when the pipeline is built with ``densmap=True``. Default:
        it does not (an optimizer that ignored the term would silently drop it)."""
        raise GidrValueError(format_error(
            f"The 'densmap' switch used with {self.describe()} (backend '{self.backend}')", "False", True,
            "This optimizer has no density term; use optimizer='umap_sgd' (gidr.UMAP) or the unnormalized "
            "optimizer='gdr' (gidr.GDR with normalized=False)."))

    @abstractmethod
    def default_n_epochs(self, n_samples: int) -> int:
        """Epochs to run when the pipeline's ``n_epochs`` is None."""

    @abstractmethod
    def optimize(
        self,
        Y: np.ndarray,
        affinities: Affinities,
        loss,
        repulsion,
        ctx: Context,
        monitor: Monitor,
    ) -> np.ndarray:
        """Return the optimized embedding; never modify ``Y`` in place.

        ``affinities`` carries P (``affinities.P``, CSR) with what is known about it
        (``normalized``, ``p_mean``).
        """

    def embed_new(
        self,
        Y_start: np.ndarray,
        Y_train: np.ndarray,
        edges: NewEdges,
        affinities: Affinities,
        loss,
        ctx: Context,
        n_epochs: int,
        repulsion=None,
    ) -> np.ndarray:
        """Optimize new points against the fixed training embedding (``transform``).

        Parameters
        ----------
        Y_start : ndarray of shape (n_new, n_components)
            Starting positions of the new points (not modified).
        Y_train : ndarray of shape (n_train, n_components)
            The fitted embedding; it does not move.
        edges : NewEdges
            Each new point's training neighbours, their weights, and the point's own key
            for its random draws (so that its result does not depend on the other new points).
        affinities : Affinities
            The fitted P (for its totals: ``p_mean``, its sum).
        loss : Loss
        ctx : Context
            The fit's switches (``n_samples`` is the number of training points).
        n_epochs : int
        repulsion : Repulsion, optional
            The fitted repulsion stage; a per-edge sampler sets the negatives per edge
            (``draws_per_edge()``).

        Returns
        -------
        ndarray of shape (n_new, n_components)
        """
        raise GidrValueError(format_error(
            f"The optimizer for transform ({self.describe()}, backend '{self.backend}')",
            "an optimizer that embeds new points", "one that does not",
            "Fit with optimizer='gdr', 'umap_sgd' or 'tsne' to transform new data."))
