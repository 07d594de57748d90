"""The pipeline, the estimators, transform and the landmark route on Dask arrays, on a real
LocalCluster: the same bits as in memory where the docs say so, whatever the chunking and
the number of workers."""
import numpy as np
import pytest
import dask.array as da
from sklearn.datasets import load_digits

import gidr
from gidr_dask import landmark_embedding
from gidr_dask.transform import LOADS


@pytest.fixture(scope="module")
def digits():
    bunch = load_digits()
    return bunch.data, bunch.target


def test_pipeline_on_a_dask_array_is_the_in_memory_run(client, digits):
    X, _ = digits
    pipeline = gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=60)
    distributed = pipeline.run(da.from_array(X, chunks=(500, -1)))
    in_memory = gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=60, neighbors="exact").run(X)
    assert distributed.config["resolved"]["neighbors"]["name"] == "dask-exact"
    assert np.array_equal(distributed.graph.indices, in_memory.graph.indices)
    assert np.array_equal(distributed.embedding, in_memory.embedding)


def test_auto_picks_the_approximate_stage_for_large_dask_input(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 8)).astype(np.float32)
    result = gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=5, cell_size=2000).run(
        da.from_array(X, chunks=(1250, -1)))
    assert result.config["resolved"]["neighbors"]["name"] == "dask-nndescent"
    assert result.config["resolved"]["neighbors"]["cell_size"] == 2000
    assert np.isfinite(result.embedding).all()


def test_pca_init_reads_the_data_on_the_workers(client, digits):
    X, _ = digits
    pipeline = gidr.Pipeline.from_preset("tsne", random_state=0, n_epochs=1)
    start_dask = pipeline.replace(n_epochs=1).stages["init"]
    from gidr.plugins import get_registry  # the init's input: PCA scores from the workers
    from gidr_dask.stages import DaskExactNeighbors
    from gidr.types import Context

    ctx = Context(n_samples=len(X), normalized=True, seed=3)
    scores = DaskExactNeighbors().init_data(da.from_array(X, chunks=(400, -1)), start_dask, ctx)
    assert scores.shape == (len(X), 2)
    import scipy.sparse as sp

    P = sp.csr_matrix((len(X), len(X)))
    np.testing.assert_allclose(start_dask.compute(scores, P, ctx), start_dask.compute(X, P, ctx), rtol=1e-6, atol=1e-8)


def test_estimator_fit_and_distributed_transform(client, digits):
    X, _ = digits
    est = gidr.GDR(random_state=0, n_epochs=50).fit(da.from_array(X[:1400], chunks=(350, -1)))
    new = X[1400:]
    lazy = est.transform(da.from_array(new, chunks=(100, -1)))
    assert isinstance(lazy, da.Array) and lazy.shape == (len(new), 2)
    computed = lazy.compute()
    assert np.array_equal(computed, est.transform(new))
    rechunked = est.transform(da.from_array(new, chunks=((1, 200, 196), -1))).compute()
    assert np.array_equal(rechunked, computed)


def test_transform_sends_the_model_to_each_worker_once(client, digits):
    X, _ = digits
    est = gidr.UMAP(random_state=0, n_epochs=30).fit(X[:1000])
    before = client.run(lambda: __import__("gidr_dask.transform").transform.LOADS["count"])
    est.transform(da.from_array(X[1000:], chunks=(50, -1))).compute()  # 16 chunks
    after = client.run(lambda: __import__("gidr_dask.transform").transform.LOADS["count"])
    assert len(after) == 2
    assert all(after[w] - before[w] == 1 for w in after), (before, after)


def test_transform_same_bits_on_one_and_two_workers(client, client1, digits):
    X, _ = digits
    est = gidr.GDR(random_state=1, n_epochs=40).fit(X[:1200])
    with client.as_current():
        two = est.transform(da.from_array(X[1200:], chunks=(150, -1))).compute()
    with client1.as_current():
        one = est.transform(da.from_array(X[1200:], chunks=(300, -1))).compute()
    assert np.array_equal(one, two)


