"""Tests of gidr.validation: constraint descriptions, the error format, check_array, resolve_seed."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from gidr.validation import (
    Anything,
    ArrayLike,
    Boolean,
    Described,
    GidrValueError,
    Interval,
    Options,
    Param,
    check_array,
    check_choice,
    format_error,
    resolve_seed,
)


# ---------------------------------------------------------------------- format_error
def test_format_error_without_fix():
    assert format_error("The 'k' parameter of neighbors 'exact'", "an int in [1, inf)", 0) == \
        "The 'k' parameter of neighbors 'exact' must be an int in [1, inf). Got 0."


def test_format_error_with_fix():
    assert format_error("The 'k' parameter", "an int", "3", "Pass k=3.") == \
        "The 'k' parameter must be an int. Got '3'. Pass k=3."


def test_format_error_shows_descriptions_verbatim():
    assert format_error("X", "square", Described("shape (3, 4)")) == "X must be square. Got shape (3, 4)."


def test_format_error_describes_arrays_by_shape_and_dtype():
    message = format_error("X", "small", np.zeros((3, 4), dtype=np.float32))
    assert message == "X must be small. Got an array of shape (3, 4) and dtype float32."


def test_format_error_shortens_long_values():
    message = format_error("X", "short", "y" * 200)
    got = message.split("Got ", 1)[1]
    assert got.endswith("....") and len(got) == 81


def test_gidr_value_error_is_a_value_error():
    assert issubclass(GidrValueError, ValueError)


# ---------------------------------------------------------------------- constraints
@pytest.mark.parametrize("constraint, description", [
    (Interval(int, 1, None), "an int in [1, inf)"),
    (Interval(float, 0, None, "neither"), "a float in (0, inf)"),
    (Interval(float, 0, 1, "both"), "a float in [0, 1]"),
    (Interval(float, 0, 1, "left"), "a float in [0, 1)"),
    (Interval(float, 0, 1, "right"), "a float in (0, 1]"),
    (Interval(float, None, 5), "a float in (-inf, 5]"),
    (Interval(float, None, None), "a float in (-inf, inf)"),
    (Interval(float, 0.25, 2.5), "a float in [0.25, 2.5]"),
    (Options(("fit", "one")), "one of 'fit', 'one'"),
    (Boolean(), "a bool"),
    (ArrayLike(), "an array-like"),
    (Anything(), "any value"),
])
def test_constraint_descriptions(constraint, description):
    assert constraint.description == description


@pytest.mark.parametrize("value, accepted", [
    (1, True), (np.int64(3), True), (np.uint8(2), True), (0, False), (2.0, False), (True, False),
    (np.bool_(True), False), ("3", False), (None, False),
])
def test_int_interval(value, accepted):
    assert Interval(int, 1, None).is_satisfied_by(value) is accepted


@pytest.mark.parametrize("value, accepted", [
    (0.5, True), (1, True), (np.float32(0.25), True), (0.0, False), (1.0, True), (1.5, False),
    (np.nan, False), (np.inf, False), (False, False), ("0.5", False),
])
def test_float_interval(value, accepted):
    assert Interval(float, 0, 1, "right").is_satisfied_by(value) is accepted


def test_unbounded_interval_rejects_infinity():
    assert not Interval(float).is_satisfied_by(np.inf)
    assert not Interval(float).is_satisfied_by(-np.inf)
    assert Interval(float).is_satisfied_by(-1e300)


def test_interval_converts_to_builtin_types():
    assert type(Interval(int, 1).convert(np.int64(3))) is int
    assert type(Interval(float, 0).convert(3)) is float


def test_options_compare_type_and_value():
    options = Options(("auto", 1))
    assert options.is_satisfied_by("auto") and options.is_satisfied_by(np.str_("auto"))
    assert options.is_satisfied_by(1)
    assert not options.is_satisfied_by(True)  # True == 1, but a bool is not the int option
    assert not options.is_satisfied_by("AUTO")


def test_boolean():
    assert Boolean().is_satisfied_by(np.bool_(False))
    assert type(Boolean().convert(np.bool_(True))) is bool
    assert not Boolean().is_satisfied_by(1)
    assert not Boolean().is_satisfied_by("True")


def test_array_like():
    assert ArrayLike().is_satisfied_by([[1, 2], [3, 4]])
    assert not ArrayLike().is_satisfied_by("abc")
    assert not ArrayLike().is_satisfied_by({"a": 1})


# ---------------------------------------------------------------------- Param
PERPLEXITY = Param("perplexity", 30.0, (Interval(float, 0, None, "neither"),), "Perplexity.")


def test_param_message_format():
    with pytest.raises(GidrValueError, match=r"^The 'perplexity' parameter of similarity 'tsne' must be a float in "
                                             r"\(0, inf\)\. Got -3\.0\.$"):
        PERPLEXITY.validate(-3.0, "similarity 'tsne'")


def test_param_joins_alternatives_with_or():
    learning_rate = Param("learning_rate", "auto", (Options(("auto",)), Interval(float, 0, None, "neither")))
    assert learning_rate.validate("auto", "optimizer 'gdr'") == "auto"
    assert learning_rate.validate(2, "optimizer 'gdr'") == 2.0
    with pytest.raises(GidrValueError, match=r"^The 'learning_rate' parameter of optimizer 'gdr' must be one of "
                                             r"'auto' or a float in \(0, inf\)\. Got 'fast'\.$"):
        learning_rate.validate("fast", "optimizer 'gdr'")


def test_param_none_only_when_allowed():
    n_epochs = Param("n_epochs", None, (Interval(int, 1, None),), allow_none=True)
    assert n_epochs.validate(None, "the pipeline") is None
    with pytest.raises(GidrValueError, match=r"^The 'n_epochs' parameter of the pipeline must be an int in \[1, inf\) "
                                             r"or None\. Got 0\.$"):
        n_epochs.validate(0, "the pipeline")
    with pytest.raises(GidrValueError, match=r"must be a float in \(0, inf\)\. Got None\.$"):
        PERPLEXITY.validate(None, "similarity 'tsne'")


def test_param_boolean_message():
    flag = Param("pseudo_distance", True, (Boolean(),))
    with pytest.raises(GidrValueError, match=r"^The 'pseudo_distance' parameter of similarity 'umap' must be a bool\. "
                                             r"Got 1\.$"):
        flag.validate(1, "similarity 'umap'")


def test_check_choice():
    assert check_choice("mean", ("mean", "none"), "The symmetrization") == "mean"
    with pytest.raises(GidrValueError, match=r"^The symmetrization must be one of 'mean', 'none'\. Got 'max'\.$"):
        check_choice("max", ("mean", "none"), "The symmetrization")


# ---------------------------------------------------------------------- check_array
def test_check_array_accepts_and_converts():
    ints = np.arange(6).reshape(3, 2)
    out = check_array(ints)
    assert out.dtype == np.float64 and np.array_equal(out, ints)
    assert check_array([[1, 2], [3, 4]]).dtype == np.float64
    assert check_array(np.ones((3, 2), dtype=np.float32)).dtype == np.float32
    assert check_array(np.ones((3, 2), dtype=np.float16)).dtype == np.float64
    assert check_array(np.ones((3, 2), dtype=bool)).dtype == np.float64


def test_check_array_never_modifies_the_input():
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    before = X.copy()
    out = check_array(X)
    out_was_written = out is X  # returned as is (no copy needed) is fine; it must not be altered
    np.testing.assert_array_equal(X, before)
    assert out_was_written or not np.shares_memory(out, X)


def test_nan_count_and_first_row():
    X = np.ones((6, 3))
    X[3, 1] = X[5, 0] = X[5, 2] = np.nan
    with pytest.raises(GidrValueError, match=r"^The input X must contain only finite values\. Got 3 NaN or infinite "
                                             r"value\(s\), the first in row 3\. Remove or impute them first\.$"):
        check_array(X)


def test_infinite_values():
    X = np.ones((4, 2))
    X[2, 0] = -np.inf
    with pytest.raises(GidrValueError, match=r"Got 1 NaN or infinite value\(s\), the first in row 2\."):
        check_array(X)


def test_nan_in_a_sparse_matrix_reports_its_row():
    X = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 2.0], [0.0, np.nan], [3.0, 0.0]]))
    with pytest.raises(GidrValueError, match=r"Got 1 NaN or infinite value\(s\), the first in row 2\."):
        check_array(X, allow_sparse=True)


def test_sparse_rejected_unless_allowed():
    with pytest.raises(GidrValueError, match=r"must be a dense array for this pipeline\. Got a sparse matrix\. "
                                             r"Convert it with X\.toarray\(\)"):
        check_array(sp.csr_matrix(np.eye(3)))
    assert sp.issparse(check_array(sp.csr_matrix(np.eye(3)), allow_sparse=True))


def test_empty():
    with pytest.raises(GidrValueError, match=r"^The input X must be an array with at least 2 samples\. "
                                             r"Got 0 sample\(s\)\."):
        check_array(np.empty((0, 3)))


def test_one_sample():
    with pytest.raises(GidrValueError, match=r"at least 2 samples\. Got 1 sample\(s\)\. An embedding needs at "
                                             r"least two points\.$"):
        check_array(np.ones((1, 3)))


def test_no_features():
    with pytest.raises(GidrValueError, match=r"^The input X must be an array with at least 1 feature\. "
                                             r"Got 0 feature\(s\) \(shape=\(4, 0\)\) while a minimum of 1 is required\.$"):
        check_array(np.empty((4, 0)))


def test_one_dimensional():
    with pytest.raises(GidrValueError, match=r"must be a 2-D array of shape \(n_samples, n_features\)\. Got an array "
                                             r"with 1 dimension\(s\), shape \(5,\)\. Reshape your data, e.g\. "
                                             r"X\.reshape\(-1, 1\)"):
        check_array(np.ones(5))


def test_three_dimensional():
    with pytest.raises(GidrValueError, match=r"must be a 2-D array .*Got an array with 3 dimension\(s\), "
                                             r"shape \(2, 3, 4\)\."):
        check_array(np.ones((2, 3, 4)))


def test_scalar():
    with pytest.raises(GidrValueError, match=r"Got an array with 0 dimension\(s\), shape \(\)\."):
        check_array(3.0)


def test_strings():
    with pytest.raises(GidrValueError, match=r"^The input X must be an array of real or integer numbers\. Got an "
                                             r"array of dtype <U1\. Convert strings and objects to numbers first"):
        check_array(np.array([["a", "b"], ["c", "d"]]))


def test_objects():
    with pytest.raises(GidrValueError, match=r"must be an array of real or integer numbers\. Got an array of dtype "
                                             r"object\."):
        check_array(np.array([[1, None], [2, 3]], dtype=object))


def test_complex():
    with pytest.raises(GidrValueError, match=r"^The input X must be a real-valued array\. Got an array of dtype "
                                             r"complex128\. Complex data not supported"):
        check_array(np.ones((3, 2), dtype=complex))


def test_datetimes():
    with pytest.raises(GidrValueError, match=r"must be an array of real or integer numbers\. Got an array of dtype "
                                             r"datetime64\[D\]\."):
        check_array(np.array([["2020-01-01"], ["2020-01-02"]], dtype="datetime64[D]"))


def test_name_is_used_in_messages():
    with pytest.raises(GidrValueError, match=r"^The input Y0 must contain only finite values"):
        check_array(np.array([[np.nan, 1.0], [1.0, 1.0]]), name="Y0")


def test_min_samples_parameter():
    with pytest.raises(GidrValueError, match=r"at least 5 samples\. Got 4 sample\(s\)\."):
        check_array(np.ones((4, 2)), min_samples=5)


def test_dataframe_with_text_columns():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": ["a", "b", "c"]})
    with pytest.raises(GidrValueError, match=r"must be numeric columns only\. Got a DataFrame with non-numeric "
                                             r"columns\. Drop or encode"):
        check_array(frame)
    assert check_array(frame[["x", "x"]]).shape == (3, 2)


@pytest.mark.parametrize("X", [np.ones((1, 3)), np.ones(5), np.array([["a"], ["b"]]), np.empty((3, 0)),
                               sp.csr_matrix(np.eye(3))], ids=["one-sample", "1-D", "strings", "no-features", "sparse"])
def test_described_values_are_not_quoted(X):
    with pytest.raises(GidrValueError) as info:
        check_array(X)
    assert "Got '" not in str(info.value)


def test_ragged_rows():
    with pytest.raises(GidrValueError, match=r"The input X"):
        check_array([[1.0, 2.0], [3.0]])


# ---------------------------------------------------------------------- resolve_seed
def test_resolve_seed_int():
    assert resolve_seed(42) == 42
    assert resolve_seed(np.int64(7)) == 7 and type(resolve_seed(np.int64(7))) is int
    assert resolve_seed(0) == 0


def test_resolve_seed_none_is_fresh_and_63_bit():
    seeds = {resolve_seed(None) for _ in range(5)}
    assert len(seeds) == 5
    assert all(0 <= seed < 2**63 for seed in seeds)


def test_resolve_seed_generators_are_consumed_reproducibly():
    first, second = np.random.default_rng(3), np.random.default_rng(3)
    drawn = resolve_seed(first)
    assert drawn == resolve_seed(second)
    assert resolve_seed(first) != drawn  # consumed: the next draw differs
    assert resolve_seed(np.random.RandomState(3)) == resolve_seed(np.random.RandomState(3))


@pytest.mark.parametrize("value, message", [
    (-1, r"^The 'random_state' parameter must be a non-negative int, a Generator or None\. Got -1\.$"),
    (True, r"^The 'random_state' parameter must be an int, a Generator or None\. Got True\.$"),
    (1.5, r"^The 'random_state' parameter must be an int, a Generator or None\. Got 1\.5\.$"),
    ("0", r"^The 'random_state' parameter must be an int, a Generator or None\. Got '0'\.$"),
])
def test_resolve_seed_rejects(value, message):
    with pytest.raises(GidrValueError, match=message):
        resolve_seed(value)
