"""Parameter constraints and input checks, with one message format.

Every error gidr raises for bad input is a :class:`GidrValueError` (a subclass of
:class:`ValueError`) whose message says *what* is wrong, *where* (which parameter of
which stage), what was *expected*, what was *given*, and, where it helps, how to fix it::

    The 'perplexity' parameter of similarity 'tsne' must be a float in (0, inf). Got -3.0.

Constraints are data (:class:`Interval`, :class:`Options`, :class:`Boolean`, ...), so
that stage classes declare them in a table and the pipeline checks them in one place.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = [
    "GidrValueError",
    "Param",
    "Interval",
    "Options",
    "Boolean",
    "ArrayLike",
    "Anything",
    "format_error",
    "Described",
    "check_array",
    "check_dask_array",
    "finite_rows_error",
    "resolve_seed",
]


class GidrValueError(ValueError):
    """A bad parameter or input. The message names the parameter and the fix."""


def format_error(what: str, expected: str, got: Any, fix: str | None = None) -> str:
    """Build gidr's single error message format.

    >>> format_error("The 'k' parameter of neighbors 'exact'", "an int in [1, inf)", 0)
    "The 'k' parameter of neighbors 'exact' must be an int in [1, inf). Got 0."
    """
    message = f"{what} must be {expected}. Got {_short_repr(got)}."
    if fix:
        message += f" {fix}"
    return message


class Described(str):
    """A 'got' that is a description ("0 sample(s)"), shown without quotes."""


def _short_repr(value: Any) -> str:
    if isinstance(value, Described):
        return str(value)
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Constraint:
    """A predicate over one parameter value, with a human description."""

    description = "a valid value"

    def is_satisfied_by(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def convert(self, value: Any) -> Any:
        """Return the canonical form of an accepted value (e.g. numpy ints become ints)."""
        return value


@dataclass(frozen=True)
class Interval(Constraint):
    """A real or integer number in an interval; ``None`` bounds are infinite.

    ``closed`` is one of ``"both"``, ``"left"``, ``"right"``, ``"neither"``.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"

    @property
    def description(self) -> str:  # type: ignore[override]
        name = "an int" if self.kind is int else "a float"
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else _fmt(self.low)
        high = "inf" if self.high is None else _fmt(self.high)
        return f"{name} in {left}{low}, {high}{right}"

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, (bool, np.bool_)):
            return False
        if self.kind is int:
            if not isinstance(value, numbers.Integral):
                return False
        elif not isinstance(value, numbers.Real):
            return False
        value = float(value)
        if not np.isfinite(value):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def convert(self, value: Any) -> Any:
        return int(value) if self.kind is int else float(value)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of values (usually strings)."""

    values: tuple

    @property
    def description(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(repr(v) for v in self.values)

    def is_satisfied_by(self, value: Any) -> bool:
        return any(value == v and type(value) is type(v) for v in self.values) or (
            isinstance(value, str) and value in self.values
        )


@dataclass(frozen=True)
class Boolean(Constraint):
    """``True`` or ``False`` (numpy booleans accepted)."""

    description = "a bool"

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))

    def convert(self, value: Any) -> Any:
        return bool(value)


@dataclass(frozen=True)
class ArrayLike(Constraint):
    """An array (checked further by the stage that uses it)."""

    description = "an array-like"

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Anything(Constraint):
    """No constraint (use sparingly, e.g. for callables)."""

    description = "any value"

    def is_satisfied_by(self, value: Any) -> bool:
        return True


@dataclass(frozen=True)
class Param:
    """One declared parameter of a stage: name, default, constraints, documentation.

    A value is valid when it satisfies *any* of ``constraints`` (``None`` is valid only
    when ``allow_none`` is set).
    """

    name: str
    default: Any
    constraints: tuple[Constraint, ...]
    doc: str = ""
    allow_none: bool = False

    def validate(self, value: Any, owner: str) -> Any:
        """Return the canonical value or raise :class:`GidrValueError`.

        ``owner`` reads like ``"similarity 'tsne'"``.
        """
        if value is None and self.allow_none:
            return None
        for constraint in self.constraints:
            if constraint.is_satisfied_by(value):
                return constraint.convert(value)
        expected = " or ".join(c.description for c in self.constraints)
        if self.allow_none:
            expected += " or None"
        raise GidrValueError(
            format_error(f"The '{self.name}' parameter of {owner}", expected, value)
        )


def check_array(
    X: Any,
    *,
    name: str = "X",
    min_samples: int = 2,
    allow_sparse: bool = False,
) -> np.ndarray:
    """Validate a data matrix and return it as a float64 (or float32) 2-D array.

    Rejects, each with its own message: object and string dtypes, non-2-D input, fewer than
    ``min_samples`` rows, zero columns, and NaN or infinite values (the message gives their
    count and the first offending row). Never modifies the caller's array.
    """
    import scipy.sparse as sp

    if sp.issparse(X):
        if not allow_sparse:
            raise GidrValueError(
                format_error(f"The input {name}", "a dense array for this pipeline", Described("a sparse matrix"),
                             "Convert it with X.toarray(), or use a neighbors stage that accepts sparse input.")
            )
        X = sp.csr_matrix(X)
        data = X.data
        n_rows, n_cols = X.shape
    else:
        if hasattr(X, "dtypes") and hasattr(X, "to_numpy"):  # pandas DataFrame
            try:
                X = X.to_numpy(dtype=float)
            except (TypeError, ValueError):
                raise GidrValueError(
                    format_error(f"The input {name}", "numeric columns only", Described("a DataFrame with non-numeric columns"),
                                 "Drop or encode the non-numeric columns first.")
                ) from None
        try:
            arr = np.asarray(X)
        except (ValueError, TypeError):
            raise GidrValueError(
                format_error(f"The input {name}", "a rectangular array of numbers",
                             Described("rows of different lengths or non-numeric entries"))
            ) from None
        if arr.dtype.kind in "OUSVMm":
            raise GidrValueError(
                format_error(f"The input {name}", "an array of real or integer numbers",
                             Described(f"an array of dtype {arr.dtype}"),
                             "Convert strings and objects to numbers first, e.g. X.astype(float).")
            )
        if arr.dtype.kind == "c":
            raise GidrValueError(
                format_error(f"The input {name}", "a real-valued array", Described(f"an array of dtype {arr.dtype}"),
                             "Complex data not supported: pass the real part, the modulus, or both as columns.")
            )
        if arr.ndim != 2:
            raise GidrValueError(
                format_error(f"The input {name}", "a 2-D array of shape (n_samples, n_features)",
                             Described(f"an array with {arr.ndim} dimension(s), shape {arr.shape}"),
                             "Reshape your data, e.g. X.reshape(-1, 1) for a single feature.")
            )
        n_rows, n_cols = arr.shape
        if arr.dtype.kind != "f" or arr.dtype.itemsize < 4:
            arr = arr.astype(np.float64)
        X = arr
        data = arr
    if n_rows < min_samples:
        raise GidrValueError(
            format_error(f"The input {name}", f"an array with at least {min_samples} samples",
                         Described(f"{n_rows} sample(s)"), "An embedding needs at least two points.")
        )
    if n_cols < 1:
        raise GidrValueError(
            format_error(f"The input {name}", "an array with at least 1 feature",
                         Described(f"0 feature(s) (shape={(n_rows, n_cols)}) while a minimum of 1 is required"))
        )
    finite = np.isfinite(data)
    if not finite.all():
        n_bad = int(data.size - np.count_nonzero(finite))
        if sp.issparse(X):
            first_row = int(np.searchsorted(X.indptr, np.flatnonzero(~finite)[0], side="right") - 1)
        else:
            first_row = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise GidrValueError(
            f"The input {name} must contain only finite values. Got {n_bad} NaN or infinite "
            f"value(s), the first in row {first_row}. Remove or impute them first."
        )
    return X


def check_dask_array(X: Any, *, name: str = "X", min_samples: int = 2) -> Any:
    """Validate a ``dask.array.Array`` without computing it, and return it row-chunked.

    Checked here, from the metadata only: two dimensions, a real numeric dtype (a Dask
    DataFrame of mixed column types gives ``object``), known chunk sizes (a DataFrame's
    ``to_dask_array()`` without ``lengths=True`` leaves them ``nan``), at least
    ``min_samples`` rows and one column. An array split along its columns is rechunked to
    whole rows (``X.rechunk({1: -1})``) with a :class:`UserWarning`. Non-finite values are
    found where the data is read, on the workers (:func:`finite_rows_error`).
    """
    import math

    if X.ndim != 2:
        raise GidrValueError(format_error(f"The Dask array {name}", "a 2-D array of shape (n_samples, n_features)",
                                          Described(f"an array with {X.ndim} dimension(s), shape {X.shape}"),
                                          "Reshape it, e.g. X.reshape(-1, 1) for a single feature."))
    if X.dtype.kind not in "fiub":
        raise GidrValueError(format_error(
            f"The Dask array {name}", "an array of real numbers", Described(f"dtype {X.dtype}"),
            "A Dask DataFrame with mixed or non-numeric columns converts to an object array: select the "
            "numeric columns and cast them, e.g. df[cols].astype('float32').to_dask_array(lengths=True)."))
    row_chunks = X.chunks[0]
    if any(isinstance(c, float) and math.isnan(c) for c in row_chunks) or any(
            isinstance(c, float) and math.isnan(c) for c in X.chunks[1]):
        raise GidrValueError(format_error(
            f"The chunk sizes of the Dask array {name}", "known sizes", Described("unknown (nan) chunk sizes"),
            "Call X.compute_chunk_sizes() first, or from a Dask DataFrame use df.to_dask_array(lengths=True)."))
    n_rows, n_cols = X.shape
    if n_rows < min_samples:
        raise GidrValueError(format_error(f"The Dask array {name}", f"an array with at least {min_samples} samples",
                                          Described(f"{n_rows} sample(s)"), "An embedding needs at least two points."))
    if n_cols < 1:
        raise GidrValueError(format_error(f"The Dask array {name}", "an array with at least 1 feature",
                                          Described(f"shape {X.shape}")))
    if len(X.chunks[1]) > 1:
        import warnings

        warnings.warn(f"The Dask array {name} is split along its columns into {len(X.chunks[1])} chunks; gidr "
                      f"reads whole rows and rechunks it with {name}.rechunk({{1: -1}}). Chunk it by rows only to "
                      "avoid the rechunk.", UserWarning, stacklevel=3)
        X = X.rechunk({1: -1})
    if X.dtype.kind != "f" or X.dtype.itemsize < 4:
        X = X.astype(np.float64)
    return X


_FIX_DASK_NONFINITE = "Remove or impute them first (e.g. X = X[da.isfinite(X).all(axis=1)] or a fill)."


def finite_rows_error(block: np.ndarray, offset: int, name: str = "X",
                      fix: str = _FIX_DASK_NONFINITE) -> GidrValueError | None:
    """The error for a block of rows (the first at global row ``offset``) that holds NaN or
    infinite values, or None: the message gives their count, the block's rows and the first
    offending row, so that a chunk read on a Dask worker (or from a file,
    :mod:`gidr.outofcore`) is reported like an in-memory array; ``fix`` ends it."""
    finite = np.isfinite(block)
    if finite.all():
        return None
    n_bad = int(block.size - np.count_nonzero(finite))
    first = offset + int(np.flatnonzero(~finite.all(axis=1))[0])
    return GidrValueError(
        f"The input {name} must contain only finite values. Got {n_bad} NaN or infinite value(s) in rows "
        f"{offset}-{offset + len(block) - 1} (one chunk), the first in row {first}. {fix}")


#: Seeds are 63-bit: what numba's int64 and numpy's integer draws accept.
MAX_SEED = 2**63 - 1


def resolve_seed(random_state: Any, owner: str = "") -> int:
    """Turn ``random_state`` into one 63-bit integer seed, in ``[0, 2**63 - 1]``.

    ``None`` draws fresh entropy (not reproducible). A non-negative int below ``2**63`` is
    used as is; a larger one is reduced deterministically to 63 bits (through
    :class:`numpy.random.SeedSequence`, so that nearby large seeds stay unrelated). A
    :class:`numpy.random.Generator` or ``RandomState`` is advanced by one draw, so that
    successive calls with one generator give different seeds and the same generator state
    gives the same seed (scikit-learn's convention). ``owner`` (e.g. ``"of GDR"``) is named
    in the error message.
    """
    what = f"The 'random_state' parameter{' ' + owner if owner else ''}"
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
    if isinstance(random_state, (bool, np.bool_)):
        raise GidrValueError(format_error(what, "an int, a Generator or None", random_state))
    if isinstance(random_state, numbers.Integral):
        value = int(random_state)
        if value < 0:
            raise GidrValueError(format_error(what, "a non-negative int, a Generator or None", random_state))
        if value > MAX_SEED:
            return int(np.random.SeedSequence(value).generate_state(1, np.uint64)[0] >> np.uint64(1))
        return value
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, MAX_SEED))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise GidrValueError(format_error(what, "an int, a Generator or None", random_state))


def check_choice(value: Any, options: Sequence[str], what: str) -> str:
    """Check that ``value`` is one of ``options``; the message lists them."""
    if isinstance(value, str) and value in options:
        return value
    raise GidrValueError(format_error(what, "one of " + ", ".join(repr(o) for o in options), value))
