"""Every stage kind × backend on its own, on fixed-seed data.

Each class times one stage with the others' outputs precomputed in ``setup``; a
(stage, backend) pair that is not installed is skipped with NotImplementedError.
``track_`` methods follow the quality of the approximate stages: the neighbours' recall
against the exact search, the repulsion estimators' error against exact repulsion, and the
100-NN accuracy after the optimizers' epochs. The similarity, symmetrization and
initialization stages are exact (their tests compare them with the reference and with
scikit-learn), so only their time and memory are tracked.
"""
import numpy as np

from .common import SIZES, blobs, knn_accuracy

BACKENDS = ["numba", "reference"]


def _stage(kind, name, backend, **params):
    import gidr
    from gidr.plugins import get_registry

    try:
        cls = get_registry().get(kind, name, backend)
    except gidr.GidrValueError as exc:
        raise NotImplementedError(str(exc)) from None
    if cls.backend != backend:
        raise NotImplementedError(f"{kind} {name!r} has no {backend} implementation")
    return cls(**params)


def _context(n, normalized=False):
    from gidr.types import Context

    return Context(n_samples=n, normalized=normalized, seed=0)


def _graph_and_P(X, normalized=False):
    import gidr

    result = gidr.Pipeline.from_preset("gdr-tsne" if normalized else "gdr-umap", n_epochs=1,
                                       random_state=0).run(X)
    return result.graph, result.affinities.P, np.asarray(result)


def _skip_large_reference(backend, n):
    if backend == "reference" and n > 1_000:
        raise NotImplementedError("the O(n^2) reference is benchmarked on small inputs only")


class Neighbors:
    params = [["exact", "nndescent", "pynndescent"], BACKENDS, SIZES]
    param_names = ["name", "backend", "n_samples"]

    def setup(self, name, backend, n):
        _skip_large_reference(backend, n)
        self.stage = _stage("neighbors", name, backend)
        self.X, _ = blobs(n)
        self.stage.compute(self.X[:100], 15, _context(100))

    def time_compute(self, name, backend, n):
        self.stage.compute(self.X, 15, _context(n))

    def peakmem_compute(self, name, backend, n):
        self.stage.compute(self.X, 15, _context(n))

    def track_recall(self, name, backend, n):
        """Share of the exact 15 nearest neighbours found."""
        found = self.stage.compute(self.X, 15, _context(n)).indices
        exact = _stage("neighbors", "exact", "numba").compute(self.X, 15, _context(n)).indices
        return float(np.mean([np.isin(found[i], exact[i]).mean() for i in range(n)]))

    track_recall.unit = "share"


class Similarity:
    params = [["umap", "tsne"], BACKENDS, SIZES]
    param_names = ["name", "backend", "n_samples"]

    def setup(self, name, backend, n):
        from gidr.types import KNNGraph

        self.stage = _stage("similarity", name, backend)
        X, _ = blobs(n)
        graph = _stage("neighbors", "exact", "reference").compute(X, self.stage.n_neighbors_required(n),
                                                                   _context(n)) if n <= 1000 else \
            _graph_and_P(X)[0]
        k = self.stage.n_neighbors_required(n)
        self.graph = KNNGraph(graph.indices[:, :k], graph.distances[:, :k]) if graph.n_neighbors >= k else graph
        self.stage.compute(self.graph, _context(n))

    def time_compute(self, name, backend, n):
        self.stage.compute(self.graph, _context(n))

    def peakmem_compute(self, name, backend, n):
        self.stage.compute(self.graph, _context(n))


class Symmetrize:
    params = [["fuzzy_union", "mean"], BACKENDS, SIZES]
    param_names = ["name", "backend", "n_samples"]

    def setup(self, name, backend, n):
        self.stage = _stage("symmetrize", name, backend)
        X, _ = blobs(n)
        graph = _graph_and_P(X)[0]
        self.P = _stage("similarity", "umap", "reference").compute(graph, _context(n))

    def time_compute(self, name, backend, n):
        self.stage.compute(self.P, _context(n))

    def peakmem_compute(self, name, backend, n):
        self.stage.compute(self.P, _context(n))


