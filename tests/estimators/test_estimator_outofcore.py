"""The estimators on out-of-core input (np.memmap, h5py, zarr) and with ``pca``: fit without
loading the input whole, transform and inverse_transform through the fitted PCA, save/load."""
import tracemalloc

import numpy as np
import pytest
from sklearn.datasets import load_digits

import gidr
from gidr import outofcore
from gidr.validation import GidrValueError
from tests.core.test_outofcore import STORES, _memmap  # memmap, h5py and zarr copies of an array

FAST = {"UMAP": dict(n_epochs=60), "GDR": dict(n_epochs=60), "TSNE": dict(max_iter=250)}
#: Memory test input: 1,000 x 12,000 uint8 (11.4 MiB on disk), whose float32 copy is 45.8 MiB and
#: float64 copy (what check_array made of it before) 91.6 MiB.
WIDE = (1000, 12_000)
#: Peak traced memory of a pca fit, as a share of the input's float32 copy. Measured 0.20 for the
#: memmap and h5py inputs, 0.28 for zarr (the exact neighbours' 1,000 x 1,000 distance block is most of it);
#: any whole copy of the input would be 1.0 or more.
PEAK_SHARE = 0.5
#: transform of the training rows after a pca fit lands within this share of the embedding's extent
#: of their fitted positions (median). Measured on 600 digits: UMAP 0.018, GDR 0.007, TSNE 0.029.
TRANSFORM_SHARE = 0.08


def _make(name, **kw):
    cls = {"UMAP": gidr.UMAP, "GDR": gidr.GDR, "TSNE": gidr.TSNE}[name]
    return cls(random_state=0, **{**FAST[name], **kw})


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return np.ascontiguousarray(X[:600], dtype=np.float32), y[:600]


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(outofcore, "CHUNK_BYTES", 2**20)


