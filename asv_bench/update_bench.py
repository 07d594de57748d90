"""``update(X_new)`` against umap-learn's ``UMAP.update`` (:mod:`gidr.update`).

Data: sklearn's digits (1,797 x 64), the first ``rows`` of them; a random three quarters
(seed 0) are fitted, the other quarter added by ``update``. For each method, in this process
(numba's on-disk cache warm, the first fit of each method discarded as warm-up), with all the
machine's threads:

``move``
    median over the fitted points of their displacement by the update, divided by the largest
    extent (max - min over the two axes) of the pre-update embedding;
``fresh``
    the same for a fresh fit on the union (old rows first, same parameters and seed);
``acc``
    15-NN label accuracy of the added points, voted by the old points in the updated embedding;
``seconds``
    the update's wall time.

Settings: ``rows=1000, n_epochs=200`` (the test suite's) and ``rows=1797`` with each method's
default epochs. umap-learn is run with ``random_state=0`` (single-threaded, its convention).

    flock -s /tmp/gidr-bench.lock python asv_bench/update_bench.py --out docs/results/update-digits.md
"""
from __future__ import annotations

import argparse
import importlib.metadata
import platform
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.neighbors import KNeighborsClassifier

import gidr

METHODS = {"gidr.UMAP": lambda **kw: gidr.UMAP(**kw), "gidr.GDR": lambda **kw: gidr.GDR(**kw),
           "gidr.GDR(normalized=True)": lambda **kw: gidr.GDR(normalized=True, **kw)}


def _peer(**kw):
    import umap

    return umap.UMAP(**kw)


def measure(make, rows: int, n_epochs):
    X, y = load_digits(return_X_y=True)
    X, y = X[:rows], y[:rows]
    old = np.random.default_rng(0).random(rows) < 0.75
    params = {"random_state": 0, **({} if n_epochs is None else {"n_epochs": n_epochs})}
    make(**params).fit(X[old][:200])  # warm-up (compilation)
    est = make(**params).fit(X[old])
    before = np.array(est.embedding_, dtype=np.float64)
    extent = np.ptp(before, axis=0).max()
    start = time.perf_counter()
    est.update(X[~old])
    seconds = time.perf_counter() - start
    after = np.asarray(est.embedding_, dtype=np.float64)
    n_old = int(old.sum())
    move = np.median(np.linalg.norm(after[:n_old] - before, axis=1)) / extent
    acc = KNeighborsClassifier(15).fit(after[:n_old], y[old]).score(after[n_old:], y[~old])
    fresh = np.asarray(make(**params).fit(np.concatenate([X[old], X[~old]])).embedding_, dtype=np.float64)
    fresh_move = np.median(np.linalg.norm(fresh[:n_old] - before, axis=1)) / extent
    return move, fresh_move, acc, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write a Markdown table here")
    args = parser.parse_args()
    lines = ["| rows | n_epochs | method | move | fresh | acc | seconds |", "|---|---|---|---|---|---|---|"]
    methods = {**METHODS, f"umap-learn {importlib.metadata.version('umap-learn')}": _peer}
    for rows, n_epochs in ((1000, 200), (1797, None)):
        for name, make in methods.items():
            move, fresh, acc, seconds = measure(make, rows, n_epochs)
            line = (f"| {rows} | {n_epochs or 'default'} | {name} | {move:.3f} | {fresh:.3f} | {acc:.3f} "
                    f"| {seconds:.2f} |")
            print(line, flush=True)
            lines.append(line)
    header = ("# update on the digits\n\nCommand: `python asv_bench/update_bench.py --out "
              "docs/results/update-digits.md` under `flock -s` (warm numba cache, in-process, all threads; "
              f"Python {platform.python_version()}, gidr {gidr.__version__}). Columns: see the script's "
              "docstring.\n\n")
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(header + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
