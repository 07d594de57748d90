"""The estimators' data: out-of-core input, the ``pca`` parameter, and the rows ``transform`` reads.

:class:`gidr.UMAP`, :class:`gidr.GDR` and :class:`gidr.TSNE` hand an ``np.memmap``, an
``h5py.Dataset`` or a ``zarr.Array`` to the pipeline as it is (:mod:`gidr.outofcore` reads it
in row chunks); only its metadata is checked here (:func:`gidr.outofcore.row_source`). With
``pca=k`` the pipeline reduces the input by its chunked PCA, whose mean and axes it records in
``Result.config["resolved"]["pca"]``; the estimator then keeps the ``n x k`` float32 scores of
the training rows (what the neighbours stage searched) and projects every new row through the
same mean and axes before ``transform`` queries the neighbours.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from gidr.outofcore import is_out_of_core, load_float32, pca_scores, row_source
from gidr.validation import GidrValueError, Interval, Param, check_array, format_error

__all__ = ["check_pca", "out_of_core_input", "check_pca_width", "fitted_pca", "training_rows", "in_memory", "new_rows",
           "project_dask", "inverse_through_pca", "stack_rows"]


def flag(value: Any) -> bool:
    """A boolean parameter's value (numpy booleans included; fit has checked it)."""
    return isinstance(value, (bool, np.bool_)) and bool(value)


def fit_keywords(fit_params: Mapping[str, Any], method: str) -> dict:
    """``fit``'s or ``update``'s keyword arguments (``method``): ``callback`` and
    ``callback_every``, and umap-learn's ``ensure_all_finite=True``, accepted and dropped (gidr
    always refuses non-finite data); anything else is an error."""
    fit_params = dict(fit_params)
    finite = fit_params.pop("ensure_all_finite", True)
    if finite is not True:
        raise GidrValueError(format_error(
            f"The 'ensure_all_finite' argument of {method}", "True", finite,
            "gidr refuses NaN and inf in the data (they would make the embedding NaN): remove or impute "
            "those rows first."))
    unknown = set(fit_params) - {"callback", "callback_every"}
    if unknown:
        raise GidrValueError(format_error(f"A keyword argument of {method}", "'callback' or 'callback_every'",
                                          sorted(unknown)[0]))
    return fit_params


def check_pca(estimator, *, precomputed: bool, given_knn: bool) -> int | None:
    """The estimator's ``pca`` checked (None, or an int of at least 1), and refused with a
    data-less input (``metric="precomputed"``, ``precomputed_knn``)."""
    owner = type(estimator).__name__
    pca = Param("pca", None, (Interval(int, 1, None),), allow_none=True).validate(estimator.pca, owner)
    if pca is None:
        return None
    if precomputed:
        raise GidrValueError(format_error(
            f"The 'pca' parameter of {owner} with metric='precomputed'", "None", estimator.pca,
            "A distance matrix has no features to reduce: reduce the data before computing the distances, "
            "or pass pca=None."))
    if given_knn:
        raise GidrValueError(format_error(
            f"The 'pca' parameter of {owner} with precomputed_knn", "None", estimator.pca,
            "The given kNN graph was computed on the data as it is, not on its principal components: pass "
            "pca=None, or drop precomputed_knn and let gidr search the PCA scores."))
    return pca


def out_of_core_input(estimator, X: Any) -> Any:
    """An out-of-core ``X`` checked from its metadata (:func:`gidr.outofcore.row_source`), as it is."""
    row_source(X)
    if getattr(estimator, "unique", False):
        raise GidrValueError(format_error(
            f"The 'unique' parameter of {type(estimator).__name__}", "False for this input", True,
            f"unique=True needs an in-memory X, not {describe(X)}: finding the distinct rows would load it whole."))
    return X


def check_pca_width(estimator, pca: int | None, shape: tuple) -> None:
    """``pca`` at most the input's number of features (and of samples)."""
    if pca is None:
        return
    n_samples, n_features = int(shape[0]), int(shape[1])
    if pca > n_features:
        raise GidrValueError(format_error(
            f"The 'pca' parameter of {type(estimator).__name__}", f"an int in [1, {n_features}] (X has "
            f"{n_features} features)", estimator.pca, "Ask for at most as many components as X has features, "
            "or pca=None for no reduction."))
    if pca > n_samples:
        raise GidrValueError(format_error(
            f"The 'pca' parameter of {type(estimator).__name__}", f"an int in [1, {n_samples}] (X has "
            f"{n_samples} samples)", estimator.pca, "Ask for fewer components, or pca=None for no reduction."))


