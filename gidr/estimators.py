"""scikit-learn estimators over :class:`gidr.Pipeline`: :class:`UMAP`, :class:`TSNE`, :class:`GDR`.

``__init__`` stores parameters verbatim; everything is validated at ``fit`` (by building
the pipeline), and ``fit`` never rewrites a constructor parameter. Parameter names follow
umap-learn (UMAP, GDR) and scikit-learn / openTSNE (TSNE), so that ``umap.UMAP`` can be
replaced by ``gidr.UMAP`` in existing code.
"""
from __future__ import annotations

import contextlib
import logging
import re
import sys
import warnings
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from gidr import estimator_data, umap_names
from gidr.outofcore import is_out_of_core
from gidr.composite import combine_models, refuse_if_combined
from gidr.pipeline import Pipeline, precomputed_input
from gidr.plugins import get_registry
from gidr.stages.neighbors import is_dask_array
from gidr.update import UpdateMixin
from gidr.types import KNNGraph
from gidr.validation import (
    Boolean,
    Described,
    GidrValueError,
    Interval,
    Options,
    Param,
    check_array,
    check_dask_array,
    format_error,
    resolve_seed,
)

__all__ = ["UMAP", "TSNE", "GDR"]

logger = logging.getLogger("gidr")

#: Largest explicit learning rate accepted: beyond it the first steps throw the points so far
#: apart that every low-dimensional similarity underflows (t-SNE's 'auto' is n / 12: 1e8 is
#: a billion points).
MAX_LEARNING_RATE = 1e8
#: Largest |coordinate| of an init array: beyond it squared distances lose all precision and,
#: from about 1e154 on, overflow, so that t-SNE's normalization Z is 0.
MAX_INIT_MAGNITUDE = 1e6
_UMAP_MIN_DIST, _UMAP_SPREAD = 0.1, 1.0


