"""Out-of-core input and the chunked PCA at a million rows (issue #13 item 5, :mod:`gidr.outofcore`).

Data: Fashion-MNIST (70,000 x 784 float32 pixels 0-255, ``gidr.datasets.load("fashion-mnist")``)
upsampled along its manifold to ``--rows`` rows of 784 features, written as an ``.npy`` file
(about 3.1 GB at 1,000,000 rows) under ``--dir`` (default ``/tmp/gidr-ooc``): the 70,000
images first, then rows that each move a random image a random fraction (uniform in [0, 1))
of the way toward one of its 15 nearest neighbours (exact, Euclidean, on the pixels); no
isotropic noise. A row carries the label of the image it was drawn from. The file is written
in blocks of 50,000 rows (seed 0), never held whole.

Each measurement runs in a fresh process that opens the file with ``np.load(mmap_mode="r")``
(numba's on-disk cache warm). Before each, ``posix_fadvise(DONTNEED)`` drops the file from
the page cache, so that the PCA reads it from disk ("cold").

``pca``
    :func:`gidr.outofcore.chunked_pca` to 50 components: seconds, the process's peak resident
    memory (``VmHWM``), and the explained variance ratio.
``pca-warm``
    the same with the file left in the page cache by the step before (compute, not disk).
``run``
    ``gidr.Pipeline.from_preset("gdr-umap", pca=50, random_state=0).run(X)``: seconds, the
    stage timings, peak resident memory, and the 100-NN accuracy
    (:func:`gidr.metrics.knn_accuracy`, leave-one-out majority vote) of a 20,000-point
    subsample (seed 0) of the embedding.

Run it alone on the machine (it is timed)::

    flock /tmp/gidr-bench.lock python asv_bench/outofcore_bench.py --out docs/results/outofcore-1m.md

``--keep`` keeps the data file (it is deleted at the end otherwise).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BLOCK_ROWS = 50_000
N_NEIGHBOURS = 15


def make(directory: Path, n_rows: int) -> tuple[Path, Path]:
    """Write the upsampled data and its labels (see the module docstring); reuse them if there."""
    directory.mkdir(parents=True, exist_ok=True)
    data, labels = directory / f"fashion-{n_rows}.npy", directory / f"fashion-{n_rows}-labels.npy"
    if data.exists() and labels.exists():
        return data, labels
    from sklearn.neighbors import NearestNeighbors

    import gidr

    images, classes = gidr.datasets.load("fashion-mnist")
    images = np.ascontiguousarray(images, dtype=np.float32)
    neighbours = NearestNeighbors(n_neighbors=N_NEIGHBOURS + 1, algorithm="brute").fit(images).kneighbors(
        images, return_distance=False)[:, 1:]  # the image itself first
    rng = np.random.default_rng(0)
    source = np.concatenate([np.arange(len(images)), rng.integers(0, len(images), n_rows - len(images))])
    out = np.lib.format.open_memmap(data, mode="w+", dtype=np.float32, shape=(n_rows, images.shape[1]))
    out[:len(images)] = images
    for lo in range(len(images), n_rows, BLOCK_ROWS):
        rows = source[lo:lo + BLOCK_ROWS]
        toward = neighbours[rows, rng.integers(0, N_NEIGHBOURS, len(rows))]
        fraction = rng.random(len(rows), dtype=np.float32)[:, None]
        out[lo:lo + len(rows)] = images[rows] + fraction * (images[toward] - images[rows])
    out.flush()
    del out
    np.save(labels, classes[source])
    return data, labels


def _drop_from_page_cache(path: Path) -> None:
    with open(path, "rb") as handle:
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def _measure_pca(data: str, labels: str) -> dict:
    from gidr import outofcore
    from gidr.memory import peak_resident_bytes

    X = np.load(data, mmap_mode="r")
    before = peak_resident_bytes()
    start = time.perf_counter()
    fitted = outofcore.chunked_pca(outofcore.row_source(X), 50)
    seconds = time.perf_counter() - start
    return {"step": "chunked_pca(50)", "rows": X.shape[0], "seconds": round(seconds, 1),
            "peak GB": round(peak_resident_bytes() / 1e9, 2), "peak before GB": round(before / 1e9, 2),
            "explained variance": round(float(fitted.explained_variance_ratio.sum()), 4),
            "chunk rows": fitted.chunk_rows, "method": fitted.method}


def _measure_run(data: str, labels: str) -> dict:
    import gidr
    from gidr.memory import peak_resident_bytes

    X = np.load(data, mmap_mode="r")
    start = time.perf_counter()
    result = gidr.Pipeline.from_preset("gdr-umap", pca=50, random_state=0).run(X)
    seconds = time.perf_counter() - start
    y = np.load(labels)
    sample = np.sort(np.random.default_rng(0).choice(len(y), 20_000, replace=False))
    accuracy = gidr.metrics.knn_accuracy(result.embedding[sample], y[sample], k=100)
    return {"step": "gdr-umap, pca=50", "rows": X.shape[0], "seconds": round(seconds, 1),
            "peak GB": round(peak_resident_bytes() / 1e9, 2),
            "stages s": {k: round(v, 1) for k, v in result.timings.items()},
            "explained variance": round(result.config["resolved"]["pca"]["explained_variance_ratio"], 4),
            "100-NN accuracy (20k)": round(accuracy, 4)}


def _fresh(step: str, data: Path, labels: Path) -> dict:
    if not step.endswith("-warm"):
        _drop_from_page_cache(data)
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import outofcore_bench as b; "
            f"row = b._measure_{step.removesuffix('-warm')}({str(data)!r}, {str(labels)!r}); "
            f"row['page cache'] = {'warm' if step.endswith('-warm') else 'cold'!r}; print(json.dumps(row))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/gidr-ooc"))
    parser.add_argument("--steps", nargs="*", default=["pca", "pca-warm", "run"], choices=["pca", "pca-warm", "run"])
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    start, existed = time.perf_counter(), (args.dir / f"fashion-{args.rows}.npy").exists()
    data, labels = make(args.dir, args.rows)
    made = "made by an earlier call" if existed else f"made in {time.perf_counter() - start:.0f} s"
    rows = [_fresh(step, data, labels) for step in args.steps]
    versions = ", ".join(f"{d} {importlib.metadata.version(d)}" for d in ("gidr", "numpy", "numba", "scikit-learn"))
    text = (f"`python asv_bench/outofcore_bench.py {' '.join(argv if argv is not None else sys.argv[1:])}` on "
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; {versions}. "
            f"Data: {data.stat().st_size / 1e9:.2f} GB float32 memmap ({args.rows} x 784, {made}). "
            "Each row a fresh process; 'cold': the file dropped from the page cache first.\n\n"
            + "\n".join(json.dumps(row) for row in rows))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if not args.keep:
        data.unlink()
        labels.unlink()


if __name__ == "__main__":
    main()
