"""The metrics of the exact neighbours stages beyond the five of :data:`gidr_reference.neighbors.METRICS`.

umap-learn's (pynndescent's) names and conventions, each checked before any distance is
computed: the parameters a metric takes through ``metric_kwds`` (:func:`check_metric_kwds`)
and what it needs of the data (:func:`check_metric_data`). The distances themselves
(:func:`extra_distances`) are written as their formulas, in NumPy/SciPy:

``minkowski``  ``(sum_f |x_f - y_f|^p)^(1/p)``, ``p >= 1`` (``metric_kwds={"p": p}``, default 2);
``seuclidean`` ``sqrt(sum_f (x_f - y_f)^2 / V_f)``, ``V`` the positive variance of each feature;
``mahalanobis`` ``sqrt((x - y)^T VI (x - y))``, ``VI`` a symmetric positive semi-definite d x d matrix
(the inverse covariance);
``hellinger``  ``sqrt(1 - sum_f sqrt(x_f y_f) / sqrt(|x|_1 |y|_1))`` of non-negative rows; a zero
row is at distance 0 from a zero row and 1 from any other (pynndescent's convention);
``jaccard``    ``1 - |S_x & S_y| / |S_x | S_y|`` with ``S_x`` the set of non-zero features of x
(0 when both sets are empty): SciPy's ``jaccard`` of the boolean rows ``x != 0``;
``haversine``  ``2 arcsin(sqrt(sin^2((x_0 - y_0) / 2) + cos x_0 cos y_0 sin^2((x_1 - y_1) / 2)))`` of
(latitude, longitude) rows in radians: the great-circle distance on the unit sphere.

A metric may also be a function ``metric(x, y) -> float`` of two rows (umap-learn takes
``@numba.njit`` functions): the reference calls it through SciPy's ``cdist``; the numba
backend needs it jitted.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Mapping

import numpy as np
from scipy.spatial.distance import cdist

from gidr.validation import Constraint, Described, GidrValueError, format_error

__all__ = ["EXTRA_METRICS", "METRIC_KWDS", "NON_NEGATIVE_METRICS", "DISCONNECTION_DISTANCES", "Metric",
           "MetricKwds", "check_metric_kwds", "check_metric_data", "check_callable_metric", "function_distance", "extra_distances",
           "hellinger_rows", "mahalanobis_factor", "EUCLIDEAN_MAPPED", "euclidean_rows"]

#: Metrics the exact neighbours stages know besides the five of ``METRICS``.
EXTRA_METRICS = ("minkowski", "seuclidean", "mahalanobis", "hellinger", "jaccard", "haversine")
#: The ``metric_kwds`` each metric takes, and whether they are required.
METRIC_KWDS = {"minkowski": {"p": False}, "seuclidean": {"V": True}, "mahalanobis": {"VI": False, "V": False}}
#: Metrics that are the Euclidean distance of mapped rows (:func:`euclidean_rows`).
EUCLIDEAN_MAPPED = ("seuclidean", "mahalanobis", "hellinger")
#: Metrics defined on non-negative data only (counts, frequencies, sets).
NON_NEGATIVE_METRICS = ("hellinger", "jaccard")
#: The largest value of the bounded metrics: umap-learn's default ``disconnection_distance`` for
#: them (its ``DISCONNECTION_DISTANCES``); an edge at that distance joins points with nothing
#: in common.
DISCONNECTION_DISTANCES = {"correlation": 2.0, "cosine": 2.0, "hellinger": 1.0, "jaccard": 1.0}


def _is_metric_function(value: Any) -> bool:
    return callable(value) and not isinstance(value, (str, type))


class Metric(Constraint):
    """A metric name among ``names``, or (with ``functions``) a function ``metric(x, y) -> float``."""

    def __init__(self, names: tuple, functions: bool = True, note: str = ""):
        self.names, self.functions, self.note = tuple(names), functions, note

    @property
    def description(self) -> str:  # type: ignore[override]
        text = "one of " + ", ".join(repr(n) for n in self.names)
        if self.functions:
            text += " or a numba-jitted function metric(x, y) -> float"
        return text + self.note

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, str):
            return value in self.names
        return self.functions and _is_metric_function(value)


class MetricKwds(Constraint):
    """A mapping of the metric's parameters (``metric_kwds``)."""

    description = "a dict of the metric's parameters ({'p': ...} for minkowski, {'V': ...} for seuclidean, " \
                  "{'VI': ...} for mahalanobis)"

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, Mapping) and all(isinstance(k, str) for k in value)

    def convert(self, value: Any) -> Any:
        return dict(value)


