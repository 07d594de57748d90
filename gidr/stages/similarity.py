"""Contract of the similarity stage."""
from __future__ import annotations

from abc import abstractmethod

import scipy.sparse as sp

from gidr.stages.base import Stage
from gidr.types import Context, KNNGraph


class Similarity(Stage):
    """Directed weights p_{j|i} on the edges of the kNN graph."""

    kind = "similarity"

    @abstractmethod
    def n_neighbors_required(self, n_samples: int) -> int:
        """How many neighbours (self excluded) this similarity needs for ``n_samples`` points.

        The result is at most ``n_samples - 1``.
        """

    @abstractmethod
    def compute(self, graph: KNNGraph, ctx: Context) -> sp.csr_matrix:
        """Return P_directed of shape (n_samples, n_samples): row i holds p_{j|i}."""
