"""scikit-learn estimators: API contract, transform, pickling, parameters untouched."""
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits

import gidr
from gidr.estimators import GDR, TSNE, UMAP
from gidr.metrics import knn_accuracy

FAST = {"UMAP": dict(n_epochs=60), "GDR": dict(n_epochs=60), "TSNE": dict(max_iter=150)}


def _make(name, **kw):
    cls = {"UMAP": UMAP, "GDR": GDR, "TSNE": TSNE}[name]
    return cls(random_state=0, **{**FAST[name], **kw})


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


@pytest.mark.parametrize("name", ["UMAP", "GDR", "TSNE"])
def test_fit_transform_shape_and_params_untouched(name, digits):
    X, _ = digits
    est = _make(name)
    before = est.get_params()
    Y = est.fit_transform(X)
    assert Y.shape == (len(X), 2)
    assert np.all(np.isfinite(Y))
    assert est.get_params() == before
    assert est.embedding_ is Y
    assert isinstance(est.result_, gidr.Result)


@pytest.mark.parametrize("name", ["UMAP", "GDR", "TSNE"])
def test_second_fit_and_clone(name, digits):
    X, _ = digits
    est = _make(name)
    first = est.fit_transform(X[:200]).copy()
    second = est.fit_transform(X[:200])
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(clone(est).fit_transform(X[:200]), first)


def test_numpy_integer_n_epochs(digits):
    X, _ = digits
    Y = UMAP(n_epochs=np.int64(20), random_state=0).fit_transform(X[:150])
    assert Y.shape == (150, 2)


def test_gdr_normalized_selects_tsne_like_preset(digits):
    X, _ = digits
    est = GDR(normalized=True, n_epochs=50, random_state=0).fit(X[:200])
    assert est.result_.config["pipeline"]["normalized"] is True
    assert est.result_.config["optimizer"]["name"] == "gdr"


def test_gdr_defaults_are_the_presets():
    """GDR() builds gdr-umap and GDR(normalized=True) gdr-tsne, epochs and negatives included."""
    for normalized, preset in ((False, "gdr-umap"), (True, "gdr-tsne")):
        built = GDR(normalized=normalized, random_state=0)._pipeline()
        expected = gidr.Pipeline.from_preset(preset, random_state=0)
        for kind in ("similarity", "symmetrize", "init", "loss", "repulsion", "optimizer"):
            assert type(built.stages[kind]) is type(expected.stages[kind]), kind
            assert built.stages[kind].values == expected.stages[kind].values, kind
        assert built.config["pipeline"].get("n_epochs") == expected.config["pipeline"].get("n_epochs")
    assert GDR(normalized=True)._pipeline().n_epochs_for(70_000) == 1000
    assert GDR(normalized=True, n_epochs=30)._pipeline().n_epochs_for(70_000) == 30
    assert GDR(negative_sample_rate=3)._pipeline().config["repulsion"]["n_negative"] == 3


