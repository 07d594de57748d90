"""Each preset end to end: time, peak memory and quality, on fixed-seed blobs.

Compilation is kept out of ``time_``: ``setup`` runs the preset once on a small input, so
numba's kernels are compiled (or loaded from the cache) before timing. First-call latency
in a fresh process is measured on its own by ``timeraw_first_call``.
"""
import numpy as np

from .common import SIZES, blobs, knn_accuracy, trustworthiness

PRESETS = ["gdr-umap", "gdr-tsne", "umap", "tsne", "gdr-umap-frob", "gdr-tsne-frob"]
BACKENDS = ["numba", "reference"]


class Preset:
    params = [PRESETS, BACKENDS, SIZES]
    param_names = ["preset", "backend", "n_samples"]
    timeout = 900

    def setup(self, preset, backend, n_samples):
        import gidr

        if backend == "reference" and n_samples > 1_000:
            raise NotImplementedError("the O(n^2) reference is benchmarked on small inputs only")
        if backend not in {b for (_, _, b) in gidr.stages()}:
            raise NotImplementedError(f"backend {backend!r} not installed")
        self.X, self.y = blobs(n_samples)
        self.pipeline = gidr.Pipeline.from_preset(preset, backend=backend, random_state=0)
        self.pipeline.replace(n_epochs=2).run(self.X[:200])  # compile / load caches

    def time_run(self, preset, backend, n_samples):
        self.pipeline.run(self.X)

    def peakmem_run(self, preset, backend, n_samples):
        self.pipeline.run(self.X)

    def track_knn_accuracy(self, preset, backend, n_samples):
        return knn_accuracy(np.asarray(self.pipeline.run(self.X)), self.y)

    track_knn_accuracy.unit = "accuracy"

    def track_trustworthiness(self, preset, backend, n_samples):
        return trustworthiness(self.X, np.asarray(self.pipeline.run(self.X)))

    track_trustworthiness.unit = "trustworthiness"


class FirstCall:
    """Import + first run in a fresh interpreter (numba caches warm after the first round)."""

    params = [["gdr-umap", "gdr-tsne", "umap", "tsne"]]
    param_names = ["preset"]
    repeat = 3
    number = 1

    def timeraw_first_call(self, preset):
        return f"""
import gidr
from sklearn.datasets import load_digits
X = load_digits().data
gidr.Pipeline.from_preset({preset!r}, random_state=0).run(X)
"""
