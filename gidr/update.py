"""``UMAP.update(X_new)`` and ``GDR.update(X_new)``: add rows to a fitted embedding.

As umap-learn's ``UMAP.update`` (0.5): the new rows are appended to the training rows, the
kNN graph and P are recomputed over the union, the old points start where they are and the
new ones where ``transform`` puts them, and the fitted optimizer runs again over the union,
with every point free to move. Afterwards ``embedding_``, ``graph_``, the training rows and
the number of samples are the union's, and ``transform`` searches the union.

What differs from umap-learn:

* the new points start at their ``transform`` positions (umap-learn: the plain mean of their
  old neighbours in the union's graph), so they begin optimized against the old points;
* the optimizer runs for ``transform``'s number of epochs (:func:`gidr.transform.new_point_epochs`:
  a third of the fit's, at least 30), where umap-learn runs the fit's whole schedule again: on
  the digits (1,000 rows, 750 fitted, 250 added, 200 epochs) the old points then move half as
  far (median 0.04-0.07 of the embedding's extent against 0.10-0.16 with the whole schedule),
  and the new points' 15-NN label accuracy stays 0.955-0.963 (0.963-0.966); the result records
  the fit's schedule as ``config["resolved"]["n_epochs"]`` (what ``transform`` and later updates
  scale from) and the update's run as ``config["resolved"]["update"]``;
* the graph is recomputed by the fitted neighbours stage over the union (umap-learn extends
  its NN-descent index when it has one); with exact neighbours both give the union's graph;
* the seed of the run is derived from the fit's seed and the two sizes
  (:func:`update_seed`): for a given ``random_state`` an update is reproducible, and so is a
  sequence of them;
* after a fit with ``pca`` the new rows are projected through the fitted PCA, which is kept
  (not refitted on the union);
* a normalized GDR (``normalized=True``) runs its schedule without the early exaggeration
  (``early_exaggeration=1``): the old points are already separated, and exaggerating the
  attraction again would first collapse their clusters.

Refused, each with its reason, as umap-learn refuses them: a fit on distances
(``metric="precomputed"``) and a supervised fit (``fit(X, y)``); and, because the fitted data
does not cover the new rows: a fit on ``precomputed_knn``, and ``unique=True``; and a densMAP
fit (umap-learn's update carries the density term on; gidr's does not yet).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from gidr import estimator_data, umap_names
from gidr.stages.neighbors import is_dask_array
from gidr.validation import Described, GidrValueError, format_error

__all__ = ["update", "update_seed", "UpdateMixin"]


def update_seed(fit_seed: int, n_old: int, n_new: int) -> int:
    """The seed of an update: a hash of the fit's resolved seed and the two sizes (63 bits)."""
    words = [int(fit_seed) & (2**64 - 1), int(n_old), int(n_new)]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _check_updatable(estimator, X_new: Any) -> None:
    from gidr.composite import refuse_if_combined

    refuse_if_combined(estimator, "update")
    owner = type(estimator).__name__
    if estimator._X_fit is None:
        raise GidrValueError(format_error(
            f"The 'metric' parameter of {owner} for update", "a metric name (not 'precomputed')", "precomputed",
            "update appends rows to the training data, which a fit on distances does not have (umap-learn "
            "refuses it too): fit again on the distances of the union."))
    if getattr(estimator, "_supervised_fit", False):
        raise GidrValueError(
            f"{owner}.update cannot add rows to a supervised fit (fit(X, y)): the new rows have no targets "
            f"(umap-learn refuses it too). Fit again on the union with its targets, or use transform.")
    if hasattr(estimator, "precomputed_knn") and umap_names.given_knn(estimator) is not None:
        raise GidrValueError(format_error(
            f"The 'precomputed_knn' parameter of {owner} for update", "(None, None, None)",
            Described("a kNN graph of the training rows"),
            "The given graph does not cover the new rows: fit again on the union (with its graph, or none)."))
    if estimator_data.flag(getattr(estimator, "densmap", False)):
        raise GidrValueError(format_error(
            f"The 'densmap' parameter of {owner} for update", "False", True,
            "gidr's update does not carry densMAP's density term over to the union yet (umap-learn's does): "
            "fit again on the union with densmap=True."))
    if getattr(estimator, "_unique_inverse", None) is not None:
        raise GidrValueError(format_error(
            f"The 'unique' parameter of {owner} for update", "False", True,
            "With unique=True the embedding holds the distinct rows only: fit again on the union."))
    if is_dask_array(X_new):
        raise GidrValueError(format_error(
            f"The input X of {owner}.update", "an in-memory array, a memmap, an h5py or a zarr array",
            Described(f"a Dask array of shape {X_new.shape}"),
            "update runs the optimizer on this machine: pass X.compute() when it fits in memory."))


