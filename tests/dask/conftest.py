"""Real Dask clusters for the distributed tests: ``distributed.LocalCluster`` on 127.0.0.1,
worker processes with one thread each, started once per module and closed after it."""
import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("dask.array")


def _cluster(n_workers: int):
    return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address=":0", silence_logs=40)


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes."""
    with _cluster(2) as started:
        yield started


@pytest.fixture(scope="module")
def cluster1():
    """One single-threaded worker process."""
    with _cluster(1) as started:
        yield started


@pytest.fixture
def client(cluster):
    """A client of the two-worker cluster, current for the test."""
    with distributed.Client(cluster) as connected:
        yield connected


@pytest.fixture
def client1(cluster1):
    with distributed.Client(cluster1) as connected:
        yield connected
