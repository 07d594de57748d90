"""How far the neighbours stage is from its limit on wide input (issue #17, item 2).

Fashion-MNIST (70,000 × 784, float32), k = 15. Recall is measured against the exact graph
of 2,000 query points (seed 0; squared distances from float64 BLAS), as the share of each
query's exact 15 neighbours that the graph found. Times are CPU seconds of one thread
(``NUMBA_NUM_THREADS=1`` and one BLAS thread are set here), which a shared machine disturbs far
less than wall time; on two threads the wall time is about half.

Two questions:

``nndescent``
    gidr's NN-descent (:func:`gidr_numba.nndescent.nndescent_knn`) with its defaults and with
    one parameter changed at a time (trees, candidates per iteration, the stopping ``delta``,
    the leaf size, the number of iterations): how much work can go at recall >= 0.95?
``pca + rerank``
    a PCA pre-reduction to ``d`` components (a randomized range finder with two power
    iterations), NN-descent there for ``c`` candidates, then the candidates re-ranked by their
    distances in the 784 dimensions: does searching a narrower space pay for the PCA?

Run it alone on the machine::

    python asv_bench/knn_limit.py --out docs/results/knn-limit-70k.md
"""
from __future__ import annotations

import os

for _variable in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

K = 15
N_QUERIES = 2_000
SETTINGS = ({}, {"n_trees": 3}, {"max_candidates": 15}, {"max_candidates": 10}, {"delta": 0.01},
            {"delta": 0.03}, {"leaf_size": 30}, {"n_trees": 8, "n_iters": 2})
REDUCTIONS = ((32, 30), (64, 30), (128, 15), (128, 30))


def exact_neighbours(X: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The exact k nearest neighbours of the query rows (the point itself excluded)."""
    X64 = X.astype(np.float64)
    squares = (X64**2).sum(axis=1)
    D = squares[queries, None] + squares[None, :] - 2.0 * (X64[queries] @ X64.T)
    D[np.arange(len(queries)), queries] = np.inf
    return np.argsort(D, axis=1, kind="stable")[:, :K]


def recall(indices: np.ndarray, queries: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(indices[q, :K]) & set(exact[t])) / K for t, q in enumerate(queries)]))


def randomized_pca(X: np.ndarray, d: int, rng: np.random.Generator) -> np.ndarray:
    """Scores on ``d`` components: range finder of ``d + 10`` columns, two power iterations."""
    centred = X - X.mean(axis=0)
    basis = centred @ rng.standard_normal((X.shape[1], d + 10)).astype(np.float32)
    for _ in range(2):
        basis, _ = np.linalg.qr(basis)
        basis = centred @ (centred.T @ basis)
    basis, _ = np.linalg.qr(basis)
    _, _, components = np.linalg.svd(basis.T @ centred, full_matrices=False)
    return np.ascontiguousarray(centred @ components[:d].T)


def rerank(X: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Each row's candidates ordered by their distance in X's own space; the first K."""
    full = np.empty(candidates.shape, dtype=np.float32)
    for start in range(0, X.shape[0], 2_000):
        rows = slice(start, min(X.shape[0], start + 2_000))
        full[rows] = ((X[rows, None, :] - X[candidates[rows]]) ** 2).sum(axis=-1)
    order = np.argsort(full, axis=1, kind="stable")[:, :K]
    return np.take_along_axis(candidates, order, axis=1)


def cpu(function, *args, **kwargs):
    start = time.process_time()
    value = function(*args, **kwargs)
    return value, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()

    import gidr.datasets
    from gidr_numba.nndescent import nndescent_knn

    X, _ = gidr.datasets.load("fashion-mnist")
    X = np.ascontiguousarray(X, dtype=np.float32)
    queries = np.random.default_rng(0).choice(X.shape[0], N_QUERIES, replace=False)
    exact = exact_neighbours(X, queries)
    nndescent_knn(X[:3_000], K, 0)  # compile (or load the cache) outside the timings
    nndescent_knn(X[:3_000, :32], 30, 0)

    lines = [f"{platform.machine()}, one thread, CPU seconds. Command: python asv_bench/knn_limit.py",
             "", "| method | setting | seed | CPU s | recall@15 | iterations |", "|---|---|---:|---:|---:|---:|"]
    for setting in SETTINGS:
        for seed in args.seeds:
            (indices, _, info), seconds = cpu(nndescent_knn, X, K, seed, **setting)
            label = ", ".join(f"{k}={v}" for k, v in setting.items()) or "defaults"
            lines.append(f"| nndescent | {label} | {seed} | {seconds:.2f} | {recall(indices, queries, exact):.4f} | "
                         f"{info['n_iters']} |")
            print(lines[-1], flush=True)
    for d, c in REDUCTIONS:
        for seed in args.seeds:
            scores, pca_seconds = cpu(randomized_pca, X, d, np.random.default_rng(seed))
            (candidates, _, info), knn_seconds = cpu(nndescent_knn, scores, c, seed)
            indices, rerank_seconds = cpu(rerank, X, candidates)
            lines.append(f"| pca + rerank | d={d}, {c} candidates (PCA {pca_seconds:.2f} + kNN {knn_seconds:.2f} + "
                         f"rerank {rerank_seconds:.2f}) | {seed} | {pca_seconds + knn_seconds + rerank_seconds:.2f} | "
                         f"{recall(indices, queries, exact):.4f} | {info['n_iters']} |")
            print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
