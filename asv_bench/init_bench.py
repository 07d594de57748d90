"""The spectral init at scale (issue #13): ARPACK against the multilevel eigenmap, and LOBPCG + AMG.

Each (size, seed, solver) runs ``gidr.Pipeline.from_preset("gdr-umap", random_state=seed).run(X)``
in its own fresh Python process (numba's on-disk cache warmed first by a 5,000-point run), with the
component-size threshold :data:`gidr_numba.spectral.MULTILEVEL_MIN_POINTS` set so that the
solver asked for runs:

``arpack``
    ``eigsh`` on ``D^{-1/2} A D^{-1/2}`` to ``tol = 1e-4`` (the path below the threshold);
``multilevel``
    :func:`gidr_numba.spectral.multilevel_eigenmap` (the path above it);
``lobpcg-amg``
    for comparison only, written here: scipy's ``lobpcg`` on the normalized Laplacian
    (smallest eigenvalues, ``tol = 1e-4``: ARPACK's residual criterion, at most 200
    iterations), preconditioned by pyamg's default smoothed-aggregation solver built on
    ``L + 1e-5 I`` with ``B = D^{1/2} 1`` (scikit-learn's ``eigen_solver="amg"``), start
    ``[D^{1/2} 1, rng.standard_normal]``.

Columns: ``init s`` and ``total s`` are ``Result.timings["init"]`` and the sum of all stage
timings; ``peak GB`` the child's peak resident memory; ``acc`` the mean share of each query
point's 100 nearest embedding neighbours that carry its label, ``vote acc`` the majority vote
of those 100 (SPEC §6), queries all points up to 100,000 points, else a fixed subsample of
20,000 (seed 0) against the whole embedding; ``participation`` the smaller
``(sum v^2)^2 / sum v^4`` of the layout's two columns (about how many points a column lives on:
a few means an eigenvector localized on a nearly detached piece of the graph); ``corr vs
arpack`` the canonical correlations between this row's layout and ARPACK's (same size, same
seed; both centred), 1 and 1 when they span the same plane.

Data: Fashion-MNIST (70,000 x 784, ``gidr.datasets.load("fashion-mnist")``) and its 50
principal components upsampled to 1,000,000 points along the data manifold
(``asv_bench/anndata_bench.py``, cached in ``GIDR_BENCH_CACHE``, default
``/tmp/gidr-anndata-bench/``). A point of the upsampled set carries the label of the image it
was drawn from (``anndata_bench._upsampled_labels``: the source indices are the first draw of
``anndata_bench._upsampled``'s generator, ``default_rng(0).integers(0, 70000, n - 70000)``;
rebuilding the whole array from them reproduces the cached file bit for bit).

``--init-extent E`` is a diagnostic: the init is rescaled to ``max|Y| = E`` in place of the
stage's rule (for gdr-umap ``max|Y| = 10`` up to 100,000 points, smaller above:
:func:`gidr_reference.init.unnormalized_extent`), to tell the layout's shape from its scale.

Run it alone on the machine (it is timed)::

    flock /tmp/gidr-bench.lock python asv_bench/init_bench.py --sizes 70000 1000000 --seeds 0 1 2 \\
        --out results/init.md
    flock /tmp/gidr-bench.lock python asv_bench/init_bench.py --sizes 1000000 --seeds 0 \\
        --solvers lobpcg-amg --out results/init-lobpcg.md
    flock /tmp/gidr-bench.lock python asv_bench/init_bench.py --sizes 1000000 --seeds 0 \
        --solvers multilevel --init-extent 0.12 --out results/init-extent.md
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("GIDR_BENCH_CACHE", "/tmp/gidr-anndata-bench"))
SOLVERS = ("arpack", "multilevel", "lobpcg-amg")
#: Query points for the accuracies above this size (a fixed subsample, seed 0).
QUERY_POINTS = 20_000
K = 100


# ---------------------------------------------------------------------- data
def dataset(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    import gidr

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import anndata_bench

    if n == 70_000:
        X, y = gidr.datasets.load("fashion-mnist")
        return X, np.asarray(y), "Fashion-MNIST 70,000 x 784"
    base = np.load(CACHE / "fashion-pcs.npy")
    X = np.load(CACHE / f"fashion-pcs-{n}.npy")
    if X.shape[0] != n or not np.array_equal(X[: len(base)], base):
        raise RuntimeError(f"{CACHE / f'fashion-pcs-{n}.npy'} is not anndata_bench's upsampled file")
    return X, anndata_bench._upsampled_labels(n), f"Fashion-MNIST 50 PCs upsampled to {n:,}"


def accuracies(Y: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    from sklearn.neighbors import NearestNeighbors

    n = len(Y)
    queries = (np.arange(n) if n <= 100_000
               else np.sort(np.random.default_rng(0).choice(n, QUERY_POINTS, replace=False)))
    neighbours = NearestNeighbors(n_neighbors=K + 1).fit(Y).kneighbors(Y[queries], return_distance=False)
    neighbours = np.array([row[row != q][:K] for row, q in zip(neighbours, queries)])
    codes = labels[neighbours]
    share = float(np.mean(codes == labels[queries][:, None]))
    votes = np.array([np.bincount(row, minlength=labels.max() + 1).argmax() for row in codes])
    return share, float(np.mean(votes == labels[queries]))


# ---------------------------------------------------------------------- LOBPCG + AMG (comparison only)
def lobpcg_amg_eigenmap(A, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """Eigenvectors 1..d of ``L = I - D^{-1/2} A D^{-1/2}`` by AMG-preconditioned LOBPCG."""
    import warnings

    import pyamg
    import scipy.sparse as sp
    from scipy.sparse.linalg import ArpackNoConvergence, lobpcg
    from threadpoolctl import threadpool_limits

    from gidr_numba.spectral import _normalized_adjacency
    from gidr_reference.init import fix_signs

    m = A.shape[0]
    sqrt_degree = np.sqrt(np.asarray(A.sum(axis=1)).ravel())
    L = (sp.identity(m, format="csr") - _normalized_adjacency(A)).tocsr()
    solver = pyamg.smoothed_aggregation_solver((L + 1e-5 * sp.identity(m, format="csr")).tocsr(),
                                               B=sqrt_degree[:, None])
    X = rng.standard_normal((m, n_components + 1))
    X[:, 0] = sqrt_degree
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.filterwarnings("error", message=r"(?s).*not reaching the requested tolerance")
        try:
            values, vectors = lobpcg(L, X, M=solver.aspreconditioner(), tol=1e-4, maxiter=200, largest=False)
        except UserWarning as exc:
            raise ArpackNoConvergence(f"LOBPCG: {str(exc).splitlines()[0]}", np.zeros(0), np.zeros((0, 0)))
    order = np.argsort(values)
    return fix_signs(vectors[:, order[1:n_components + 1]])


# ---------------------------------------------------------------------- one run, one process
def one(n: int, seed: int, solver: str, layout_path: str, extent: float) -> dict:
    import gidr
    import gidr_numba.spectral as spectral
    import gidr_reference.init as reference_init

    X, labels, _ = dataset(n)
    if extent > 0:  # the diagnostic: max|Y| = extent in place of the stage's rule
        reference_init.rescale = lambda Y, scale, normalized: Y * (extent / np.abs(Y).max())
    spectral.MULTILEVEL_MIN_POINTS = 1 if solver == "multilevel" else 1 << 62
    if solver == "lobpcg-amg":
        spectral.laplacian_eigenmap = lobpcg_amg_eigenmap
    layouts = []
    plain_layout = spectral.spectral_layout

    def recording(P, n_components, rng):
        layouts.append(plain_layout(P, n_components, rng))
        return layouts[-1]

    spectral.spectral_layout = recording
    result = gidr.Pipeline.from_preset("gdr-umap", random_state=seed).run(X)
    np.save(layout_path, layouts[0])
    share, vote = accuracies(np.asarray(result.embedding), labels)
    V = layouts[0] / np.linalg.norm(layouts[0], axis=0)
    return {"init s": result.timings["init"], "total s": sum(result.timings.values()),
            "peak GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "acc": share, "vote acc": vote,
            "participation": float(((V**2).sum(axis=0) ** 2 / (V**4).sum(axis=0)).min())}


def warm_up() -> dict:
    """Compile (or load from numba's cache) every kernel the timed runs use, both solvers."""
    import gidr
    import gidr_numba.spectral as spectral

    spectral.MULTILEVEL_MIN_POINTS = 1
    X = gidr.datasets.load("swiss-roll", n_samples=5000, random_state=0)[0]
    t0 = time.perf_counter()
    gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=5).run(X)
    return {"warm-up s": time.perf_counter() - t0}