def check_metric_kwds(metric: Any, metric_kwds: Mapping[str, Any] | None, owner: str) -> dict[str, Any]:
    """The metric's parameters, checked and completed with their defaults (data-free checks).

    A function metric takes its ``metric_kwds`` as extra arguments (``metric(x, y, **kwds)``
    is not supported: bind them with a closure), so it takes none here.

    Raises
    ------
    GidrValueError
        For a parameter the metric does not take, a missing required one, or a bad value.
    """
    kwds = dict(metric_kwds or {})
    declared = METRIC_KWDS.get(metric, {}) if isinstance(metric, str) else {}
    what = f"The 'metric_kwds' parameter of {owner}"
    unknown = sorted(set(kwds) - set(declared))
    if unknown:
        takes = ("the keys " + ", ".join(repr(k) for k in declared)) if declared else "empty (or None)"
        name = metric if isinstance(metric, str) else "a function metric"
        raise GidrValueError(format_error(what, f"{takes} for metric {name!r}", kwds,
                                          f"Remove {unknown[0]!r}; it is not a parameter of this metric."))
    for key, required in declared.items():
        if required and key not in kwds:
            raise GidrValueError(format_error(what, f"a dict with {key!r} for metric {metric!r}", kwds,
                                              _REQUIRED_FIX[metric]))
    if metric == "minkowski":
        p = kwds.get("p", 2.0)
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real) or not 1 <= float(p) < math.inf:
            raise GidrValueError(format_error(f"The 'p' entry of {what[4:]}", "a finite float >= 1 for metric "
                                              "'minkowski'", p, "p < 1 is not a metric; for p = inf use "
                                              "metric='chebyshev'."))
        kwds["p"] = float(p)
    elif metric == "seuclidean":
        V = np.asarray(kwds["V"], dtype=np.float64) if _numeric(kwds["V"]) else None
        if V is None or V.ndim != 1 or not np.all(np.isfinite(V)) or np.any(V <= 0):
            raise GidrValueError(format_error(f"The 'V' entry of {what[4:]}", "a 1-D array of positive finite "
                                              "variances, one per feature", _got(kwds["V"]),
                                              _REQUIRED_FIX["seuclidean"]))
        kwds["V"] = V
    elif metric == "mahalanobis":
        if ("VI" in kwds) == ("V" in kwds):
            raise GidrValueError(format_error(what, "a dict with 'VI' (the inverse covariance) or 'V' (the "
                                              "covariance) for metric 'mahalanobis'", kwds,
                                              "Must provide either V or VI for Mahalanobis distance (scikit-learn's "
                                              "words). " + _REQUIRED_FIX["mahalanobis"]))
        if "V" in kwds:  # scikit-learn's and scipy's alternative: the covariance, inverted here
            kwds["VI"] = _inverse_covariance(kwds.pop("V"), what)
        VI = np.asarray(kwds["VI"], dtype=np.float64) if _numeric(kwds["VI"]) else None
        if VI is None or VI.ndim != 2 or VI.shape[0] != VI.shape[1] or not np.all(np.isfinite(VI)):
            raise GidrValueError(format_error(f"The 'VI' entry of {what[4:]}", "a finite square d x d matrix "
                                              "(d the number of features)", _got(kwds["VI"]),
                                              _REQUIRED_FIX["mahalanobis"]))
        if not np.allclose(VI, VI.T, rtol=1e-10, atol=1e-12 * max(float(np.abs(VI).max()), 1e-300)) or \
                np.linalg.eigvalsh(VI).min() < -1e-10 * max(float(np.abs(VI).max()), 1e-300):
            raise GidrValueError(format_error(f"The 'VI' entry of {what[4:]}", "a symmetric positive "
                                              "semi-definite matrix", Described("a matrix that is not"),
                                              _REQUIRED_FIX["mahalanobis"]))
        kwds["VI"] = VI
    return kwds


_REQUIRED_FIX = {
    "seuclidean": "Pass metric_kwds={'V': X.var(axis=0, ddof=1)} (every feature's variance, positive).",
    "mahalanobis": "Pass metric_kwds={'VI': np.linalg.inv(np.cov(X.T))} (the inverse covariance matrix) or "
                   "{'V': np.cov(X.T)}.",
}


