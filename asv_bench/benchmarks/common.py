"""Fixed-seed data shared by the benchmarks."""
from functools import lru_cache

import numpy as np

SIZES = [1_000, 5_000]


@lru_cache(maxsize=8)
def blobs(n_samples, n_features=50, n_centers=10, seed=0):
    """Gaussian blobs with labels: n_centers clusters in n_features dimensions."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=n_samples, n_features=n_features, centers=n_centers, cluster_std=2.0,
                      random_state=seed)
    return X.astype(np.float64), y


def knn_accuracy(Y, y, k=100):
    from gidr.metrics import knn_accuracy as score

    return score(Y, y, k=min(k, len(Y) - 1))


def trustworthiness(X, Y):
    from gidr.metrics import trustworthiness as score

    return score(X, Y, n_neighbors=15, max_samples=1000)