class _Base(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared fit / transform logic; subclasses map their parameters to overrides."""

    _preset: str = ""
    #: (stage or pipeline parameter, estimator parameter) where the names differ: errors name
    #: the latter (same-named parameters keep the stage's message, which says which stage).
    _parameter_names: tuple[tuple[str, str], ...] = ()
    #: Whether learning_rate accepts "auto".
    _auto_learning_rate = True
    #: Whether ``fit``'s y supervises the embedding (else it is ignored, as scikit-learn's TSNE does).
    _supervised = True

    def _overrides(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_params(self) -> None:
        """Checks of the estimator's own parameters, before the pipeline is built."""
        owner = type(self).__name__
        rate = Interval(float, 0, MAX_LEARNING_RATE, "right")
        constraints = (Options(("auto",)), rate) if self._auto_learning_rate else (rate,)
        Param("learning_rate", None, constraints).validate(self.learning_rate, owner)
        _check_init_array(self.init, owner)

    def _pipeline(self, seed: Any = ..., knn: KNNGraph | None = None) -> Pipeline:
        """The pipeline to fit; ``seed`` (fit's draw from ``random_state``) defaults to
        ``random_state`` itself. With ``knn`` (a ``precomputed_knn`` graph) the neighbours are
        that graph's: ``neighbors="precomputed"`` with its number of columns."""
        overrides = self._overrides()
        overrides.update(random_state=self.random_state if seed is ... else seed, backend=self.backend,
                         pca=self.pca)
        if knn is not None:
            for name in ("metric", "metric_kwds"):
                overrides.pop(name, None)
            overrides.update(neighbors="precomputed", n_neighbors=knn.n_neighbors)
        if overrides.get("metric") == "precomputed":  # umap-learn's and scikit-learn's spelling
            del overrides["metric"]
            overrides["neighbors"] = "precomputed"
            if isinstance(overrides.get("init"), str) and overrides["init"] == "pca":
                # as scikit-learn's TSNE: PCA needs the data matrix, which a distance matrix is not
                raise GidrValueError(
                    'The parameter init="pca" cannot be used with metric="precomputed" '
                    f'({type(self).__name__}). Pass init="spectral" (computed from the neighbour graph), '
                    'init="random" or an array.')
        init = overrides.get("init")
        names = [name for name in get_registry().names("init") if name != "array"]  # "array": an array given
        if isinstance(init, str) and init not in names:
            raise GidrValueError(format_error(f"The 'init' parameter of {type(self).__name__}",
                                              ", ".join(repr(n) for n in names) + " or an array", init))
        with self._own_names():
            return Pipeline.from_preset(self._preset, **overrides)

    @contextlib.contextmanager
    def _own_names(self):
        """Re-raise a stage's or the pipeline's :class:`GidrValueError` with the estimator's
        parameter name ("The 'n_negative' parameter of repulsion 'sampled'" becomes "The
        'negative_sample_rate' parameter of UMAP"); the rest of the message is kept."""
        try:
            yield
        except GidrValueError as error:
            message = _translate(str(error), dict(self._parameter_names), type(self).__name__)
            if message == str(error):
                raise
            raise GidrValueError(message) from None

    def fit(self, X, y=None, **fit_params) -> "_Base":
        """Embed ``X`` and keep what ``transform`` needs.

        A :class:`numpy.random.Generator` or ``RandomState`` given as ``random_state`` is
        advanced by one draw per fit (successive fits differ; the same generator state gives
        the same embedding), as in scikit-learn.

        Parameters
        ----------
        X : array-like, sparse matrix, np.memmap, h5py.Dataset or zarr.Array of shape (n_samples, n_features)
            An out-of-core array is checked from its metadata and read by the pipeline in row
            chunks (with ``pca``, never loaded whole).
        y : array-like of shape (n_samples,), optional
            :class:`UMAP` and :class:`GDR`: targets of a supervised embedding, as in
            umap-learn (labels, -1 for unlabeled points, with ``target_metric="categorical"``;
            continuous values with a distance as ``target_metric``; ``target_weight``
            balances them against the data). A y of the wrong length is an error.
            :class:`TSNE`: ignored, as by scikit-learn.
        callback : callable, optional (keyword)
            ``callback(epoch, loss, Y)``, called every ``callback_every`` epochs; returning
            True stops the optimization.
        callback_every : int, optional (keyword)
        ensure_all_finite : True, optional (keyword)
            umap-learn's keyword, accepted: gidr always refuses non-finite data.
        """
        fit_params = estimator_data.fit_keywords(fit_params, "fit")
        self._check_params()
        seed = None if self.random_state is None else resolve_seed(self.random_state,
                                                                   f"of {type(self).__name__}")
        precomputed = isinstance(getattr(self, "metric", None), str) and self.metric == "precomputed"
        given_knn = hasattr(self, "precomputed_knn") and umap_names.given_knn(self) is not None
        pca = estimator_data.check_pca(self, precomputed=precomputed, given_knn=given_knn)
        pipeline = None if given_knn else self._pipeline(seed)  # with a kNN graph: once its width is known
        if precomputed:
            self._check_precomputed(X)
            X_checked = precomputed_input(X)
        elif is_dask_array(X) and not given_knn:  # read on the Dask workers; kept lazy for transform
            X_checked = check_dask_array(X)
        elif is_out_of_core(X):  # memmap, h5py, zarr: its metadata checked, read in row chunks by the pipeline
            X_checked = estimator_data.out_of_core_input(self, X)
        else:
            X_checked = check_array(X, allow_sparse=True)
        if not precomputed:
            estimator_data.check_pca_width(self, pca, X_checked.shape)
        inverse = None
        if getattr(self, "unique", False):
            X_checked, y, inverse = _unique_rows(X_checked, y, type(self).__name__)
        n_samples = X_checked.n_samples if isinstance(X_checked, KNNGraph) else X_checked.shape[0]
        knn = umap_names.knn_graph(self, n_samples) if given_knn else None
        if knn is not None:
            pipeline = self._pipeline(seed, knn)
        self._check_n_samples(n_samples)
        with _threads(self.n_jobs), _verbosity(self.verbose) as progress_factory, self._own_names():
            with progress_factory(pipeline.n_epochs_for(n_samples)) as progress:
                # beside precomputed_knn, X is the data a data-reading init (init="pca") uses
                init_data = X_checked if knn is not None and isinstance(X_checked, np.ndarray) else None
                result = pipeline.run(X_checked if knn is None else knn, y if self._supervised else None,
                                      callback=fit_params.get("callback"),
                                      callback_every=fit_params.get("callback_every", 0), progress=progress,
                                      init_data=init_data)
        if self.verbose:
            timings = ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items())
            print(f"[gidr] {type(self).__name__} stage timings: {timings}", file=sys.stderr)
        self.pipeline_ = pipeline
        self._combined = None  # gidr.composite: not a composite model
        self._query_index = None  # built at the first transform after a fit on precomputed_knn
        self._X_fit = None if precomputed else estimator_data.training_rows(X_checked, result)
        self._X_fit_unread = is_out_of_core(self._X_fit)  # loaded (float32, as the fit read it) when first needed
        self._supervised_fit = y is not None and self._supervised
        self.n_features_in_ = n_samples if precomputed else X_checked.shape[1]
        self._set_fitted(result, inverse)
        if self.verbose:
            self._report(result)
        return self

    def _set_fitted(self, result, inverse=None) -> None:
        """The fitted attributes from ``result`` (``inverse``: each row's distinct row, with
        ``unique=True``); :func:`gidr.load` calls it too."""
        self.result_ = result
        self._unique_inverse = None if inverse is None else np.asarray(inverse, dtype=np.int64)
        self.embedding_ = result.embedding if inverse is None else result.embedding[self._unique_inverse]
        self.n_iter_ = result.config["resolved"]["epochs_run"]

    def _check_n_samples(self, n_samples: int) -> None:
        """Checks that need the number of samples (before any work)."""

    def _check_precomputed(self, X) -> None:
        """Checks of a precomputed distance matrix, before it is read (which checks its shape
        and values)."""

    def _report(self, result) -> None:
        """Lines a verbose fit prints at its end (the progress bar and timings aside)."""

    @property
    def graph_(self):
        """The symmetric P the optimizer fitted (scipy CSR; umap-learn's fuzzy graph for
        :class:`UMAP`), normalized for a normalized pipeline."""
        check_is_fitted(self, "embedding_")
        return self.result_.affinities.P

    @property
    def _n_features_out(self) -> int:
        return int(np.shape(self.embedding_)[1])

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        """Fit and return the embedding of ``X``, of shape (n_samples, n_components) (with
        umap-learn's ``transform_mode="graph"``: ``graph_``)."""
        self.fit(X, y, **fit_params)
        return self.graph_ if getattr(self, "transform_mode", "embedding") == "graph" else self.embedding_

    def transform(self, X) -> np.ndarray:
        """Embed new points into the fitted embedding without moving the old ones.

        Each new point starts at the weighted mean of its training neighbours' positions;
        only the new points are then optimized against the fixed training embedding. After a
        fit with ``pca``, ``X`` (of the original features) is first projected through the
        fitted PCA. A memmap, h5py or zarr ``X`` is read in row chunks (loaded as float32
        without ``pca``).

        A ``dask.array.Array`` is embedded on the Dask workers (:func:`gidr_dask.transform`):
        the result is then a lazy Dask array, each point's the same as in memory.

        After a fit on distances (``metric="precomputed"``), ``X`` holds the distances from each
        new point to every training point, shape (n_new, n_train), dense or sparse (a sparse
        row's stored entries are its known distances), as in umap-learn.
        After a fit on ``precomputed_knn``, the first call builds an index over the training rows
        with the fitted metric (umap-learn needs the graph's search index for it). With
        ``transform_mode="graph"`` the new points' rows of the directed graph are returned
        (:func:`gidr.transform.new_points_graph`), as a CSR matrix of shape (n_new, n_train).

        Returns
        -------
        ndarray of shape (n_new, n_components), or a dask.array.Array for Dask input
        """
        check_is_fitted(self, "embedding_")
        refuse_if_combined(self, "transform")
        if self._X_fit is None:  # fitted on distances: the new points come as their distances
            from gidr_reference.neighbors import PrecomputedQueries

            D = umap_names.query_distances(X, len(self.result_.embedding), type(self).__name__)
            return self._embed_new(None, D, PrecomputedQueries())
        if is_dask_array(X):
            from gidr_dask.transform import transform as distributed_transform

            if estimator_data.fitted_pca(self.result_) is not None:
                X = estimator_data.project_dask(X, self)
            return distributed_transform(self, X)
        X_new = estimator_data.new_rows(X, self)
        return self._embed_new(self._training_rows(), X_new, self._fitted_query_index())

    def _embed_new(self, X_train, X_new, index):
        """transform's result for checked rows ``X_new`` (index None: the fitted stage's own)."""
        from gidr.transform import new_points_graph, transform_new_points

        with _threads(self.n_jobs):
            if getattr(self, "transform_mode", "embedding") == "graph":
                return new_points_graph(self.pipeline_, self.result_, X_train, X_new, index=index)
            return transform_new_points(self.pipeline_, self.result_, X_train, X_new, index=index)

    def _fitted_query_index(self):
        """The index transform searches when the fitted neighbours stage has none (a fit on
        ``precomputed_knn``), built once; None: transform builds the stage's own."""
        if self.result_.stages["neighbors"].answers_queries or not hasattr(self, "precomputed_knn"):
            return None
        if getattr(self, "_query_index", None) is None:
            self._query_index = umap_names.index_for_precomputed_knn(self, self._training_rows())
        return self._query_index

    def _training_rows(self):
        """The training rows in memory, as the neighbours stage read them (a Dask array fitted on
        is gathered here, once; an out-of-core one loaded as float32, once; after a fit with
        ``pca``, the PCA scores of the training rows)."""
        if is_dask_array(self._X_fit):
            self._X_fit = np.asarray(self._X_fit.compute())
        if getattr(self, "_X_fit_unread", False):  # not a memmap that joblib or a loader made of the rows
            self._X_fit, self._X_fit_unread = estimator_data.in_memory(self._X_fit), False
        return self._X_fit

    def save(self, path, *, compress: bool = False) -> None:
        """Save the fitted estimator to ``path`` as arrays and JSON in a zip file (no pickle).

        :func:`gidr.load` reads it back: an estimator of the same class with the same
        parameters, whose ``transform`` gives this one's results bit for bit. The file holds
        the embedding, the kNN graph, P, the resolved configuration and, when the fitted
        neighbours index searches it, the training matrix (see :mod:`gidr.persist` and the
        "Saving a model" page). The write is atomic: a temporary file in the same folder,
        renamed over ``path``.

        Parameters
        ----------
        path : str or path-like
        compress : bool
            Deflate the arrays (smaller, slower).

        Raises
        ------
        GidrValueError
            When a parameter cannot be stored as data (a function, an object): it is named.
        """
        from gidr.persist import save

        refuse_if_combined(self, "save")

        save(self, path, compress=compress)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = self.random_state is None
        return tags


