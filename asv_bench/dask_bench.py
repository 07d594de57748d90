"""gidr on Dask: the kNN graph, ``transform`` and the landmark route on a real ``LocalCluster``.

Every measurement starts ``distributed.LocalCluster(n_workers=W, threads_per_worker=1,
processes=True)`` on 127.0.0.1 and runs the same computation twice on it: the first run pays
the workers' imports and their loading of numba's on-disk cache ("fresh"), the second does
not ("warm"). Peak memory is each process's ``VmHWM`` after the runs (the largest worker's,
and the client's, which holds the graph or the embedding). Data: Fashion-MNIST's 50 principal components, upsampled along the data manifold
(each new point moves a random fraction of the way from a random image toward one of its 15
nearest images; the 70,000 originals come first), generated chunk by chunk from a seed, so
that every point has its image's label.

Sections (each writes a markdown table under ``--out-dir`` and a JSON file beside it)::

    python asv_bench/dask_bench.py knn-exact --n 200000         # 1 vs 2 workers vs in-process
    python asv_bench/dask_bench.py knn-approx --n 1000000       # recall on 2,000 rows vs exact
    python asv_bench/dask_bench.py transform --n 1000000        # into a 70,000-point fit
    python asv_bench/dask_bench.py landmarks --n 10000000       # through a zarr store on disk
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("GIDR_BENCH_CACHE", "/tmp/gidr-dask-bench"))
K = 15
BLOCK = 100_000


# ---------------------------------------------------------------------- data
def _base():
    """Fashion-MNIST's 50 PCs (70,000 x 50, float32), labels, and each image's 15 nearest images."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "fashion-base.npz"
    if not path.exists():
        from sklearn.decomposition import PCA

        import gidr
        from gidr_numba.neighbors import exact_knn

        X, y = gidr.datasets.load("fashion-mnist")
        pcs = PCA(50, random_state=0).fit_transform(X).astype(np.float32)
        np.savez(path, pcs=pcs, labels=np.asarray(y), neighbours=exact_knn(pcs, 15).indices)
    data = np.load(path)
    return data["pcs"], data["labels"], data["neighbours"]


def manifold_rows(lo: int, hi: int, seed: int = 0):
    """Rows ``lo..hi-1`` of the upsampled data and their labels (a pure function of the range's
    blocks of :data:`BLOCK` rows and the seed: any chunking gives the same rows)."""
    base, labels, neighbours = _base()
    parts, tags = [], []
    for block in range(lo // BLOCK, (hi - 1) // BLOCK + 1):
        start, stop = block * BLOCK, (block + 1) * BLOCK
        rng = np.random.default_rng([seed, block])
        source = rng.integers(0, len(base), BLOCK)
        originals = np.arange(start, min(stop, len(base)))
        source[: len(originals)] = originals
        toward = neighbours[source, rng.integers(0, 15, BLOCK)]
        fraction = rng.random(BLOCK, dtype=np.float32)[:, None]
        fraction[: len(originals)] = 0
        rows = base[source] + fraction * (base[toward] - base[source])
        a, b = max(lo, start) - start, min(hi, stop) - start
        parts.append(rows[a:b])
        tags.append(labels[source[a:b]])
    return np.concatenate(parts), np.concatenate(tags)


def dask_data(n: int, chunk: int):
    """The first ``n`` upsampled rows as a Dask array of ``chunk``-row chunks, generated and kept
    (persisted) on the workers before anything is timed, and all labels."""
    import dask.array as da
    import distributed
    from dask import delayed

    starts = list(range(0, n, chunk))
    blocks = [da.from_delayed(delayed(lambda a, b: manifold_rows(a, b)[0])(s, min(s + chunk, n)),
                              shape=(min(s + chunk, n) - s, 50), dtype=np.float32) for s in starts]
    labels = np.concatenate([manifold_rows(s, min(s + chunk, n))[1] for s in starts]) if n <= 2_000_000 else None
    X = da.concatenate(blocks).persist()
    distributed.wait(X)
    return X, labels


def zarr_data(n: int, chunk: int = BLOCK):
    """The first ``n`` upsampled rows in a zarr store on disk (written once), and labels."""
    import zarr

    path = CACHE / f"manifold-{n}.zarr"
    labels_path = CACHE / f"manifold-{n}-labels.npy"
    if not labels_path.exists():
        store = zarr.open_array(str(path), mode="w", shape=(n, 50), chunks=(chunk, 50), dtype="float32")
        labels = np.empty(n, dtype=np.int8)
        for s in range(0, n, chunk):
            rows, tags = manifold_rows(s, min(s + chunk, n))
            store[s:s + len(rows)] = rows
            labels[s:s + len(rows)] = tags
        np.save(labels_path, labels)
    return path, np.load(labels_path)


# ---------------------------------------------------------------------- measuring
def _cluster(workers: int):
    import distributed

    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=":0", silence_logs=40)
    return cluster, distributed.Client(cluster)


