"""Contract of the neighbors stage."""
from __future__ import annotations

from abc import abstractmethod

import numpy as np

from gidr.stages.base import Stage
from gidr.types import Context, KNNGraph


class Neighbors(Stage):
    """Find the k nearest neighbours of every point, self excluded.

    Implementations must return neighbours sorted by increasing distance, exclude the
    point itself (duplicates of a point are ordinary neighbours at distance 0), and
    report true distances (never squared, never square-rooted twice).
    """

    kind = "neighbors"

    @abstractmethod
    def compute(self, X: np.ndarray, n_neighbors: int, ctx: Context) -> KNNGraph:
        """Return the kNN graph.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            For ``precomputed``: a square distance matrix or a :class:`KNNGraph`.
        n_neighbors : int
            k, already clamped to ``n_samples - 1`` by the pipeline.
        ctx : Context
        """
