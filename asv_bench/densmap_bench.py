"""densMAP: gidr.UMAP / gidr.GDR against umap-learn's UMAP, each with ``densmap=True``.

Every (method, n) runs in its own fresh Python process (imports, JIT compilation or cache
loading are in the process but not in the fit time, as in asv_bench/compare.py), one after the
other. Per run:

- ``fit s``: ``fit_transform`` alone, with ``output_dens=True`` for every method (so the
  embedding's radii, which need a kNN graph of the embedding, are in every method's time);
- ``100-NN acc``: leave-one-out 100-NN accuracy of the embedding (:func:`gidr.metrics.knn_accuracy`);
- ``corr(log r)``: Pearson correlation of ``rad_emb_`` with ``rad_orig_`` (both are log radii),
  the quantity densMAP's term raises.

umap-learn runs without ``random_state`` (with one it turns its parallel SGD off), gidr with
``random_state=0`` (the same bits at any thread count). ``--no-densmap`` adds the runs with
``densmap=False`` (``output_dens=True``): the correlation a plain embedding has.

Usage::

    python asv_bench/densmap_bench.py --n 20000 70000 [--no-densmap] [--out docs/results/densmap]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import _version  # noqa: E402 (a distribution's version, or 'not installed')

METHODS = ("gidr.UMAP", "gidr.GDR", "umap-learn")


def _estimator(method: str, densmap: bool):
    if method == "umap-learn":
        import umap

        return umap.UMAP(densmap=densmap, output_dens=True, n_jobs=-1)
    import gidr

    cls = gidr.UMAP if method == "gidr.UMAP" else gidr.GDR
    return cls(densmap=densmap, output_dens=True, random_state=0)


def child(method: str, n: int, densmap: bool) -> dict:
    from gidr.datasets import load
    from gidr.metrics import knn_accuracy

    X, labels = load("fashion-mnist", n_samples=None if n >= 70_000 else n, random_state=0)
    estimator = _estimator(method, densmap)
    start = time.perf_counter()
    embedding, rad_orig, rad_emb = estimator.fit_transform(X)
    seconds = time.perf_counter() - start
    keep = np.isfinite(rad_orig) & np.isfinite(rad_emb)
    return {"method": method, "n": int(len(X)), "densmap": densmap, "fit_s": round(seconds, 2),
            "knn_accuracy": round(float(knn_accuracy(np.asarray(embedding), labels, k=100)), 4),
            "log_radius_correlation": round(float(np.corrcoef(rad_orig[keep], rad_emb[keep])[0, 1]), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[20_000])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--no-densmap", action="store_true", help="also run each method with densmap=False")
    parser.add_argument("--out", type=Path, default=None, help="write <out>.json and <out>.md")
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "N", "DENSMAP"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        method, n, densmap = options.child
        print(json.dumps(child(method, int(n), densmap == "1")))
        return
    rows = []
    for n in options.n:
        for densmap in ((True, False) if options.no_densmap else (True,)):
            for method in options.methods:
                started = time.perf_counter()
                output = subprocess.run([sys.executable, __file__, "--child", method, str(n), str(int(densmap))],
                                        capture_output=True, text=True, check=True).stdout
                row = json.loads(output.strip().splitlines()[-1])
                row["process_s"] = round(time.perf_counter() - started, 1)
                rows.append(row)
                print(json.dumps(row), flush=True)
    environment = {"cpus": os.cpu_count(), "numba_threads": os.environ.get("NUMBA_NUM_THREADS", "default"),
                   "gidr": _version("gidr"), "umap-learn": _version("umap-learn"), "numba": _version("numba"),
                   "command": "python asv_bench/densmap_bench.py " + " ".join(sys.argv[1:])}
    if options.out is not None:
        options.out.with_suffix(".json").write_text(json.dumps({"environment": environment, "rows": rows}, indent=1))
        lines = ["| method | n | densmap | fit s | process s | 100-NN acc | corr(log r) |", "|---" * 7 + "|"]
        lines += [f"| {r['method']} | {r['n']} | {r['densmap']} | {r['fit_s']} | {r['process_s']} | "
                  f"{r['knn_accuracy']} | {r['log_radius_correlation']} |" for r in rows]
        lines += ["", "Environment: " + json.dumps(environment)]
        options.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
