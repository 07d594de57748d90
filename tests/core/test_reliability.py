"""Bad inputs, degenerate data, determinism: every preset, every backend, every entry point."""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gidr
from gidr.estimators import GDR, TSNE, UMAP
from gidr.validation import GidrValueError

PRESETS = ["umap", "tsne", "gdr-umap", "gdr-tsne", "gdr-umap-frob", "gdr-tsne-frob"]
BACKENDS = sorted({b for (_, _, b) in gidr.stages()} & {"reference", "numba"})
FEW = 20  # epochs: these tests are about robustness, not quality


def _run(preset, X, backend="auto", **overrides):
    overrides.setdefault("n_epochs", FEW)
    overrides.setdefault("random_state", 0)
    return np.asarray(gidr.Pipeline.from_preset(preset, backend=backend, **overrides).run(X))


def _blobs(n=120, d=5, seed=0):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(c * 6, 1, (n // 3, d)) for c in range(3)])


# ----------------------------------------------------------------------------- rejected inputs
@pytest.mark.parametrize("preset", PRESETS)
def test_nan_rejected_with_count_and_first_row(preset):
    X = _blobs()
    X[7, 2] = np.nan
    X[9, 0] = np.nan
    with pytest.raises(GidrValueError, match=r"Got 2 NaN or infinite value\(s\), the first in row 7"):
        _run(preset, X)


def test_inf_rejected():
    X = _blobs()
    X[3, 1] = np.inf
    with pytest.raises(GidrValueError, match=r"Got 1 NaN or infinite value\(s\), the first in row 3"):
        _run("gdr-umap", X)


def test_empty_rejected():
    with pytest.raises(GidrValueError, match="must be an array with at least 2 samples. Got 0 sample"):
        _run("gdr-umap", np.zeros((0, 4)))


def test_single_sample_rejected():
    with pytest.raises(GidrValueError, match="must be an array with at least 2 samples. Got 1 sample"):
        _run("gdr-umap", np.zeros((1, 4)))


def test_one_dimensional_rejected():
    with pytest.raises(GidrValueError, match="must be a 2-D array of shape \\(n_samples, n_features\\)"):
        _run("gdr-umap", np.zeros(10))


def test_three_dimensional_rejected():
    with pytest.raises(GidrValueError, match="with 3 dimension"):
        _run("gdr-umap", np.zeros((10, 2, 2)))


def test_strings_rejected():
    with pytest.raises(GidrValueError, match="must be an array of real or integer numbers"):
        _run("gdr-umap", np.array([["a", "b"], ["c", "d"], ["e", "f"]]))


def test_object_dtype_rejected():
    with pytest.raises(GidrValueError, match="Got an array of dtype object"):
        _run("gdr-umap", np.array([[1, 2], [3, None], [5, 6]], dtype=object))


def test_barnes_hut_beyond_three_dimensions_names_alternatives():
    with pytest.raises(GidrValueError, match="'exact'.*'sampled'|'sampled'.*'exact'"):
        gidr.Pipeline.from_preset("tsne", n_components=4)


@pytest.mark.parametrize("override, message", [
    ({"perplexity": -3.0}, "The 'perplexity' parameter of similarity 'tsne' must be a float in"),
    ({"theta": -1.0}, "The 'theta' parameter of repulsion 'barnes_hut'"),
    ({"n_components": 0}, "The 'n_components' parameter of the pipeline must be an int in \\[1, inf\\)"),
    ({"n_epochs": 0}, "The 'n_epochs' parameter of the pipeline must be an int in \\[1, inf\\)"),
    ({"random_state": -1}, "The 'random_state' parameter must be a non-negative int"),
    ({"backend": "cuda"}, "The 'backend' parameter must be 'auto' or one of"),
])
def test_bad_parameter_named(override, message):
    with pytest.raises(GidrValueError, match=message):
        gidr.Pipeline.from_preset("tsne", **override)


# ----------------------------------------------------------------------------- finite output
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("n", [2, 3, 10])
def test_tiny_inputs_clamp_with_warning(preset, backend, n):
    X = _blobs(30)[:n]
    with pytest.warns(UserWarning, match="neighbour|perplexity"):
        Y = _run(preset, X, backend)
    assert Y.shape == (n, 2) and np.all(np.isfinite(Y))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("preset", PRESETS)
def test_many_duplicates(preset, backend):
    X = np.repeat(_blobs(30), 8, axis=0)  # 240 rows, 8 copies each
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        Y = _run(preset, X, backend)
    assert np.all(np.isfinite(Y))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("scale", [1e30, 1e-30])
def test_extreme_scales(preset, backend, scale):
    Y = _run(preset, _blobs() * scale, backend)
    assert np.all(np.isfinite(Y))


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint8, np.float16, np.float32, bool])
def test_integer_and_small_float_dtypes(dtype):
    X = (np.abs(_blobs()) * 10).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        Y = _run("gdr-umap", X)
    assert np.all(np.isfinite(Y))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("preset", PRESETS)
