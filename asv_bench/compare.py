"""Compare gidr's presets with umap-learn and openTSNE on a real dataset, as a user runs them.

Every (method, n, repeat) runs in its own fresh Python process, so imports and numba's JIT
compilation (or cache loading) are paid as a user pays them. For each run the table reports

- ``fit s``: the fit alone, timed inside the child (median over repeats), imports and the
  estimator's construction excluded; ``fit CPU s``: its user + system CPU time, all threads
  (on a busy machine it is the steadier figure);
- ``process s``: the wall time of the whole child process, imports and data loading included;
- ``peak MB``: the child's peak resident memory (``ru_maxrss``), data included (max over repeats);
- ``100-NN acc``: leave-one-out 100-NN accuracy of the embedding (:func:`gidr.metrics.knn_accuracy`);
- ``V-measure``: of a KMeans clustering of the embedding (:func:`gidr.metrics.v_measure`);
  both on every point up to 70,000 points, above that on a fixed subsample of 20,000
  (``default_rng(1).choice(n, 20000, replace=False)``; ``--score-points`` sets its size and
  applies it at every n);
- ``× vs PEER``: peer fit seconds / this row's fit seconds, same n, same invocation
  (> 1: this row is faster);
- with ``--profile``, gidr's stage timings (``Result.timings``), median over repeats, and the
  neighbours stage that ran.

With ``--warm`` each child fits twice and the second fit is the one timed and scored (a
notebook's second run: imports, JIT compilation and caches are paid); the first fit's
seconds are kept as ``first fit s``.

``--dataset fashion-mnist-pcs`` is the scaling study's data (issue #13, the paper's Fig. 5
extended): Fashion-MNIST reduced to 50 principal components, a seeded subsample up to 70,000
points and above that upsampled along the data manifold (:func:`gidr.datasets.upsample`, the
files cached by ``asv_bench/anndata_bench.py``), each new point labelled as its source.
``--figure`` draws fit seconds and peak memory against n from the report's rows::

    python asv_bench/compare.py --dataset fashion-mnist-pcs --n-samples 70000 250000 1000000 \
        --methods gdr-umap gdr-tsne umap-learn openTSNE-fft --timeout 3600 \
        --out docs/results/scaling.md --figure docs/_static/scaling.png --update

Quality is computed in the parent from the embedding each child saves. A child that fails or
times out (``--timeout``, default 1800 s) becomes a row with the error's last line; the report
is rewritten after every row. ``--update`` keeps the rows of an earlier report at ``--out``
that this invocation does not redo (to rerun only some methods). Usage::

    python asv_bench/compare.py                                  # Fashion-MNIST 20,000 and 70,000
    python asv_bench/compare.py --n-samples 20000 --profile --out results/compare-20k.md
    python asv_bench/compare.py --quick                          # digits, gidr presets, 50 epochs
    python asv_bench/compare.py --n-samples 70000 --warm --out results/compare-70k-warm.md
    python asv_bench/compare.py --n-samples 20000 --methods tsne --update --out results/compare-20k.md

umap-learn runs with ``n_jobs=-1`` and no ``random_state``: with a seed it runs single-threaded.
openTSNE runs with ``n_jobs=-1`` and ``random_state=0`` (its seed does not serialize it). gidr's
presets run with ``random_state=0``. Everything else is each library's default.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

GIDR_METHODS = ("gdr-umap", "gdr-tsne", "umap", "tsne")
PEER_METHODS = ("umap-learn", "openTSNE-fft", "openTSNE-bh")
METHODS = GIDR_METHODS + PEER_METHODS
#: Python module each peer needs.
PEER_MODULES = {"umap-learn": "umap", "openTSNE-fft": "openTSNE", "openTSNE-bh": "openTSNE"}
#: Peers that get a "× vs" column, when they are among the methods run.
RATIO_PEERS = PEER_METHODS
STAGES = ("neighbors", "similarity", "symmetrize", "init", "optimize")
DATASETS = ("fashion-mnist", "fashion-mnist-pcs", "digits", "blobs")
DEFAULT_N_SAMPLES = {"fashion-mnist": [20_000, 70_000], "fashion-mnist-pcs": [70_000, 250_000, 1_000_000]}
#: Above this many points, quality is scored on a fixed subsample of SCORE_POINTS (--score-points).
SCORE_ALL_UP_TO = 70_000
SCORE_POINTS = 20_000
QUICK_N_EPOCHS = 50
DEFAULT_TIMEOUT = 1800.0


# ====================================================================== child side
def build(method: str, n_epochs: int | None) -> Callable[[np.ndarray], tuple[np.ndarray, dict]]:
    """Import and configure ``method``; return ``fit(X) -> (embedding, details)``.

    ``details`` is {} for the peers; for gidr, ``timings`` (seconds per stage) and ``stages``
    (the stage name and backend that ran, per kind).

    Imports and estimator construction happen here, outside the timed fit; JIT compilation
    or cache loading on the first call is part of the fit, for every library alike.
    """
    if method in GIDR_METHODS:
        import gidr

        overrides = {"random_state": 0}
        if n_epochs is not None:
            overrides["n_epochs"] = n_epochs
        pipeline = gidr.Pipeline.from_preset(method, **overrides)

        def fit_gidr(X):
            result = pipeline.run(X)
            resolved = result.config["resolved"]["backends"]
            stages = {kind: f"{result.config[kind]['name']} ({backend})" for kind, backend in resolved.items()}
            # what the optimizer's pair-interaction rate is computed from (docs/scaling.rst)
            work = {"stored_entries": int(result.affinities.P.nnz),
                    "epochs_run": result.config["resolved"].get("epochs_run"),
                    "n_negative": result.config["repulsion"].get("n_negative")}
            return np.asarray(result), {"timings": dict(result.timings), "stages": stages, "work": work}

        return fit_gidr
    if method == "umap-learn":
        import umap

        # No random_state: umap-learn turns its parallel SGD off when given one.
        reducer = umap.UMAP(n_jobs=-1)
        return lambda X: (reducer.fit_transform(X), {})
    if method in ("openTSNE-fft", "openTSNE-bh"):
        import openTSNE

        gradient = method.split("-")[1]
        tsne = openTSNE.TSNE(n_jobs=-1, negative_gradient_method=gradient, random_state=0)
        return lambda X: (np.asarray(tsne.fit(X)), {})
    raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")


def _peak_rss_mb() -> float:
    """This process's peak resident memory in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_one(method: str, data: Path, out_prefix: Path, n_epochs: int | None, profile: bool,
            warm: bool = False) -> None:
    """Child entry point: load ``data``, fit (twice when ``warm``: the second is timed), save
    ``out_prefix``.npy and ``out_prefix``.json."""
    if profile and method in GIDR_METHODS:
        import logging

        # gidr's stage lines (time, peak memory) and progress with time left, in the child's log
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    X = np.load(data, allow_pickle=False)
    fit = build(method, n_epochs)
    first = {}
    if warm:
        start = time.perf_counter()
        fit(X)
        first = {"first_fit_seconds": time.perf_counter() - start}
    cpu_start, start = _cpu_seconds(), time.perf_counter()
    Y, details = fit(X)
    fit_seconds, fit_cpu_seconds = time.perf_counter() - start, _cpu_seconds() - cpu_start
    np.save(out_prefix.with_suffix(".npy"), np.ascontiguousarray(Y, dtype=np.float64), allow_pickle=False)
    record = {"method": method, "n": int(X.shape[0]), "fit_seconds": fit_seconds,
              "fit_cpu_seconds": fit_cpu_seconds, "peak_mb": _peak_rss_mb(), **first, **details}
    out_prefix.with_suffix(".json").write_text(json.dumps(record))
    if profile and details:
        print("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in details["timings"].items()), flush=True)
        print("stages: " + ", ".join(f"{k} {v}" for k, v in details["stages"].items()), flush=True)


# ====================================================================== parent: one child
def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _spawn(command: list[str], log: Path, timeout: float) -> tuple[int | None, float]:
    """Run ``command`` in its own session with output to ``log``; return (exit code or None, seconds)."""
    start = time.perf_counter()
    with open(log, "wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # the child's whole group: its own session
            child.wait()
            code = None
    return code, time.perf_counter() - start


def run_child(method: str, data: Path, workdir: Path, tag: str, options: argparse.Namespace) -> dict:
    """Run ``method`` on ``data`` in a fresh interpreter; return one run's record.

    The record has ``status`` ("ok", "failed", "timeout"), ``process_seconds`` and, when ok,
    the child's ``fit_seconds``, ``peak_mb``, ``timings`` and the ``embedding`` path.
    """
    prefix = workdir / tag
    command = [sys.executable, str(Path(__file__).resolve()), "--run-one", method,
               "--data", str(data), "--child-out", str(prefix)]
    if options.n_epochs is not None and method in GIDR_METHODS:
        command += ["--n-epochs", str(options.n_epochs)]
    if options.profile:
        command.append("--profile")
    if options.warm:
        command.append("--warm")
    log = prefix.with_suffix(".log")
    load = os.getloadavg()[0]
    code, seconds = _spawn(command, log, options.timeout)
    record = {"process_seconds": seconds, "load_average": load}
    if code is None:
        return {**record, "status": "timeout", "error": f"timeout after {options.timeout:g} s"}
    if code != 0 or not prefix.with_suffix(".json").is_file():
        return {**record, "status": "failed", "error": f"exit {code}: {_last_line(log)}"}
    if options.profile:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith(("timings: ", "stages: ")):
                print(f"    {method}: {line}", file=sys.stderr)
    child = json.loads(prefix.with_suffix(".json").read_text())
    return {**record, **child, "status": "ok", "embedding": str(prefix.with_suffix(".npy"))}


def score_subsample(n: int, points: int | None) -> np.ndarray | None:
    """The rows quality is scored on: None (all) up to :data:`SCORE_ALL_UP_TO` points when
    ``points`` is None, else a fixed seeded subsample of ``points`` (or of :data:`SCORE_POINTS`)."""
    if points is None:
        if n <= SCORE_ALL_UP_TO:
            return None
        points = SCORE_POINTS
    if points >= n:
        return None
    return np.sort(np.random.default_rng(1).choice(n, points, replace=False))


def score(record: dict, labels: np.ndarray, points: int | None = None) -> dict:
    """Add ``knn_accuracy`` and ``v_measure`` of the saved embedding to an ok record (on the
    rows of :func:`score_subsample`; ``scored_points`` says how many)."""
    from gidr.metrics import knn_accuracy, v_measure

    if record["status"] != "ok":
        return record
    Y = np.load(record.pop("embedding"), allow_pickle=False)
    if not np.all(np.isfinite(Y)):
        return {**record, "status": "failed", "error": "embedding is not finite"}
    rows = score_subsample(len(Y), points)
    if rows is not None:
        Y, labels = Y[rows], np.asarray(labels)[rows]
    return {**record, "knn_accuracy": knn_accuracy(Y, labels, k=100), "v_measure": v_measure(Y, labels),
            "scored_points": int(len(Y))}


# ====================================================================== parent: aggregation
def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarize(method: str, n: int, runs: list[dict]) -> dict:
    """One table row from a method's repeats: medians, max peak memory, first error."""
    ok = [r for r in runs if r["status"] == "ok"]
    row = {"method": method, "n": n, "status": "ok" if ok else runs[0]["status"], "runs": runs,
           "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
           "n_ok": len(ok), "error": next((r["error"] for r in runs if r.get("error")), "")}
    if not ok:
        return row
    row.update(fit_seconds=_median(ok, "fit_seconds"), fit_cpu_seconds=_median(ok, "fit_cpu_seconds"),
               process_seconds=_median(ok, "process_seconds"),
               peak_mb=max(r["peak_mb"] for r in ok), knn_accuracy=_median(ok, "knn_accuracy"),
               v_measure=_median(ok, "v_measure"), first_fit_seconds=_median(ok, "first_fit_seconds"),
               scored_points=ok[0].get("scored_points"))
    if ok[0].get("timings"):
        row["timings"] = {k: statistics.median(r["timings"][k] for r in ok) for k in ok[0]["timings"]}
        row["stages"] = ok[0]["stages"]
        row["work"] = ok[0].get("work")
    return row


def add_ratios(rows: list[dict]) -> None:
    """Set ``row["ratios"][peer]`` = peer fit seconds / row fit seconds, same n."""
    fit = {(r["method"], r["n"]): r.get("fit_seconds") for r in rows}
    for row in rows:
        row["ratios"] = {}
        for peer in RATIO_PEERS:
            peer_fit = fit.get((peer, row["n"]))
            if peer_fit and row.get("fit_seconds"):
                row["ratios"][peer] = peer_fit / row["fit_seconds"]


# ====================================================================== environment
def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def environment() -> dict:
    """Machine, library versions and date, for the header line and the JSON."""
    return {
        "cores": os.cpu_count(), "cpu": _cpu_model(), "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in ("gidr", "numba", "umap-learn", "openTSNE", "numpy")},
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


# ====================================================================== output
def _fmt(value: float | None, digits: int) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def table_columns(rows: list[dict], profile: bool) -> tuple[list[str], list[str]]:
    """(ratio peers shown, stage columns shown)."""
    methods = {r["method"] for r in rows}
    peers = [p for p in RATIO_PEERS if p in methods]
    stages = list(STAGES) if profile and any(r.get("timings") for r in rows) else []
    return peers, stages


def _row_cells(row: dict, peers: list[str], stages: list[str], warm: bool = False) -> list[str]:
    get = row.get
    cells = [row["method"], f"{row['n']:,}", _fmt(get("fit_seconds"), 1), _fmt(get("fit_cpu_seconds"), 1),
             _fmt(get("process_seconds"), 1), _fmt(get("peak_mb"), 0), _fmt(get("knn_accuracy"), 3),
             _fmt(get("v_measure"), 3)]
    cells += [_fmt(row.get("ratios", {}).get(p), 2) for p in peers]
    if warm:
        cells.append(_fmt(get("first_fit_seconds"), 1))
    cells += [_fmt(row.get("timings", {}).get(s), 1) for s in stages]
    note = row["error"].replace("|", "\\|")
    if stages and row.get("stages"):
        note = f"neighbors: {row['stages']['neighbors']}"
    if row["status"] == "ok" and row["n_ok"] < len(row["runs"]):
        note = f"{len(row['runs']) - row['n_ok']} of {len(row['runs'])} runs failed: {note}"
    return cells + [note]


def _load_range(rows: list[dict]) -> str:
    loads = [r["load_average"] for row in rows for r in row["runs"] if "load_average" in r]
    return f"{min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} cores" if loads else "—"


NOTES = (
    "fit s: the fit alone, timed in the child; fit CPU s: its user + system CPU time, all threads. "
    "process s: the whole fresh process (imports, JIT or cache loading, data loading, fit, saving). "
    "peak MB: the child's max RSS, data included. "
    "× vs PEER = PEER fit s / this row's fit s (> 1: this row is faster). "
    "umap-learn: n_jobs=-1, no random_state (a seed makes it single-threaded); "
    "openTSNE: n_jobs=-1, random_state=0; gidr presets: random_state=0."
)


def markdown(rows: list[dict], env: dict, options: argparse.Namespace) -> str:
    """The report: a header line, the table, and notes."""
    peers, stages = table_columns(rows, options.profile)
    v = env["versions"]
    header = (f"Machine: {env['cores']} cores, {env['cpu']}; gidr {v['gidr']}, numba {v['numba']}, "
              f"umap-learn {v['umap-learn']}, openTSNE {v['openTSNE']}; {env['date']}")
    epochs = f"n_epochs={options.n_epochs} for the gidr presets" if options.n_epochs else "default epochs"
    if options.warm:
        epochs += "; warm: each child fits twice, the second fit is timed and scored"
    names = (["method", "n", "fit s", "fit CPU s", "process s", "peak MB", "100-NN acc", "V-measure"]
             + [f"× vs {p}" for p in peers] + (["first fit s"] if options.warm else [])
             + [f"{s} s" for s in stages] + ["note"])
    align = ["---"] + ["---:"] * (len(names) - 2) + ["---"]
    lines = [header, "",
             f"Dataset: {options.dataset}; {options.repeats} repeat(s), median shown; {epochs}; "
             f"1-min load average before each run: {_load_range(rows)}.", "",
             "| " + " | ".join(names) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_row_cells(r, peers, stages, options.warm)) + " |" for r in rows]
    if len({r.get("date", "")[:10] for r in rows}) > 1 or options.update:
        lines += ["", "Rows measured at different times (--update): "
                  + "; ".join(f"{r['method']} {r['n']:,}: {r.get('date', '?')}" for r in rows) + "."]
    subsampled = sorted({(r["n"], r["scored_points"]) for r in rows
                         if r.get("scored_points") is not None and r["scored_points"] < r["n"]})
    if subsampled:
        lines += ["", "Quality scored on a fixed subsample (default_rng(1), without replacement): "
                  + "; ".join(f"{points:,} of {n:,} points" for n, points in subsampled) + "."]
    return "\n".join(lines + ["", NOTES]) + "\n"


def write_outputs(rows: list[dict], env: dict, options: argparse.Namespace) -> str:
    """Write the markdown to ``options.out`` and the raw numbers next to it (.json)."""
    text = markdown(rows, env, options)
    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    arguments = {k: v for k, v in vars(options).items() if not k.startswith("run_one") and k != "child_out"}
    raw = {"environment": env, "arguments": arguments, "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(raw, indent=2, default=str))
    return text


# ====================================================================== parent: driver
def load_data(dataset: str, n: int | None) -> tuple[np.ndarray | Path, np.ndarray]:
    """``gidr.datasets.load(dataset, n_samples=n, random_state=0)``, or :func:`pcs_data` (a
    cached file's path for upsampled sizes)."""
    from gidr.datasets import load

    if dataset == "fashion-mnist-pcs":
        return pcs_data(n)
    return load(dataset, n_samples=n, random_state=0)


def pcs_data(n: int | None) -> tuple[np.ndarray | Path, np.ndarray]:
    """Fashion-MNIST's 50 PCs at ``n`` points: ``(array, labels)`` for a seeded subsample (all
    70,000 when ``n`` is None), ``(cached .npy path, labels)`` when upsampled."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import anndata_bench

    pcs, labels = anndata_bench._fashion_pcs(), np.asarray(anndata_bench._fashion_labels())
    if n is None or n == len(pcs):
        return pcs, labels
    if n < len(pcs):
        rows = np.sort(np.random.default_rng(0).choice(len(pcs), n, replace=False))
        return pcs[rows], labels[rows]
    return anndata_bench._upsampled(n), anndata_bench._upsampled_labels(n)


def previous_rows(options: argparse.Namespace) -> list[dict]:
    """With ``--update``: the rows of the JSON next to ``--out`` that match this dataset, else []."""
    raw_path = Path(options.out).with_suffix(".json")
    if not options.update or not raw_path.is_file():
        return []
    raw = json.loads(raw_path.read_text())
    if raw["arguments"]["dataset"] != options.dataset or raw["arguments"]["n_epochs"] != options.n_epochs:
        sys.exit(f"--update: {raw_path} holds another dataset or n_epochs; use another --out")
    return raw["rows"]


def merge(previous: list[dict], new: list[dict]) -> list[dict]:
    """Rows by (method, n), new ones replacing previous ones; ordered by n, then method."""
    rows = {(r["method"], r["n"]): r for r in [*previous, *new]}
    return sorted(rows.values(), key=lambda r: (r["n"], METHODS.index(r["method"])))


def compare(options: argparse.Namespace) -> str:
    """Run every method on every size; write the report after each row; return its markdown."""
    env = environment()
    previous, new = previous_rows(options), []
    text = ""
    sizes = options.n_samples or DEFAULT_N_SAMPLES.get(options.dataset, [None])
    with tempfile.TemporaryDirectory(prefix="gidr-compare-") as tmp:
        workdir = Path(tmp)
        for n in sizes:
            X, labels = load_data(options.dataset, n)
            if isinstance(X, Path):
                data = X  # the upsampled data's cached file itself: no copy of millions of rows
            else:
                n = X.shape[0]
                data = workdir / f"X-{n}.npy"
                np.save(data, X, allow_pickle=False)
            del X
            for method in options.methods:
                new.append(_run_method(method, n, data, labels, workdir, options))
                rows = merge(previous, new)
                add_ratios(rows)
                text = write_outputs(rows, env, options)
                if options.figure:
                    scaling_figure(rows, Path(options.figure))
    return text


def _run_method(method: str, n: int, data: Path, labels: np.ndarray, workdir: Path,
                options: argparse.Namespace) -> dict:
    module = PEER_MODULES.get(method)
    if module is not None and importlib.util.find_spec(module) is None:
        print(f"{method} n={n}: not installed", file=sys.stderr)
        return summarize(method, n, [{"status": "not installed", "error": "not installed"}])
    runs = []
    for repeat in range(options.repeats):
        record = score(run_child(method, data, workdir, f"{method}-{n}-{repeat}", options), labels,
                       options.score_points)
        runs.append(record)
        detail = (f"fit {record['fit_seconds']:.1f} s, process {record['process_seconds']:.1f} s, "
                  f"acc {record['knn_accuracy']:.3f}" if record["status"] == "ok" else record["error"])
        print(f"{method} n={n} repeat {repeat + 1}/{options.repeats}: {detail}", file=sys.stderr, flush=True)
    return summarize(method, n, runs)


def scaling_figure(rows: list[dict], path: Path) -> None:
    """Fit seconds and peak memory against n, one line per method (log-log); failed or timed-out
    runs are marked where they stopped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for method in [m for m in METHODS if any(r["method"] == m for r in rows)]:
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["n"])
        ok = [r for r in mine if r["status"] == "ok"]
        if ok:
            line, = left.plot([r["n"] for r in ok], [r["fit_seconds"] for r in ok], "o-", label=method)
            right.plot([r["n"] for r in ok], [r["peak_mb"] / 1024 for r in ok], "o-", color=line.get_color(),
                       label=method)
            color = line.get_color()
        else:
            color = "gray"
        for r in mine:
            if r["status"] == "timeout":
                seconds = max(run["process_seconds"] for run in r["runs"])
                left.plot([r["n"]], [seconds], "x", color=color, markersize=10)
                left.annotate("stopped", (r["n"], seconds), fontsize=7, color=color)
    for axis, label in ((left, "fit seconds"), (right, "peak memory, GiB")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("points")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASETS, default=None,
                        help="fashion-mnist (default), or digits / blobs for a fast run")
    parser.add_argument("--n-samples", type=int, nargs="+", default=None,
                        help="sizes (seeded subsamples); default 20000 70000 for fashion-mnist, else all")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=None,
                        help=f"default: all ({' '.join(METHODS)}); with --quick: the gidr presets")
    parser.add_argument("--repeats", type=int, default=1, help="fresh processes per method and size")
    parser.add_argument("--out", default="results/compare.md",
                        help="markdown report; the raw numbers go next to it (.json)")
    parser.add_argument("--quick", action="store_true",
                        help=f"digits, gidr presets only, n_epochs={QUICK_N_EPOCHS}, 1 repeat")
    parser.add_argument("--profile", action="store_true", help="show gidr's stage timings")
    parser.add_argument("--n-epochs", type=int, default=None, help="n_epochs override for the gidr presets")
    parser.add_argument("--warm", action="store_true",
                        help="fit twice in each child and time the second fit (the first: 'first fit s')")
    parser.add_argument("--update", action="store_true",
                        help="keep the rows of an earlier report at --out that this run does not redo")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per child process")
    parser.add_argument("--score-points", type=int, default=None,
                        help=f"score quality on a fixed subsample of this many points at every n (default: "
                             f"all points up to {SCORE_ALL_UP_TO:,}, {SCORE_POINTS:,} above)")
    parser.add_argument("--figure", default=None,
                        help="also draw fit seconds and peak memory against n (log-log) to this image")
    parser.add_argument("--run-one", metavar="METHOD", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.quick:
        options.dataset = options.dataset or "digits"
        options.methods = options.methods or list(GIDR_METHODS)
        options.n_epochs = options.n_epochs or QUICK_N_EPOCHS
        options.repeats = 1
    options.dataset = options.dataset or "fashion-mnist"
    options.methods = options.methods or list(METHODS)
    if options.score_points is not None and options.score_points < 101:
        parser.error("--score-points must be at least 101 (100-NN accuracy)")
    if options.repeats < 1 or (options.n_epochs is not None and options.n_epochs < 1):
        parser.error("--repeats and --n-epochs must be at least 1")
    if options.run_one and (options.data is None or options.child_out is None):
        parser.error("--run-one needs --data and --child-out")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    if options.run_one:
        run_one(options.run_one, options.data, options.child_out, options.n_epochs, options.profile, options.warm)
        return 0
    print(compare(options), end="")
    print(f"written: {options.out} and {Path(options.out).with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
