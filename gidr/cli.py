"""The ``gidr`` command.

::

    gidr embed INPUT [--preset gdr-umap] [-o emb.npy] [--plot emb.png] [--html map.html]
                     [--labels FILE|COLUMN] [--columns COL,COL] [--use-rep KEY] [--key-added KEY]
                     [--set key=value ...] [--n-samples N] [--seed S] [--force] [--verbose]
    gidr presets
    gidr stages

INPUT is a ``.npy`` or ``.npz`` file, a table (``.csv``, ``.tsv``/``.tab``, or ``.parquet``,
which needs ``pip install gidr[tables]``), an AnnData ``.h5ad`` file (``pip install
gidr[anndata]``), or a dataset name (those of :func:`gidr.datasets.load`: ``digits``,
``fashion-mnist``, ``swiss-roll``, ``blobs``; case and ``_``/``-`` do not matter). Files are
never unpickled. A table's columns are the features, except the ``--labels`` column; a text
column that is not the labels is refused. ``--columns`` names further columns (of the table, or
``obs`` columns of an ``.h5ad``) shown when hovering a point of the ``--html`` map.

An ``.h5ad`` input goes through :func:`gidr.tl.embed`: the representation is ``obsm["X_pca"]``
when present (``--use-rep`` picks another, ``X`` included), a ``scanpy.pp.neighbors`` graph in
the file is reused, and ``--labels`` names an ``obs`` column. ``-o cells.h5ad`` (the input
itself, the documented way, no ``--force`` needed) or ``-o other.h5ad`` writes the object with
the map added as ``obsm["X_<key>"]`` (``--key-added``; default the preset's name with ``-``
as ``_``), through a temporary file and an atomic rename, so that a failure leaves the input
as it was. The input is opened backed, so ``X`` is not loaded unless it is the representation.

The output's suffix says its format: ``.npy`` (``np.save``), ``.csv``, ``.tsv`` or ``.txt``
(text, comma-, tab- or space-separated), or ``.h5ad`` (for an ``.h5ad`` input). Apart from
``.h5ad`` onto itself, it may not be the input file unless ``--force`` is given. Output paths
are checked before anything is computed. A bad file or argument prints one line on stderr
and exits with status 2.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["main"]


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


#: Output suffix -> delimiter of np.savetxt (None: np.save); ".h5ad" is written by anndata.
_OUTPUT_FORMATS = {".npy": None, ".csv": ",", ".tsv": "\t", ".txt": " ", ".h5ad": None}
#: Table suffix -> delimiter (None: Parquet).
_TABLE_FORMATS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".parquet": None}
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
    embed.add_argument("input", help=".npy, .npz, .csv, .tsv, .parquet or .h5ad file, or a dataset name "
                                     "(digits, fashion-mnist, ...)")
    embed.add_argument("--preset", default="gdr-umap", help="preset name (see `gidr presets`)")
    embed.add_argument("-o", "--output", default=None,
                       help="where to write the embedding: .npy, text as .csv, .tsv or .txt, or .h5ad "
                            "(an .h5ad input with the map added to obsm; may be the input itself)")
    embed.add_argument("--plot", default=None, help="where to write a PNG picture of the embedding")
    embed.add_argument("--html", default=None, help="where to write an interactive HTML map (needs bokeh)")
    embed.add_argument("--labels", default=None,
                       help="labels: a .npy/.txt/.csv file with one label per row, a column of the input "
                            "table, or an obs column of the input .h5ad")
    embed.add_argument("--columns", default=None, metavar="COL,COL",
                       help="columns of the input table (or obs columns of the .h5ad) shown in the --html hover")
    embed.add_argument("--use-rep", default=None, help=".h5ad input: the obsm key to embed, or X "
                                                       "(default X_pca when present, else X)")
    embed.add_argument("--key-added", default=None, help=".h5ad input: write obsm['X_<KEY>'] and uns['<KEY>'] "
                                                         "(default: the preset's name with - as _)")
    embed.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="any pipeline override, e.g. --set normalized=true --set n_epochs=200")
    embed.add_argument("--n-samples", type=int, default=None, help="subsample a dataset to this many points")
    embed.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    embed.add_argument("--force", "--overwrite", dest="force", action="store_true",
                       help="allow the output (or --plot, --html) to overwrite the input file")
    embed.add_argument("--verbose", action="store_true", help="progress bar and stage timings")
    embed.set_defaults(func=_embed)

    presets = sub.add_parser("presets", help="list the presets")
    presets.set_defaults(func=_presets)
    stages = sub.add_parser("stages", help="list every registered stage and backend, plugins included")
    stages.set_defaults(func=_stages)
    return parser


def _embed(args: argparse.Namespace) -> int:
    import gidr

    if args.n_samples is not None and args.n_samples < 1:
        raise CLIError(f"--n-samples must be a positive integer, got {args.n_samples}")
    if args.seed < 0:
        raise CLIError(f"--seed must be a non-negative integer, got {args.seed}")
    h5ad = Path(args.input).suffix.lower() == ".h5ad"
    _check_h5ad_options(args, h5ad)
    output = args.output or f"{Path(args.input).stem}-{args.preset}.npy"
    onto_itself = h5ad and Path(output).suffix.lower() == ".h5ad"  # adding the map to the input is the point
    _check_output_path(output, "-o/--output", args.input, args.force or onto_itself)
    _output_delimiter(output, h5ad)
    if args.plot:
        _check_plot_path(args.plot, args.input, output, args.force)
    if args.html:
        _check_html_path(args.html, args.input, [output, args.plot], args.force)
    overrides = dict(_parse_override(item) for item in args.overrides)
    overrides.setdefault("random_state", args.seed)
    if h5ad:
        Y, labels, columns = _embed_h5ad(args, output, overrides)
    else:
        X, labels, columns = _load_input(args.input, args.labels, args.columns, args.n_samples, args.seed)
        pipeline = gidr.Pipeline.from_preset(args.preset, **overrides)
        with _progress(args, pipeline, len(X)) as progress:
            result = pipeline.run(X, progress=progress)
        _report_timings(args, result)
        Y = result.embedding
        _write_embedding(Y, output)
    print(f"wrote {output} ({Y.shape[0]} x {Y.shape[1]})")
    title = f"{Path(args.input).stem} — {args.preset}"
    if args.plot:
        from gidr.plot import save_plot

        save_plot(Y, args.plot, labels=labels, title=title)
        print(f"wrote {args.plot}")
    if args.html:
        from gidr.html_map import write_html

        write_html(Y, args.html, labels=labels, columns=columns, title=title)
        print(f"wrote {args.html}")
    return 0


@contextlib.contextmanager
def _progress(args: argparse.Namespace, pipeline: Any, n_samples: int):
    """A progress bar over the run's epochs with --verbose (else a no-op)."""
    from gidr.estimators import _verbosity

    n_epochs = pipeline.config["pipeline"].get("n_epochs") or pipeline.stages["optimizer"].default_n_epochs(n_samples)
    with _verbosity(args.verbose) as progress_factory, progress_factory(n_epochs) as progress:
        yield progress


