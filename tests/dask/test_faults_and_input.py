"""A worker killed mid-computation, and bad Dask input: one clear error each, never a hang."""
import os
import signal
import socket
import threading
import time

import numpy as np
import pytest
import dask.array as da
import distributed

import gidr
from gidr.validation import GidrValueError
from gidr_dask import SchedulerUnreachable, connect
from gidr_dask.knn import exact_knn
from gidr_numba.neighbors import exact_knn as single_exact


def _done_tasks(client) -> int:
    """Tasks whose results the scheduler holds."""
    return client.run_on_scheduler(lambda dask_scheduler: sum(
        ts.state == "memory" for ts in dask_scheduler.tasks.values()))


def _kill_a_busy_worker(cluster, client) -> None:
    """SIGKILL the process of a worker that is running a task (its nanny starts a new one)."""
    busy = [address for address, keys in client.processing().items() if keys]
    target = busy[0] if busy else next(iter(client.scheduler_info()["workers"]))
    for nanny in cluster.workers.values():
        if nanny.worker_address == target:
            os.kill(nanny.process.process.pid, signal.SIGKILL)
            return
    raise AssertionError(f"no worker process at {target}")


def _run_with_a_kill(cluster, compute):
    """Run ``compute()`` in a thread on the cluster's client, kill a worker once some tasks
    are done; return the result and whether the computation was still running at the kill."""
    outcome = {}
    with distributed.Client(cluster) as client:
        # Every worker up first (the nanny restarts the one killed by an earlier call): data
        # scattered while only one worker is alive has no replica elsewhere, so killing that
        # worker loses it for good ("already forgotten"), which is not the fault tested here.
        client.wait_for_workers(len(cluster.workers), timeout=120)
        def work():
            with client.as_current():
                try:
                    outcome["value"] = compute()
                except BaseException as exc:  # reported below
                    outcome["error"] = exc

        thread = threading.Thread(target=work)
        thread.start()
        deadline = time.monotonic() + 60  # kill once some tasks are done and others are running
        while time.monotonic() < deadline and thread.is_alive() and not (
                _done_tasks(client) > 0 and any(client.processing().values())):
            time.sleep(0.01)
        running_at_kill = thread.is_alive()
        _kill_a_busy_worker(cluster, client)
        thread.join(300)
        assert not thread.is_alive(), "the computation did not finish after a worker was killed"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"], running_at_kill


@pytest.fixture
def fault_cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0", silence_logs=50) as cluster:
        yield cluster


def test_a_worker_killed_during_knn_and_transform(fault_cluster):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16_000, 24))
    graph, running = _run_with_a_kill(fault_cluster, lambda: exact_knn(da.from_array(X, chunks=(1000, -1)), 10))
    assert running, "the kill came after the kNN computation had finished: make the problem larger"
    expected = single_exact(X, 10)
    assert np.array_equal(graph.indices, expected.indices) and np.array_equal(graph.distances, expected.distances)

    est = gidr.GDR(random_state=0, n_epochs=30).fit(X[:3000])
    new = X[3000:]
    Y, running = _run_with_a_kill(fault_cluster, lambda: est.transform(da.from_array(new, chunks=(400, -1))).compute())
    assert running, "the kill came after transform had finished: make the problem larger"
    assert np.array_equal(Y, est.transform(new))


# ---------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(1).normal(size=(600, 10))


def test_unknown_chunk_sizes(X):
    Xd = da.from_array(X, chunks=(100, -1))
    filtered = Xd[Xd[:, 0] > -10]  # boolean selection: chunk sizes unknown
    with pytest.raises(GidrValueError, match=r"unknown \(nan\) chunk sizes.*compute_chunk_sizes"):
        gidr.Pipeline.from_preset("gdr-umap").run(filtered)


def test_chunks_along_columns_are_rechunked_with_a_warning(client, X):
    pipeline = gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=10)
    with pytest.warns(UserWarning, match=r"split along its columns into 4 chunks.*rechunk\(\{1: -1\}\)"):
        split = pipeline.run(da.from_array(X, chunks=(150, 3)))
    whole = pipeline.run(da.from_array(X, chunks=(150, -1)))
    assert np.array_equal(split.embedding, whole.embedding)


def test_mixed_dtypes_from_a_dataframe(X):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X[:, :3], columns=list("abc"))
    frame["label"] = ["x"] * len(frame)
    mixed = dd.from_pandas(frame, npartitions=3).to_dask_array(lengths=True)
    with pytest.raises(GidrValueError, match=r"real numbers.*dtype object.*astype"):
        gidr.Pipeline.from_preset("gdr-umap").run(mixed)


@pytest.mark.parametrize("neighbors", ["dask-exact", "dask-nndescent"])
def test_nan_inside_one_chunk_is_reported_with_its_row(client, X, neighbors):
    bad = X.copy()
    bad[433, 2] = np.nan
    with pytest.raises(GidrValueError, match=r"finite values.*1 NaN or infinite value\(s\) in rows 400-499.*row 433"):
        gidr.Pipeline.from_preset("gdr-umap", neighbors=neighbors).run(da.from_array(bad, chunks=(100, -1)))


def test_nan_in_a_transformed_chunk(client, X):
    est = gidr.GDR(random_state=0, n_epochs=10).fit(X[:400])
    new = X[400:].copy()
    new[57, 0] = np.inf
    with pytest.raises(GidrValueError, match=r"rows 50-99.*row 57"):
        est.transform(da.from_array(new, chunks=(50, -1))).compute()


def test_a_stage_that_reads_memory_only_refuses_a_dask_array(X):
    with pytest.raises(GidrValueError, match=r"Dask array of shape \(600, 10\).*neighbors='auto'.*dask-exact"):
        gidr.Pipeline.from_preset("gdr-umap", neighbors="exact").run(da.from_array(X, chunks=(100, -1)))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_a_clear_error_not_a_hang(X, monkeypatch):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    with pytest.raises(SchedulerUnreachable, match=rf"No Dask scheduler answered at '{address}' within 1 s"):
        connect(address, timeout=1)
    from gidr_dask import _runtime

    monkeypatch.setattr(_runtime, "CONNECT_TIMEOUT", 1.0)
    with pytest.raises(SchedulerUnreachable, match=address):
        gidr.Pipeline.from_preset("gdr-umap", scheduler=address).run(da.from_array(X, chunks=(100, -1)))
    assert time.monotonic() - start < 30


def test_a_closed_client_is_named(cluster1, X):
    client = distributed.Client(cluster1)
    client.close()
    message = r"client is .closed. \(scheduler .*\): its scheduler is gone"
    with client.as_current(), pytest.raises(SchedulerUnreachable, match=message):
        gidr.Pipeline.from_preset("gdr-umap").run(da.from_array(X, chunks=(100, -1)))
