"""Out-of-sample ``transform``: embed new points into a fitted embedding.

The training embedding stays fixed. For each new point:

1. find its k nearest training points (same metric and k as the fit);
2. turn their distances into weights p_{j|new} with the fitted similarity stage
   (for normalized pipelines, scaled to the size of a training row of P);
3. start at the weighted mean of the neighbours' positions;
4. optimize only the new points with the fitted loss: attraction to the neighbours,
   repulsion from uniformly sampled training points, weighted by the loss's repulsion
   weights evaluated on the training embedding. Unnormalized: clipped steps with a
   linearly decaying learning rate (umap-learn's transform). Normalized: momentum and gains
   (t-SNE's update) without exaggeration.

New points do not interact with each other, so the result for a point does not depend on
which other points are transformed with it, and the work splits into independent chunks.
"""
from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from gidr.kernel import kernel
from gidr.types import Context, PairTotals, Result

__all__ = ["transform_new_points"]

#: Training points sampled to estimate the global sums (Z, ...) for the repulsion weights.
_TOTALS_SAMPLE = 200_000


def transform_new_points(pipeline, result: Result, X_train, X_new, n_epochs: int | None = None) -> np.ndarray:
    """Embed ``X_new`` against ``result`` (fitted on ``X_train``) without moving it.

    Returns
    -------
    ndarray of shape (n_new, n_components)
    """
    stages = pipeline.stages
    resolved = result.config["resolved"]
    Y_train = np.asarray(result.embedding, dtype=np.float64)
    n_train, dim = Y_train.shape
    ctx = Context(n_samples=n_train, n_components=dim, normalized=result.affinities.normalized,
                  a=resolved["a"], b=resolved["b"], seed=resolved["seed"])
    k = min(result.graph.n_neighbors, n_train)
    metric = stages["neighbors"].values.get("metric", "euclidean")
    nn = NearestNeighbors(n_neighbors=k, metric=metric).fit(X_train)
    distances, indices = nn.kneighbors(X_new)
    weights = stages["similarity"].row_weights(distances.astype(np.float64), ctx)
    P = result.affinities.P
    if ctx.normalized:
        row_sum = P.sum() / n_train
        weights = weights * (row_sum / max(weights.sum(axis=1).mean(), 1e-300))
    Y = _weighted_start(Y_train, indices, weights)
    loss = stages["loss"]
    theta = loss.repulsion_weights(_training_totals(Y_train, P, ctx), ctx)
    epochs = n_epochs or max(30, resolved["n_epochs"] // 3)
    return _optimize_new(Y, Y_train, indices, weights, loss, theta, ctx, epochs)


def _weighted_start(Y_train, indices, weights) -> np.ndarray:
    totals = weights.sum(axis=1, keepdims=True)
    uniform = np.full_like(weights, 1.0 / weights.shape[1])
    w = np.where(totals > 0, weights / np.where(totals > 0, totals, 1.0), uniform)
    return np.einsum("mk,mkd->md", w, Y_train[indices])


def _training_totals(Y_train, P, ctx) -> PairTotals:
    """Estimate sum_w, sum_w2 over the training embedding from sampled pairs; sum_pw exactly."""
    rng = ctx.rng("transform-totals")
    n = len(Y_train)
    m = min(_TOTALS_SAMPLE, n * (n - 1))
    i = rng.integers(0, n, m)
    j = (i + rng.integers(1, n, m)) % n
    w = kernel(np.sum((Y_train[i] - Y_train[j]) ** 2, axis=1), ctx.a, ctx.b)
    scale = n * (n - 1) / m
    coo = P.tocoo()
    D_edges = np.sum((Y_train[coo.row] - Y_train[coo.col]) ** 2, axis=1)
    w_edges = kernel(D_edges, ctx.a, ctx.b)
    return PairTotals(sum_w=float(w.sum() * scale), sum_w2=float((w * w).sum() * scale),
                      p_mean=float(P.data.mean()) if P.nnz else 0.0, sum_pw=float(coo.data @ w_edges))


def _forces(Y, Y_train, indices, weights, loss, theta, ctx, rng, n_negative) -> np.ndarray:
    diff = Y[:, None, :] - Y_train[indices]
    D = np.sum(diff * diff, axis=2)
    F = np.einsum("mk,mkd->md", loss.attraction(D, weights, ctx), diff)
    m, k = indices.shape
    negatives = rng.integers(0, len(Y_train), size=(m, k * n_negative))
    diff_neg = Y[:, None, :] - Y_train[negatives]
    phi = loss.repulsion_channels(np.sum(diff_neg * diff_neg, axis=2), ctx)
    channels = np.einsum("msc,msd->cmd", phi, diff_neg)
    if ctx.normalized:
        channels *= len(Y_train) / negatives.shape[1]
    return F + np.tensordot(theta, channels, axes=1)


def _optimize_new(Y, Y_train, indices, weights, loss, theta, ctx, n_epochs) -> np.ndarray:
    rng = ctx.rng("transform")
    Y = Y.copy()
    if not ctx.normalized:
        for epoch in range(n_epochs):
            F = _forces(Y, Y_train, indices, weights, loss, theta, ctx, rng, n_negative=1)
            Y -= (1.0 - epoch / n_epochs) * np.clip(F, -4.0, 4.0)
        return Y
    lr = max(len(Y_train) / 12.0, 50.0)
    update, gains = np.zeros_like(Y), np.ones_like(Y)
    step_cap = 0.05 * np.ptp(Y_train, axis=0).max()
    for epoch in range(n_epochs):
        F = _forces(Y, Y_train, indices, weights, loss, theta, ctx, rng, n_negative=4)
        momentum = 0.5 if epoch < n_epochs // 4 else 0.8
        same_sign = np.sign(F) == np.sign(update)
        gains = np.maximum(np.where(same_sign, gains * 0.8, gains + 0.2), 0.01)
        update = np.clip(momentum * update - lr * gains * F, -step_cap, step_cap)
        Y += update
    return Y