@pytest.mark.parametrize("name, margin", [("UMAP", 0.05), ("GDR", 0.05), ("TSNE", 0.05)])
def test_transform_held_out_accuracy_close_to_in_sample(name, margin, digits):
    """Half of digits fitted, the other half transformed: the held-out points, classified by
    their 15 nearest training points in the embedding, score within `margin` of the
    in-sample leave-one-out 15-NN accuracy."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    train, test = order[: len(X) // 2], order[len(X) // 2:]
    est = {"UMAP": UMAP, "GDR": GDR, "TSNE": TSNE}[name](random_state=0)
    Y_train = est.fit_transform(X[train])
    before = Y_train.copy()
    Y_test = est.transform(X[test])
    np.testing.assert_array_equal(est.embedding_, before)  # old points do not move
    in_sample = knn_accuracy(Y_train, y[train], k=15)
    from sklearn.neighbors import KNeighborsClassifier

    held_out = KNeighborsClassifier(n_neighbors=15).fit(Y_train, y[train]).score(Y_test, y[test])
    print(f"{name}: in-sample 15-NN {in_sample:.3f}, held-out {held_out:.3f}")
    assert held_out >= in_sample - margin


@pytest.mark.parametrize("name", ["UMAP", "GDR", "TSNE"])
def test_pickle_round_trip_transform_identical(name, digits):
    X, _ = digits
    est = _make(name).fit(X[:300])
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.embedding_, est.embedding_)
    np.testing.assert_array_equal(loaded.transform(X[300:350]), est.transform(X[300:350]))


def test_transform_wrong_feature_count(digits):
    X, _ = digits
    est = _make("GDR").fit(X[:200])
    with pytest.raises(ValueError, match="X has 10 features, but GDR is expecting 64 features as input"):
        est.transform(X[:10, :10])


def test_transform_before_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        GDR().transform(np.zeros((3, 4)))


def test_bad_parameter_named_at_fit(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="The 'n_neighbors' parameter of similarity 'umap' must be an int"):
        GDR(n_neighbors=-3).fit(X[:50])
    for name in ("n_neighbors", "target_n_neighbors"):  # umap-learn's counts include the point: at least 2
        with pytest.raises(ValueError, match=rf"The '{name}' parameter of UMAP must be an int in \[2, inf\)\. Got 1"):
            UMAP(**{name: 1}).fit(X[:50])


def test_bad_init_named(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="The 'init' parameter of UMAP must be"):
        UMAP(init="laplacian").fit(X[:50])


def test_bad_n_jobs(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="The 'n_jobs' parameter must be a positive int, -1 or None"):
        GDR(n_jobs=0, n_epochs=5).fit(X[:50])


def test_callback_stops_early(digits):
    X, _ = digits
    seen = []

    def callback(epoch, loss, Y):
        seen.append(epoch)
        return epoch >= 20

    GDR(n_epochs=200, random_state=0).fit(X[:200], callback=callback, callback_every=10)
    assert seen == [10, 20]


def test_dataframe_and_integer_input(digits):
    pd = pytest.importorskip("pandas")
    X, _ = digits
    frame = pd.DataFrame(X[:150].astype(np.int64))
    Y_frame = GDR(n_epochs=30, random_state=0).fit_transform(frame)
    Y_array = GDR(n_epochs=30, random_state=0).fit_transform(X[:150])
    np.testing.assert_array_equal(Y_frame, Y_array)


def test_array_init(digits):
    X, _ = digits
    start = np.random.default_rng(0).normal(size=(100, 2))
    Y = GDR(init=start, n_epochs=10, random_state=0).fit_transform(X[:100])
    assert Y.shape == (100, 2)


def test_verbose_prints_progress_and_timings(digits, capsys):
    X, _ = digits
    GDR(n_epochs=20, random_state=0, verbose=True).fit(X[:100])
    err = capsys.readouterr().err
    assert "stage timings" in err
    assert "gidr epochs" in err


def test_quiet_by_default(digits, capsys):
    X, _ = digits
    GDR(n_epochs=20, random_state=0).fit(X[:100])
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_precomputed_distance_matrix_and_knn_pair(digits):
    from scipy.spatial.distance import cdist
    from sklearn.neighbors import NearestNeighbors

    X, y = digits
    X = X[:300]
    D = cdist(X, X)
    Y_matrix = GDR(metric="precomputed", n_epochs=100, random_state=0).fit_transform(D)
    Y_data = GDR(n_epochs=100, random_state=0).fit_transform(X)
    np.testing.assert_allclose(Y_matrix, Y_data, rtol=1e-10, atol=1e-10)
    distances, indices = NearestNeighbors(n_neighbors=16).fit(X).kneighbors(X)
    est = UMAP(metric="precomputed", n_epochs=50, random_state=0)
    Y_pair = est.fit_transform((indices[:, 1:], distances[:, 1:]))
    assert Y_pair.shape == (300, 2) and knn_accuracy(Y_pair, y[:300], k=15) > 0.9
    with pytest.raises(ValueError, match="transform needs the training data"):
        est.transform(X[:5])


def test_precomputed_must_be_square(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="The precomputed distance matrix X must be a square distance matrix"):
        GDR(metric="precomputed").fit(X[:50])


@pytest.mark.parametrize("metric", ["manhattan", "cosine", "correlation", "chebyshev"])
def test_metrics(metric, digits):
    X, y = digits
    Y = GDR(metric=metric, n_epochs=100, random_state=0).fit_transform(X[:300])
    assert knn_accuracy(Y, y[:300], k=15) > 0.85


def test_sparse_input(digits):
    import scipy.sparse as sp

    X, _ = digits
    Y_sparse = GDR(n_epochs=30, random_state=0).fit_transform(sp.csr_matrix(X[:200]))
    Y_dense = GDR(n_epochs=30, random_state=0).fit_transform(X[:200])
    np.testing.assert_array_equal(Y_sparse, Y_dense)
