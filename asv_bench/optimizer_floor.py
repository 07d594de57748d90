"""The memory-traffic floor of a GDR epoch, next to the optimizer's own throughput (issue #17, item 1).

A ``gdr-umap`` epoch walks every stored entry of P once (the attraction partner ``j``), draws
``n_negative`` partners per entry with the counter hash and reads their positions, and then
writes every point's new position. Two kernels here repeat exactly that memory traffic with no
force arithmetic, on the same P and the same draws:

``floor (hash + reads)``
    per point ``i``: read ``y_j`` for every entry of row ``i``, hash ``n_negative`` draws per
    entry (:func:`gidr_numba.gdr.draw_batch`, the optimizer's own, in its batches) and read
    ``y_k``; then one pass that writes ``y_i``. The floor of the optimizer's loop.
``reads only``
    the same partner reads and writes, partners taken from a precomputed array (no hash): what
    the random reads alone cost.

Both are reported as pair interactions per second per core (one attraction or one negative
sample is one pair), next to the optimizer's: ``nnz(P) * (1 + n_negative) * epochs / optimize
seconds / threads``, from a real ``gdr-umap`` run (``Result.timings["optimize"]``). Each is
measured twice: with the points in the caller's order (``locality="none"``) and renumbered
along a Z-order curve of the layout (``locality="morton"``, the default from 50,000 points;
:mod:`gidr.locality`).

Data: Fashion-MNIST (70,000 × 784), and a million points: Fashion-MNIST's 50 principal
components upsampled along the data manifold as ``asv_bench/anndata_bench.py`` does
(``GIDR_BENCH_CACHE``). Run it alone on the machine (it is timed)::

    python asv_bench/optimizer_floor.py --sizes 70000 1000000
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

from gidr_numba.gdr import DRAW_BATCH, POINT_BLOCK, draw_batch
from gidr_numba.random import epoch_key, row_key

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: Epochs timed per floor kernel (median of the per-epoch times).
REPEATS = 20


@njit(parallel=True)
def _floor_gather(Y, indptr, indices, key, n_negative, out):
    n = Y.shape[0]
    for block in prange((n + POINT_BLOCK - 1) // POINT_BLOCK):
        draws = np.empty(DRAW_BATCH, dtype=np.int64)
        for i in range(block * POINT_BLOCK, min(n, (block + 1) * POINT_BLOCK)):
            s0 = 0.0
            s1 = 0.0
            for e in range(indptr[i], indptr[i + 1]):
                j = indices[e]
                s0 += Y[j, 0]
                s1 += Y[j, 1]
            point_key = row_key(key, i)
            m = n_negative * (indptr[i + 1] - indptr[i])
            for first in range(0, m, DRAW_BATCH):  # hashed in batches, as the optimizer draws
                count = min(DRAW_BATCH, m - first)
                draw_batch(point_key, i, first, count, n, 0, draws)
                for t in range(count):
                    k = draws[t]
                    s0 += Y[k, 0]
                    s1 += Y[k, 1]
            out[i, 0] = s0
            out[i, 1] = s1


@njit(parallel=True)
def _reads_only_gather(Y, indptr, indices, partners, n_negative, out):
    n = Y.shape[0]
    for i in prange(n):
        s0 = 0.0
        s1 = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            s0 += Y[j, 0]
            s1 += Y[j, 1]
            for s in range(n_negative):
                k = partners[e * n_negative + s]
                s0 += Y[k, 0]
                s1 += Y[k, 1]
        out[i, 0] = s0
        out[i, 1] = s1


@njit(parallel=True)
def _write(Y, out, scale):
    for i in prange(Y.shape[0]):
        Y[i, 0] += scale * out[i, 0]
        Y[i, 1] += scale * out[i, 1]


def _data(n: int) -> tuple[np.ndarray, str]:
    import gidr.datasets

    if n == 70_000:
        X, _ = gidr.datasets.load("fashion-mnist")
        return X, "Fashion-MNIST 70,000 x 784"
    from anndata_bench import _upsampled

    return np.load(_upsampled(n)), f"Fashion-MNIST 50 PCs upsampled to {n:,}"


def _median_epoch(gather, args, Y, out) -> float:
    times = []
    for epoch in range(REPEATS + 1):
        t0 = time.perf_counter()
        gather(*args(epoch), out)
        _write(Y, out, 1e-12)
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))  # the first call compiles


def _floors(P, Y, n_negative: int, seed: int) -> tuple[float, float]:
    """Median epoch seconds of the floor (hash + reads) and of the reads alone, on ``P``, ``Y``."""
    n = Y.shape[0]
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    out = np.empty_like(Y)
    indptr, indices = P.indptr.astype(np.int64), P.indices.astype(np.int32)  # as the optimizer holds P
    floor = _median_epoch(_floor_gather, lambda t: (Y, indptr, indices, np.uint64(epoch_key(seed, t)), n_negative), Y, out)
    partners = np.random.default_rng(0).integers(0, n, P.nnz * n_negative)
    reads = _median_epoch(_reads_only_gather, lambda t: (Y, indptr, indices, partners, n_negative), Y, out)
    return floor, reads


def measure(n: int) -> list[dict]:
    """The optimizer's epoch in the caller's order (``locality="none"``) and renumbered along
    the start layout's Z-order curve (``locality="morton"``, :mod:`gidr.locality`), each next to
    the floor on the same numbering (the renumbered floor uses the Z-order of the final layout,
    as a stand-in for the start layout's, which the result does not keep)."""
    import gidr
    from gidr.locality import inverse_permutation, morton_order, renumbered_csr

    X, name = _data(n)
    gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=5).run(X[:5000])  # the JIT, paid once
    rows = []
    for locality in ("none", "morton"):
        start = time.perf_counter()
        result = gidr.Pipeline.from_preset("gdr-umap", random_state=0, locality=locality).run(X)
        print(f"{name}: gdr-umap locality={locality} {time.perf_counter() - start:.1f} s, stages "
              + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in result.timings.items()), file=sys.stderr)
        P = result.affinities.P.tocsr()
        Y = result.embedding
        if locality == "morton":
            order = morton_order(Y)
            P, Y = renumbered_csr(P, order, inverse_permutation(order)), Y[order]
        n_negative = int(result.stages["repulsion"].draws_per_edge())
        epochs = int(result.config["resolved"]["epochs_run"])
        threads = numba.get_num_threads()
        pairs = P.nnz * (1 + n_negative)
        floor, reads = _floors(P, Y, n_negative, int(result.config["resolved"]["seed"]))
        optimizer = result.timings["optimize"] / epochs
        order_name = "caller's order" if locality == "none" else "renumbered"
        for what, seconds in (("gdr-umap optimizer", optimizer), ("floor (hash + reads)", floor),
                              ("reads only", reads)):
            rows.append({"data": name, "what": f"{what}, {order_name}", "ms per epoch": 1e3 * seconds,
                         "M pairs / s / core": pairs / seconds / threads / 1e6,
                         "x floor": seconds / floor})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[70_000], help="70000 and/or upsampled sizes")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = [row for n in args.sizes for row in measure(n)]
    lines = ["| data | what | ms per epoch | M pairs / s / core | x floor |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r['data']} | {r['what']} | {r['ms per epoch']:.1f} | {r['M pairs / s / core']:.0f} | "
              f"{r['x floor']:.2f} |" for r in rows]
    text = (f"{platform.machine()}, {os.cpu_count()} CPUs, numba {numba.__version__}, "
            f"{numba.get_num_threads()} threads. Command: python asv_bench/optimizer_floor.py "
            f"--sizes {' '.join(map(str, args.sizes))}\n\n" + "\n".join(lines))
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
