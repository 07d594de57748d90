"""``gidr.tl.embed`` on AnnData: against scanpy, and its overhead over ``Pipeline.run`` at 1M cells.

Two measurements, each method in a fresh Python process (numba's on-disk cache already warm),
timed on its first call there and again on a second call in the same process:

``compare``
    scanpy's ``pp.neighbors`` (15 neighbours on ``X_pca``; exact sklearn search: scanpy 1.11.5's
    pynndescent path fails with this scipy's csr_array above 4,096 cells)
    + ``tl.umap``, and ``tl.tsne`` (on ``X_pca``), against ``gidr.tl.embed`` with ``gdr-umap``,
    ``umap`` and ``gdr-tsne``, either reusing scanpy's graph or computing gidr's own. Quality:
    ``gidr.metrics.knn_accuracy`` against the cell-type label (k = 15 on pbmc68k_reduced's 700
    cells, 100 on Fashion-MNIST) and ``gidr.metrics.trustworthiness`` (15 neighbours, 5,000
    points) against ``X_pca``. Data: scanpy's bundled ``pbmc68k_reduced`` (700 cells, 50 PCs,
    label ``bulk_labels``), and Fashion-MNIST (70,000 images reduced to 50 PCs, label in
    ``obs["label"]``); scanpy's t-SNE there runs on a 20,000-cell subset (``--tsne-cells``).
``overhead``
    ``gidr.tl.embed(adata)`` on a 1,000,000-cell AnnData whose ``obsm["X_pca"]`` holds 50
    float32 columns, against ``Pipeline.from_preset("gdr-umap", random_state=0).run`` on the same
    array, each once in a fresh process, with its peak resident memory. The million cells are
    Fashion-MNIST's 50 PCs upsampled along the data manifold: each copy of a point moves a
    uniform random fraction of the way toward one of its 15 nearest neighbours (never isotropic
    noise).

Run (heavy: alone on the machine, it is timed)::

    python asv_bench/anndata_bench.py compare --data pbmc --out results/anndata-pbmc.md
    python asv_bench/anndata_bench.py compare --data fashion --out results/anndata-fashion.md
    python asv_bench/anndata_bench.py overhead --out results/anndata-1m.md
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
import time
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("GIDR_BENCH_CACHE", "/tmp/gidr-anndata-bench"))
#: method -> (what it runs, whether scanpy's graph is in the object first)
METHODS = {
    "scanpy pp.neighbors": ("neighbors", False),
    "scanpy tl.umap": ("scanpy-umap", True),
    "gidr gdr-umap, scanpy's graph": ("gdr-umap", True),
    "gidr umap, scanpy's graph": ("umap", True),
    "gidr gdr-umap, own graph": ("gdr-umap", False),
    "scanpy tl.tsne": ("scanpy-tsne", False),
    "gidr gdr-tsne, scanpy's graph": ("gdr-tsne", True),
    "gidr gdr-tsne, own graph": ("gdr-tsne", False),
}


# ---------------------------------------------------------------------- data
def _dataset(name: str, tsne_cells: int):
    """``(path of an .h5ad with X_pca and obs['label'], path of the same with scanpy's graph)``."""
    import anndata
    import scanpy as sc

    CACHE.mkdir(parents=True, exist_ok=True)
    plain, graph = CACHE / f"{name}.h5ad", CACHE / f"{name}-graph.h5ad"
    if not plain.exists():
        if name == "pbmc":
            adata = sc.datasets.pbmc68k_reduced()
            adata = anndata.AnnData(obs={"label": adata.obs["bulk_labels"].astype(str).to_numpy()},
                                    obsm={"X_pca": adata.obsm["X_pca"]})
        else:
            adata = anndata.AnnData(obs={"label": _fashion_labels().astype(str)}, obsm={"X_pca": _fashion_pcs()})
        adata.write_h5ad(plain)
    if not graph.exists():
        adata = anndata.read_h5ad(plain)
        sc.pp.neighbors(adata, n_neighbors=15, use_rep="X_pca", random_state=0, transformer=_transformer(adata))
        adata.write_h5ad(graph)
    return plain, graph


def _fashion_pcs() -> np.ndarray:
    path = CACHE / "fashion-pcs.npy"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        from sklearn.decomposition import PCA

        import gidr

        X, _ = gidr.datasets.load("fashion-mnist")
        np.save(path, PCA(50, random_state=0).fit_transform(X).astype(np.float32))
    return np.load(path)


def _fashion_labels() -> np.ndarray:
    import gidr

    return gidr.datasets.load("fashion-mnist")[1]


def _upsampled_labels(n_cells: int) -> np.ndarray:
    """The Fashion-MNIST label of each point of :func:`_upsampled`'s ``n_cells`` (its source's,
    from the sources :func:`gidr.datasets.upsample` returned, cached beside the points)."""
    _upsampled(n_cells)
    return np.asarray(_fashion_labels())[np.load(CACHE / f"fashion-pcs-{n_cells}-source.npy")]


def _upsampled(n_cells: int) -> Path:
    """Fashion-MNIST's 50 PCs upsampled to ``n_cells`` along the manifold
    (:func:`gidr.datasets.upsample`, seed 0), cached as an .npy file with its sources beside it."""
    path, sources = CACHE / f"fashion-pcs-{n_cells}.npy", CACHE / f"fashion-pcs-{n_cells}-source.npy"
    if not (path.exists() and sources.exists()):
        from gidr.datasets import upsample

        cells, source = upsample(_fashion_pcs(), n_cells, n_neighbors=15, random_state=0)
        np.save(path, cells)
        np.save(sources, source)
    return path


# ---------------------------------------------------------------------- one method, one process
def _one(method: str, path: str, tsne_cells: int) -> dict:
    """Run ``method`` twice on the object in ``path``; times, peak memory and quality."""
    import anndata

    import gidr

    what, _ = METHODS[method]
    adata = anndata.read_h5ad(path)
    if what == "scanpy-tsne" and adata.n_obs > tsne_cells:
        adata = adata[np.random.default_rng(0).choice(adata.n_obs, tsne_cells, replace=False)].copy()
    times = []
    for _ in range(2):
        work = adata.copy()
        t0 = time.perf_counter()
        key = _call(what, work)
        times.append(time.perf_counter() - t0)
    row = {"method": method, "cells": adata.n_obs, "fresh s": times[0], "second s": times[1],
           "peak RSS GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}
    if key is not None:
        Y, labels = work.obsm[key], work.obs["label"].to_numpy()
        k = 15 if adata.n_obs < 5000 else 100
        row[f"{k}-NN accuracy"] = gidr.metrics.knn_accuracy(Y, labels, k=k)
        row["trustworthiness"] = gidr.metrics.trustworthiness(work.obsm["X_pca"], Y, n_neighbors=15)
    return row


def _call(what: str, adata) -> str | None:
    import scanpy as sc

    import gidr

    if what == "neighbors":
        sc.pp.neighbors(adata, n_neighbors=15, use_rep="X_pca", random_state=0, transformer=_transformer(adata))
        return None
    if what == "scanpy-umap":
        sc.tl.umap(adata, random_state=0)
        return "X_umap"
    if what == "scanpy-tsne":
        sc.tl.tsne(adata, use_rep="X_pca", random_state=0, n_jobs=os.cpu_count())
        return "X_tsne"
    gidr.tl.embed(adata, what)
    return "X_" + what.replace("-", "_")


def _transformer(adata) -> str | None:
    """scanpy's own choice (exact below 4,096 cells, pynndescent above), except that scanpy
    1.11.5's pynndescent path fails with scipy's csr_array ('no attribute getnnz'): exact
    sklearn search above 4,096 cells, said in the table's header."""
    return None if adata.n_obs < 4096 else "sklearn"


def _fresh(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- the overhead at 1M cells
def _overhead_one(how: str, path: str) -> dict:
    import gidr

    X = np.load(path)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    row = {"method": how, "cells": len(X)}
    if how == "Pipeline.run":
        t0 = time.perf_counter()
        Y = gidr.Pipeline.from_preset("gdr-umap", random_state=0).run(X).embedding
        row["seconds"] = time.perf_counter() - t0
    else:
        import anndata

        t0 = time.perf_counter()
        adata = anndata.AnnData(obs={"cell": np.arange(len(X)).astype(str)}, obsm={"X_pca": X})
        gidr.tl.embed(adata)
        row["seconds"] = time.perf_counter() - t0
        Y = adata.obsm["X_gdr_umap"]
        row["X_pca shares memory"] = bool(np.shares_memory(adata.obsm["X_pca"], X))
    row["peak RSS GB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    row["peak - loaded GB"] = row["peak RSS GB"] - rss_before
    np.save(CACHE / f"overhead-{how.replace('.', '_')}.npy", Y)
    return row


# ---------------------------------------------------------------------- reporting
def _table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(c for row in rows for c in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [row.get(c, "") for c in columns]
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in cells) + " |")
    return "\n".join(lines)


def _header(command: str) -> str:
    versions = ", ".join(f"{d} {importlib.metadata.version(d)}"
                         for d in ("gidr", "scanpy", "anndata", "umap-learn", "numba", "scikit-learn"))
    return (f"`{command}` on {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
            f"{versions}. Each row a fresh process (numba cache warm); 'second s' is a second call in it.\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    compare = sub.add_parser("compare")
    compare.add_argument("--data", choices=("pbmc", "fashion"), default="pbmc")
    compare.add_argument("--tsne-cells", type=int, default=20_000)
    compare.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    compare.add_argument("--out", type=Path)
    overhead = sub.add_parser("overhead")
    overhead.add_argument("--cells", type=int, default=1_000_000)
    overhead.add_argument("--out", type=Path)
    one = sub.add_parser("_one")
    one.add_argument("method")
    one.add_argument("path")
    one.add_argument("tsne_cells", type=int)
    over_one = sub.add_parser("_overhead_one")
    over_one.add_argument("how")
    over_one.add_argument("path")
    args = parser.parse_args(argv)

    if args.command == "_one":
        print(json.dumps(_one(args.method, args.path, args.tsne_cells)))
        return
    if args.command == "_overhead_one":
        print(json.dumps(_overhead_one(args.how, args.path)))
        return
    if args.command == "compare":
        plain, graph = _dataset(args.data, args.tsne_cells)
        rows = []
        for method in args.methods:
            rows.append(_fresh("_one", method, str(graph if METHODS[method][1] else plain), str(args.tsne_cells)))
            print(_table(rows[-1:]), flush=True)
    else:
        path = _upsampled(args.cells)
        rows = [_fresh("_overhead_one", how, str(path)) for how in ("Pipeline.run", "gidr.tl.embed")]
        Y_run, Y_embed = (np.load(CACHE / f"overhead-{h}.npy") for h in ("Pipeline_run", "gidr_tl_embed"))
        rows[1]["same embedding"] = bool(np.array_equal(Y_run, Y_embed))
        rows[1]["overhead %"] = 100 * (rows[1]["seconds"] / rows[0]["seconds"] - 1)
    text = _header("python asv_bench/anndata_bench.py " + " ".join(argv or sys.argv[1:])) + "\n" + _table(rows)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
