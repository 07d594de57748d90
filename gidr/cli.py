"""The ``gidr`` command.

::

    gidr embed INPUT [--preset gdr-umap] [-o emb.npy] [--plot emb.png] [--labels FILE|COLUMN]
                     [--set key=value ...] [--n-samples N] [--seed S] [--force] [--verbose]
    gidr presets
    gidr stages

INPUT is a ``.npy``, ``.npz`` or ``.csv`` file, or a dataset name (those of
:func:`gidr.datasets.load`: ``digits``, ``fashion-mnist``, ``swiss-roll``, ``blobs``; case and
``_``/``-`` do not matter). Files are never unpickled. The output's suffix says its format:
``.npy`` (``np.save``), ``.csv``, ``.tsv`` or ``.txt`` (text, comma-, tab- or space-separated);
it may not be the input file unless ``--force`` is given. Output paths are checked before
anything is computed. A bad file or argument prints one line on stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["main"]


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


#: Output suffix -> delimiter of np.savetxt (None: np.save).
_OUTPUT_FORMATS = {".npy": None, ".csv": ",", ".tsv": "\t", ".txt": " "}
#: A labels file may hold at most this many bytes per label, plus _LABELS_SLACK (a header,
#: an .npy header); more is not a labels file for this input.
_LABEL_BYTES_PER_ROW = 1024
_LABELS_SLACK = 1 << 16


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"gidr: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # GidrValueError and friends: already one clear sentence
        print(f"gidr: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gidr: error: {exc.strerror or exc}: {getattr(exc, 'filename', '')}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gidr", description="Gradient-based dimensionality reduction.")
    sub = parser.add_subparsers(dest="command", required=True)

    embed = sub.add_parser("embed", help="embed a data file or a bundled dataset")
    embed.add_argument("input", help=".npy, .npz or .csv file, or a dataset name (digits, fashion-mnist, ...)")
    embed.add_argument("--preset", default="gdr-umap", help="preset name (see `gidr presets`)")
    embed.add_argument("-o", "--output", default=None,
                       help="where to write the embedding: .npy, or text as .csv, .tsv or .txt")
    embed.add_argument("--plot", default=None, help="where to write a PNG picture of the embedding")
    embed.add_argument("--labels", default=None,
                       help="labels: a .npy/.txt/.csv file with one label per row, or a column of the input CSV")
    embed.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="any pipeline override, e.g. --set normalized=true --set n_epochs=200")
    embed.add_argument("--n-samples", type=int, default=None, help="subsample a dataset to this many points")
    embed.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    embed.add_argument("--force", "--overwrite", dest="force", action="store_true",
                       help="allow the output (or --plot) to overwrite the input file")
    embed.add_argument("--verbose", action="store_true", help="progress bar and stage timings")
    embed.set_defaults(func=_embed)

    presets = sub.add_parser("presets", help="list the presets")
    presets.set_defaults(func=_presets)
    stages = sub.add_parser("stages", help="list every registered stage and backend, plugins included")
    stages.set_defaults(func=_stages)
    return parser


def _embed(args: argparse.Namespace) -> int:
    import gidr
    from gidr.estimators import _verbosity

    if args.n_samples is not None and args.n_samples < 1:
        raise CLIError(f"--n-samples must be a positive integer, got {args.n_samples}")
    if args.seed < 0:
        raise CLIError(f"--seed must be a non-negative integer, got {args.seed}")
    output = args.output or f"{Path(args.input).stem}-{args.preset}.npy"
    _check_output_path(output, "-o/--output", args.input, args.force)
    _output_delimiter(output)
    if args.plot:
        _check_plot_path(args.plot, args.input, output, args.force)
    X, labels = _load_input(args.input, args.labels, args.n_samples, args.seed)
    overrides = dict(_parse_override(item) for item in args.overrides)
    overrides.setdefault("random_state", args.seed)
    pipeline = gidr.Pipeline.from_preset(args.preset, **overrides)
    n_epochs = pipeline.config["pipeline"].get("n_epochs") or pipeline.stages["optimizer"].default_n_epochs(len(X))
    with _verbosity(args.verbose) as progress_factory, progress_factory(n_epochs) as progress:
        result = pipeline.run(X, progress=progress)
    if args.verbose:
        print("timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items()), file=sys.stderr)
    _write_embedding(result.embedding, output)
    print(f"wrote {output} ({result.embedding.shape[0]} x {result.embedding.shape[1]})")
    if args.plot:
        from gidr.plot import save_plot

        save_plot(result.embedding, args.plot, labels=labels, title=f"{Path(args.input).stem} — {args.preset}")
        print(f"wrote {args.plot}")
    return 0


def _check_output_path(output: str, option: str, source: str, force: bool) -> None:
    """Refuse, before anything is computed, an output that cannot be written where it says:
    a directory, a missing or read-only directory, or the input file itself (unless forced)."""
    path = Path(output)
    if output in ("", ".", "..") or path.is_dir():
        raise CLIError(f"{option} {output!r} is a directory; give a file name, e.g. {os.path.join(output, 'emb.npy')!r}")
    parent = path.parent
    if not parent.is_dir():
        raise CLIError(f"{option} {output!r}: the directory {str(parent)!r} does not exist; create it first")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CLIError(f"{option} {output!r}: permission denied; choose a writable location")
    source_path = Path(source)
    if not force and source_path.is_file() and path.exists() and path.resolve() == source_path.resolve():
        raise CLIError(f"{option} {output!r} is the input file; writing there would destroy the data. "
                       f"Choose another name, or pass --force to overwrite it")


def _check_plot_path(plot: str, source: str, output: str, force: bool) -> None:
    _check_output_path(plot, "--plot", source, force)
    if Path(plot).resolve() == Path(output).resolve():
        raise CLIError(f"--plot {plot!r} is also the embedding's output file; give them different names")
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise CLIError("--plot needs matplotlib: pip install gidr[plot] (or pip install matplotlib)") from None
    suffix = Path(plot).suffix.lower().lstrip(".")
    formats = Figure().canvas.get_supported_filetypes()
    if suffix and suffix not in formats:
        raise CLIError(f"--plot {plot!r}: matplotlib cannot write {'.' + suffix!r} files; use one of "
                       + ", ".join("." + f for f in sorted(formats)))


def _presets(args: argparse.Namespace) -> int:
    from gidr.plugins import get_presets

    presets = get_presets()
    for name in presets.names():
        print(f"{name:16s} {presets.describe(name)}")
    return 0


def _stages(args: argparse.Namespace) -> int:
    from gidr.plugins import get_registry

    for cls in get_registry().entries():
        params = ", ".join(f"{p.name}={p.default!r}" for p in cls.params)
        print(f"{cls.kind:11s} {cls.name:14s} {cls.backend:10s} priority={cls.priority:<3d} {params}")
    return 0


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise CLIError(f"--set expects KEY=VALUE, got {item!r}")
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return key.strip(), lowered == "true"
    if lowered in ("none", "null"):
        return key.strip(), None
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        value = text.strip()
    if not isinstance(value, (int, float, str, bool)):
        raise CLIError(f"--set {key}: only numbers, booleans, none and strings are accepted, got {text!r}")
    return key.strip(), value


def _load_input(source: str, labels_arg: str | None, n_samples: int | None, seed: int):
    from gidr import datasets

    path = Path(source)
    if not path.exists() and datasets.canonical_name(source) is not None:
        X, y = datasets.load(source, n_samples=n_samples, random_state=seed)
        return X, (y if labels_arg is None else _load_labels_file(labels_arg, len(X)))
    if not path.exists():
        raise CLIError(f"{source!r} is neither a file nor a dataset name ({', '.join(datasets.available())})")
    suffix = path.suffix.lower()
    label_column = None
    if suffix == ".npy":
        X = _read_npy(path)
    elif suffix == ".npz":
        X = _read_npz(path)
    elif suffix == ".csv":
        X, label_column = _read_csv(path, labels_arg)
    else:
        raise CLIError(f"{path}: unsupported file type {suffix!r}; use .npy, .npz or .csv")
    labels = label_column
    if labels is None and labels_arg is not None:
        labels = _load_labels_file(labels_arg, len(X))
    if n_samples is not None and n_samples < len(X):
        rows = np.sort(np.random.default_rng(seed).choice(len(X), n_samples, replace=False))
        X = X[rows]
        labels = None if labels is None else np.asarray(labels)[rows]
    return X, labels


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise CLIError(f"{path}: cannot read as a numeric .npy file without unpickling ({exc})") from None


def _read_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.keys())
            if not names:
                raise CLIError(f"{path}: the .npz archive is empty")
            key = "X" if "X" in names else names[0]
            return archive[key]
    except ValueError as exc:
        raise CLIError(f"{path}: cannot read as a numeric .npz file without unpickling ({exc})") from None


def _read_csv(path: Path, labels_arg: str | None):
    """Read a numeric CSV (an optional header row); ``labels_arg`` may name a column."""
    import csv

    with path.open(newline="") as fh:
        rows = [row for row in csv.reader(fh) if row]
    if not rows:
        raise CLIError(f"{path}: the CSV file is empty")
    header = None
    if any(not _is_number(cell) for cell in rows[0]):
        header, rows = rows[0], rows[1:]
    label_index = None
    if labels_arg is not None and not Path(labels_arg).exists():
        if header is not None and labels_arg in header:
            label_index = header.index(labels_arg)
        elif labels_arg.isdigit() and rows and int(labels_arg) < len(rows[0]):
            label_index = int(labels_arg)
        else:
            raise CLIError(f"--labels {labels_arg!r} is neither a file nor a column of {path}")
    labels = [row[label_index] for row in rows] if label_index is not None else None
    try:
        data = [[float(cell) for k, cell in enumerate(row) if k != label_index] for row in rows]
    except ValueError as exc:
        raise CLIError(f"{path}: non-numeric value in the data columns ({exc})") from None
    if len({len(r) for r in data}) > 1:
        raise CLIError(f"{path}: rows have different numbers of columns")
    return np.asarray(data, dtype=np.float64), (None if labels is None else _maybe_numeric(labels))


def _load_labels_file(source: str, n_rows: int) -> np.ndarray:
    path = Path(source)
    if not path.exists():
        raise CLIError(f"--labels {source!r}: no such file")
    if not path.is_file():
        raise CLIError(f"--labels {source!r} is not a regular file; pass a .npy, .txt or .csv file with one label "
                       f"per row")
    size, limit = path.stat().st_size, _LABELS_SLACK + _LABEL_BYTES_PER_ROW * n_rows
    if size > limit:
        raise CLIError(f"--labels {source!r} has {size} bytes, more than a file of {n_rows} labels should "
                       f"(at most {limit}); pass a file with one label per row")
    if path.suffix.lower() == ".npy":
        labels = _read_npy(path)
    else:
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            raise CLIError(f"--labels {source!r} is not a text file; use .npy for binary labels") from None
        labels = _maybe_numeric([line.strip().split(",")[0] for line in text.splitlines() if line.strip()])
    labels = np.asarray(labels).ravel()
    if len(labels) != n_rows:
        raise CLIError(f"--labels {source!r} has {len(labels)} labels for {n_rows} rows")
    return labels


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _maybe_numeric(values: list[str]) -> np.ndarray:
    if all(_is_number(v) for v in values):
        numbers = np.asarray(values, dtype=float)
        return numbers.astype(int) if np.all(numbers == np.round(numbers)) else numbers
    return np.asarray(values)


def _output_delimiter(output: str) -> str | None:
    """np.savetxt's delimiter for ``output``'s suffix (None: .npy); an unknown suffix is an error."""
    suffix = Path(output).suffix.lower()
    if suffix not in _OUTPUT_FORMATS:
        raise CLIError(f"-o/--output {output!r}: unknown suffix {suffix or '(none)'!r}; use one of "
                       + ", ".join(_OUTPUT_FORMATS))
    return _OUTPUT_FORMATS[suffix]


def _write_embedding(Y: np.ndarray, output: str) -> None:
    """Write ``Y`` in the format ``output``'s suffix names (see :data:`_OUTPUT_FORMATS`)."""
    path = Path(output)
    delimiter = _output_delimiter(output)
    if delimiter is None:
        with path.open("wb") as fh:  # np.save(path) would append .npy to other names
            np.save(fh, Y, allow_pickle=False)
    else:
        np.savetxt(path, Y, delimiter=delimiter, fmt="%.7g")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
