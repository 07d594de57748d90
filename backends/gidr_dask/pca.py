"""Principal-component scores of a Dask array, for an init that reads the data (``pca``).

The column means and the ``d x d`` scatter matrix are summed over the chunks on the workers;
the client finds the top eigenvectors and the workers project their rows, so the client
holds ``n x n_components`` scores, never the data. The PCA init of those scores gives the
PCA layout of the data (the scores are the data's own principal axes, already centred),
up to the rounding of the chunked sums: unlike the kNN graph, this reduction's last bits
depend on the chunking.
"""
from __future__ import annotations

import numpy as np

__all__ = ["pca_scores"]


def pca_scores(X, n_components: int) -> np.ndarray:
    """Scores of the rows of ``X`` on its ``n_components`` leading principal axes, shape
    (n_samples, min(n_components, n_features)), float64."""
    import dask

    X = X.astype(np.float64)
    mean = X.mean(axis=0)
    centred = X - mean
    scatter, = dask.compute(centred.T @ centred)
    values, vectors = np.linalg.eigh(scatter)
    top = vectors[:, np.argsort(values)[::-1][:min(int(n_components), X.shape[1])]]
    scores, = dask.compute(centred @ top)
    return np.asarray(scores)
