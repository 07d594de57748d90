"""Contract of the similarity stage."""
from __future__ import annotations

from abc import abstractmethod

import numpy as np
import scipy.sparse as sp

from gidr.stages.base import Stage
from gidr.types import Context, KNNGraph


class Similarity(Stage):
    """Directed weights p_{j|i} on the edges of the kNN graph.

    Subclasses implement :meth:`row_weights` (one row of weights per point, computed from
    that point's neighbour distances only); :meth:`compute` places them in a sparse matrix.
    Because a row depends only on its own distances, ``transform`` reuses
    :meth:`row_weights` for new points.
    """

    kind = "similarity"

    @abstractmethod
    def n_neighbors_required(self, n_samples: int) -> int:
        """How many neighbours (self excluded) this similarity asks for with ``n_samples`` points.

        It may exceed ``n_samples - 1``: the pipeline then clamps it, with a warning.
        """

    @abstractmethod
    def row_weights(self, distances: np.ndarray, ctx: Context) -> np.ndarray:
        """p_{j|i} for each point's neighbours.

        Parameters
        ----------
        distances : ndarray of shape (n_points, k)
            Sorted neighbour distances of each point.

        Returns
        -------
        ndarray of shape (n_points, k)
        """

    def compute(self, graph: KNNGraph, ctx: Context) -> sp.csr_matrix:
        """Return P_directed of shape (n_samples, n_samples): row i holds p_{j|i}.

        Entries that underflow to zero are dropped; indices are sorted.
        """
        return directed_matrix(graph.indices, self.row_weights(graph.distances, ctx))


def directed_matrix(indices: np.ndarray, weights: np.ndarray) -> sp.csr_matrix:
    """CSR matrix with ``weights[i, m]`` at ``(i, indices[i, m])``; zeros dropped, indices sorted."""
    n_samples, k = indices.shape
    indptr = np.arange(0, n_samples * k + 1, k, dtype=np.int64)
    P = sp.csr_matrix((np.asarray(weights, dtype=np.float64).ravel(), np.asarray(indices).ravel(), indptr),
                      shape=(n_samples, n_samples))
    P.sum_duplicates()
    P.eliminate_zeros()
    P.sort_indices()
    return P
