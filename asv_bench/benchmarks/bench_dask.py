"""The distributed stages on a two-worker ``LocalCluster`` (one thread each, 127.0.0.1).

The cluster starts once per benchmark class (``setup_cache`` cannot hold a cluster, so
``setup`` starts it and ``teardown`` closes it); the data is persisted on the workers before
anything is timed. The full-size figures (200,000 and 1,000,000 points, 1 vs 2 workers,
fresh and warm) come from ``asv_bench/dask_bench.py``; these track regressions at sizes
that run in seconds.
"""
import numpy as np

from .common import blobs


def _cluster():
    try:
        import distributed
    except ImportError:
        raise NotImplementedError("dask[distributed] is not installed") from None
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=":0", silence_logs=40)
    return cluster, distributed.Client(cluster)


class DaskNeighbors:
    params = [["exact", "approximate"], [20_000]]
    param_names = ["search", "n_samples"]
    timeout = 300

    def setup(self, search, n):
        import dask.array as da

        self.cluster, self.client = _cluster()
        X, _ = blobs(n)
        self.X = da.from_array(X, chunks=(n // 8, -1)).persist()
        self.search = search
        self._run()  # workers import and load numba's cache once

    def teardown(self, search, n):
        self.client.close()
        self.cluster.close()

    def _run(self):
        from gidr_dask.knn import approximate_knn, exact_knn

        if self.search == "exact":
            return exact_knn(self.X, 15)
        return approximate_knn(self.X, 15, 0, cell_size=5_000)[0]

    def time_knn(self, search, n):
        self._run()

    def track_recall(self, search, n):
        from gidr_numba.neighbors import exact_knn

        found = self._run().indices
        exact = exact_knn(np.asarray(self.X.compute()), 15).indices
        return float(np.mean([len(set(a) & set(b)) / 15 for a, b in zip(found.tolist(), exact.tolist())]))


class DaskTransform:
    params = [[50_000]]
    param_names = ["n_new"]
    timeout = 300

    def setup(self, n_new):
        import dask.array as da

        import gidr

        self.cluster, self.client = _cluster()
        X, _ = blobs(5_000 + n_new)
        self.est = gidr.GDR(random_state=0, n_epochs=100).fit(X[:5_000])
        self.X_new = da.from_array(X[5_000:], chunks=(n_new // 8, -1)).persist()
        self.est.transform(self.X_new[:100]).compute()

    def teardown(self, n_new):
        self.client.close()
        self.cluster.close()

    def time_transform(self, n_new):
        self.est.transform(self.X_new).compute()