def peak_mb() -> float:
    """This process's peak resident memory (``VmHWM``; ``ru_maxrss`` is inherited across the
    fork and exec that start a worker, so it would report the client's peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peaks(client) -> dict:
    workers = client.run(peak_mb)
    return {"worker peak MB": max(workers.values()), "client peak MB": peak_mb()}


def _twice(function) -> tuple[float, float, object]:
    t0 = time.perf_counter()
    function()
    t1 = time.perf_counter()
    value = function()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, value


def _recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / exact.shape[1] for a, b in zip(found.tolist(), exact.tolist())]))


def _environment() -> str:
    import dask
    import numba

    return (f"dask {dask.__version__}, numba {numba.__version__}, Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs; LocalCluster(threads_per_worker=1, processes=True) on 127.0.0.1")


def _write(out_dir: Path, name: str, title: str, rows: list[dict], notes: list[str]) -> None:
    columns = list(dict.fromkeys(c for row in rows for c in row))
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
    text = "\n".join(lines + [""] + notes + ["", _environment() + "."]) + "\n"
    print(text)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.md").write_text(text)
    (out_dir / f"{name}.json").write_text(json.dumps(rows, indent=1))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


# ---------------------------------------------------------------------- sections
def knn_exact(args) -> None:
    from gidr_dask.knn import exact_knn
    from gidr_numba.neighbors import exact_knn as single

    X, _ = manifold_rows(0, args.n)
    rows = []
    fresh, warm, expected = _twice(lambda: single(X, K))
    rows.append({"run": "in-process numba exact (2 threads)", "fresh s": fresh, "warm s": warm,
                 "client peak MB": peak_mb()})
    for workers in (1, 2):
        cluster, client = _cluster(workers)
        try:
            Xd, _ = dask_data(args.n, args.chunk)
            fresh, warm, graph = _twice(lambda: exact_knn(Xd, K))
            same = np.array_equal(graph.indices, expected.indices) and np.array_equal(graph.distances,
                                                                                        expected.distances)
            rows.append({"run": f"dask-exact, {workers} worker(s)", "fresh s": fresh, "warm s": warm,
                         "same graph (bits)": same, **_peaks(client)})
        finally:
            client.close()
            cluster.close()
    one, two = rows[1], rows[2]
    notes = [f"{args.n:,} x 50 float32 points, k = {K}, chunks of {args.chunk:,} rows. Speed-up of 2 workers over 1: "
             f"{one['fresh s'] / two['fresh s']:.2f}x fresh, {one['warm s'] / two['warm s']:.2f}x warm.",
             f"Command: `python asv_bench/dask_bench.py knn-exact --n {args.n} --chunk {args.chunk}`."]
    _write(args.out_dir, f"dask-knn-exact-{args.n}", f"Distributed exact kNN, {args.n:,} x 50", rows, notes)


def _ground_truth(n: int, queries: np.ndarray) -> np.ndarray:
    path = CACHE / f"truth-{n}-{len(queries)}.npy"
    if not path.exists():
        from gidr_numba.neighbors import nearest_rows

        X, _ = manifold_rows(0, n)
        found = nearest_rows(X.astype(np.float64), X[queries].astype(np.float64), K + 1, "euclidean", False)
        keep = []
        for q, row in zip(queries, found.indices):
            keep.append([j for j in row if j != q][:K])
        np.save(path, np.asarray(keep))
    return np.load(path)


def knn_approx(args) -> None:
    from dask import delayed

    from gidr_dask.knn import _block_pair, _row_offsets, _tree_merge, approximate_knn

    queries = np.sort(np.random.default_rng(7).choice(args.n, 2000, replace=False))
    truth = _ground_truth(args.n, queries)
    rows = []
    for workers in (1, 2):
        cluster, client = _cluster(workers)
        try:
            Xd, _ = dask_data(args.n, args.chunk)
            fresh, warm, (graph, info) = _twice(lambda: approximate_knn(Xd, K, 42, cell_size=args.cell_size))
            rows.append({"run": f"dask-nndescent, {workers} worker(s)", "fresh s": fresh, "warm s": warm,
                         "recall": _recall(graph.indices[queries], truth), "cells": info["n_cells"],
                         **_peaks(client)})
            # exact: the tasks of one row chunk against every chunk, timed and scaled to all row chunks
            offsets = _row_offsets(Xd)
            blocks = list(Xd.to_delayed().ravel())
            pair = delayed(_block_pair, pure=True)
            slab = _tree_merge([pair(blocks[0], blocks[0] if j == 0 else cols, 0, int(offsets[j]), K, "euclidean",
                                     j == 0, args.n) for j, cols in enumerate(blocks)], K, args.n)
            t0 = time.perf_counter()
            slab.compute()
            slab_s = time.perf_counter() - t0
            rows.append({"run": f"dask-exact, {workers} worker(s), projected from one row chunk",
                         "warm s": slab_s * len(blocks), "recall": 1.0, **_peaks(client)})
        finally:
            client.close()
            cluster.close()
    notes = [f"{args.n:,} x 50 float32 points, k = {K}, chunks of {args.chunk:,} rows, cells of {args.cell_size:,} "
             f"(halo 2). Recall: the share of the exact 15 neighbours found, on 2,000 rows drawn at random (exact "
             "neighbours by the in-process numba exact search). The exact graph of all rows would take about "
             "the projected time (one row chunk's tasks against all chunks, timed warm, times the number of row "
             "chunks); it was not run in full.",
             f"Speed-up of 2 workers over 1 (approximate): {rows[0]['fresh s'] / rows[2]['fresh s']:.2f}x fresh, "
             f"{rows[0]['warm s'] / rows[2]['warm s']:.2f}x warm.",
             f"Command: `python asv_bench/dask_bench.py knn-approx --n {args.n} --chunk {args.chunk}`."]
    _write(args.out_dir, f"dask-knn-approx-{args.n}", f"Distributed approximate kNN, {args.n:,} x 50", rows, notes)


def _fitted(n_fit: int):
    import gidr

    X_fit, y_fit = manifold_rows(0, n_fit)
    return gidr.GDR(random_state=0).fit(X_fit), y_fit


def transform(args) -> None:
    import gidr

    est, _ = _fitted(args.fit)
    n_new = args.n - args.fit
    sample = np.sort(np.random.default_rng(3).choice(n_new, 20_000, replace=False))
    new_sample, labels = manifold_rows(args.fit, args.n)
    new_sample, labels = new_sample[sample], labels[sample]
    rows = []
    t0 = time.perf_counter()
    reference = est.transform(new_sample)
    in_process = time.perf_counter() - t0
    rows.append({"run": "in-process GDR.transform (2 threads), 20,000 of the points", "warm s": in_process,
                 "points/s per worker": len(sample) / in_process / 2,
                 "held-out 100-NN": gidr.metrics.knn_accuracy(reference, labels)})
    for workers in (1, 2):
        cluster, client = _cluster(workers)
        try:
            Xd, _ = dask_data(args.n, args.chunk)
            Xd = Xd[args.fit:]
            fresh, warm, Y = _twice(lambda: est.transform(Xd).compute())
            rows.append({"run": f"distributed transform, {workers} worker(s)", "fresh s": fresh, "warm s": warm,
                         "points/s per worker": n_new / warm / workers,
                         "held-out 100-NN": gidr.metrics.knn_accuracy(Y[sample], labels),
                         "same bits as in-process": bool(np.array_equal(Y[sample], reference)), **_peaks(client)})
        finally:
            client.close()
            cluster.close()
    notes = [f"gidr.GDR(random_state=0) fitted in memory on the first {args.fit:,} points (the Fashion-MNIST images); "
             f"the other {n_new:,} embedded by est.transform(X_dask) in chunks of {args.chunk:,} rows. Held-out "
             "100-NN: leave-one-out 100-NN accuracy among 20,000 of the embedded points (same rows in every run).",
             f"Throughput of 2 workers over 1: {rows[1]['warm s'] / rows[2]['warm s']:.2f}x warm, "
             f"{rows[1]['fresh s'] / rows[2]['fresh s']:.2f}x fresh.",
             f"Command: `python asv_bench/dask_bench.py transform --n {args.n} --fit {args.fit}`."]
    _write(args.out_dir, f"dask-transform-{args.n}", f"Distributed transform of {n_new:,} points", rows, notes)


def landmarks(args) -> None:
    import dask.array as da

    import gidr
    from gidr_dask import landmark_embedding

    t0 = time.perf_counter()
    path, labels = zarr_data(args.n)
    prepare = time.perf_counter() - t0
    sample = np.sort(np.random.default_rng(5).choice(args.n, 20_000, replace=False))
    cluster, client = _cluster(args.workers)
    try:
        X = da.from_zarr(str(path))
        t0 = time.perf_counter()
        result = landmark_embedding(X, "gdr-umap", n_landmarks=args.landmarks, random_state=0, compute=True)
        total = time.perf_counter() - t0
        Y = result.embedding
        row = {"run": f"landmark_embedding, {args.workers} workers", "points": args.n, "landmarks": len(result.landmarks),
               "fit s": sum(result.fit.timings.values()), "total s": total, "finite": bool(np.isfinite(Y).all()),
               "100-NN (20,000 points)": gidr.metrics.knn_accuracy(Y[sample], labels[sample]), **_peaks(client)}
    finally:
        client.close()
        cluster.close()
    notes = [f"Data: {args.n:,} x 50 float32 in a zarr store on disk ({args.n * 200 / 1e9:.1f} GB, chunks of "
             f"{BLOCK:,} rows; written in {prepare:.0f} s before the run, not counted), read by da.from_zarr. "
             "The run: sample gathered on the client, gdr-umap fitted there, every other point embedded by the "
             "distributed transform, the embedding computed onto the client.",
             "Command: `python asv_bench/dask_bench.py landmarks --n {}{}`.".format(
                 args.n, f" --landmarks {args.landmarks}" if args.landmarks else "")]
    _write(args.out_dir, f"dask-landmarks-{args.n}", f"Landmark route, {args.n:,} points", [row], notes)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=["knn-exact", "knn-approx", "transform", "landmarks"])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--cell-size", type=int, default=100_000)
    parser.add_argument("--fit", type=int, default=70_000)
    parser.add_argument("--landmarks", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, default=Path("docs/results"))
    args = parser.parse_args(argv)
    {"knn-exact": knn_exact, "knn-approx": knn_approx, "transform": transform, "landmarks": landmarks}[
        args.section](args)


if __name__ == "__main__":
    main()