class _InverseTransform:
    """umap-learn's ``inverse_transform``: data-space points for embedding-space points."""

    def inverse_transform(self, X) -> np.ndarray:
        """Points of the data space for points of the embedding space, as umap-learn's
        ``inverse_transform`` gives them: each embedding point ``z`` becomes a weighted mean of
        the training rows whose embeddings are its ``n_neighbors`` nearest, weighted by the
        fitted kernel ``w = 1 / (1 + a d^(2b))`` of its distance ``d`` to them.

        umap-learn then refines the point by SGD in the data space against those neighbours;
        gidr returns the interpolation itself (deterministic, no ``random_state`` involved).
        On a training point's own embedding it returns a mix of that row and its neighbours,
        not the row itself. After a fit with ``pca=k`` the interpolation is made between the
        training rows' PCA scores and mapped back through the fitted PCA
        (``scores @ components + mean``): the result lies in the data space, in the span of
        the ``k`` principal axes around the mean (what the PCA dropped is not recovered).

        Parameters
        ----------
        X : array-like of shape (n_points, n_components)
            Positions in the embedding space.

        Returns
        -------
        ndarray of shape (n_points, n_features_in_), float64
        """
        from sklearn.neighbors import NearestNeighbors

        refuse_if_combined(self, "inverse_transform")

        check_is_fitted(self, "embedding_")
        owner = type(self).__name__
        if self._X_fit is None:
            raise GidrValueError(format_error(f"The 'metric' parameter of {owner} for inverse_transform",
                                              "a metric name (not 'precomputed')", "precomputed",
                                              "inverse_transform interpolates the training rows; fit with a "
                                              "metric name."))
        Z = check_array(X, name="X (embedding-space points)", min_samples=1)
        n_components = self.embedding_.shape[1]
        if Z.shape[1] != n_components:
            raise GidrValueError(f"X has {Z.shape[1]} columns, but {owner}.inverse_transform expects points of the "
                                 f"{n_components}-dimensional embedding space. Pass embedding coordinates (e.g. "
                                 f"from transform or embedding_).")
        resolved = self.result_.config["resolved"]
        Y_train = np.asarray(self.result_.embedding, dtype=np.float64)
        k = min(int(resolved["n_neighbors"]), len(Y_train))
        distances, indices = NearestNeighbors(n_neighbors=k).fit(Y_train).kneighbors(Z)
        weights = 1.0 / (1.0 + float(resolved["a"]) * distances ** (2.0 * float(resolved["b"])))
        weights /= weights.sum(axis=1, keepdims=True)
        X_train = self._training_rows()
        W = sp.csr_matrix((weights.ravel(), indices.ravel(), np.arange(0, weights.size + 1, k)),
                          shape=(len(Z), X_train.shape[0]))
        rows = np.asarray((W @ X_train).toarray() if sp.issparse(X_train) else W @ X_train, dtype=np.float64)
        return estimator_data.inverse_through_pca(rows, self.result_)  # after a fit with pca: X_train holds scores


#: umap-learn's densMAP parameters, passed to the pipeline switches of the same names.
DENSMAP_PARAMETERS = ("densmap", "dens_lambda", "dens_frac", "dens_var_shift", "output_dens")


class _DensityOutput:
    """umap-learn's densMAP outputs: with ``output_dens``, ``rad_orig_`` and ``rad_emb_`` (each
    point's log local radius in the data and in the embedding, ``Result.densities``) and
    ``fit_transform`` returning ``(embedding, rad_orig, rad_emb)``; ``transform`` refused after a
    densMAP fit, as umap-learn refuses it."""

    def _set_fitted(self, result, inverse=None) -> None:
        super()._set_fitted(result, inverse)
        radii = getattr(result, "densities", {})
        if "rad_emb" in radii:
            pick = slice(None) if inverse is None else np.asarray(inverse, dtype=np.int64)
            self.rad_orig_ = np.asarray(radii["rad_orig"])[pick]
            self.rad_emb_ = np.asarray(radii["rad_emb"])[pick]

    def fit_transform(self, X, y=None, **fit_params):
        """As :meth:`_Base.fit_transform`; with ``output_dens`` (and ``transform_mode="embedding"``)
        the tuple ``(embedding, rad_orig, rad_emb)``, each radius of shape (n_samples,)."""
        out = super().fit_transform(X, y, **fit_params)
        if estimator_data.flag(self.output_dens) and getattr(self, "transform_mode", "embedding") == "embedding":
            return out, self.rad_orig_, self.rad_emb_
        return out

    def transform(self, X):
        if estimator_data.flag(self.densmap):
            raise NotImplementedError(format_error(
                f"The 'densmap' parameter of {type(self).__name__} for transform", "False", True,
                "As in umap-learn, new points cannot be embedded into a densMAP embedding (its density "
                "term has no counterpart for new points); fit on all the data, or fit with densmap=False."))
        return super().transform(X)

    transform.__doc__ = _Base.transform.__doc__


