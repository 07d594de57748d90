"""Composite models: ``umap1 + umap2``, ``umap1 * umap2``, ``umap1 - umap2`` (umap-learn's).

Two :class:`gidr.UMAP` fits on the same points (in the same order), for example on two views
of the data or with two ``n_neighbors``, combine their fuzzy graphs
(:mod:`gidr_reference.composite`): ``+`` the union (an edge either model has), ``*`` the
intersection (an edge both have), ``-`` the difference (the first model's edges the second
lacks). The combined graph is embedded by the left model's pipeline from a spectral start
(:meth:`gidr.Pipeline.run_affinities`), seeded by the left model's ``random_state``, and the
result is a new fitted :class:`~gidr.UMAP` with the left model's parameters (``n_components``
the smaller of the two; densMAP off: its term needs the data's neighbour distances). It has
``embedding_`` and ``graph_``; it has no training data of its own, so ``transform``,
``inverse_transform``, ``update`` and ``save`` are refused.

>>> import gidr
>>> from sklearn.datasets import load_iris
>>> X = load_iris().data
>>> sepals = gidr.UMAP(n_neighbors=10, random_state=0, n_epochs=50).fit(X[:, :2])
>>> petals = gidr.UMAP(n_neighbors=10, random_state=0, n_epochs=50).fit(X[:, 2:])
>>> (sepals * petals).embedding_.shape
(150, 2)
"""
from __future__ import annotations

from typing import Any

from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from gidr.validation import GidrValueError, resolve_seed

__all__ = ["combine_models", "refuse_if_combined"]


def _check(model: Any, operator: str) -> None:
    from gidr.estimators import UMAP

    if not isinstance(model, UMAP):
        raise GidrValueError(f"Only UMAP models can be combined with '{operator}'; got {type(model).__name__}.")
    check_is_fitted(model, "embedding_", msg="Only fitted UMAP models can be combined: fit %(name)s first.")


def combine_models(left, right, operator: str):
    """A new fitted :class:`gidr.UMAP` embedding ``left``'s and ``right``'s graphs combined by
    ``operator`` (``"+"``, ``"*"`` or ``"-"``; see the module docstring)."""
    from gidr.estimators import _threads
    from gidr_reference.composite import OPERATIONS, combine

    _check(left, operator)
    _check(right, operator)
    n_left, n_right = left.graph_.shape[0], right.graph_.shape[0]
    if n_left != n_right:
        raise GidrValueError(
            f"Only models fitted on the same points can be combined with '{operator}': the left one has "
            f"{n_left} points, the right one {n_right}. Fit both on the same rows, in the same order.")
    P = combine(left.graph_, right.graph_, OPERATIONS[operator])
    model = clone(left)
    model.set_params(init="spectral", n_components=min(left.n_components, right.n_components), densmap=False,
                     output_dens=False)
    seed = None if left.random_state is None else resolve_seed(left.random_state, "of UMAP")
    pipeline = model._pipeline(seed)
    with _threads(model.n_jobs), model._own_names():
        result = pipeline.run_affinities(P)
    model.pipeline_ = pipeline
    model._query_index = None
    model._X_fit, model._X_fit_unread = None, False
    model._supervised_fit = False
    model.n_features_in_ = left.n_features_in_
    model._combined = f"a composite of two UMAP models ('{operator}')"
    model._set_fitted(result)
    return model


def refuse_if_combined(estimator, what: str) -> None:
    """Raise for ``what`` (``"transform"``, ...) on a composite model, which has no training data."""
    combined = getattr(estimator, "_combined", None)
    if combined is not None:
        raise GidrValueError(
            f"{what} is not available for {combined}: it has no training data of its own. "
            "Call it on one of the models that were combined, or fit a UMAP on the data.")
