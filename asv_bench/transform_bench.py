"""``transform`` on Fashion-MNIST: gidr's GDR against umap-learn's UMAP.

Both fit the 60,000 training images (``gidr.GDR(random_state=0)``; ``umap.UMAP()`` with its
defaults, as ``compare.py`` runs it: no seed, all threads) and embed the 10,000 test images.
Each transform is timed twice in the same (warm) process: its first call, on 100 test images
(gidr builds its neighbour index there, umap-learn prepares its search graph; numba caches
are already on disk), then the 10,000 test images. Quality: held-out 100-NN accuracy (each
test image classified by the majority label of its 100 nearest *training* points in the
embedding) and in-sample leave-one-out 100-NN accuracy (:func:`gidr.metrics.knn_accuracy`).
The table goes to stdout and to ``--out``::

    python asv_bench/transform_bench.py --out results/transform.md
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


def _held_out_accuracy(Y_train, y_train, Y_test, y_test, k: int = 100) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(n_neighbors=k).fit(Y_train, y_train).score(Y_test, y_test))


def _run(name: str, estimator, X_train, y_train, X_test, y_test) -> dict:
    from gidr.metrics import knn_accuracy

    t0 = time.perf_counter()
    Y_train = np.asarray(estimator.fit_transform(X_train))
    t1 = time.perf_counter()
    estimator.transform(X_test[:100])
    t2 = time.perf_counter()
    Y_test = np.asarray(estimator.transform(X_test))
    t3 = time.perf_counter()
    return {"method": name, "fit s": t1 - t0, "first call s (100)": t2 - t1, "transform s (10,000)": t3 - t2,
            "held-out 100-NN": _held_out_accuracy(Y_train, y_train, Y_test, y_test),
            "in-sample 100-NN": knn_accuracy(Y_train, y_train, k=100)}


def _table(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here too")
    parser.add_argument("--skip-umap", action="store_true", help="run gidr only")
    args = parser.parse_args(argv)

    import numba

    import gidr
    from gidr import datasets

    X, y = datasets.load("fashion-mnist")  # the 60,000 training images, then the 10,000 test images
    X_train, y_train, X_test, y_test = X[:60_000], y[:60_000], X[60_000:], y[60_000:]
    rows = [_run(f"gidr {importlib.metadata.version('gidr')} GDR(random_state=0)", gidr.GDR(random_state=0),
                 X_train, y_train, X_test, y_test)]
    if not args.skip_umap:
        import umap

        rows.append(_run(f"umap-learn {umap.__version__} UMAP()", umap.UMAP(), X_train, y_train, X_test, y_test))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = "\n".join([
        "# transform on Fashion-MNIST (60,000 fitted, 10,000 test images embedded)", "",
        _table(rows), "",
        f"One warm process, both libraries in turn; numba {numba.__version__}, {numba.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, peak RSS {peak:.0f} MB (whole process). "
        "Command: `python asv_bench/transform_bench.py" + (f" --out {args.out}" if args.out else "") + "`.",
    ])
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report + "\n")


if __name__ == "__main__":
    main()