class UMAP(UpdateMixin, _DensityOutput, _InverseTransform, _Base):
    """UMAP, as umap-learn computes it (preset ``"umap"``).

    Parameters follow ``umap.UMAP``: n_neighbors, n_components, metric, min_dist, spread,
    n_epochs, learning_rate, init, negative_sample_rate, random_state, n_jobs, verbose, and
    target_metric, target_weight, target_n_neighbors for a supervised ``fit(X, y)`` (labels,
    -1 for unlabeled points, or continuous targets; umap-learn's graph). Also as in
    umap-learn: ``a``, ``b`` (the kernel's; None: fitted to min_dist and spread),
    ``set_op_mix_ratio`` (the fuzzy union mixed with the intersection), ``repulsion_strength``
    (the weight of the cross-entropy's repulsive part), ``unique`` (embed the distinct rows
    once; duplicates share their position). ``transform_seed``, ``low_memory``,
    ``angular_rp_forest`` and ``force_approximation_algorithm`` are accepted and checked but
    change nothing: gidr's transform draws from each point's own data, its searches always use
    little memory, and small inputs already get exact neighbours. ``output_metric`` must be
    "euclidean" (any other value is refused with a clear error). densMAP as in umap-learn:
    ``densmap`` adds the density-correlation term (weight ``dens_lambda`` >= 0, in the last
    ``dens_frac`` in [0, 1] of the epochs, ``dens_var_shift`` >= 0; ``n_epochs=None`` runs
    200 more epochs), ``output_dens`` sets ``rad_orig_`` and ``rad_emb_`` and makes
    ``fit_transform`` return ``(embedding, rad_orig, rad_emb)``; ``transform`` after a densMAP
    fit is refused (NotImplementedError), as in umap-learn (:mod:`gidr_reference.densmap`).
    ``backend`` picks the implementation ("auto": fastest installed). umap-learn's
    ``metric_kwds`` (the metric's parameters), ``precomputed_knn`` (a kNN graph listing each
    point itself, used instead of computing one), ``disconnection_distance`` (kNN edges at or
    beyond it removed) and ``transform_mode`` ("embedding" or "graph") are described in
    :mod:`gidr.umap_names`.

    ``X`` may be an ``np.memmap``, an ``h5py.Dataset`` or a ``zarr.Array``: it is passed to the
    pipeline as it is and read in row chunks (:mod:`gidr.outofcore`), never converted whole by
    the estimator. ``pca`` (None, or an int: a number of components) reduces ``X`` first by
    the pipeline's chunked PCA (its ``pca`` switch); ``transform`` then projects new rows
    through the fitted mean and axes, and ``inverse_transform`` maps back through them
    (:mod:`gidr.estimator_data`). ``update(X)`` adds rows to the fit (:mod:`gidr.update`).

    As in umap-learn, ``n_neighbors`` counts the point itself: ``n_neighbors=15`` is 14
    neighbours, with the bandwidths aiming at ``log2(15)`` (the ``umap`` similarity's
    ``n_neighbors = 14`` and ``self_in_target``), so ``n_neighbors`` and ``target_n_neighbors``
    (-1: the data's) must be at least 2, and a ``precomputed_knn`` of umap-learn's width gives the
    same graph as the fit on the data. (:class:`GDR` counts the neighbours only, as gidr's stages.)
    As in umap-learn, the kernel's a and b are fitted to ``min_dist`` and ``spread``, and
    ``min_dist > spread`` is an error. ``learning_rate`` is a float in (0, 1e8].
    ``random_state``: None, a non-negative int (one of 2**63 or more is reduced
    deterministically to 63 bits), or a numpy ``Generator`` / ``RandomState``, advanced by one
    draw per fit.
    """

    _preset = "umap"
    #: umap-learn's n_neighbors (and target_n_neighbors) list the point itself.
    _n_neighbors_counts_self = True

    @property
    def _a(self) -> float:
        """The kernel's fitted (or given) a, under umap-learn's private name."""
        check_is_fitted(self, "embedding_")
        return float(self.result_.config["resolved"]["a"])

    @property
    def _b(self) -> float:
        """The kernel's fitted (or given) b, under umap-learn's private name."""
        check_is_fitted(self, "embedding_")
        return float(self.result_.config["resolved"]["b"])
    _parameter_names = (("n_negative", "negative_sample_rate"), ("array", "init"),
                        ("repulsion_strength", "repulsion_strength"), ("pca", "pca"),
                        *((name, name) for name in DENSMAP_PARAMETERS))
    _auto_learning_rate = False

    def __init__(self, n_neighbors=15, n_components=2, metric="euclidean", min_dist=0.1, spread=1.0,
                 n_epochs=None, learning_rate=1.0, init="spectral", negative_sample_rate=5,
                 random_state=None, n_jobs=-1, verbose=False, backend="auto", target_metric="categorical",
                 target_weight=0.5, target_n_neighbors=-1, a=None, b=None, set_op_mix_ratio=1.0,
                 repulsion_strength=1.0, unique=False, transform_seed=42, low_memory=True, angular_rp_forest=False,
                 force_approximation_algorithm=False, output_metric="euclidean", densmap=False, dens_lambda=2.0,
                 dens_frac=0.3, dens_var_shift=0.1, output_dens=False, metric_kwds=None,
                 precomputed_knn=(None, None, None), disconnection_distance=None, transform_mode="embedding",
                 pca=None):
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.metric = metric
        self.metric_kwds = metric_kwds
        self.precomputed_knn = precomputed_knn
        self.disconnection_distance = disconnection_distance
        self.transform_mode = transform_mode
        self.min_dist = min_dist
        self.spread = spread
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.init = init
        self.negative_sample_rate = negative_sample_rate
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.backend = backend
        self.target_metric = target_metric
        self.target_weight = target_weight
        self.target_n_neighbors = target_n_neighbors
        self.a = a
        self.b = b
        self.set_op_mix_ratio = set_op_mix_ratio
        self.repulsion_strength = repulsion_strength
        self.unique = unique
        self.transform_seed = transform_seed
        self.low_memory = low_memory
        self.angular_rp_forest = angular_rp_forest
        self.force_approximation_algorithm = force_approximation_algorithm
        self.output_metric = output_metric
        self.densmap = densmap
        self.dens_lambda = dens_lambda
        self.dens_frac = dens_frac
        self.dens_var_shift = dens_var_shift
        self.output_dens = output_dens
        self.pca = pca

    def __add__(self, other):
        """The union of the two fits' fuzzy graphs, embedded (:mod:`gidr.composite`)."""
        if not isinstance(other, _Base):
            return NotImplemented  # Python's TypeError for a non-estimator operand
        return combine_models(self, other, "+")

    def __mul__(self, other):
        """The intersection of the two fits' fuzzy graphs, embedded (:mod:`gidr.composite`)."""
        if not isinstance(other, _Base):
            return NotImplemented  # Python's TypeError for a non-estimator operand
        return combine_models(self, other, "*")

    def __sub__(self, other):
        """The first fit's fuzzy graph without the second's edges, embedded (:mod:`gidr.composite`)."""
        if not isinstance(other, _Base):
            return NotImplemented  # Python's TypeError for a non-estimator operand
        return combine_models(self, other, "-")

    def _overrides(self):
        return {"n_neighbors": _others(self.n_neighbors), "n_components": self.n_components, "metric": self.metric,
                "min_dist": self.min_dist, "spread": self.spread, "n_epochs": self.n_epochs,
                "learning_rate": self.learning_rate, "init": self.init, "n_negative": self.negative_sample_rate,
                **_target_overrides(self), **_density_overrides(self), **umap_names.graph_overrides(self)}

    def _check_params(self) -> None:
        super()._check_params()
        owner = type(self).__name__
        Param("n_neighbors", None, (Interval(int, 2, None),)).validate(self.n_neighbors, owner)
        if not (isinstance(self.target_n_neighbors, (int, np.integer)) and self.target_n_neighbors == -1):
            Param("target_n_neighbors", None, (Interval(int, 2, None),)).validate(self.target_n_neighbors, owner)
        _check_min_dist_spread(self, fitted=True)
        _check_umap_extras(self)