def fitted_pca(result) -> Mapping[str, Any] | None:
    """The chunked PCA a fit ran (``mean``, ``components``, ...), or None."""
    return result.config["resolved"].get("pca")


def training_rows(X_checked: Any, result) -> Any:
    """What a fitted estimator keeps of its training input: with ``pca``, the float32 scores
    the neighbours stage searched (recomputed with :func:`gidr.outofcore.pca_scores`, the
    function and chunking the pipeline used: the same bits); else the input itself (an
    out-of-core array is loaded at the first ``transform``, ``update`` or ``save``)."""
    record = fitted_pca(result)
    if record is None:
        return X_checked
    return pca_scores(row_source(X_checked), record["mean"], record["components"])


def in_memory(X_fit: Any) -> np.ndarray:
    """An out-of-core training input in memory, loaded as float32 in row chunks, as the pipeline
    read it (also when a pickle turned the memmap into an ndarray)."""
    return load_float32(row_source(X_fit))


def feature_error(n_features: int, expected: int, owner: str) -> GidrValueError:
    return GidrValueError(f"X has {n_features} features, but {owner} is expecting {expected} features as input "
                          f"(as in fit). Pass data with the same columns as the training data.")


def new_rows(X: Any, estimator, *, name: str = "X") -> Any:
    """New rows as the fitted neighbours stage reads them: checked (an out-of-core input from its
    metadata, then read in row chunks), of the fitted number of features, and projected
    through the fitted PCA when the fit had ``pca``.

    Returns
    -------
    ndarray or sparse matrix of shape (n_new, n_features), or with ``pca`` an ndarray of
    shape (n_new, pca), float32
    """
    owner = type(estimator).__name__
    source = row_source(X, name=name, min_samples=1) if is_out_of_core(X) else None
    rows = None if source is not None else check_array(X, name=name, min_samples=1, allow_sparse=True)
    n_features = source.n_features if source is not None else rows.shape[1]
    if n_features != estimator.n_features_in_:
        raise feature_error(n_features, estimator.n_features_in_, owner)
    record = fitted_pca(estimator.result_)
    if record is not None:
        return pca_scores(source if source is not None else row_source(rows, name=name, min_samples=1),
                          record["mean"], record["components"])
    return load_float32(source) if source is not None else rows


def project_dask(X: Any, estimator) -> Any:
    """A Dask array's rows projected lazily through the fitted PCA (one block of rows at a time,
    all columns together), for the distributed ``transform``."""
    owner = type(estimator).__name__
    if X.ndim != 2 or X.shape[1] != estimator.n_features_in_:
        raise feature_error(X.shape[-1] if X.ndim else 0, estimator.n_features_in_, owner)
    record = fitted_pca(estimator.result_)
    mean, components = record["mean"], record["components"]

    def block(rows):
        return pca_scores(row_source(np.asarray(rows), min_samples=1), mean, components)

    X = X.rechunk({1: -1})
    return X.map_blocks(block, dtype=np.float32, chunks=(X.chunks[0], (components.shape[0],)))


def inverse_through_pca(rows: np.ndarray, result) -> np.ndarray:
    """Points of the PCA space mapped back to the data space (``rows @ components + mean``);
    rows unchanged without a fitted PCA."""
    record = fitted_pca(result)
    if record is None:
        return rows
    return np.asarray(rows, dtype=np.float64) @ np.asarray(record["components"]) + np.asarray(record["mean"])


def stack_rows(old: Any, new: Any) -> Any:
    """The training rows followed by the new ones (sparse if either is)."""
    if sp.issparse(old) or sp.issparse(new):
        return sp.vstack([sp.csr_matrix(old), sp.csr_matrix(new)], format="csr")
    dtype = np.result_type(old.dtype, new.dtype)
    return np.concatenate([np.asarray(old, dtype=dtype), np.asarray(new, dtype=dtype)])


def describe(X: Any) -> str:
    return f"a {type(X).__module__.split('.')[0]}.{type(X).__name__} of shape {tuple(X.shape)}"
