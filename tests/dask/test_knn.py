"""The distributed kNN stages on a real LocalCluster, against the single-machine stages."""
import numpy as np
import pytest
import dask.array as da
import distributed

from gidr.types import Context
from gidr_dask.knn import approximate_knn, exact_knn, merge_candidates
from gidr_numba.nndescent import nndescent_knn
from gidr_numba.neighbors import exact_knn as single_exact


def _data(n=1500, d=12, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(6, d))
    return centres[rng.integers(0, 6, n)] + rng.normal(size=(n, d))


def _recall(found, exact):
    k = exact.shape[1]
    return np.mean([len(set(a) & set(b)) / k for a, b in zip(found.tolist(), exact.tolist())])


def _run(client, function, *args, **kwargs):
    with client.as_current():
        return function(*args, **kwargs)


@pytest.mark.parametrize("chunks", [(500, -1), ((100, 900, 1, 499), -1)])
def test_exact_graph_is_the_single_machine_graph_bit_for_bit(client, chunks):
    X = _data()
    graph = _run(client, exact_knn, da.from_array(X, chunks=chunks), 15)
    single = single_exact(X, 15)
    assert np.array_equal(graph.indices, single.indices)
    assert np.array_equal(graph.distances, single.distances)


def test_exact_graph_same_bits_on_one_and_two_workers(client, client1):
    X = _data(n=900).astype(np.float32)
    two = _run(client, exact_knn, da.from_array(X, chunks=(200, -1)), 10)
    one = _run(client1, exact_knn, da.from_array(X, chunks=(350, -1)), 10)
    assert np.array_equal(one.indices, two.indices) and np.array_equal(one.distances, two.distances)


@pytest.mark.parametrize("metric", ["cosine", "manhattan", "chebyshev", "correlation"])
def test_exact_graph_other_metrics(client, metric):
    X = _data(n=600)
    graph = _run(client, exact_knn, da.from_array(X, chunks=(150, -1)), 8, metric)
    single = single_exact(X, 8, metric)
    # cosine and correlation distances come from BLAS dot products (last bits may follow the blocks)
    assert _recall(graph.indices, single.indices) == 1.0
    np.testing.assert_allclose(graph.distances, single.distances, rtol=1e-12, atol=1e-12)


def test_exact_ties_are_broken_by_index_across_chunks(client):
    X = np.repeat(np.arange(40.0)[:, None], 3, axis=0)  # every point has two copies at distance 0
    graph = _run(client, exact_knn, da.from_array(X, chunks=(7, -1)), 4)
    single = single_exact(X, 4)
    assert np.array_equal(graph.indices, single.indices)


def test_approximate_graph_recall_and_true_distances(client):
    X = _data(n=4000, d=20)
    graph, info = _run(client, approximate_knn, da.from_array(X, chunks=(1000, -1)), 15, 3, cell_size=800)
    exact = single_exact(X, 15)
    assert info["n_cells"] == 5 and sum(info["cell_sizes"]) > len(X)  # the halo makes cells overlap
    assert _recall(graph.indices, exact.indices) >= 0.95
    true = np.sqrt(((X[:, None, :] - X[graph.indices]) ** 2).sum(-1))
    np.testing.assert_allclose(graph.distances, true, rtol=1e-12)
    assert np.all(np.diff(graph.distances, axis=1) >= 0)
    assert not np.any(graph.indices == np.arange(len(X))[:, None])


def test_halo_finds_neighbours_across_cell_borders(client):
    X = _data(n=3000, d=10, seed=4)
    exact = single_exact(X, 15).indices
    Xd = da.from_array(X, chunks=(750, -1))
    alone, _ = _run(client, approximate_knn, Xd, 15, 1, cell_size=300, halo=1)
    joined, _ = _run(client, approximate_knn, Xd, 15, 1, cell_size=300, halo=2)
    assert _recall(joined.indices, exact) > _recall(alone.indices, exact) + 0.02


def test_approximate_graph_independent_of_chunking_and_workers(client, client1):
    X = _data(n=2500, d=16, seed=2).astype(np.float32)
    a, _ = _run(client, approximate_knn, da.from_array(X, chunks=(600, -1)), 12, 11, cell_size=700)
    b, _ = _run(client1, approximate_knn, da.from_array(X, chunks=((1, 1299, 1200), -1)), 12, 11, cell_size=700)
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.distances, b.distances)


def test_one_cell_is_nndescent_on_the_whole_data(client):
    from gidr_dask.knn import cell_seed

    X = _data(n=1200)
    graph, info = _run(client, approximate_knn, da.from_array(X, chunks=(300, -1)), 10, 5, cell_size=10_000)
    indices, distances, _ = nndescent_knn(X, 10, cell_seed(5, 0))
    assert info["n_cells"] == 1
    assert np.array_equal(graph.indices, indices) and np.array_equal(graph.distances, distances)


def test_merge_candidates_keeps_distinct_best():
    indices = np.array([[3, 1, 9, 1, 5]])
    distances = np.array([[0.5, 0.2, np.inf, 0.2, 0.2]])
    kept_i, kept_d = merge_candidates(indices, distances, 3, sentinel=9)
    assert kept_i.tolist() == [[1, 5, 3]] and kept_d.tolist() == [[0.2, 0.2, 0.5]]
    short_i, _ = merge_candidates(indices[:, :2], distances[:, :2], 4, sentinel=9)
    assert short_i.tolist() == [[1, 3, 9, 9]]


def test_stages_through_the_registry(client):
    import gidr

    X = _data(n=700)
    names = {name for (kind, name, backend) in gidr.stages() if backend == "dask"}  # listed like any stage
    assert names == {"dask-exact", "dask-nndescent"}
    from gidr.plugins import get_registry

    stage = get_registry().get("neighbors", "dask-exact", "auto")(metric="euclidean")
    graph = stage.compute(da.from_array(X, chunks=(200, -1)), 9, Context(n_samples=len(X)))
    assert np.array_equal(graph.indices, single_exact(X, 9).indices)