class GDR(UpdateMixin, _DensityOutput, _InverseTransform, _Base):
    """GDR (paper §4): UMAP's speed, t-SNE's or UMAP's embedding depending on ``normalized``.

    ``normalized=False`` is preset ``"gdr-umap"``, ``True`` is ``"gdr-tsne"``; ``loss`` is
    ``"kl"`` or ``"frobenius"`` (or a plugin's loss). Other names follow umap-learn;
    ``scalars="one"`` uses a = b = 1 (GDR's default), ``"fit"`` fits them to min_dist/spread.
    ``fit(X, y)`` supervises the embedding as :class:`UMAP` does (target_metric,
    target_weight, target_n_neighbors); umap-learn's ``a``, ``b``, ``set_op_mix_ratio`` (with
    the fuzzy union: ``normalized=False``), ``repulsion_strength`` (``normalized=False``, loss
    ``"kl"``) and ``unique`` act as in :class:`UMAP`, and
    ``transform_seed``, ``low_memory``, ``angular_rp_forest`` and
    ``force_approximation_algorithm`` are accepted no-ops, as there; ``output_metric`` must be
    "euclidean"; ``densmap``, ``dens_lambda``, ``dens_frac``, ``dens_var_shift`` and
    ``output_dens`` are as in :class:`UMAP` (densMAP needs ``normalized=False``); ``metric_kwds``, ``precomputed_knn``,
    ``disconnection_distance`` and ``transform_mode`` are as in :class:`UMAP`
    (:mod:`gidr.umap_names`), and so are out-of-core input, ``pca`` and ``update``.
    ``n_epochs=None`` and ``negative_sample_rate=None`` take the preset's values (gdr-umap:
    300 epochs above 10,000 points, else 500, and 2 negatives per edge; gdr-tsne: 1,000
    epochs and 2 negatives; above 70,000 points both start from a 70,000-point sample's
    embedding and run 120 and 250 epochs over all points, the preset's ``landmark_epochs``;
    an ``n_epochs`` set is the number of epochs at every size).

    ``min_dist`` and ``spread`` act only with ``scalars="fit"`` (a, b fitted to them, as
    umap-learn does): with ``scalars="one"``, a value other than umap-learn's defaults
    (``min_dist=0.1``, ``spread=1.0``) is an error rather than silently ignored. As in
    umap-learn, ``min_dist > spread`` is an error. ``learning_rate`` is "auto" or a float in
    (0, 1e8]. ``random_state`` is as for :class:`UMAP`. ``normalized`` is a bool (numpy
    booleans included).
    """

    _parameter_names = UMAP._parameter_names

    def __init__(self, n_neighbors=15, n_components=2, metric="euclidean", normalized=False, loss="kl",
                 min_dist=0.1, spread=1.0, scalars="one", n_epochs=None, learning_rate="auto",
                 init="spectral", negative_sample_rate=None, random_state=None, n_jobs=-1, verbose=False,
                 backend="auto", target_metric="categorical", target_weight=0.5, target_n_neighbors=-1,
                 a=None, b=None, set_op_mix_ratio=1.0, repulsion_strength=1.0,
                 unique=False, transform_seed=42, low_memory=True, angular_rp_forest=False,
                 force_approximation_algorithm=False, output_metric="euclidean", densmap=False, dens_lambda=2.0,
                 dens_frac=0.3, dens_var_shift=0.1, output_dens=False, metric_kwds=None,
                 precomputed_knn=(None, None, None), disconnection_distance=None, transform_mode="embedding",
                 pca=None):
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.metric = metric
        self.metric_kwds = metric_kwds
        self.precomputed_knn = precomputed_knn
        self.disconnection_distance = disconnection_distance
        self.transform_mode = transform_mode
        self.normalized = normalized
        self.loss = loss
        self.min_dist = min_dist
        self.spread = spread
        self.scalars = scalars
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.init = init
        self.negative_sample_rate = negative_sample_rate
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.backend = backend
        self.target_metric = target_metric
        self.target_weight = target_weight
        self.target_n_neighbors = target_n_neighbors
        self.a = a
        self.b = b
        self.set_op_mix_ratio = set_op_mix_ratio
        self.repulsion_strength = repulsion_strength
        self.unique = unique
        self.transform_seed = transform_seed
        self.low_memory = low_memory
        self.angular_rp_forest = angular_rp_forest
        self.force_approximation_algorithm = force_approximation_algorithm
        self.output_metric = output_metric
        self.densmap = densmap
        self.dens_lambda = dens_lambda
        self.dens_frac = dens_frac
        self.dens_var_shift = dens_var_shift
        self.output_dens = output_dens
        self.pca = pca

    @property
    def _preset(self) -> str:  # type: ignore[override]
        normalized = isinstance(self.normalized, (bool, np.bool_)) and bool(self.normalized)
        return "gdr-tsne" if normalized else "gdr-umap"

    def _overrides(self):
        return {"n_neighbors": self.n_neighbors, "n_components": self.n_components, "metric": self.metric,
                "normalized": self.normalized, "loss": self.loss, "min_dist": self.min_dist,
                "spread": self.spread, "scalars": self.scalars, "n_epochs": self.n_epochs,
                "learning_rate": self.learning_rate, "init": self.init, **_target_overrides(self),
                **_density_overrides(self), **umap_names.graph_overrides(self),
                **({} if self.negative_sample_rate is None else {"n_negative": self.negative_sample_rate})}

    def _check_params(self) -> None:
        super()._check_params()
        _check_min_dist_spread(self, fitted=not (isinstance(self.scalars, str) and self.scalars == "one"))
        _check_umap_extras(self)


