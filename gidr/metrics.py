"""How we judge an embedding (SPEC §6).

Four scores, each a plain function of arrays:

- :func:`knn_accuracy`: leave-one-out majority vote among the ``k`` nearest neighbours in
  the embedding (class separation, local scale).
- :func:`v_measure`: V-measure of a seeded KMeans clustering of the embedding against the
  labels (class separation, global scale).
- :func:`trustworthiness`: scikit-learn's trustworthiness on a fixed subsample.
- :func:`knn_recall`: the share of the ``k`` high-dimensional neighbours that stay among the
  ``k`` embedding neighbours, for a fixed subsample of query points.

:func:`neighbor_preservation` gives that share for every point (an array, to colour a map by).

:func:`evaluate` computes all that apply and returns them in a dict. Inputs are never
modified; every bad input raises :class:`~gidr.validation.GidrValueError`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from gidr.validation import Described, GidrValueError, Interval, Param, check_array, format_error, resolve_seed

__all__ = ["knn_accuracy", "v_measure", "trustworthiness", "knn_recall", "neighbor_preservation", "evaluate"]

# Rows of the (n_points, n_classes) vote table counted at once, bounding its memory.
_VOTE_TABLE_CELLS = 1 << 22
# Cells of the (rows, k, k) comparison table of neighbor_preservation held at once.
_MATCH_TABLE_CELLS = 1 << 24


def _check_int(name: str, value: Any, owner: str, low: int = 1, allow_none: bool = False) -> int | None:
    param = Param(name, None, (Interval(int, low, None),), allow_none=allow_none)
    return param.validate(value, owner)


def _check_labels(labels: Any, n_samples: int, owner: str) -> np.ndarray:
    """Return ``labels`` encoded as ints ``0..n_classes-1`` (sorted order of the classes)."""
    array = np.asarray(labels)
    if array.ndim != 1 or array.shape[0] != n_samples:
        raise GidrValueError(
            format_error(f"The 'labels' parameter of {owner}",
                         f"a 1-D array with one label per point ({n_samples})",
                         f"an array of shape {array.shape}")
        )
    _, codes = np.unique(array, return_inverse=True)
    return codes.reshape(-1)


def _check_same_length(X: Any, Y: np.ndarray, owner: str) -> None:
    if X.shape[0] != Y.shape[0]:
        raise GidrValueError(
            format_error(f"The input X of {owner}", f"an array with as many rows as Y ({Y.shape[0]})",
                         f"{X.shape[0]} rows", "Pass the data that was embedded, row for row.")
        )


def _subsample(n_samples: int, max_samples: int | None, random_state: Any) -> np.ndarray:
    """Sorted indices of a seeded subsample of at most ``max_samples`` of ``n_samples`` rows."""
    if max_samples is None or n_samples <= max_samples:
        return np.arange(n_samples)
    rng = np.random.default_rng(resolve_seed(random_state))
    return np.sort(rng.choice(n_samples, size=max_samples, replace=False))


def _majority_vote(neighbor_codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Most frequent code per row; ties go to the smallest code (``argmax`` keeps the first)."""
    n_rows, k = neighbor_codes.shape
    prediction = np.empty(n_rows, dtype=np.intp)
    chunk = max(1, _VOTE_TABLE_CELLS // n_classes)
    for start in range(0, n_rows, chunk):
        codes = neighbor_codes[start:start + chunk]
        rows = codes.shape[0]
        flat = codes + (np.arange(rows)[:, None] * n_classes)
        votes = np.bincount(flat.ravel(), minlength=rows * n_classes).reshape(rows, n_classes)
        prediction[start:start + rows] = np.argmax(votes, axis=1)
    return prediction


def knn_accuracy(Y: Any, labels: Any, k: int = 100) -> float:
    """Leave-one-out kNN classification accuracy in the embedding.

    Each point is assigned the majority label of its ``k`` nearest neighbours in ``Y``
    (Euclidean, the point itself excluded); ties go to the smallest label.

    Parameters
    ----------
    Y : array-like of shape (n_samples, n_components)
        The embedding.
    labels : array-like of shape (n_samples,)
        Class of each point (ints, strings, anything :func:`numpy.unique` can sort).
    k : int, default=100
        Number of neighbours that vote; clamped to ``n_samples - 1``.

    Returns
    -------
    float
        Share of points whose vote equals their own label, in [0, 1].
    """
    from sklearn.neighbors import NearestNeighbors

    owner = "knn_accuracy()"
    k = _check_int("k", k, owner)
    Y = check_array(Y, name="Y")
    codes = _check_labels(labels, Y.shape[0], owner)
    k = min(k, Y.shape[0] - 1)
    # kneighbors() without a query excludes each indexed point from its own neighbours,
    # even when it has exact duplicates.
    neighbors = NearestNeighbors(n_neighbors=k).fit(Y).kneighbors(return_distance=False)
    prediction = _majority_vote(codes[neighbors], int(codes.max()) + 1)
    return float(np.mean(prediction == codes))


def v_measure(Y: Any, labels: Any, n_clusters: int | None = None, random_state: Any = 0) -> float:
    """V-measure of a KMeans clustering of the embedding against the labels.

    Parameters
    ----------
    Y : array-like of shape (n_samples, n_components)
        The embedding.
    labels : array-like of shape (n_samples,)
        Class of each point.
    n_clusters : int or None, default=None
        Number of KMeans clusters; ``None`` uses the number of distinct labels.
    random_state : int, Generator or None, default=0
        Seed of KMeans (``n_init=10``).

    Returns
    -------
    float
        :func:`sklearn.metrics.v_measure_score` of the labels and the clusters, in [0, 1].
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    owner = "v_measure()"
    n_clusters = _check_int("n_clusters", n_clusters, owner, allow_none=True)
    Y = check_array(Y, name="Y")
    codes = _check_labels(labels, Y.shape[0], owner)
    if n_clusters is None:
        n_clusters = int(codes.max()) + 1
    if n_clusters > Y.shape[0]:
        raise GidrValueError(
            format_error(f"The 'n_clusters' parameter of {owner}",
                         f"at most the number of points ({Y.shape[0]})", n_clusters)
        )
    seed = resolve_seed(random_state) % 2**32
    clusters = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(Y)
    return float(v_measure_score(codes, clusters))


def trustworthiness(
    X: Any, Y: Any, n_neighbors: int = 15, max_samples: int | None = 5000, random_state: Any = 0
) -> float:
    """Trustworthiness of the embedding on a fixed random subsample.

    The same rows of ``X`` and ``Y`` are drawn; neighbours are then searched within the
    subsample, as :func:`sklearn.manifold.trustworthiness` does.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_samples, n_features)
        The high-dimensional data.
    Y : array-like of shape (n_samples, n_components)
        The embedding.
    n_neighbors : int, default=15
        Neighbourhood size; must be below half the subsample size.
    max_samples : int or None, default=5000
        Largest subsample; ``None`` uses every point (O(n²) memory).
    random_state : int, Generator or None, default=0
        Seed of the subsample.

    Returns
    -------
    float
        Trustworthiness in [0, 1].
    """
    from sklearn.manifold import trustworthiness as sklearn_trustworthiness

    owner = "trustworthiness()"
    n_neighbors = _check_int("n_neighbors", n_neighbors, owner)
    max_samples = _check_int("max_samples", max_samples, owner, low=2, allow_none=True)
    X = check_array(X, name="X", allow_sparse=True)
    Y = check_array(Y, name="Y")
    _check_same_length(X, Y, owner)
    rows = _subsample(Y.shape[0], max_samples, random_state)
    if n_neighbors >= rows.size / 2:
        raise GidrValueError(
            format_error(f"The 'n_neighbors' parameter of {owner}",
                         f"less than half the number of (subsampled) points, {rows.size}", n_neighbors)
        )
    return float(sklearn_trustworthiness(X[rows], Y[rows], n_neighbors=n_neighbors))


def _neighbors_excluding_self(data: Any, queries: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` nearest neighbours among all rows of ``data`` of rows ``queries``, self excluded."""
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=k + 1).fit(data)
    return _drop_self(index.kneighbors(data[queries], return_distance=False), queries)


