"""The locality renumbering (gidr.locality) measured: the optimizer alone, and whole runs.

``optimizer``
    One ``gdr-umap`` run gives P and a layout; the optimizer stage then runs on them in the
    caller's order and renumbered along the Z-order curve (:func:`gidr.locality.morton_order`,
    :func:`gidr.locality.renumbered_affinities`), alternated ``--repeats`` times; wall and CPU
    seconds of each, and the renumbering's own cost. Run with ``NUMBA_NUM_THREADS=1`` for CPU
    seconds free of the threads' scheduling.
``run``
    A whole run of a preset with ``locality`` given, in this process: its stage timings, its
    peak memory, and the 100-NN accuracy on a fixed 20,000-point subsample.

Data: Fashion-MNIST's first ``n`` rows up to 70,000; above, its 50 principal components upsampled
along the data manifold as ``asv_bench/anndata_bench.py`` does (``GIDR_BENCH_CACHE``), with
each copy's label its source's. Run it alone on the machine (it is timed)::

    NUMBA_NUM_THREADS=1 python asv_bench/locality_bench.py optimizer 70000 --epochs 100
    python asv_bench/locality_bench.py run 1000000 --locality auto
    python asv_bench/locality_bench.py run 1000000 --locality none
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

import gidr
from gidr.locality import inverse_permutation, morton_order, renumbered_affinities
from gidr.metrics import knn_accuracy
from gidr.types import Monitor

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _data(n: int):
    import anndata_bench

    if n <= 70_000:
        return anndata_bench._fashion_pcs()[:n], anndata_bench._fashion_labels()[:n]
    return np.load(anndata_bench._upsampled(n)), anndata_bench._upsampled_labels(n)


def optimizer(n: int, epochs: int, repeats: int, preset: str) -> list[dict]:
    X, _ = _data(n)
    pipeline = gidr.Pipeline.from_preset(preset, n_epochs=epochs, random_state=0, locality="none")
    result = pipeline.run(X)
    Y0, affinities, stages = np.ascontiguousarray(result.embedding), result.affinities, result.stages
    ctx = pipeline._context(n)
    records = []
    for repeat in range(repeats):
        for mode in ("caller", "morton"):
            start = time.perf_counter()
            if mode == "morton":
                order = morton_order(Y0)
                moved, Y = renumbered_affinities(affinities, order, inverse_permutation(order)), Y0[order]
            else:
                moved, Y = affinities, Y0
            renumber = time.perf_counter() - start
            wall, cpu = time.perf_counter(), time.process_time()
            stages["optimizer"].optimize(np.ascontiguousarray(Y), moved, stages["loss"], stages["repulsion"], ctx,
                                         Monitor(every=10 ** 9))
            records.append({"n": n, "epochs": epochs, "order": mode, "repeat": repeat,
                            "wall_s": round(time.perf_counter() - wall, 2),
                            "cpu_s": round(time.process_time() - cpu, 2), "renumber_s": round(renumber, 2)})
            print(json.dumps(records[-1]), flush=True)
    return records


def run(n: int, locality: str, preset: str) -> dict:
    X, labels = _data(n)
    start = time.perf_counter()
    result = gidr.Pipeline.from_preset(preset, random_state=0, locality=locality).run(X)
    wall = time.perf_counter() - start
    subsample = np.random.default_rng(1).choice(n, min(n, 20_000), replace=False)
    record = {"n": n, "locality": locality, "preset": preset, "wall_s": round(wall, 1),
              "timings": {k: round(v, 1) for k, v in result.timings.items()},
              "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
              "acc20k": round(knn_accuracy(result.embedding[subsample], labels[subsample], k=100), 3)}
    print(json.dumps(record), flush=True)
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("optimizer", "run"))
    parser.add_argument("n", type=int)
    parser.add_argument("--epochs", type=int, default=100, help="optimizer mode: epochs per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="optimizer mode: alternations")
    parser.add_argument("--locality", default="auto", help="run mode: 'auto', 'morton' or 'none'")
    parser.add_argument("--preset", default="gdr-umap")
    options = parser.parse_args(argv)
    if options.mode == "optimizer":
        optimizer(options.n, options.epochs, options.repeats, options.preset)
    else:
        run(options.n, options.locality, options.preset)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