def _inverse_covariance(V: Any, what: str) -> np.ndarray:
    """``VI = V^-1`` of a mahalanobis covariance ``V`` (symmetric positive definite, else refused)."""
    M = np.asarray(V, dtype=np.float64) if _numeric(V) else None
    if M is None or M.ndim != 2 or M.shape[0] != M.shape[1] or not np.all(np.isfinite(M)):
        raise GidrValueError(format_error(f"The 'V' entry of {what[4:]}", "a finite square d x d covariance "
                                          "matrix (d the number of features)", _got(V), _REQUIRED_FIX["mahalanobis"]))
    scale = max(float(np.abs(M).max()), 1e-300)
    if not np.allclose(M, M.T, rtol=1e-10, atol=1e-12 * scale) or np.linalg.eigvalsh((M + M.T) / 2).min() <= \
            1e-12 * scale:
        raise GidrValueError(format_error(f"The 'V' entry of {what[4:]}", "a symmetric positive definite matrix "
                                          "(invertible)", Described("a singular or asymmetric matrix"),
                                          "Pass the inverse covariance as 'VI' (e.g. a pseudo-inverse) instead."))
    return np.linalg.inv(M)


def _numeric(value: Any) -> bool:
    try:
        return np.asarray(value).dtype.kind in "iuf"
    except (TypeError, ValueError):
        return False


def _got(value: Any) -> Any:
    array = np.asarray(value) if _numeric(value) else None
    return Described(f"an array of shape {array.shape}") if array is not None else value


def check_metric_data(X: np.ndarray, metric: Any, kwds: Mapping[str, Any], name: str = "The data X") -> None:
    """What a metric needs of the rows it measures: the width of ``V`` and ``VI``, haversine's two
    columns in radians, non-negative values for hellinger and jaccard.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    metric : str or callable
    kwds : dict
        From :func:`check_metric_kwds`.
    name : str
        How the error names the rows ("The data X", "The query points").
    """
    if not isinstance(metric, str):
        return
    n_features = X.shape[1]
    if metric == "seuclidean" and len(kwds["V"]) != n_features:
        raise GidrValueError(format_error("The 'V' entry of the 'metric_kwds' parameter", f"of length {n_features} "
                                          "(one variance per feature of X)", Described(f"length {len(kwds['V'])}"),
                                          _REQUIRED_FIX["seuclidean"]))
    if metric == "mahalanobis" and kwds["VI"].shape != (n_features, n_features):
        raise GidrValueError(format_error("The 'VI' entry of the 'metric_kwds' parameter",
                                          f"of shape ({n_features}, {n_features}) (d x d, d the features of X)",
                                          Described(f"shape {kwds['VI'].shape}"), _REQUIRED_FIX["mahalanobis"]))
    if metric == "haversine":
        if n_features != 2:
            raise GidrValueError(format_error(f"{name} for metric 'haversine'", "2 columns (latitude, longitude "
                                              "in radians)", Described(f"{n_features} columns"),
                                              "Pass the coordinates only, e.g. np.radians(X[:, [lat, lon]])."))
        if X.size and (np.abs(X[:, 0]).max() > math.pi / 2 or np.abs(X[:, 1]).max() > 2 * math.pi):
            raise GidrValueError(format_error(f"{name} for metric 'haversine'", "latitudes in [-pi/2, pi/2] and "
                                              "longitudes in [-2 pi, 2 pi] (radians)",
                                              Described("values outside them"),
                                              "Convert degrees with np.radians(X)."))
    if metric in NON_NEGATIVE_METRICS and X.size and X.min() < 0:
        raise GidrValueError(format_error(f"{name} for metric {metric!r}", "non-negative (counts, frequencies "
                                          "or sets)", Described(f"{int(np.count_nonzero(X < 0))} negative value(s)"),
                                          "Use another metric (e.g. 'cosine'), or shift or rescale the data."))


def check_callable_metric(metric: Any, X: np.ndarray) -> None:
    """Call a function metric on the first two rows of ``X``: it must return a finite real number,
    or a tuple whose first entry is one (umap-learn's ``(distance, gradient)`` functions, of which
    the neighbours use the distance)."""
    if X.shape[0] < 2:
        return
    try:
        value = metric(np.ascontiguousarray(X[0], dtype=np.float64), np.ascontiguousarray(X[1], dtype=np.float64))
    except Exception as exc:  # the user's function: say what it raised
        raise GidrValueError(format_error("The 'metric' parameter (a function)", "callable as metric(x, y) on two "
                                          "float64 rows", Described(f"{type(exc).__name__}: {exc}"),
                                          "It must take two 1-D arrays and return a float.")) from None
    distance = function_distance(value)
    if isinstance(distance, (bool, np.bool_)) or not isinstance(distance, numbers.Real) or \
            not math.isfinite(distance):
        raise GidrValueError(format_error("The value of the 'metric' function", "a finite float (or a tuple "
                                          "(distance, gradient) with a finite distance)", value,
                                          "A metric returns one distance per pair of rows."))