class TSNE(_Base):
    """Barnes-Hut t-SNE (preset ``"tsne"``).

    Parameters follow scikit-learn's and openTSNE's TSNE: n_components, perplexity,
    early_exaggeration, learning_rate ("auto" = max(n/12, 200)), max_iter (None: 750),
    angle (Barnes-Hut theta), metric, init ("pca", "random", "spectral" or an array),
    random_state, n_jobs, verbose, method ("barnes_hut", "exact", or "fft": FIt-SNE's
    interpolation), metric_params (the metric's parameters: ``{"p": 3}`` for minkowski,
    ``{"V": ...}`` for seuclidean, ``{"VI": ...}`` or ``{"V": ...}`` for mahalanobis).
    ``n_iter_without_progress`` and ``min_grad_norm`` stop the run early as in scikit-learn
    (checked every ``_N_ITER_CHECK`` = 50 epochs; after the ``_EXPLORATION_MAX_ITER`` = 250
    epochs of exaggeration the loss must improve within ``n_iter_without_progress`` epochs,
    and a norm of gains times gradient at most ``min_grad_norm`` stops the run, or ends the
    exaggeration; see :class:`gidr_reference.optimizers.EarlyStop`); ``n_iter_`` is then the
    last epoch run, counted from 0, and ``verbose >= 2`` prints scikit-learn's gradient-norm lines.
    As in scikit-learn: the neighbour distances are rounded to float32 before the perplexity
    search (the ``tsne`` similarity's ``distance_dtype="float32"``); ``metric`` may be any
    Python function (one numba did not compile runs in the reference's exact search); a sparse
    precomputed matrix must store ``min(n - 1, int(3 * perplexity + 1)) + 1`` entries per row
    unless ``method="exact"``.
    ``perplexity >= n_samples`` is an error, as in scikit-learn. ``kl_divergence_`` is the
    KL divergence after the last epoch (the loss estimate; within 1 % of the exact value on
    the digits).
    ``learning_rate`` is "auto" or a float in (0, 1e8];
    an init array's coordinates must be at most 1e6 in magnitude. ``random_state`` is as for
    :class:`UMAP`, and so are out-of-core input (memmap, h5py, zarr) and ``pca``.
    """

    _preset = "tsne"
    _supervised = False
    #: scikit-learn's private constants, honoured as there: epochs between the stopping rules'
    #: checks, and epochs of early exaggeration.
    _N_ITER_CHECK = 50
    _EXPLORATION_MAX_ITER = 250
    _parameter_names = (("n_epochs", "max_iter"), ("theta", "angle"), ("array", "init"), ("pca", "pca"),
                        ("metric_kwds", "metric_params"))

    def __init__(self, n_components=2, perplexity=30.0, early_exaggeration=12.0, learning_rate="auto",
                 max_iter=None, angle=0.5, metric="euclidean", init="pca", random_state=None, n_jobs=-1,
                 verbose=False, backend="auto", method="barnes_hut", n_iter_without_progress=300,
                 min_grad_norm=1e-7, pca=None, metric_params=None):
        self.metric_params = metric_params
        self.method = method
        self.n_iter_without_progress = n_iter_without_progress
        self.min_grad_norm = min_grad_norm
        self.n_components = n_components
        self.perplexity = perplexity
        self.early_exaggeration = early_exaggeration
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.angle = angle
        self.metric = metric
        self.init = init
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.backend = backend
        self.pca = pca

    def _overrides(self):
        repulsion = TSNE_METHODS.get(self.method) if isinstance(self.method, str) else None
        theta = {"theta": self.angle} if repulsion == "barnes_hut" else {}
        return {"n_components": self.n_components, "perplexity": self.perplexity,
                "early_exaggeration": self.early_exaggeration, "learning_rate": self.learning_rate,
                "n_epochs": self.max_iter, "metric": self.metric, "init": self.init, "repulsion": repulsion,
                "n_iter_without_progress": self.n_iter_without_progress, "min_grad_norm": self.min_grad_norm,
                "check_every": self._N_ITER_CHECK, "exaggeration_iter": self._EXPLORATION_MAX_ITER,
                "distance_dtype": "float32", **_python_metric_neighbors(self.metric),
                **theta, **({"metric_kwds": dict(self.metric_params)} if self.metric_params else {})}

    def _check_params(self) -> None:
        super()._check_params()
        owner = type(self).__name__
        Param("method", None, (Options(tuple(TSNE_METHODS)),)).validate(self.method, owner)
        if self.method == "barnes_hut" and isinstance(self.n_components, (int, np.integer)) and self.n_components > 3:
            raise GidrValueError(f"'n_components' should be at most 3 for method='barnes_hut' of {owner} (its "
                                 f"quadtree or octree), got {self.n_components}. Use method='exact' for more "
                                 "components.")
        Param("n_iter_without_progress", None, (Interval(int, -1, None),)).validate(self.n_iter_without_progress,
                                                                                   owner)
        Param("min_grad_norm", None, (Interval(float, 0, None, "left"),)).validate(self.min_grad_norm, owner)
        Param("angle", None, (Interval(float, 0, 1, "both"),)).validate(self.angle, owner)

    def _check_n_samples(self, n_samples: int) -> None:
        if isinstance(self.perplexity, (int, float, np.number)) and self.perplexity >= n_samples:
            raise GidrValueError(f"perplexity ({self.perplexity}) must be less than n_samples ({n_samples}), as in "
                                 "scikit-learn's TSNE. Pass a smaller perplexity (about n_samples / 3 at most).")
        if _python_metric_neighbors(self.metric) and n_samples > PYTHON_METRIC_WARN_SAMPLES:
            warnings.warn(f"The 'metric' parameter of TSNE is a Python function that numba did not compile: the exact "
                          f"search calls it once per pair, about {n_samples ** 2:,} calls for {n_samples:,} "
                          "points (as in scikit-learn). Decorate it with @numba.njit for the numba backend's "
                          "searches.", UserWarning, stacklevel=3)

    def _check_precomputed(self, X) -> None:
        """scikit-learn's rule for a sparse precomputed matrix read as neighbours (any method but
        ``"exact"``): every row stores at least ``min(n - 1, int(3 * perplexity + 1)) + 1``
        entries (its neighbours and the point itself)."""
        import scipy.sparse as sp

        if (not sp.issparse(X) or self.method == "exact" or X.shape[0] < 2 or X.shape[0] != X.shape[1]
                or not isinstance(self.perplexity, (int, float, np.number))):
            return  # the reading of the matrix names what else is wrong (shape, values)
        X = sp.csr_matrix(X)
        if X.nnz and not np.all(X.data >= 0):
            return
        stored = int(np.diff(X.indptr).min())
        required = min(X.shape[0] - 1, int(3.0 * self.perplexity + 1)) + 1
        if stored < required:
            raise GidrValueError(
                f"{required} neighbors per samples are required, but some samples have only {stored} neighbors "
                f"in precomputed graph matrix (TSNE with perplexity={self.perplexity}, as scikit-learn counts them: "
                "3 * perplexity + 1 neighbours and the point itself). Decrease perplexity or recompute the graph "
                "with more neighbors.")

    def _set_fitted(self, result, inverse=None) -> None:
        super()._set_fitted(result, inverse)
        losses = dict(result.loss_history)  # the last epoch's loss: recorded, or seen by a stopping rule
        for epoch, loss, _, _ in (result.config["resolved"].get("early_stop") or {}).get("checks", ()):
            losses.setdefault(epoch, loss)
        self.kl_divergence_ = float(losses[max(losses)]) if losses else float("nan")
        self.n_iter_ = max(int(result.config["resolved"]["epochs_run"]) - 1, 0)  # scikit-learn counts from 0
        self.embedding_ = np.asarray(self.embedding_, dtype=np.float32)  # as scikit-learn's TSNE

    def _report(self, result) -> None:
        """scikit-learn's lines: the neighbours, the perplexity search's mean sigma (the
        bandwidths recomputed from the graph, only when verbose), and the losses the fit
        recorded (every 50 epochs and the last)."""
        graph, n = result.graph, len(result.embedding)
        seconds = result.timings.get("neighbors", 0.0)
        print(f"[t-SNE] Computing {graph.n_neighbors} nearest neighbors...")
        print(f"[t-SNE] Computed neighbors for {n} samples in {seconds:.3f}s...")
        print(f"[t-SNE] Computed conditional probabilities for sample {n} / {n}")
        perplexity = result.stages["similarity"].values.get("perplexity")
        if perplexity is not None and graph.n_neighbors > 0:
            from gidr_reference.similarity import tsne_betas

            beta = tsne_betas(graph.distances, min(float(perplexity), graph.n_neighbors))
            sigma = np.sqrt(1.0 / np.maximum(beta, np.finfo(float).tiny))
            print(f"[t-SNE] Mean sigma: {float(np.mean(sigma)):f}")
        exaggerated = int(result.stages["optimizer"].values.get("exaggeration_iter") or 0)
        lines = {epoch: (loss, f"[t-SNE] Iteration {epoch}: error = {loss:.7f}") for epoch, loss in result.loss_history}
        record = result.config["resolved"].get("early_stop")
        stopped = None
        if record is not None:
            exaggerated, stopped = int(record["exaggeration_epochs"]), record["stopped"]
            for epoch, loss, norm, seconds in record["checks"] if self.verbose >= 2 else ():
                lines[epoch] = (loss, f"[t-SNE] Iteration {epoch}: error = {loss:.7f}, gradient norm = {norm:.7f} "
                                      f"({self._N_ITER_CHECK} iterations in {seconds:.3f}s)")
        for epoch in sorted(lines):
            loss, line = lines[epoch]
            print(line)
            if epoch == exaggerated:
                print(f"[t-SNE] KL divergence after {epoch} iterations with early exaggeration: {loss:.6f}")
            if self.verbose >= 2 and stopped is not None and epoch == stopped["epoch"]:
                norm = record["checks"][-1][2]
                print(f"[t-SNE] Iteration {epoch}: did not make any progress during the last "
                      f"{self.n_iter_without_progress} episodes. Finished." if stopped["reason"] == "no progress"
                      else f"[t-SNE] Iteration {epoch}: gradient norm {norm:f}. Finished.")
        print(f"[t-SNE] KL divergence after {self.n_iter_ + 1} iterations: {self.kl_divergence_:.6f}")

    def transform(self, X):
        """As :meth:`GDR.transform`, in float32 like the embedding."""
        return super().transform(X).astype(np.float32)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # the embedding is float32, as scikit-learn's
        return tags