def _pipeline_for_union(estimator, Y0: np.ndarray, seed: int):
    """The fitted pipeline started from ``Y0`` with ``seed``, on rows already reduced (no ``pca``)."""
    from gidr.transform import new_point_epochs

    overrides: dict[str, Any] = {"init": Y0, "random_state": seed, "pca": None,
                                 "n_epochs": new_point_epochs(estimator.result_)}
    optimizer = estimator.pipeline_.stages["optimizer"]
    if estimator.result_.affinities.normalized and "exaggeration_fraction" in optimizer.param_names():
        overrides["optimizer.exaggeration_fraction"] = 0.0
    with estimator._own_names():
        return estimator.pipeline_.replace(**overrides)


def update(estimator, X_new: Any, **fit_params):
    """Add the rows ``X_new`` to ``estimator``'s fit (see the module's description).

    Parameters
    ----------
    estimator : UMAP or GDR
        Fitted.
    X_new : array-like, sparse matrix, np.memmap, h5py.Dataset or zarr.Array of shape (n_new, n_features)
    callback, callback_every : optional (keyword)
        As for ``fit``.
    ensure_all_finite : True, optional (keyword)
        umap-learn's keyword, accepted: gidr always refuses non-finite data.

    Returns
    -------
    estimator
    """
    from gidr.estimators import _threads, _verbosity
    from gidr.transform import transform_new_points

    check_is_fitted(estimator, "embedding_")
    _check_updatable(estimator, X_new)
    fit_params = estimator_data.fit_keywords(fit_params, "update")
    rows = estimator_data.new_rows(X_new, estimator)
    X_train = estimator._training_rows()
    result = estimator.result_
    n_old, n_new = X_train.shape[0], rows.shape[0]
    with _threads(estimator.n_jobs), estimator._own_names():
        Y_new = transform_new_points(estimator.pipeline_, result, X_train, rows,
                                     index=estimator._fitted_query_index())
    Y0 = np.concatenate([np.asarray(result.embedding, dtype=np.float64), Y_new])
    X_union = estimator_data.stack_rows(X_train, rows)
    pipeline = _pipeline_for_union(estimator, Y0, update_seed(result.config["resolved"]["seed"], n_old, n_new))
    record = estimator_data.fitted_pca(result)
    with _threads(estimator.n_jobs), _verbosity(estimator.verbose) as progress_factory, estimator._own_names():
        with progress_factory(pipeline.n_epochs_for(n_old + n_new)) as progress:
            updated = pipeline.run(X_union, callback=fit_params.get("callback"),
                                   callback_every=fit_params.get("callback_every", 0), progress=progress)
    resolved = updated.config["resolved"]
    resolved["update"] = {"n_epochs": resolved["n_epochs"], "seed": resolved["seed"], "n_old": n_old, "n_new": n_new}
    resolved["n_epochs"] = result.config["resolved"]["n_epochs"]  # the fit's schedule, which transform scales
    if record is not None:  # the rows are PCA scores: the fitted PCA stays the model's
        resolved["pca"] = record
    estimator.pipeline_ = pipeline
    estimator._X_fit, estimator._X_fit_unread = X_union, False
    estimator._query_index = None
    estimator._set_fitted(updated)
    return estimator


class UpdateMixin:
    """umap-learn's ``update``: add rows to the fit (:mod:`gidr.update`)."""

    def update(self, X, **fit_params):
        """Add the rows ``X`` to the fitted embedding, as umap-learn's ``UMAP.update`` does.

        The rows are appended to the training rows, the kNN graph and P are recomputed over
        the union, the old points start where they are and the new ones where
        :meth:`transform` puts them, and the fitted optimizer runs again (its number of
        epochs for the union) with every point free to move. Afterwards ``embedding_``,
        ``graph_`` and the training rows are the union's (old rows first), and
        :meth:`transform` searches the union. Reproducible for a given ``random_state``.

        Refused, each with its reason: a fit on ``metric="precomputed"``, a supervised fit
        (both as in umap-learn), a fit on ``precomputed_knn``, ``unique=True``, a densMAP fit
        (umap-learn's update carries densMAP on; gidr's does not yet), a Dask array, rows with a
        different number of features. See :mod:`gidr.update` for what differs
        from umap-learn.

        Parameters
        ----------
        X : array-like, sparse matrix, np.memmap, h5py.Dataset or zarr.Array of shape (n_new, n_features)
        callback, callback_every : optional (keyword)
            As for :meth:`fit`.

        Returns
        -------
        self
        """
        return update(self, X, **fit_params)