def function_distance(value: Any) -> Any:
    """The distance a function metric returned: the value, or the first entry of a
    ``(distance, gradient)`` tuple."""
    return value[0] if isinstance(value, tuple) else value


def hellinger_rows(X: np.ndarray) -> np.ndarray:
    """Rows whose Euclidean distances are the Hellinger distances of the rows of ``X``.

    ``v_x = [sqrt(x / |x|_1), 0] / sqrt(2)`` for a non-zero row and ``[0, ..., 0, 1] / sqrt(2)``
    for a zero row: ``|v_x - v_y|^2 = (2 - 2 sum_f sqrt(x_f y_f) / sqrt(|x|_1 |y|_1)) / 2``, the
    squared Hellinger distance, computed without the cancellation of ``1 - sum`` near 0 (a
    duplicate is at distance 0 exactly); a zero row is at 1 from every other row and 0 from
    another zero row.

    Returns
    -------
    ndarray of shape (n_rows, n_features + 1), float64
    """
    X = np.asarray(X, dtype=np.float64)
    totals = X.sum(axis=1)
    zero = totals == 0
    V = np.empty((X.shape[0], X.shape[1] + 1))
    V[:, :-1] = np.sqrt(X / np.where(zero, 1.0, totals)[:, None])
    V[:, -1] = zero
    return V * math.sqrt(0.5)


def mahalanobis_factor(VI: np.ndarray) -> np.ndarray:
    """``W`` with ``W W^T = VI`` (from the eigendecomposition, negative rounding clipped), so that
    the Mahalanobis distance is the Euclidean distance of the rows ``x W``."""
    values, vectors = np.linalg.eigh(np.asarray(VI, dtype=np.float64))
    return vectors * np.sqrt(np.clip(values, 0.0, None))


def euclidean_rows(X: np.ndarray, metric: str, kwds: Mapping[str, Any]) -> np.ndarray:
    """Rows whose Euclidean distances are the ``seuclidean`` (``x / sqrt(V)``), ``mahalanobis``
    (``x W``, :func:`mahalanobis_factor`) or ``hellinger`` (:func:`hellinger_rows`) distances of ``X``.

    Returns
    -------
    ndarray of shape (n_rows, n_features) (hellinger: n_features + 1), float64, C-contiguous
    """
    X = np.asarray(X, dtype=np.float64)
    if metric == "seuclidean":
        return np.ascontiguousarray(X / np.sqrt(kwds["V"]))
    if metric == "hellinger":
        return np.ascontiguousarray(hellinger_rows(X))
    if metric == "mahalanobis":
        return np.ascontiguousarray(X @ mahalanobis_factor(kwds["VI"]))
    raise GidrValueError(format_error("The metric", "one of " + ", ".join(map(repr, EUCLIDEAN_MAPPED)), metric))


def extra_distances(A: np.ndarray, B: np.ndarray, metric: Any, kwds: Mapping[str, Any]) -> np.ndarray:
    """Distances between the rows of ``A`` and of ``B`` for a metric of :data:`EXTRA_METRICS` or a
    function metric (see the module docstring for each formula).

    Parameters
    ----------
    A : ndarray of shape (n_a, n_features)
    B : ndarray of shape (n_b, n_features)
    metric : str or callable
    kwds : dict
        From :func:`check_metric_kwds`.

    Returns
    -------
    D : ndarray of shape (n_a, n_b), float64
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if not isinstance(metric, str):
        return cdist(A, B, metric=lambda x, y: function_distance(metric(x, y)))
    if metric in ("minkowski", "seuclidean", "mahalanobis"):
        return cdist(A, B, metric=metric, **kwds)
    if metric == "hellinger":
        return cdist(hellinger_rows(A), hellinger_rows(B), metric="euclidean")
    if metric == "jaccard":
        S_a, S_b = (A != 0).astype(np.float64), (B != 0).astype(np.float64)
        shared = S_a @ S_b.T  # exact: sums of ones
        union = S_a.sum(axis=1)[:, None] + S_b.sum(axis=1)[None, :] - shared
        return np.where(union > 0, (union - shared) / np.where(union > 0, union, 1.0), 0.0)
    if metric == "haversine":
        lat_a, lat_b = A[:, :1], B[:, 0][None, :]
        h = np.sin(0.5 * (lat_a - lat_b)) ** 2 + np.cos(lat_a) * np.cos(lat_b) * \
            np.sin(0.5 * (A[:, 1:2] - B[:, 1][None, :])) ** 2
        return 2.0 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    raise GidrValueError(format_error("The metric", "one of " + ", ".join(map(repr, EXTRA_METRICS)), metric))
