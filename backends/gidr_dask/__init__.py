"""gidr on Dask: the kNN graph, ``transform`` and the landmark route on a Dask cluster.

A backend package beside ``gidr_numba``, registered through the same ``gidr.plugins`` entry
point group. Its stages (backend ``dask``):

``dask-exact``
    exact kNN, chunk-by-chunk tasks merged in a tree (:func:`gidr_dask.knn.exact_knn`);
``dask-nndescent``
    approximate kNN: k-means cells with overlap, NN-descent in each
    (:func:`gidr_dask.knn.approximate_knn`).

``neighbors="auto"`` picks them for a ``dask.array.Array``; the rest of the pipeline runs on
the client, which holds the graph and the embedding (O(n k)), never the data. Public calls:

- ``gidr.Pipeline.from_preset("gdr-umap").run(X_dask)`` and ``gidr.GDR().fit(X_dask)``;
- ``est.transform(X_dask)``: a lazy Dask array computed on the workers (:func:`transform`);
- :func:`landmark_embedding`: fit a sample, embed the rest on the workers;
- :func:`connect`: a client for a scheduler address, with a timeout.

Dask is imported when one of these computes, not when the plugin registers.
"""
from __future__ import annotations

__all__ = ["connect", "transform", "landmark_embedding", "exact_knn", "approximate_knn", "SchedulerUnreachable"]

_LAZY = {
    "connect": "gidr_dask._runtime",
    "SchedulerUnreachable": "gidr_dask._runtime",
    "transform": "gidr_dask.transform",
    "landmark_embedding": "gidr_dask.landmarks",
    "exact_knn": "gidr_dask.knn",
    "approximate_knn": "gidr_dask.knn",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gidr_dask' has no attribute {name!r}")