def test_landmark_route_same_bits_whatever_workers_and_chunks(client, client1, digits):
    X, y = digits
    with client.as_current():
        two = landmark_embedding(da.from_array(X, chunks=(300, -1)), n_landmarks=900, random_state=0, n_epochs=80,
                                 compute=True)
    with client1.as_current():
        one = landmark_embedding(da.from_array(X, chunks=((7, 1000, 790), -1)), n_landmarks=900, random_state=0,
                                 n_epochs=80, compute=True)
    assert np.array_equal(one.embedding, two.embedding)
    assert len(two.landmarks) == 900 and np.all(np.diff(two.landmarks) > 0)
    assert np.array_equal(two.embedding[two.landmarks], two.fit.embedding)
    assert gidr.metrics.knn_accuracy(two.embedding, y) > 0.9


def test_landmark_route_with_a_final_pass(client, digits):
    X, y = digits
    result = landmark_embedding(da.from_array(X, chunks=(450, -1)), n_landmarks=600, refine_epochs=30,
                                random_state=0, n_epochs=60)
    assert isinstance(result.embedding, np.ndarray) and result.embedding.shape == (len(X), 2)
    assert result.refined.config["resolved"]["n_epochs"] == 30
    assert result.refined.config["neighbors"]["name"] == "dask-exact"
    assert gidr.metrics.knn_accuracy(result.embedding, y) > 0.9


def test_landmark_size_from_the_memory_model(monkeypatch):
    from gidr_dask import landmarks

    monkeypatch.setattr(landmarks, "available_bytes", lambda: 2**28)
    n = landmarks.default_n_landmarks(10_000_000, 50, 15, 2)
    per_point = landmarks.estimate_bytes(1, 50, 15, 2) - landmarks.FIXED_BYTES + 8 * 50
    assert n == int((0.5 * 2**28 - landmarks.FIXED_BYTES) // per_point) < landmarks.DEFAULT_MAX_LANDMARKS
    monkeypatch.setattr(landmarks, "available_bytes", lambda: None)
    assert landmarks.default_n_landmarks(10_000_000, 50, 15, 2) == landmarks.DEFAULT_MAX_LANDMARKS
    assert landmarks.default_n_landmarks(1000, 50, 15, 2) == 1000


def test_without_a_cluster_the_local_scheduler_computes(digits):
    X, _ = digits
    pipeline = gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=20)
    local = pipeline.run(da.from_array(X[:600], chunks=(200, -1)))
    in_memory = pipeline.replace(neighbors="exact").run(X[:600])
    assert np.array_equal(local.embedding, in_memory.embedding)


@pytest.mark.parametrize("source", ["zarr", "h5py", "dataframe"])
def test_inputs_users_have(client, digits, tmp_path, source):
    """A Dask array from zarr, from h5py, and a Dask DataFrame's to_dask_array(lengths=True)."""
    X, _ = digits
    X = X[:800].astype(np.float32)
    if source == "zarr":
        zarr = pytest.importorskip("zarr")
        store = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=X.shape, chunks=(200, X.shape[1]),
                                dtype="float32")
        store[:] = X
        Xd = da.from_zarr(str(tmp_path / "x.zarr"))
    elif source == "h5py":
        h5py = pytest.importorskip("h5py")
        with h5py.File(tmp_path / "x.h5", "w") as out:
            out.create_dataset("X", data=X)
        handle = h5py.File(tmp_path / "x.h5", "r")  # the workers open it by name (distributed's h5py serializer)
        Xd = da.from_array(handle["X"], chunks=(200, -1))
    else:
        dd = pytest.importorskip("dask.dataframe")
        pd = pytest.importorskip("pandas")
        Xd = dd.from_pandas(pd.DataFrame(X), npartitions=4).to_dask_array(lengths=True)
    pipeline = gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=20)
    result = pipeline.run(Xd)
    if source == "h5py":
        handle.close()
    assert np.array_equal(result.embedding, pipeline.replace(neighbors="exact").run(X).embedding)


def test_a_model_fitted_on_a_dask_array_saves_and_loads(client, digits, tmp_path):
    X, _ = digits
    est = gidr.GDR(random_state=0, n_epochs=30).fit(da.from_array(X[:900], chunks=(300, -1)))
    est.save(tmp_path / "model.gidr")
    loaded = gidr.load(tmp_path / "model.gidr")
    assert loaded.result_.config["resolved"]["neighbors"]["name"] == "dask-exact"
    assert np.array_equal(loaded.transform(X[900:1000]), est.transform(X[900:1000]))
