"""openTSNE's API over gidr: ``from gidr.opentsne import TSNE`` in place of ``from openTSNE import TSNE``.

>>> from gidr.opentsne import TSNE                              # doctest: +SKIP
>>> embedding = TSNE(random_state=0).fit(X)                     # doctest: +SKIP
>>> embedding = embedding.optimize(100, momentum=0.8)           # doctest: +SKIP
>>> new = embedding.transform(X_new)                            # doctest: +SKIP

The modules mirror openTSNE's: :mod:`gidr.opentsne.affinity` (``PerplexityBasedNN``,
``FixedSigmaNN``, ``Multiscale``, ``MultiscaleMixture``, ``Uniform``, ``PrecomputedAffinities``),
:mod:`gidr.opentsne.nearest_neighbors` (the indexes they search with, or take as
``knn_index``), :mod:`gidr.opentsne.initialization` (``pca``, ``spectral``, ``random``,
``median``, ``weighted_mean``), :mod:`gidr.opentsne.callbacks`, :mod:`gidr.opentsne.utils`
and the estimator and embeddings (:mod:`gidr.opentsne.tsne`). What
differs from openTSNE is listed in ``docs/migrating.rst`` ("openTSNE's object model").
"""
from gidr.opentsne import affinity, callbacks, initialization, nearest_neighbors, utils
from gidr.opentsne.partial import PartialTSNEEmbedding
from gidr.opentsne.tsne import TSNE, OptimizationInterrupt, TSNEEmbedding, gradient_descent

__all__ = ["TSNE", "TSNEEmbedding", "PartialTSNEEmbedding", "OptimizationInterrupt", "gradient_descent",
           "affinity", "callbacks", "initialization", "nearest_neighbors", "utils"]
