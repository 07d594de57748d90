"""Out-of-sample ``transform``: embed new points into a fitted embedding, through the stages.

The training embedding stays fixed. For each new point:

1. the fitted neighbours stage finds its k nearest training points (same metric and k as
   the fit) with the index it builds over the training data
   (:meth:`gidr.stages.Neighbors.build_index`; stages that cannot say so raise);
2. the fitted similarity stage turns their distances into weights p_{j|new}
   (:meth:`~gidr.stages.Similarity.row_weights`); for normalized pipelines each new
   point's weights are scaled to sum to the mean row sum of the fitted P;
3. the point starts at the weighted mean of its neighbours' positions;
4. the fitted optimizer moves only the new points (:meth:`gidr.stages.Optimizer.embed_new`)
   with the fitted loss: attraction to the neighbours, repulsion from training points drawn
   with the point's own key (:func:`point_keys`).

A point's result depends only on its own row: its neighbours, weights and draws do not
depend on the other points of the batch, so the work runs in chunks of at most
``chunk_size`` rows (bounded memory) and chunking changes no bit.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from gidr.stages.neighbors import NeighborsIndex
from gidr.types import Context, NewEdges, Result
from gidr.validation import GidrValueError, format_error

__all__ = ["transform_new_points", "new_points_graph", "build_index", "point_keys", "transform_context",
           "new_point_epochs", "CHUNK_SIZE"]

#: Rows embedded together at most (their neighbours, weights and positions are held at once).
CHUNK_SIZE = 65_536
#: Rows hashed together by :func:`point_keys` (bounds its temporaries).
_KEY_BLOCK = 2048
_KEY_PURPOSE = 0x6E6F6973726566736E617274  # "transform" keys, mixed with the fit's seed


def transform_context(pipeline, result: Result) -> Context:
    """The fit's switches, with ``n_samples`` the number of training points and ``n_epochs``
    the number of epochs the fit was given."""
    resolved = result.config["resolved"]
    n_train, dim = np.shape(result.embedding)
    return Context(n_samples=n_train, n_components=dim, normalized=result.affinities.normalized,
                   a=resolved["a"], b=resolved["b"], seed=resolved["seed"], n_epochs=resolved["n_epochs"],
                   registry=pipeline.registry)


def new_point_epochs(result: Result) -> int:
    """Epochs of :func:`transform_new_points` (and of an estimator's ``update``) by default: a
    third of the fit's, at least 30."""
    return max(30, int(result.config["resolved"]["n_epochs"]) // 3)


def _fitted_neighbors(pipeline, result: Result):
    """The neighbours stage that ran in the fit (``neighbors="auto"`` resolved)."""
    stage = result.stages.get("neighbors")
    if stage is not None:
        return stage
    section = {k: v for k, v in result.config["neighbors"].items() if k not in ("name", "backend")}
    backend = result.config["resolved"]["backends"]["neighbors"]
    return pipeline.registry.get("neighbors", result.config["neighbors"]["name"], backend)(**section)


def _readable(neighbors, X: Any) -> Any:
    """``X`` as the neighbours stage reads it: sparse input densified unless it accepts sparse."""
    if sp.issparse(X) and "sparse" not in neighbors.accepts:
        return X.toarray()
    return X


def build_index(pipeline, result: Result, X_train: Any) -> NeighborsIndex:
    """The fitted neighbours stage's index over ``X_train`` (what :func:`transform_new_points`
    builds when it is not given one; keep it to transform several batches).

    Raises
    ------
    GidrValueError
        When the stage does not answer queries (``precomputed``).
    """
    neighbors = _fitted_neighbors(pipeline, result)
    return neighbors.build_index(_readable(neighbors, X_train), result.graph, transform_context(pipeline, result))


def point_keys(X: Any, seed: int) -> np.ndarray:
    """One 64-bit key per row, a hash of the row's own values and of the fit's seed.

    ``key = mix(mix(seed ^ PURPOSE) + sum_{c: x_c != 0} mix(bits(x_c) ^ mix(GOLDEN (c + 1))))``
    (sums modulo 2**64, ``bits`` the IEEE float64 bits, ``mix`` splitmix64's finalizer of
    :mod:`gidr_reference.random`): the same row gives the same key in any batch, as float32
    or float64, dense or sparse.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_rows, n_features)
    seed : int

    Returns
    -------
    ndarray of shape (n_rows,), uint64
    """
    from gidr_reference.random import GOLDEN_GAMMA, mix

    n_rows, n_features = X.shape
    with np.errstate(over="ignore"):
        salts = mix(np.uint64(GOLDEN_GAMMA) * (np.arange(n_features, dtype=np.uint64) + np.uint64(1)))
        start = mix(np.uint64(int(seed) & (2**64 - 1)) ^ np.uint64(_KEY_PURPOSE & (2**64 - 1)))
        if sp.issparse(X):
            X = sp.csr_matrix(X)
            values = np.asarray(X.data, dtype=np.float64)
            terms = np.where(values != 0, mix(values.view(np.uint64) ^ salts[X.indices]), np.uint64(0))
            ends = np.concatenate([[np.uint64(0)], np.cumsum(terms, dtype=np.uint64)])
            sums = ends[X.indptr[1:]] - ends[X.indptr[:-1]]
        else:
            sums = np.empty(n_rows, dtype=np.uint64)
            for lo in range(0, n_rows, _KEY_BLOCK):
                block = np.ascontiguousarray(X[lo:lo + _KEY_BLOCK], dtype=np.float64)
                terms = np.where(block != 0, mix(block.view(np.uint64) ^ salts), np.uint64(0))
                sums[lo:lo + _KEY_BLOCK] = terms.sum(axis=1, dtype=np.uint64)
        return mix(start + sums)


def _edge_weights(index: NeighborsIndex, similarity, rows: Any, k: int, ctx: Context):
    """The ``k`` training neighbours of new rows and the fitted similarity's weights on them."""
    graph = index.query(rows, k)
    weights = np.asarray(similarity.row_weights(np.asarray(graph.distances, dtype=np.float64), ctx),
                         dtype=np.float64)
    return graph, weights


def _new_edges(index: NeighborsIndex, similarity, rows: Any, k: int, row_sum: float | None, ctx: Context,
               seed: int) -> NewEdges:
    """Neighbours, weights and keys of one chunk of new rows."""
    graph, weights = _edge_weights(index, similarity, rows, k, ctx)
    if row_sum is not None:  # each point's row scaled like a row of the normalized P
        totals = weights.sum(axis=1, keepdims=True)
        weights = weights * (row_sum / np.where(totals > 0, totals, 1.0))
    return NewEdges(indices=np.ascontiguousarray(graph.indices, dtype=np.int64),
                    weights=np.ascontiguousarray(weights), keys=point_keys(rows, seed))


def _weighted_start(Y_train: np.ndarray, edges: NewEdges) -> np.ndarray:
    """Weighted mean of each new point's neighbours (plain mean where its weights sum to 0)."""
    totals = edges.weights.sum(axis=1, keepdims=True)
    uniform = np.full_like(edges.weights, 1.0 / edges.weights.shape[1])
    w = np.where(totals > 0, edges.weights / np.where(totals > 0, totals, 1.0), uniform)
    return np.einsum("mk,mkd->md", w, Y_train[edges.indices])


def transform_new_points(pipeline, result: Result, X_train: Any, X_new: Any, n_epochs: int | None = None, *,
                         index: NeighborsIndex | None = None, chunk_size: int = CHUNK_SIZE) -> np.ndarray:
    """Embed ``X_new`` against ``result`` (fitted on ``X_train``) without moving it.

    Parameters
    ----------
    pipeline : Pipeline
        The fitted pipeline.
    result : Result
        Its result on ``X_train``.
    X_train : ndarray or sparse matrix of shape (n_train, n_features)
    X_new : ndarray or sparse matrix of shape (n_new, n_features)
    n_epochs : int, optional
        Default ``max(30, fit epochs // 3)``.
    index : NeighborsIndex, optional
        From :func:`build_index` (built here when not given).
    chunk_size : int
        Rows embedded together at most; the result does not depend on it.

    Returns
    -------
    ndarray of shape (n_new, n_components), float64
    """
    if X_new.shape[0] == 0:
        raise GidrValueError(format_error("The input X of transform", "at least one row (a new point to embed)",
                                          "0 rows"))
    from gidr.pipeline import interrupts_as_keyboard_interrupt

    with interrupts_as_keyboard_interrupt():
        return _transform(pipeline, result, X_train, X_new, n_epochs, index, chunk_size)


def _transform(pipeline, result, X_train, X_new, n_epochs, index, chunk_size) -> np.ndarray:
    stages = pipeline.stages
    ctx = transform_context(pipeline, result)
    index = build_index(pipeline, result, X_train) if index is None else index
    neighbors = _fitted_neighbors(pipeline, result)
    Y_train = np.ascontiguousarray(result.embedding, dtype=np.float64)
    k = min(result.graph.n_neighbors, len(Y_train))
    row_sum = float(result.affinities.P.sum()) / len(Y_train) if ctx.normalized else None
    epochs = int(n_epochs) if n_epochs else new_point_epochs(result)
    out = np.empty((X_new.shape[0], Y_train.shape[1]), dtype=np.float64)
    for lo in range(0, X_new.shape[0], max(int(chunk_size), 1)):
        rows = _readable(neighbors, X_new[lo:lo + chunk_size])
        edges = _new_edges(index, stages["similarity"], rows, k, row_sum, ctx, ctx.seed)
        out[lo:lo + len(edges)] = stages["optimizer"].embed_new(
            _weighted_start(Y_train, edges), Y_train, edges, result.affinities, stages["loss"], ctx, epochs,
            repulsion=stages["repulsion"])
    return out


def new_points_graph(pipeline, result: Result, X_train: Any, X_new: Any, *, index: NeighborsIndex | None = None,
                     chunk_size: int = CHUNK_SIZE) -> sp.csr_matrix:
    """The new points' rows of the fitted directed graph: row q holds p_{j|q} on its k training
    neighbours j, the weights :func:`transform_new_points` starts from (umap-learn's
    ``transform_mode="graph"``). Rows are computed in chunks; the result does not depend on it.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_new, n_train)
    """
    ctx = transform_context(pipeline, result)
    index = build_index(pipeline, result, X_train) if index is None else index
    neighbors = _fitted_neighbors(pipeline, result)
    n_train = np.shape(result.embedding)[0]
    k = min(result.graph.n_neighbors, n_train)
    blocks = []
    for lo in range(0, X_new.shape[0], max(int(chunk_size), 1)):
        graph, weights = _edge_weights(index, pipeline.stages["similarity"],
                                       _readable(neighbors, X_new[lo:lo + chunk_size]), k, ctx)
        indptr = np.arange(0, weights.size + 1, k, dtype=np.int64)
        block = sp.csr_matrix((weights.ravel(), np.asarray(graph.indices).ravel(), indptr),
                              shape=(len(weights), n_train))
        block.eliminate_zeros()  # edges removed by disconnection_distance, and underflows
        block.sort_indices()
        blocks.append(block)
    return sp.vstack(blocks, format="csr")