def _wide_uint8():
    rng = np.random.default_rng(0)
    centers = rng.integers(0, 200, size=(8, WIDE[1]))
    noise = rng.integers(-20, 20, size=WIDE)
    return np.clip(centers[rng.integers(8, size=WIDE[0])] + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("store", list(STORES))
def test_pca_fit_never_holds_the_input_whole(store, tmp_path, small_chunks):
    X = _wide_uint8()
    stored = STORES[store](X, tmp_path)
    del X
    gidr.UMAP(n_epochs=5, random_state=0, pca=10).fit(np.load(tmp_path / "X.npy") if store == "memmap" else
                                                       np.asarray(stored[:300]))  # compile outside the count
    tracemalloc.start()
    try:
        est = gidr.UMAP(n_epochs=5, random_state=0, pca=10).fit(stored)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    float32_copy = WIDE[0] * WIDE[1] * 4
    assert peak < PEAK_SHARE * float32_copy, f"peak {peak / 2**20:.1f} MiB against a float32 copy of " \
                                             f"{float32_copy / 2**20:.1f} MiB"
    assert est.embedding_.shape == (WIDE[0], 2) and est.n_features_in_ == WIDE[1]
    assert est._training_rows().shape == (WIDE[0], 10)  # the scores, not the input


@pytest.mark.parametrize("store", list(STORES))
def test_out_of_core_fit_equals_in_memory_fit(store, digits, tmp_path, small_chunks):
    X, _ = digits
    stored = STORES[store](X, tmp_path)
    for pca in (None, 12):
        mine = gidr.GDR(n_epochs=40, random_state=0, pca=pca).fit(stored)
        theirs = gidr.GDR(n_epochs=40, random_state=0, pca=pca).fit(X)
        np.testing.assert_array_equal(mine.embedding_, theirs.embedding_)
        np.testing.assert_array_equal(mine.transform(stored[:50]), theirs.transform(X[:50]))


def test_training_rows_are_the_pipelines_pca_scores(digits, small_chunks):
    X, _ = digits
    est = gidr.UMAP(n_epochs=20, random_state=0, pca=12).fit(X)
    record = est.result_.config["resolved"]["pca"]
    assert record["n_components"] == 12 and record["components"].shape == (12, 64)
    expected = outofcore.chunked_pca(outofcore.row_source(X), 12).scores
    np.testing.assert_array_equal(est._training_rows(), expected)


@pytest.mark.parametrize("name", ["UMAP", "GDR", "TSNE"])
def test_transform_after_pca_projects_new_rows(name, digits):
    X, _ = digits
    est = _make(name, pca=15).fit(X)
    Y = est.transform(X[:200])
    extent = np.ptp(est.embedding_, axis=0).max()
    share = np.median(np.linalg.norm(Y - est.embedding_[:200], axis=1)) / extent
    assert share < TRANSFORM_SHARE, share
    with pytest.raises(GidrValueError, match=r"X has 15 features, but .* expecting 64 features"):
        est.transform(X[:5, :15])  # the original features are expected, not the scores


@pytest.mark.parametrize("name", ["UMAP", "GDR"])
def test_inverse_transform_maps_back_through_the_pca(name, digits):
    X, _ = digits
    est = _make(name, pca=10).fit(X)
    back = est.inverse_transform(est.embedding_[:40])
    assert back.shape == (40, 64)
    record = est.result_.config["resolved"]["pca"]
    centred = back - record["mean"]
    off_span = centred - (centred @ record["components"].T) @ record["components"]
    assert np.abs(off_span).max() < 1e-8 * np.abs(centred).max()  # in the span of the 10 axes
    plain = _make(name).fit(X).inverse_transform(est.embedding_[:1])  # (no pca: another space; just runs)
    assert plain.shape == (1, 64)
    # the interpolation of the training rows' reconstructions: rows of the same digit come back alike
    assert np.linalg.norm(back - X[:40], axis=1).mean() < np.linalg.norm(X[:40] - X[:40].mean(0), axis=1).mean()


@pytest.mark.parametrize("name", ["UMAP", "TSNE"])
def test_save_load_keeps_the_pca(name, digits, tmp_path):
    X, _ = digits
    est = _make(name, pca=10).fit(X)
    est.save(tmp_path / "model.gidr")
    loaded = gidr.load(tmp_path / "model.gidr")
    np.testing.assert_array_equal(loaded.result_.config["resolved"]["pca"]["components"],
                                  est.result_.config["resolved"]["pca"]["components"])
    assert loaded._training_rows().shape == (600, 10)
    np.testing.assert_array_equal(loaded.transform(X[:30]), est.transform(X[:30]))


def test_memmap_fit_saves_and_transforms(digits, tmp_path):
    X, _ = digits
    mm = _memmap(X, tmp_path)
    est = gidr.UMAP(n_epochs=20, random_state=0).fit(mm)
    est.save(tmp_path / "model.gidr")
    np.testing.assert_array_equal(gidr.load(tmp_path / "model.gidr").transform(X[:10]), est.transform(mm[:10]))


def test_pca_in_memory_matches_the_pipeline_switch(digits):
    X, _ = digits
    est = gidr.GDR(n_epochs=40, random_state=0, pca=8).fit(X)
    result = gidr.Pipeline.from_preset("gdr-umap", pca=8, n_epochs=40, random_state=0).run(X)
    np.testing.assert_array_equal(est.embedding_, result.embedding)


def test_pca_errors_name_the_parameter(digits):
    from scipy.spatial.distance import cdist
    from sklearn.neighbors import NearestNeighbors

    X, _ = digits
    with pytest.raises(GidrValueError, match=r"'pca' parameter of UMAP must be an int in \[1, inf\).* Got 0"):
        gidr.UMAP(pca=0).fit(X)
    with pytest.raises(GidrValueError, match=r"'pca' parameter of TSNE must be an int .* Got 2.5"):
        gidr.TSNE(pca=2.5).fit(X)
    with pytest.raises(GidrValueError, match=r"'pca' parameter of GDR must be an int in \[1, 64\] \(X has 64 "
                                             r"features\).* Got 65"):
        gidr.GDR(pca=65).fit(X)
    with pytest.raises(GidrValueError, match=r"'pca' parameter of UMAP must be an int in \[1, 20\] \(X has 20 "
                                             r"samples\)"):
        gidr.UMAP(pca=30).fit(X[:20])
    with pytest.raises(GidrValueError, match=r"'pca' parameter of UMAP with metric='precomputed' must be None"):
        gidr.UMAP(pca=5, metric="precomputed").fit(cdist(X[:50], X[:50]))
    distances, indices = NearestNeighbors(n_neighbors=16).fit(X).kneighbors(X)
    with pytest.raises(GidrValueError, match=r"'pca' parameter of GDR with precomputed_knn must be None"):
        gidr.GDR(pca=5, precomputed_knn=(indices, distances)).fit(X)


def test_out_of_core_metadata_errors(tmp_path):
    strings = np.lib.format.open_memmap(tmp_path / "s.npy", mode="w+", dtype="<U3", shape=(10, 2))
    with pytest.raises(GidrValueError, match=r"input X \(numpy memmap\) must be an array of real or integer"):
        gidr.UMAP().fit(strings)
    flat = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float32, shape=(10,))
    with pytest.raises(GidrValueError, match=r"must be a 2-D array"):
        gidr.GDR().fit(flat)
    with pytest.raises(GidrValueError, match=r"'unique' parameter of UMAP must be False for this input"):
        gidr.UMAP(unique=True).fit(_memmap(np.random.default_rng(0).random((10, 3)), tmp_path))


def test_pickled_memmap_fit_transforms_as_the_original(digits, tmp_path):
    """A pickle turns the unread memmap into an ndarray: it is still read as the fit read it (float32)."""
    import pickle

    X, _ = digits
    mm = _memmap(X.astype(np.float64), tmp_path)
    est = gidr.GDR(n_epochs=20, random_state=0).fit(mm)
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.transform(X[:20]), est.transform(X[:20]))
    assert est._training_rows().dtype == np.float32 and copy._training_rows().dtype == np.float32
