"""New points against a fixed t-SNE embedding: openTSNE's ``PartialTSNEEmbedding``.

The edges of new points come from gidr's ``transform`` path (:mod:`gidr.transform`): the
fitted neighbours stage's index answers the queries, the fitted similarity stage weighs the
neighbours, and :meth:`gidr.stages.Optimizer.embed_new` moves only the new points.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np

from gidr.opentsne.affinity import Affinities, check_none, refuse, tsne_pipeline
from gidr.types import Result
from gidr.validation import Described, GidrValueError, check_array, format_error

__all__ = ["PartialTSNEEmbedding", "fit_result", "new_point_edges"]


def fit_result(affinities: Affinities, embedding: np.ndarray, n_epochs: int) -> Result:
    """A :class:`gidr.Result` of ``embedding`` over ``affinities``, as :mod:`gidr.transform`
    reads one (the graph, P, the stages that ran and the resolved switches)."""
    if affinities.graph is None or affinities.knn_index is None:
        raise GidrValueError(format_error(
            "The affinities of a transformed embedding", "affinities computed from data (PerplexityBasedNN)",
            Described(f"{type(affinities).__name__} without data (from precomputed distances)"),
            "Precomputed distances leave no data to find new points' neighbours in; fit on the data matrix."))
    ctx = affinities.context
    resolved = {"a": ctx.a, "b": ctx.b, "seed": ctx.seed, "n_epochs": int(n_epochs),
                "backends": {"neighbors": affinities.neighbors.backend}}
    config = {**affinities.pipeline.config, "resolved": resolved}
    return Result(embedding=np.ascontiguousarray(embedding, dtype=np.float64), graph=affinities.graph,
                  affinities=affinities.gidr_affinities(), timings={}, loss_history=[], config=config,
                  stages={**affinities.pipeline.stages, "neighbors": affinities.neighbors})


def _index(affinities: Affinities):
    """The neighbours index over the training data, built once per affinities object."""
    if getattr(affinities, "_gidr_index", None) is None:
        affinities._gidr_index = affinities.knn_index.neighbors_index()
    return affinities._gidr_index


def new_point_edges(affinities: Affinities, X_new: Any, embedding: np.ndarray | None = None, k: int | None = None,
                    similarity: dict | None = None):
    """The edges of new points to the training points, as ``transform`` builds them: their
    ``k`` (None: the fit's) nearest training points, weighed by the fitted similarity stage
    (with ``similarity`` overrides, e.g. another perplexity).

    Returns
    -------
    edges : NewEdges
        Neighbours, weights scaled like rows of the training P, per-point keys.
    graph : KNNGraph
        The neighbours and their distances.
    """
    from gidr.transform import _new_edges, _readable, transform_context

    if embedding is None:
        embedding = np.zeros((affinities.n_samples, affinities.context.n_components))
    result = fit_result(affinities, embedding, 1)
    index = _index(affinities)
    rows = _readable(affinities.neighbors, check_array(X_new, name="X", min_samples=1, allow_sparse=True))
    ctx = transform_context(affinities.pipeline, result)
    k = min(affinities.graph.n_neighbors if k is None else int(k), affinities.n_samples)
    row_sum = float(affinities.P.sum()) / affinities.n_samples
    pipeline = affinities.pipeline.replace(**similarity) if similarity else affinities.pipeline
    edges = _new_edges(index, pipeline.stages["similarity"], rows, k, row_sum, ctx, ctx.seed)
    return edges, index.query(rows, k)


#: The parameters :meth:`PartialTSNEEmbedding.optimize` takes, with openTSNE's defaults.
PARTIAL_PARAMS = {"learning_rate": "auto", "momentum": 0.8, "exaggeration": None, "dof": 1, "min_gain": 0.01,
                  "max_grad_norm": None, "max_step_norm": 5, "theta": 0.5, "n_interpolation_points": 3,
                  "min_num_intervals": 50, "ints_in_interval": 1, "negative_gradient_method": "auto",
                  "n_jobs": 1, "callbacks": None, "callbacks_every_iters": 50, "verbose": False,
                  "backend": "auto"}


class PartialTSNEEmbedding(np.ndarray):
    """New points placed against a fixed :class:`~gidr.opentsne.TSNEEmbedding`.

    Parameters
    ----------
    embedding : ndarray of shape (n_new, n_components)
        Starting positions.
    reference_embedding : TSNEEmbedding
        The embedding the points are added to (it does not move).
    P : scipy.sparse.csr_matrix of shape (n_new, n_train)
        Affinities of the new points to the training points (rows sum to one).
    optimizer : None
        Accepted for openTSNE's signature (gidr's transform loop keeps no state between calls).
    **gradient_descent_params
        Defaults for :meth:`optimize`.

    Attributes
    ----------
    kl_divergence : float or None
        Always None: the objective of new points against fixed ones is not a KL divergence
        gidr reports.
    """

    def __new__(cls, embedding, reference_embedding, P, optimizer=None, edges=None, **gradient_descent_params):
        embedding = np.asarray(embedding)
        if embedding.ndim != 2 or embedding.shape[0] != P.shape[0]:
            raise GidrValueError(format_error("The 'embedding' of a PartialTSNEEmbedding",
                                              f"an array with one row per row of P ({P.shape[0]})",
                                              embedding))
        obj = np.array(embedding, dtype=np.float64, order="C").view(cls)
        obj.reference_embedding = reference_embedding
        obj.P = P
        obj.edges = edges
        # openTSNE's signature; gidr's transform loop keeps no state between calls (no gains)
        from gidr.opentsne.tsne import gradient_descent  # noqa: PLC0415 (circular)

        obj.optimizer = gradient_descent() if optimizer is None else optimizer
        obj.gradient_descent_params = _checked(gradient_descent_params, "PartialTSNEEmbedding")
        obj.kl_divergence = None
        return obj

    def __array_finalize__(self, obj) -> None:
        for name in ("reference_embedding", "P", "edges", "optimizer", "kl_divergence"):
            setattr(self, name, getattr(obj, name, None))
        self.gradient_descent_params = dict(getattr(obj, "gradient_descent_params", None) or {})

    def optimize(self, n_iter: int, inplace: bool = False, propagate_exception: bool = False,
                 **gradient_descent_params) -> "PartialTSNEEmbedding":
        """Move the new points for ``n_iter`` epochs of gidr's transform loop (momentum and
        gains against the fixed reference; each call starts with fresh gains).

        ``learning_rate`` (openTSNE's units; ``"auto"``: ``n_new / exaggeration``), ``momentum``
        and ``exaggeration`` (the new points' affinities multiplied by it, as t-SNE exaggerates
        P) are honoured; ``callbacks`` must be None (gidr's transform loop takes none); the other
        parameters are accepted for openTSNE's signature and change nothing (``max_step_norm``:
        the loop caps steps at 5 % of the reference embedding's extent instead).
        """
        from gidr.estimators import _threads
        from gidr.opentsne.affinity import job_count
        from gidr.opentsne.tsne import GRADIENT_SCALE

        params = {**self.gradient_descent_params, **_checked(gradient_descent_params, "PartialTSNEEmbedding.optimize")}
        owner = "PartialTSNEEmbedding.optimize"
        exaggeration = 1.0 if params["exaggeration"] is None else params["exaggeration"]
        if isinstance(exaggeration, (bool, np.bool_)) or not isinstance(exaggeration, numbers.Real) \
                or not exaggeration > 0:
            raise refuse(owner, "exaggeration", "None or a positive float", exaggeration,
                         "Pass None (no exaggeration) or a factor such as 2.")
        check_none(owner, "callbacks", params["callbacks"], "gidr's transform loop takes no callbacks.")
        from gidr.opentsne.tsne import fresh_copy

        edges = self.edges if self.edges is not None else edges_of(self.P, self.reference_embedding.affinities)
        if exaggeration != 1.0:
            edges = dataclasses.replace(edges, weights=edges.weights * float(exaggeration))
        embedding = self if inplace else fresh_copy(self)
        reference = self.reference_embedding
        rate = params["learning_rate"]
        if rate == "auto":
            rate = self.shape[0] / exaggeration
        pipeline = tsne_pipeline(params["backend"], 0, learning_rate=float(rate) / GRADIENT_SCALE,
                                 momentum=params["momentum"], final_momentum=params["momentum"], exaggeration_iter=0,
                                 min_gain=params["min_gain"])
        result = fit_result(reference.affinities, reference, n_iter)
        from gidr.transform import transform_context

        ctx = transform_context(pipeline, result)
        stages = pipeline.stages
        with _threads(job_count(params["n_jobs"], owner)):
            Y = stages["optimizer"].embed_new(np.asarray(self), result.embedding, edges, result.affinities,
                                              stages["loss"], ctx, int(n_iter), repulsion=stages["repulsion"])
        np.copyto(embedding.view(np.ndarray), Y)
        return embedding


def edges_of(P, affinities: Affinities):
    """:class:`~gidr.types.NewEdges` from a user's P of new points (the same number of stored
    entries in every row, as ``to_new`` gives): its columns and values, rows scaled like rows
    of the training P, and each point's key hashed from its row of P."""
    import scipy.sparse as sp

    from gidr.transform import point_keys
    from gidr.types import NewEdges

    P = sp.csr_matrix(P)
    counts = np.diff(P.indptr)
    if P.shape[1] != affinities.n_samples or counts.size == 0 or np.any(counts != counts[0]) or counts[0] == 0:
        raise GidrValueError(format_error(
            "The 'P' of a PartialTSNEEmbedding",
            f"a sparse matrix with {affinities.n_samples} columns and the same number of entries in every row",
            Described(f"shape {P.shape}, {counts.min() if counts.size else 0}-{counts.max() if counts.size else 0} "
                      "entries a row"),
            "Use affinities.to_new(X_new), or prepare_partial(X_new)."))
    k = int(counts[0])
    indices = P.indices.reshape(-1, k).astype(np.int64)
    weights = P.data.reshape(-1, k).astype(np.float64)
    totals = weights.sum(axis=1, keepdims=True)
    weights = weights * (float(affinities.P.sum()) / affinities.n_samples / np.where(totals > 0, totals, 1.0))
    keys = point_keys(np.hstack([indices.astype(np.float64), weights]), affinities.context.seed)
    return NewEdges(indices=np.ascontiguousarray(indices), weights=np.ascontiguousarray(weights), keys=keys)


def _checked(params: dict, owner: str) -> dict:
    """``params`` over :data:`PARTIAL_PARAMS`; an unknown name is an error (no silent ``**_``)."""
    unknown = sorted(set(params) - set(PARTIAL_PARAMS))
    if unknown:
        raise GidrValueError(format_error(f"A keyword argument of {owner}", "one of " + ", ".join(PARTIAL_PARAMS),
                                          unknown[0], "Check its spelling."))
    return {**PARTIAL_PARAMS, **params}