def _report_timings(args: argparse.Namespace, result: Any) -> None:
    if args.verbose:
        print("timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items()), file=sys.stderr)


def _check_h5ad_options(args: argparse.Namespace, h5ad: bool) -> None:
    if h5ad and args.n_samples is not None:
        raise CLIError("--n-samples does not apply to an .h5ad input; subset the object first, e.g. "
                       "adata[rows].write_h5ad('subset.h5ad')")
    for option, value in (("--use-rep", args.use_rep), ("--key-added", args.key_added)):
        if value is not None and not h5ad:
            raise CLIError(f"{option} applies to an .h5ad input only; {args.input!r} is not one")


def _embed_h5ad(args: argparse.Namespace, output: str, overrides: dict):
    """Run :func:`gidr.tl.run` on the .h5ad input (opened backed: ``X`` is loaded only when it is
    the representation) and write ``output``; returns ``(embedding, labels, hover columns)``."""
    import gidr
    from gidr import tl

    anndata = _import_optional("anndata", f"reading {args.input!r}", "anndata")
    key = tl._result_key(args.key_added, args.preset)
    path = Path(args.input)
    try:
        adata = anndata.read_h5ad(path, backed="r")
    except (OSError, KeyError, ValueError) as exc:
        raise CLIError(f"{path}: cannot read as an .h5ad file ({exc})") from None
    try:
        if args.use_rep == "X" or (args.use_rep is None and "X_pca" not in adata.obsm):
            loaded = adata.to_memory()
            adata.file.close()
            adata = loaded
        labels = _obs_labels(adata, args.labels, path)
        columns = _obs_columns(adata, args.columns, path)
        with _progress(args, gidr.Pipeline.from_preset(args.preset, **overrides), adata.n_obs) as progress:
            result, params = tl.run(adata, args.preset, use_rep=args.use_rep, progress=progress, **overrides)
    finally:
        if adata.isbacked:
            adata.file.close()
    _report_timings(args, result)
    if Path(output).suffix.lower() == ".h5ad":
        _add_to_h5ad(path, output, {"obsm": ("X_" + key, result.embedding), "uns": (key, {"params": params})})
    else:
        _write_embedding(result.embedding, output)
    return result.embedding, labels, columns


def _add_to_h5ad(source: Path, output: str, entries: dict) -> None:
    """Copy ``source`` to a temporary file next to ``output``, write ``entries`` (group ->
    (name, value)) into the copy with anndata's element writer, and rename it over ``output``
    (which may be ``source``): a failure leaves ``output`` as it was. ``X`` and the rest are
    copied as bytes, never loaded (anndata cannot rewrite a backed object that has ``.raw``)."""
    import shutil

    import h5py
    from anndata.io import write_elem

    target = Path(output)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp.h5ad")
    try:
        shutil.copyfile(source, temporary)
        with h5py.File(temporary, "r+") as store:
            for group, (name, value) in entries.items():
                if group not in store:
                    write_elem(store, group, {name: value})
                    continue
                if name in store[group]:
                    del store[group][name]
                write_elem(store[group], name, value)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _obs_labels(adata: Any, labels_arg: str | None, path: Path) -> np.ndarray | None:
    if labels_arg is None:
        return None
    if labels_arg in adata.obs.columns:
        return _column_values(adata.obs[labels_arg])
    if Path(labels_arg).exists():
        return _load_labels_file(labels_arg, adata.n_obs)
    raise CLIError(f"--labels {labels_arg!r} is neither a file nor an obs column of {path} "
                   f"(its obs columns: {', '.join(map(repr, adata.obs.columns)) or 'none'})")


def _obs_columns(adata: Any, columns_arg: str | None, path: Path) -> dict | None:
    if columns_arg is None:
        return None
    names = [name.strip() for name in columns_arg.split(",") if name.strip()]
    unknown = [name for name in names if name not in adata.obs.columns]
    if unknown:
        raise CLIError(f"--columns {unknown[0]!r} is not an obs column of {path} "
                       f"(its obs columns: {', '.join(map(repr, adata.obs.columns)) or 'none'})")
    return {name: _column_values(adata.obs[name]) for name in names}


def _column_values(series: Any) -> np.ndarray:
    """A pandas column as an array: categories and other objects as text, numbers as numbers."""
    values = series.to_numpy()
    return values if values.dtype.kind in "biuf" else np.asarray(series.astype(str))


def _import_optional(module: str, purpose: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise CLIError(f"{purpose} needs {module}: pip install gidr[{extra}]") from None


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


def _check_html_path(html: str, source: str, others: list, force: bool) -> None:
    _check_output_path(html, "--html", source, force)
    if any(other is not None and Path(html).resolve() == Path(other).resolve() for other in others):
        raise CLIError(f"--html {html!r} is also the embedding's output or the --plot file; give them different names")
    _import_optional("bokeh", "--html", "html")


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


def _load_input(source: str, labels_arg: str | None, columns_arg: str | None, n_samples: int | None, seed: int):
    """``(X, labels, hover columns)`` from a file or a dataset name."""
    from gidr import datasets

    path = Path(source)
    if not path.exists() and datasets.canonical_name(source) is not None:
        _no_columns(columns_arg, source)
        X, y = datasets.load(source, n_samples=n_samples, random_state=seed)
        return X, (y if labels_arg is None else _load_labels_file(labels_arg, len(X))), None
    if not path.exists():
        raise CLIError(f"{source!r} is neither a file nor a dataset name ({', '.join(datasets.available())})")
    suffix = path.suffix.lower()
    label_column = columns = None
    if suffix in (".npy", ".npz"):
        _no_columns(columns_arg, source)
        X = _read_npy(path) if suffix == ".npy" else _read_npz(path)
    elif suffix in _TABLE_FORMATS:
        names, table = _read_table(path, _TABLE_FORMATS[suffix])
        X, label_column, columns = _split_table(path, names, table, labels_arg, columns_arg)
    else:
        raise CLIError(f"{path}: unsupported file type {suffix!r}; use .npy, .npz, .csv, .tsv, .parquet or .h5ad")
    labels = label_column
    if labels is None and labels_arg is not None:
        labels = _load_labels_file(labels_arg, len(X))
    if n_samples is not None and n_samples < len(X):
        rows = np.sort(np.random.default_rng(seed).choice(len(X), n_samples, replace=False))
        X = X[rows]
        labels = None if labels is None else np.asarray(labels)[rows]
        columns = None if columns is None else {name: values[rows] for name, values in columns.items()}
    return X, labels, columns


def _no_columns(columns_arg: str | None, source: str) -> None:
    if columns_arg is not None:
        raise CLIError(f"--columns names columns of a table or of an .h5ad's obs; {source!r} has none")


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


def _read_table(path: Path, delimiter: str | None) -> tuple[list[str] | None, list[np.ndarray]]:
    """``(column names or None, columns)``: a delimited text file (an optional header row,
    detected by a non-numeric cell; no dependency) or, for ``delimiter=None``, a Parquet file
    (pandas and pyarrow). Numeric columns come back as float arrays, others as text."""
    if delimiter is None:
        pandas = _import_optional("pandas", f"reading the Parquet file {str(path)!r}", "tables")
        _import_optional("pyarrow", f"reading the Parquet file {str(path)!r}", "tables")
        try:
            frame = pandas.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise CLIError(f"{path}: cannot read as a Parquet file ({exc})") from None
        return [str(name) for name in frame.columns], [frame[name].to_numpy() for name in frame.columns]
    import csv

    with path.open(newline="") as fh:
        rows = [row for row in csv.reader(fh, delimiter=delimiter) if row]
    if not rows:
        raise CLIError(f"{path}: the file is empty")
    header = None
    if any(not _is_number(cell) for cell in rows[0]):
        header, rows = rows[0], rows[1:]
    widths = {len(row) for row in rows} | ({len(header)} if header is not None else set())
    if len(widths) > 1:
        raise CLIError(f"{path}: rows have different numbers of columns")
    if not rows:
        raise CLIError(f"{path}: the file has a header and no data rows")
    return header, [_text_column(cells) for cells in zip(*rows)]


def _text_column(cells: Sequence[str]) -> np.ndarray:
    try:
        return np.asarray(cells, dtype=np.float64)
    except ValueError:
        return np.asarray(cells)


def _split_table(path: Path, names: list[str] | None, table: list[np.ndarray], labels_arg: str | None,
                 columns_arg: str | None) -> tuple[np.ndarray, np.ndarray | None, dict | None]:
    """``(X, labels, hover columns)``: the labels column (``labels_arg``, a name or a position,
    unless it is a file) and every other column as a feature, which must be numeric."""
    label_index = None
    if labels_arg is not None and not Path(labels_arg).exists():
        label_index = _column_index(path, names, len(table), labels_arg, "--labels")
    hover = None
    if columns_arg is not None:
        wanted = [name.strip() for name in columns_arg.split(",") if name.strip()]
        hover = {name: table[_column_index(path, names, len(table), name, "--columns")] for name in wanted}
    features = [k for k in range(len(table)) if k != label_index]
    for k in features:
        if table[k].dtype.kind not in "biuf":
            name = repr(names[k]) if names is not None else f"{k} (from 0)"
            example = next((v for v in table[k] if not _is_number(str(v))), table[k][0])
            raise CLIError(f"{path}: column {name} holds non-numeric values (e.g. {str(example)!r}); only the "
                           f"--labels column may hold text: pass --labels {names[k] if names else k} to use it as "
                           "the labels, or drop it")
    if not features:
        raise CLIError(f"{path}: no feature columns left besides the labels")
    X = np.column_stack([table[k] for k in features])
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    labels = None if label_index is None else _label_values(table[label_index])
    return X, labels, hover


def _column_index(path: Path, names: list[str] | None, n_columns: int, wanted: str, option: str) -> int:
    if names is not None and wanted in names:
        return names.index(wanted)
    if wanted.isdigit() and int(wanted) < n_columns:
        return int(wanted)
    listing = f" (its columns: {', '.join(map(repr, names))})" if names is not None else ""
    raise CLIError(f"{option} {wanted!r} is neither a file nor a column of {path}{listing}")


def _label_values(values: np.ndarray) -> np.ndarray:
    """Labels as ints when they are whole numbers, else as they are."""
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        return values.astype(int)
    return values if values.dtype.kind in "biuf" else values.astype(str)


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


def _output_delimiter(output: str, h5ad_input: bool = False) -> str | None:
    """np.savetxt's delimiter for ``output``'s suffix (None: .npy or .h5ad); an unknown suffix,
    or .h5ad for another input than an .h5ad, is an error."""
    suffix = Path(output).suffix.lower()
    if suffix not in _OUTPUT_FORMATS:
        raise CLIError(f"-o/--output {output!r}: unknown suffix {suffix or '(none)'!r}; use one of "
                       + ", ".join(_OUTPUT_FORMATS))
    if suffix == ".h5ad" and not h5ad_input:
        raise CLIError(f"-o/--output {output!r}: an .h5ad output needs an .h5ad input (the map is added to its "
                       "obsm); write .npy, .csv, .tsv or .txt instead")
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