def fresh(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "_one", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def canonical_correlations(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    qa = np.linalg.qr(A - A.mean(axis=0))[0]
    qb = np.linalg.qr(B - B.mean(axis=0))[0]
    return np.linalg.svd(qa.T @ qb, compute_uv=False)


# ---------------------------------------------------------------------- report
def table(rows: list[dict]) -> str:
    """The rows as a markdown table (anndata_bench's format)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from anndata_bench import _table

    return _table(rows)


def header(argv: list[str]) -> str:
    import numba

    versions = ", ".join(f"{d} {importlib.metadata.version(d)}" for d in ("gidr", "numpy", "scipy", "numba", "pyamg"))
    return (f"`python asv_bench/init_bench.py {' '.join(argv)}` on {platform.machine()}, {os.cpu_count()} CPUs "
            f"(numba {numba.get_num_threads()} threads; load average {os.getloadavg()[0]:.2f} at start), Python "
            f"{platform.python_version()}; {versions}. Each row a fresh process, numba's cache warmed by a "
            f"first process; gdr-umap preset defaults.\n")


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[70_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--solvers", nargs="+", default=["arpack", "multilevel"], choices=SOLVERS)
    parser.add_argument("--init-extent", type=float, default=0.0,
                        help="diagnostic: rescale the init to this max|Y| instead of the stage's rule (0: off)")
    parser.add_argument("--out", type=Path)
    if argv and argv[0] == "_one":
        n, seed, solver, path, extent = argv[1:]
        print(json.dumps(one(int(n), int(seed), solver, path, float(extent))))
        return
    if argv and argv[0] == "_warm":
        print(json.dumps(warm_up()))
        return
    args = parser.parse_args(argv)
    fresh_warm = subprocess.run([sys.executable, __file__, "_warm"], capture_output=True, text=True, check=True)
    print(fresh_warm.stdout.strip().splitlines()[-1], flush=True)
    lines, rows = [header(argv)], []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            for seed in args.seeds:
                layouts = {}
                for solver in args.solvers:
                    path = str(Path(tmp) / f"{n}-{seed}-{solver}.npy")
                    t0 = time.perf_counter()
                    row = {"size": n, "seed": seed, "solver": solver,
                           **fresh(str(n), str(seed), solver, path, str(args.init_extent))}
                    if args.init_extent > 0:
                        row["init max|Y|"] = args.init_extent
                    layouts[solver] = np.load(path)
                    if solver != "arpack" and "arpack" in layouts:
                        row["corr vs arpack"] = " / ".join(
                            f"{c:.4f}" for c in canonical_correlations(layouts[solver], layouts["arpack"]))
                    row["process s"] = time.perf_counter() - t0
                    rows.append(row)
                    print(table(rows).splitlines()[-1], flush=True)
    lines.append(table(rows))
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)


if __name__ == "__main__":
    main()