def test_disconnected_graph(preset, backend):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(c * 1e4, 1, (12, 4)) for c in range(10)])  # 10 far-apart clusters
    small_k = {"perplexity": 3.0} if preset == "tsne" else {"n_neighbors": 5}
    with pytest.warns(UserWarning, match="connected components"):
        Y = _run(preset, X, backend, init="spectral", **small_k)
    assert np.all(np.isfinite(Y))
    centres = np.array([Y[12 * c: 12 * (c + 1)].mean(axis=0) for c in range(10)])
    assert len(np.unique(np.round(centres, 6), axis=0)) == 10  # components do not collapse


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("preset", PRESETS)
def test_all_rows_identical_give_finite_output(preset, backend):
    """Documented behaviour: identical rows give a finite embedding (points spread by the
    repulsion around one spot), never NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        Y = _run(preset, np.ones((50, 4)), backend)
    assert np.all(np.isfinite(Y))


# ----------------------------------------------------------------------------- property-based
@st.composite
def data_matrices(draw):
    """Arrays of 1 to 3 dimensions, float or int dtypes, finite or not, duplicates likely."""
    dtype = draw(st.sampled_from([np.float64, np.float32, np.float16, np.int32, np.uint8]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=12))
    if np.dtype(dtype).kind == "f":
        width = 16 if dtype == np.float16 else 32
        elements = st.floats(-1e4, 1e4, width=width) | st.sampled_from([np.nan, np.inf, 0.0, 1e-30])
    else:
        elements = st.integers(0, 255)
    return draw(hnp.arrays(dtype=dtype, shape=shape, elements=elements))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(X=data_matrices(), preset=st.sampled_from(["gdr-umap", "gdr-tsne", "umap", "tsne"]))
def test_property_finite_embedding_or_gidr_value_error(X, preset):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Y = _run(preset, X, n_epochs=5)
    except GidrValueError:
        return
    assert Y.shape == (X.shape[0], 2)
    assert np.all(np.isfinite(Y))


# ----------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("preset", PRESETS)
def test_same_seed_same_bits_repeated_runs(preset):
    X = _blobs()
    np.testing.assert_array_equal(_run(preset, X), _run(preset, X))


@pytest.mark.parametrize("preset", PRESETS)
def test_same_seed_same_bits_across_thread_counts(preset):
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least 2 numba threads")
    X = _blobs(300)
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = _run(preset, X, n_epochs=40)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        parallel = _run(preset, X, n_epochs=40)
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(serial, parallel)


def test_random_state_none_allowed():
    Y = _run("gdr-umap", _blobs(), random_state=None)
    assert np.all(np.isfinite(Y))


@pytest.mark.parametrize("cls", [UMAP, TSNE, GDR])
def test_estimators_reject_bad_input_with_gidr_error(cls):
    with pytest.raises(GidrValueError, match="must contain only finite values"):
        cls().fit(np.array([[1.0, np.nan], [2.0, 3.0], [4.0, 5.0]]))