#: scikit-learn's (and openTSNE's) names of the gradient methods -> gidr's repulsion stages.
TSNE_METHODS = {"barnes_hut": "barnes_hut", "exact": "exact", "fft": "fft"}


#: Above this many points a Python metric function (a Python call per pair) is warned about.
PYTHON_METRIC_WARN_SAMPLES = 5_000


def _python_metric_neighbors(metric) -> dict[str, Any]:
    """scikit-learn's TSNE takes any Python function as its metric: one that numba did not
    compile is computed by the reference's exact search (a Python call per pair, as in
    scikit-learn), whatever the backend."""
    if isinstance(metric, str) or not callable(metric):
        return {}
    from numba.core.dispatcher import Dispatcher

    return {} if isinstance(metric, Dispatcher) else {"neighbors": {"name": "exact", "backend": "reference"}}


def _others(n_neighbors):
    """umap-learn's ``n_neighbors`` (the point and its neighbours) as gidr's (the neighbours)."""
    return n_neighbors - 1 if isinstance(n_neighbors, (int, np.integer)) and not isinstance(n_neighbors, bool) \
        else n_neighbors


def _target_overrides(estimator) -> dict[str, Any]:
    """umap-learn's switches shared by UMAP and GDR: supervision (``target_n_neighbors=-1``: the
    data's k), the kernel's ``a`` and ``b`` (None: fitted or one), ``set_op_mix_ratio``
    and ``repulsion_strength`` (each passed when not 1, its default)."""
    k = estimator.target_n_neighbors
    if isinstance(k, (int, np.integer)) and k != -1 and getattr(estimator, "_n_neighbors_counts_self", False):
        k = _others(k)
    overrides = {"target_metric": estimator.target_metric, "target_weight": estimator.target_weight,
                 "target_n_neighbors": None if isinstance(k, (int, np.integer)) and k == -1 else k,
                 "a": estimator.a, "b": estimator.b}
    for name in ("set_op_mix_ratio", "repulsion_strength"):  # stage parameters: passed only when set
        value = getattr(estimator, name)
        if not (isinstance(value, (int, float)) and value == 1.0):
            overrides[name] = value
    return overrides


#: umap-learn parameters accepted, checked and documented, that change nothing in gidr: its
#: transform draws from each point's own data (no separate seed), its searches always use little
#: memory, NN-descent's trees are not angular, and small inputs already get exact neighbours.
UMAP_NO_OPS = {"transform_seed": Interval(int, 0, None), "low_memory": Boolean(), "angular_rp_forest": Boolean(),
               "force_approximation_algorithm": Boolean()}


def _check_umap_extras(estimator) -> None:
    owner = type(estimator).__name__
    umap_names.check_umap_graph_params(estimator)
    for name, constraint in {**UMAP_NO_OPS, "unique": Boolean()}.items():
        Param(name, None, (constraint,)).validate(getattr(estimator, name), owner)
    if not (isinstance(estimator.output_metric, str) and estimator.output_metric in ("euclidean", "l2")):
        raise GidrValueError(format_error(f"The 'output_metric' parameter of {owner}", "'euclidean'",
                                          estimator.output_metric,
                                          "gidr embeds in Euclidean space only; leave output_metric out."))


def _density_overrides(estimator) -> dict[str, Any]:
    """umap-learn's densMAP parameters as the pipeline switches of the same names (checked there)."""
    return {name: getattr(estimator, name) for name in DENSMAP_PARAMETERS}


def _unique_rows(X, y, owner: str):
    """``unique=True`` (umap-learn's): the distinct rows of X in the order of their first
    occurrence, their labels, and for every row the position of its distinct row. A sparse X
    is compared by each row's stored columns and values (canonical form) and stays sparse."""
    import scipy.sparse as sp

    if sp.issparse(X):
        order, inverse = _first_occurrences(sp.csr_matrix(X))
    elif isinstance(X, np.ndarray):
        _, first, sorted_inverse = np.unique(X, axis=0, return_index=True, return_inverse=True)
        order = np.sort(first)
        inverse = np.searchsorted(order, first)[np.ravel(sorted_inverse)]  # -> rank of the first occurrence
    else:
        raise GidrValueError(format_error(f"The 'unique' parameter of {owner}", "False for this input",
                                          True, "unique=True needs an in-memory X (not a Dask array, not "
                                          "precomputed distances)."))
    labels = None if y is None else np.asarray(y)
    if labels is not None and labels.ndim >= 1 and len(labels) == X.shape[0]:
        labels = labels[order]
    return X[order], labels, inverse


