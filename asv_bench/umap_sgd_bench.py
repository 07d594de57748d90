"""The ``umap`` preset's optimizer with and without its force table (gidr_reference.force_table).

umap_sgd's coefficients are functions of the squared distance alone; with UMAP's fitted ``b``
each costs a ``pow``. ``force_table=True`` (the default) interpolates them on a table. This
script runs the ``umap`` preset on Fashion-MNIST 70,000 in one process (the numba cache warm
after a first, untimed run), alternating the two settings, and reports the optimizer's seconds
(``Result.timings["optimize"]``, wall, all threads) per 100 epochs and, at the epoch counts
asked for, the 100-NN accuracy and V-measure of the layout. Run it alone on the machine::

    python asv_bench/umap_sgd_bench.py --repeats 3 --epochs 200 300 --out docs/results/umap-sgd-table.md
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import sys
from pathlib import Path

import numpy as np

import gidr
from gidr import datasets
from gidr.metrics import knn_accuracy, v_measure


def _run(X, force_table: bool, n_epochs: int, seed: int = 0):
    pipeline = gidr.Pipeline.from_preset("umap", random_state=seed, n_epochs=n_epochs,
                                         **{"optimizer.force_table": force_table})
    return pipeline.run(X)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed 100-epoch runs per setting")
    parser.add_argument("--epochs", type=int, nargs="*", default=[200, 300], help="epoch counts scored")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--out", type=Path, default=None)
    options = parser.parse_args(argv)
    X, labels = datasets.load("fashion-mnist")
    X = np.asarray(X, dtype=np.float32)
    _run(X, True, 2)
    _run(X, False, 2)  # both kernels compiled or loaded before timing
    seconds = {True: [], False: []}
    for _ in range(options.repeats):
        for table in (True, False):
            seconds[table].append(_run(X, table, 100).timings["optimize"])
            print(f"force_table={table}: {seconds[table][-1]:.2f} s per 100 epochs", file=sys.stderr, flush=True)
    rows = []
    for n_epochs in options.epochs:
        for seed in options.seeds:
            for table in (True, False):
                result = _run(X, table, n_epochs, seed)
                rows.append((n_epochs, seed, table, result.timings["optimize"],
                             knn_accuracy(result.embedding, labels, k=100), v_measure(result.embedding, labels)))
                print(rows[-1], file=sys.stderr, flush=True)
    exact, table = statistics.median(seconds[False]), statistics.median(seconds[True])
    lines = [
        f"`python asv_bench/umap_sgd_bench.py --repeats {options.repeats} --epochs "
        f"{' '.join(map(str, options.epochs))}` on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"gidr {gidr.__version__}; {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}. "
        "Fashion-MNIST 70,000, the `umap` preset (a = 1.577, b = 0.895), one process, numba cache warm.",
        "",
        "| force_table | optimize s per 100 epochs (median; runs) |",
        "|---|---|",
        f"| True | {table:.2f} ({', '.join(f'{s:.2f}' for s in seconds[True])}) |",
        f"| False | {exact:.2f} ({', '.join(f'{s:.2f}' for s in seconds[False])}) |",
        "",
        f"Ratio exact / table: {exact / table:.2f}.",
        "",
        "| epochs | seed | force_table | optimize s | 100-NN acc | V-measure |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    lines += [f"| {e} | {s} | {t} | {sec:.2f} | {acc:.3f} | {v:.3f} |" for e, s, t, sec, acc, v in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if options.out is not None:
        options.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
