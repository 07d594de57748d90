"""t-SNE on Fashion-MNIST 70,000: gidr's ``repulsion="fft"`` against openTSNE's FFT and gidr's Barnes-Hut.

Each method fits the whole data set twice in one (warm) process and the second fit is timed
(numba caches are on disk; openTSNE's first fit warms its imports), one after the other on
the same machine, openTSNE first:

* openTSNE: ``openTSNE.TSNE(n_jobs=THREADS, random_state=0).fit(X)`` with its defaults (FFT
  repulsion for n >= 10,000, 250 exaggerated + 500 iterations, learning rate n / 12,
  PCA init, Annoy neighbours);
* gidr ``tsne`` with ``repulsion="fft"`` (750 epochs, learning rate max(n / 12, 200));
* gidr ``tsne`` (Barnes-Hut, theta 0.5).

Quality: :func:`gidr.metrics.knn_accuracy` (leave-one-out 100-NN). Then, on the final
gidr-fft embedding: the error of one repulsion estimate against ``exact`` on a seeded
5,000-point subset (relative L2 error of the KL channel, relative error of Z), and the time
of one ``estimate`` call at all 70,000 points, fft and Barnes-Hut, and of openTSNE's own FFT
negative gradient (``openTSNE._tsne.estimate_negative_gradient_fft_2d``, its defaults: 3 points,
50 boxes at least, boxes of side 1 at most) on the same embedding (best of 3 after a warm call).
Run it alone on the machine (it is timed). The tables go to stdout and to ``--out``::

    python asv_bench/fft_bench.py --out results/fft.md
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

THREADS = 2


def _timed_twice(fit):
    """Run ``fit()`` twice; return the second result and its wall time."""
    fit()
    start = time.perf_counter()
    Y = np.asarray(fit())
    return Y, time.perf_counter() - start


def _fits(X, labels) -> tuple[list[dict], np.ndarray]:
    import gidr
    import openTSNE
    from gidr.metrics import knn_accuracy

    runs = [("openTSNE FFT", lambda: openTSNE.TSNE(n_jobs=THREADS, random_state=0).fit(X)),
            ("gidr tsne, repulsion='fft'", lambda: gidr.Pipeline.from_preset("tsne", repulsion="fft",
                                                                              random_state=0).run(X)),
            ("gidr tsne (barnes_hut)", lambda: gidr.Pipeline.from_preset("tsne", random_state=0).run(X))]
    rows, embeddings = [], {}
    for name, fit in runs:
        Y, seconds = _timed_twice(fit)
        embeddings[name] = Y
        rows.append({"method": name, "fit s (warm)": round(seconds, 1),
                     "100-NN accuracy": round(knn_accuracy(Y, labels, k=100), 4)})
    return rows, embeddings["gidr tsne, repulsion='fft'"]


def _best_of(call, repeats: int = 3) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def _estimates(Y: np.ndarray) -> list[dict]:
    from gidr.types import Context
    from gidr_numba.stages_forces import BarnesHutRepulsion, ExactRepulsion, FFTRepulsion
    from gidr_reference.stages_forces import KL

    loss = KL()
    subset = Y[np.random.default_rng(0).choice(len(Y), 5000, replace=False)]
    small = Context(n_samples=len(subset), n_components=2, normalized=True)
    exact = ExactRepulsion().estimate(subset, loss, small, 0)
    full = Context(n_samples=len(Y), n_components=2, normalized=True)
    rows = []
    for stage in (FFTRepulsion(), BarnesHutRepulsion()):
        sums = stage.estimate(subset, loss, small, 0)
        rows.append({"repulsion": stage.name,
                     "channel error (5,000)": f"{np.linalg.norm(sums.channels - exact.channels) / np.linalg.norm(exact.channels):.2e}",
                     "Z error (5,000)": f"{sums.sum_w / exact.sum_w - 1:+.2e}",
                     "estimate ms (70,000)": round(1e3 * _best_of(lambda: stage.estimate(Y, loss, full, 0)), 1)})
    from openTSNE import _tsne

    gradient = np.zeros_like(Y)
    rows.append({"repulsion": "openTSNE FFT (negative gradient)", "channel error (5,000)": "-", "Z error (5,000)": "-",
                 "estimate ms (70,000)": round(1e3 * _best_of(lambda: _tsne.estimate_negative_gradient_fft_2d(
                     Y, gradient, n_interpolation_points=3, min_num_intervals=50, ints_in_interval=1, dof=1)), 1)})
    return rows


def _table(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="also write the tables to this file")
    args = parser.parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", str(THREADS))
    import numba

    import gidr.datasets

    X, labels = gidr.datasets.load("fashion-mnist")
    rows, Y = _fits(X, labels)
    estimates = _estimates(Y)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    header = (f"Fashion-MNIST {len(X):,} x {X.shape[1]}, warm process (second fit timed), {THREADS} threads "
              f"(numba {numba.get_num_threads()}, openTSNE n_jobs={THREADS}), {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs; openTSNE {importlib.metadata.version('openTSNE')}, numba {numba.__version__}, "
              f"numpy {np.__version__}, scipy {importlib.metadata.version('scipy')}; peak RSS of the process "
              f"{peak:,.0f} MiB.\nCommand: python asv_bench/fft_bench.py")
    text = f"{header}\n\n{_table(rows)}\n\n{_table(estimates)}\n"
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
