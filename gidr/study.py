"""Reproduce the paper's experiments: ``python -m gidr.study [--dataset NAME] [--quick]``.

Writes markdown tables and PNG figures into ``--out`` (default ``results/``), and their
numbers into ``summary.json`` (a later run with the same data and ``--skip`` keeps the
numbers of the experiments it skips):

- ``table5.md``: 100-NN accuracy and V-measure for ``umap``, ``gdr-umap``, ``tsne`` and
  ``gdr-tsne``, each with its original setting and with each Table 2 switch flipped;
- ``table6.md`` / ``fig4_runtimes.png``: runtimes of our presets, and of umap-learn and
  openTSNE when installed;
- ``fig5_scaling.png``: runtime against n (down-sampled, or up-sampled with noise);
- ``fig3_angles.png``: mean angle between Barnes-Hut and sampled repulsion during training;
- ``table7_normalization.png``: embeddings of each algorithm under each normalization.

It runs on digits by default, on Fashion-MNIST with ``--dataset fashion-mnist``. ``--quick``
shrinks every experiment so that CI can run it in about a minute.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from gidr import datasets
from gidr.metrics import knn_accuracy, v_measure
from gidr.pipeline import Pipeline

ALGORITHMS = ["umap", "gdr-umap", "tsne", "gdr-tsne"]
#: Table 2's switches, as "flip this one" functions of a pipeline's configuration.
SWITCHES = ["frobenius", "initialization", "pseudo_distance", "symmetrization", "sym_attraction", "scalars"]


def flipped(preset: str, switch: str) -> dict:
    """The single override that flips ``switch`` on ``preset`` (Table 2's swapped setting)."""
    config = Pipeline.from_preset(preset).config
    if switch == "frobenius":
        return {"loss": "frobenius"}
    if switch == "initialization":
        return {"init": "spectral" if config["init"]["name"] != "spectral" else "random"}
    if switch == "pseudo_distance":
        return {"pseudo_distance": not config["similarity"]["pseudo_distance"]}
    if switch == "symmetrization":
        return {"symmetrize": "mean" if config["symmetrize"]["name"] == "fuzzy_union" else "fuzzy_union"}
    if switch == "sym_attraction":
        return {"symmetric_attraction": not config["optimizer"]["symmetric_attraction"]}
    if switch == "scalars":
        return {"scalars": "one" if config["pipeline"].get("scalars", "fit") == "fit" else "fit"}
    raise ValueError(f"unknown switch {switch!r}")


def table5(X, y, n_epochs, seed=0) -> tuple[str, dict]:
    """kNN accuracy (k=100) and V-measure for each algorithm × swapped setting."""
    scores = {}
    for algorithm in ALGORITHMS:
        for switch in ["original", *SWITCHES]:
            overrides = {} if switch == "original" else flipped(algorithm, switch)
            try:
                pipeline = Pipeline.from_preset(algorithm, random_state=seed, n_epochs=n_epochs, **overrides)
            except ValueError as exc:
                scores[algorithm, switch] = (None, None, str(exc).split(".")[0])
                continue
            Y = np.asarray(pipeline.run(X))
            scores[algorithm, switch] = (100 * knn_accuracy(Y, y, k=100), 100 * v_measure(Y, y), "")
    lines = []
    for metric, col in (("kNN accuracy (k = 100)", 0), ("V-measure", 1)):
        lines += [f"### {metric}", "", "| algorithm | original | " + " | ".join(SWITCHES) + " | mean ± sd |",
                  "|---" * (len(SWITCHES) + 3) + "|"]
        for algorithm in ALGORITHMS:
            values = [scores[algorithm, s][col] for s in ["original", *SWITCHES]]
            finite = [v for v in values if v is not None]
            cells = ["n/a" if v is None else f"{v:.1f}" for v in values]
            lines.append(f"| {algorithm} | " + " | ".join(cells) +
                         f" | {np.mean(finite):.1f} ± {np.std(finite):.1f} |")
        lines.append("")
    notes = sorted({f"- {a} × {s}: {why}" for (a, s), (_, _, why) in scores.items() if why})
    if notes:
        lines += ["Not applicable:", *notes, ""]
    return "\n".join(lines), {f"{a}|{s}": v[:2] for (a, s), v in scores.items()}


def _timed_run_in_fresh_process(method: str, X_path: Path, n_epochs: int | None) -> float:
    code = f"""
import time, numpy as np
X = np.load({str(X_path)!r})
t0 = time.perf_counter()
method = {method!r}
if method == "umap-learn":  # no random_state: umap-learn runs its SGD on one thread when seeded
    import umap; umap.UMAP(n_jobs=-1).fit_transform(X)
elif method.startswith("openTSNE"):
    import openTSNE
    openTSNE.TSNE(negative_gradient_method=method.split("-")[1], n_jobs=-1, random_state=0).fit(X)
else:
    import gidr; gidr.Pipeline.from_preset(method, random_state=0, n_epochs={n_epochs!r}).run(X)
print(time.perf_counter() - t0)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def runtimes(X, out: Path, methods, n_epochs=None, repeats=1) -> tuple[str, dict]:
    """Median wall time of each method, each run in a fresh process (import excluded)."""
    X_path = out / "_X.npy"
    np.save(X_path, X)
    times = {}
    for method in methods:
        try:
            times[method] = float(np.median([_timed_run_in_fresh_process(method, X_path, n_epochs)
                                             for _ in range(repeats)]))
        except subprocess.CalledProcessError as exc:
            times[method] = None
            print(f"{method} failed: {exc.stderr.strip().splitlines()[-1] if exc.stderr else exc}")
    X_path.unlink()
    lines = ["| method | seconds |", "|---|---|"]
    lines += [f"| {m} | {'n/a' if t is None else f'{t:.2f}'} |" for m, t in times.items()]
    return "\n".join(lines) + "\n", times


def scaling(X, out: Path, sizes, methods, n_epochs) -> dict:
    """Runtime against n: seeded subsamples up to the data's size, above it the data upsampled
    along its manifold (:func:`gidr.datasets.upsample`; never noisy copies, whose neighbours
    are each other)."""
    from gidr.datasets import upsample

    rng = np.random.default_rng(0)
    largest = max(sizes)
    grown = upsample(X, largest, random_state=0)[0] if largest > len(X) else X
    results = {m: [] for m in methods}
    for n in sizes:
        # Each size above the data's is a prefix of the largest: the originals, then new points.
        Xn = grown[:n] if n > len(X) else X[np.sort(rng.choice(len(X), n, replace=False))]
        _, times = runtimes(Xn, out, methods, n_epochs)
        for m in methods:
            results[m].append(times[m])
    return results


def repulsion_angles(X, n_epochs, every, seed=0) -> dict:
    """Mean angle (radians) between Barnes-Hut and sampled repulsion during gdr-tsne training."""
    from gidr.plugins import get_registry
    from gidr.types import Context

    pipeline = Pipeline.from_preset("gdr-tsne", random_state=seed, n_epochs=n_epochs)
    loss = pipeline.stages["loss"]
    registry = get_registry()
    bh = registry.get("repulsion", "barnes_hut")(theta=0.5)
    sampled = registry.get("repulsion", "sampled")(n_negative=1)
    angles = []

    def callback(epoch, _loss, Y):
        ctx = Context(n_samples=len(Y), normalized=True, seed=seed)
        n_edges = np.full(len(Y), 15)
        a = bh.estimate(Y, loss, ctx, epoch).channels[0]
        b = sampled.estimate(Y, loss, ctx, epoch, n_edges).channels[0]
        cos = np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)
        angles.append((epoch, float(np.mean(np.arccos(np.clip(cos, -1, 1))))))

    pipeline.run(X, callback=callback, callback_every=every)
    return dict(angles)


def normalization_grid(X, y, out: Path, n_epochs, seed=0) -> Path:
    """Table 7: tsne, umap and gdr each with normalized=True and False, spectral init."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gidr.plot import plot

    rows = [("tsne", "tsne"), ("umap", "umap"), ("gdr", "gdr-umap")]
    fig, axes = plt.subplots(len(rows), 2, figsize=(9, 4.5 * len(rows)))
    for r, (label, preset) in enumerate(rows):
        for c, normalized in enumerate((True, False)):
            ax = axes[r, c]
            overrides = dict(normalized=normalized, init="spectral", random_state=seed, n_epochs=n_epochs)
            if preset == "umap" and normalized:
                overrides["optimizer"] = "gdr"  # umap_sgd cannot normalize (paper §5.1 does the same)
            if preset == "tsne" and not normalized:
                overrides["optimizer"] = "gdr"  # the t-SNE optimizer is defined for normalized P only
            try:
                Y = np.asarray(Pipeline.from_preset(preset, **overrides).run(X))
                plot(Y, y, ax=ax, legend=False)
            except ValueError as exc:
                ax.text(0.5, 0.5, str(exc).split(".")[0], ha="center", wrap=True)
                ax.set_axis_off()
            ax.set_title(f"{label}, {'t-SNE' if normalized else 'UMAP'} normalization")
    path = out / "table7_normalization.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _line_plot(path: Path, xs, series: dict, xlabel: str, ylabel: str, logy=False) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, ys in series.items():
        pts = [(x, v) for x, v in zip(xs, ys) if v is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bar_plot(path: Path, times: dict, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m for m, t in times.items() if t is not None]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh(names, [times[m] for m in names], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel("seconds (fresh process, import excluded)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gidr.study", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=datasets.available())
    parser.add_argument("--n-samples", type=int, default=None)
    parser.add_argument("--out", default="results")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few epochs (CI smoke run)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="fresh processes per method for Table 6 (median; default 3, 1 with --quick)")
    parser.add_argument("--scaling-sizes", type=int, nargs="+", default=None,
                        help="sizes for Fig. 5 (default n/4, n/2, n, 2n)")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["table5", "runtimes", "scaling", "angles", "grid"])
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.scaling_sizes is not None and min(args.scaling_sizes) < 2:
        parser.error("--scaling-sizes must be at least 2 each")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_samples = args.n_samples or (300 if args.quick else None)
    X, y = datasets.load(args.dataset, n_samples=n_samples, random_state=0)
    X = np.asarray(X, dtype=np.float32 if X.shape[1] > 100 else np.float64)
    n_epochs = 30 if args.quick else None
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if (summary.get("dataset"), summary.get("n_samples"), summary.get("quick", False)) != \
            (args.dataset, len(X), args.quick):
        summary = {}  # results of another dataset, size or mode: start afresh
    summary.update(dataset=args.dataset, n_samples=len(X), quick=args.quick)
    if "table5" not in args.skip:
        text, summary["table5"] = table5(X, y, n_epochs)
        (out / "table5.md").write_text(f"# Table 5 on {args.dataset} (n = {len(X)})\n\n{text}")
    methods = ["gdr-umap", "gdr-tsne", "umap", "tsne", "umap-learn", "openTSNE-fft", "openTSNE-bh"]
    if "runtimes" not in args.skip:
        available = [m for m in methods if _peer_installed(m)]
        text, summary["runtimes"] = runtimes(X, out, available, n_epochs,
                                               repeats=args.repeats or (1 if args.quick else 3))
        (out / "table6.md").write_text(f"# Runtimes on {args.dataset} (n = {len(X)}), seconds, fresh process, "
                                       f"import excluded\n\n{text}")
        _bar_plot(out / "fig4_runtimes.png", summary["runtimes"], f"{args.dataset}, n = {len(X)}")
    if "scaling" not in args.skip:
        sizes = args.scaling_sizes or ([100, 200, 400] if args.quick else
                                       [len(X) // 4, len(X) // 2, len(X), 2 * len(X)])
        series = scaling(X, out, sizes, ["gdr-umap", "gdr-tsne", "umap", "tsne"], n_epochs)
        summary["scaling"] = {"sizes": sizes, **series}
        _line_plot(out / "fig5_scaling.png", sizes, series, "n", "seconds", logy=True)
    if "angles" not in args.skip:
        angles = repulsion_angles(X, n_epochs or 500, every=5 if args.quick else 25)
        summary["angles"] = angles
        _line_plot(out / "fig3_angles.png", list(angles), {"BH vs sampled": list(angles.values())}, "epoch",
                   "mean angle (rad)")
    if "grid" not in args.skip:
        normalization_grid(X, y, out, n_epochs)
    summary_path.write_text(json.dumps(summary, indent=1, default=str))
    print(f"wrote {out}/")
    return 0


def _peer_installed(method: str) -> bool:
    import importlib.util

    if method == "umap-learn":
        return importlib.util.find_spec("umap") is not None
    if method.startswith("openTSNE"):
        return importlib.util.find_spec("openTSNE") is not None
    return True


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