class Init:
    params = [["spectral", "pca", "random"], BACKENDS, SIZES]
    param_names = ["name", "backend", "n_samples"]

    def setup(self, name, backend, n):
        self.stage = _stage("init", name, backend)
        self.X, _ = blobs(n)
        self.P = _graph_and_P(self.X)[1]

    def time_compute(self, name, backend, n):
        self.stage.compute(self.X, self.P, _context(n))

    def peakmem_compute(self, name, backend, n):
        self.stage.compute(self.X, self.P, _context(n))


class Repulsion:
    params = [["exact", "barnes_hut", "sampled"], BACKENDS, [True, False], SIZES]
    param_names = ["name", "backend", "normalized", "n_samples"]

    def setup(self, name, backend, normalized, n):
        _skip_large_reference(backend, n)
        self.stage = _stage("repulsion", name, backend)
        # losses are the reference classes in every backend; numba registers their kernels
        self.loss = _stage("loss", "kl", "reference")
        X, _ = blobs(n)
        _, P, self.Y = _graph_and_P(X, normalized)
        self.n_edges = np.diff(P.indptr)
        self.ctx = _context(n, normalized)
        self.stage.estimate(self.Y[:100], self.loss, _context(100, normalized), 0, self.n_edges[:100])

    def time_estimate(self, name, backend, normalized, n):
        self.stage.estimate(self.Y, self.loss, self.ctx, 1, self.n_edges)

    def peakmem_estimate(self, name, backend, normalized, n):
        self.stage.estimate(self.Y, self.loss, self.ctx, 1, self.n_edges)

    def track_channel_error(self, name, backend, normalized, n):
        """Relative error of the repulsion channels against exact repulsion (one epoch's draw)."""
        estimate = self.stage.estimate(self.Y, self.loss, self.ctx, 1, self.n_edges).channels
        exact = _stage("repulsion", "exact", "numba").estimate(self.Y, self.loss, self.ctx, 1, self.n_edges).channels
        return float(np.linalg.norm(estimate - exact) / np.linalg.norm(exact))

    track_channel_error.unit = "relative"


class Optimizer:
    """Fixed number of epochs of each optimizer with its preset's loss and repulsion."""

    params = [["gdr-umap", "gdr-tsne", "umap", "tsne"], BACKENDS, SIZES]
    param_names = ["preset", "backend", "n_samples"]

    def setup(self, preset, backend, n):
        import gidr

        _skip_large_reference(backend, n)
        pipeline = gidr.Pipeline.from_preset(preset, backend=backend, random_state=0, n_epochs=50)
        X, _ = blobs(n)
        result = pipeline.run(X)
        self.args = (pipeline.stages, result)
        self.pipeline = pipeline
        self.labels = blobs(n)[1]

    def _optimize(self, n):
        from gidr.types import Context, Monitor

        stages, result = self.args
        r = result.config["resolved"]
        ctx = Context(n_samples=n, normalized=result.affinities.normalized, a=r["a"], b=r["b"], seed=0,
                      n_epochs=50)
        return stages["optimizer"].optimize(result.embedding, result.affinities, stages["loss"],
                                            stages["repulsion"], ctx, Monitor())

    def time_optimize_50_epochs(self, preset, backend, n):
        self._optimize(n)

    def peakmem_optimize_50_epochs(self, preset, backend, n):
        self._optimize(n)

    def track_knn_accuracy_after_50_epochs(self, preset, backend, n):
        """100-NN accuracy of the labels (10 blobs) after another 50 epochs from the run's end."""
        return knn_accuracy(self._optimize(n), self.labels)

    track_knn_accuracy_after_50_epochs.unit = "accuracy"