def _drop_self(neighbors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The (n, k) neighbours left when each query row of (n, k + 1) neighbours loses itself."""
    is_self = neighbors == queries[:, None]
    # A point with k+1 exact duplicates may not find itself; then drop the farthest instead.
    is_self[~is_self.any(axis=1), -1] = True
    return neighbors[~is_self].reshape(queries.size, neighbors.shape[1] - 1)


def knn_recall(
    X: Any, Y: Any, k: int = 15, max_samples: int | None = 5000, random_state: Any = 0
) -> float:
    """Share of high-dimensional nearest neighbours kept in the embedding.

    For each query point of a fixed random subsample, its ``k`` nearest neighbours in ``X``
    and in ``Y`` are searched among *all* points (the point itself excluded); the score is
    the mean share of the former found among the latter.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_samples, n_features)
        The high-dimensional data.
    Y : array-like of shape (n_samples, n_components)
        The embedding.
    k : int, default=15
        Neighbourhood size; clamped to ``n_samples - 1``.
    max_samples : int or None, default=5000
        Largest number of query points; ``None`` queries every point.
    random_state : int, Generator or None, default=0
        Seed of the query subsample.

    Returns
    -------
    float
        Recall in [0, 1].
    """
    owner = "knn_recall()"
    k = _check_int("k", k, owner)
    max_samples = _check_int("max_samples", max_samples, owner, allow_none=True)
    X = check_array(X, name="X", allow_sparse=True)
    Y = check_array(Y, name="Y")
    _check_same_length(X, Y, owner)
    n_samples = Y.shape[0]
    k = min(k, n_samples - 1)
    queries = _subsample(n_samples, max_samples, random_state)
    # Offsetting each row's indices by row * n_samples turns a per-row set intersection
    # into one np.isin over flat arrays.
    offsets = np.arange(queries.size)[:, None] * n_samples
    high = _neighbors_excluding_self(X, queries, k) + offsets
    low = _neighbors_excluding_self(Y, queries, k) + offsets
    return float(np.isin(high, low, assume_unique=True).mean())


def neighbor_preservation(X_or_graph: Any, Y: Any, k: int = 15) -> np.ndarray:
    r"""Per point, the share of its ``k`` input-space nearest neighbours kept in the embedding.

    .. math:: q_i = \frac{|N_k^X(i) \cap N_k^Y(i)|}{k}

    where :math:`N_k^X(i)` are the ``k`` nearest neighbours of point ``i`` in the input (self
    excluded) and :math:`N_k^Y(i)` its ``k`` nearest in the embedding (Euclidean, self
    excluded). :func:`knn_recall` is the mean of this over a subsample. The input side comes
    from a fitted :class:`~gidr.types.KNNGraph` (``result.graph``: its first ``k`` columns,
    under the metric and neighbours method of the fit, approximate when the fit's was) or
    from an exact Euclidean search on ``X``; the embedding side from a KD-tree, queried in
    chunks so that memory stays O(n·k).

    Parameters
    ----------
    X_or_graph : KNNGraph, or array-like or sparse matrix of shape (n_samples, n_features)
        The fitted kNN graph (reused, nothing searched in the input space), or the input data.
    Y : array-like of shape (n_samples, n_components)
        The embedding.
    k : int, default=15
        Neighbourhood size; clamped to ``n_samples - 1``. A graph must hold at least ``k``
        neighbours per point.

    Returns
    -------
    ndarray of shape (n_samples,)
        Values in [0, 1], multiples of ``1 / k``.
    """
    from scipy.spatial import cKDTree

    from gidr.types import KNNGraph

    owner = "neighbor_preservation()"
    k = _check_int("k", k, owner)
    Y = check_array(Y, name="Y")
    n_samples = Y.shape[0]
    k = min(k, n_samples - 1)
    if isinstance(X_or_graph, KNNGraph):
        high = _graph_neighbors(X_or_graph, n_samples, k, owner)
    else:
        X = check_array(X_or_graph, name="X", allow_sparse=True)
        _check_same_length(X, Y, owner)
        high = _neighbors_excluding_self(X, np.arange(n_samples), k)
    tree = cKDTree(Y)
    kept = np.empty(n_samples)
    chunk = max(1, _MATCH_TABLE_CELLS // (k * k))
    for start in range(0, n_samples, chunk):
        rows = np.arange(start, min(start + chunk, n_samples))
        _, low = tree.query(Y[rows], k=k + 1)
        low = _drop_self(low, rows)
        kept[rows] = (high[rows, :, None] == low[:, None, :]).any(axis=2).sum(axis=1)
    return kept / k


def _graph_neighbors(graph: Any, n_samples: int, k: int, owner: str) -> np.ndarray:
    """The first ``k`` neighbours of each point in a fitted graph, after checking its shape."""
    if graph.n_samples != n_samples:
        raise GidrValueError(
            format_error(f"The graph of {owner}", f"a graph of as many points as Y ({n_samples})",
                         Described(f"a graph of {graph.n_samples} points"),
                         "Pass the graph of the fit that produced Y (result.graph).")
        )
    if graph.n_neighbors < k:
        raise GidrValueError(
            format_error(f"The 'k' parameter of {owner}",
                         f"at most the graph's number of neighbours ({graph.n_neighbors})", k,
                         f"Pass k={graph.n_neighbors}, or the input data X instead of the graph.")
        )
    return graph.indices[:, :k]


def evaluate(
    X: Any,
    Y: Any,
    labels: Any = None,
    *,
    k: int = 100,
    n_neighbors: int = 15,
    max_samples: int | None = 5000,
    random_state: Any = 0,
) -> dict[str, float]:
    """All the scores that apply, in one dict.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or None
        The high-dimensional data; ``None`` skips ``trustworthiness`` and ``knn_recall``.
    Y : array-like of shape (n_samples, n_components)
        The embedding.
    labels : array-like of shape (n_samples,) or None, default=None
        Classes; ``None`` skips ``knn_accuracy`` and ``v_measure``.
    k : int, default=100
        Voters of :func:`knn_accuracy`.
    n_neighbors : int, default=15
        Neighbourhood size of :func:`trustworthiness` and :func:`knn_recall`.
    max_samples : int or None, default=5000
        Subsample size of :func:`trustworthiness` and :func:`knn_recall`.
    random_state : int, Generator or None, default=0
        Seed of KMeans and of the subsamples.

    Returns
    -------
    dict of str to float
        Keys among ``"knn_accuracy"``, ``"v_measure"``, ``"trustworthiness"``, ``"knn_recall"``.
    """
    seed = resolve_seed(random_state)  # one draw, so every score sees the same seed
    scores: dict[str, float] = {}
    if labels is not None:
        scores["knn_accuracy"] = knn_accuracy(Y, labels, k=k)
        scores["v_measure"] = v_measure(Y, labels, random_state=seed)
    if X is not None:
        scores["trustworthiness"] = trustworthiness(
            X, Y, n_neighbors=n_neighbors, max_samples=max_samples, random_state=seed
        )
        scores["knn_recall"] = knn_recall(X, Y, k=n_neighbors, max_samples=max_samples, random_state=seed)
    return scores