def _first_occurrences(X) -> tuple[np.ndarray, np.ndarray]:
    """The rows of a CSR matrix that occur first, and each row's position among them."""
    X = X.copy()
    X.sum_duplicates()
    X.eliminate_zeros()
    X.sort_indices()
    seen: dict[bytes, int] = {}
    first, inverse = [], np.empty(X.shape[0], dtype=np.int64)
    for i, (a, b) in enumerate(zip(X.indptr[:-1], X.indptr[1:])):
        key = X.indices[a:b].astype(np.int64).tobytes() + np.asarray(X.data[a:b], dtype=np.float64).tobytes()
        inverse[i] = seen.setdefault(key, len(first))
        if inverse[i] == len(first):
            first.append(i)
    return np.asarray(first, dtype=np.int64), inverse


def _translate(message: str, names: Mapping[str, str], owner: str) -> str:
    """``message`` with a leading "The 'internal' parameter of <stage or the pipeline>"
    rewritten as "The 'user' parameter of <owner>", when ``names`` maps it."""
    match = re.match(r"The '(\w+)' parameter of (the pipeline|[\w-]+ '[\w-]+')", message)
    if match is None or match.group(1) not in names:
        return message
    return f"The '{names[match.group(1)]}' parameter of {owner}" + message[match.end():]


def _check_min_dist_spread(estimator, fitted: bool) -> None:
    """umap-learn's checks (``0 <= min_dist <= spread``, ``spread > 0``); and, when a and b are
    not fitted to them (GDR's ``scalars="one"``), that they keep umap-learn's defaults rather
    than being silently ignored."""
    owner = type(estimator).__name__
    spread = Param("spread", None, (Interval(float, 0, None, "neither"),)).validate(estimator.spread, owner)
    min_dist = Param("min_dist", None, (Interval(float, 0, None, "left"),)).validate(estimator.min_dist, owner)
    if min_dist > spread:
        raise GidrValueError(format_error(f"The 'min_dist' parameter of {owner}", f"a float in [0, spread={spread}]",
                                          estimator.min_dist, "As in umap-learn, min_dist must be less than or "
                                          "equal to spread."))
    if fitted:
        return
    for name, value, default in (("min_dist", min_dist, _UMAP_MIN_DIST), ("spread", spread, _UMAP_SPREAD)):
        if value != default:
            raise GidrValueError(format_error(
                f"The '{name}' parameter of {owner} with scalars='one' (a = b = 1)", f"{default} (unused)",
                getattr(estimator, name), f"Pass scalars='fit' to fit the kernel's a and b to min_dist and "
                f"spread as umap-learn does, or leave {name} at its default."))


def _check_init_array(init: Any, owner: str) -> None:
    """An init array must be able to move: points not all at one place, finite, of sane
    magnitude; a constant column stays constant (forces act along differences) and warns.
    Shapes are checked by the init stage."""
    if isinstance(init, (str, Mapping)) or init is None:
        return
    try:
        Y = np.asarray(init, dtype=np.float64)
    except (TypeError, ValueError):
        return  # the init stage names it
    if Y.ndim != 2 or Y.shape[0] < 2 or Y.shape[1] < 1 or not np.all(np.isfinite(Y)):
        return
    what = f"The 'init' parameter of {owner}"
    largest = float(np.abs(Y).max())
    if largest > MAX_INIT_MAGNITUDE:
        raise GidrValueError(format_error(
            what, f"an array with coordinates of magnitude at most {MAX_INIT_MAGNITUDE:.0e}",
            Described(f"an array whose largest |coordinate| is {largest:.3g}"),
            "Rescale it, e.g. init = 10 * init / np.abs(init).max()."))
    spread = np.ptp(Y, axis=0)
    if np.all(spread == 0):
        raise GidrValueError(format_error(
            what, "an array whose rows are not all equal",
            Described(f"an array of shape {Y.shape} with every row equal to {Y[0].tolist()}"),
            "Every point would stay at the same place (all forces vanish); pass init='spectral', "
            "'pca' or 'random', or add noise to the array."))
    constant = np.flatnonzero(spread == 0)
    if constant.size:
        warnings.warn(f"{what} has constant column(s) {constant.tolist()}: the embedding stays flat along "
                      f"them (forces act along differences). Add noise to those columns.", UserWarning,
                      stacklevel=4)


@contextlib.contextmanager
def _threads(n_jobs):
    """Run with ``n_jobs`` numba threads (-1 or None: all); results do not depend on it."""
    try:
        import numba
    except ImportError:  # reference backend only
        yield
        return
    if n_jobs is None or n_jobs == -1:
        yield
        return
    if isinstance(n_jobs, (bool, np.bool_)) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0 \
            or n_jobs < -1:
        raise GidrValueError(format_error("The 'n_jobs' parameter", "a positive int, -1 or None", n_jobs))
    previous = numba.get_num_threads()
    numba.set_num_threads(min(int(n_jobs), numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


@contextlib.contextmanager
def _verbosity(verbose):
    """With ``verbose``, a factory of tqdm bars, and the ``gidr`` logger's INFO lines (each
    stage's time and peak memory, and the long stages' progress with the time left,
    :mod:`gidr.progress`) on stderr, timestamped as umap-learn's verbose lines are; otherwise
    a factory of no-op bars. A caller who already sends the logger's INFO lines somewhere
    (``logging.basicConfig(level=logging.INFO)``) gets no second copy."""
    if not verbose:
        yield lambda total: contextlib.nullcontext(None)
        return
    with _stage_lines():
        try:
            from tqdm.auto import tqdm
        except ImportError:
            logger.warning("verbose=True needs tqdm for a progress bar: pip install gidr[progress]")
            yield lambda total: contextlib.nullcontext(None)
            return
        yield lambda total: tqdm(total=total, desc="gidr epochs", unit="epoch", file=sys.stderr)


class _StderrLines(logging.Handler):
    """Writes each record on stderr, above a tqdm bar when tqdm is there (``tqdm.write``)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            try:
                from tqdm.auto import tqdm
            except ImportError:
                print(message, file=sys.stderr, flush=True)
            else:
                tqdm.write(message, file=sys.stderr)
        except Exception:  # a logging handler must not raise
            self.handleError(record)


@contextlib.contextmanager
def _stage_lines():
    """The ``gidr`` logger's INFO lines on stderr for the block (unless already enabled)."""
    if logger.isEnabledFor(logging.INFO):
        yield
        return
    handler = _StderrLines(level=logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


