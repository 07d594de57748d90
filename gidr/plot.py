"""Pictures of embeddings (needs the ``plot`` extra: ``pip install gidr[plot]``).

:func:`plot` draws an embedding on a clean square canvas: no ticks, no frame, equal aspect,
marker size and opacity chosen from the number of points, and points drawn in a seeded random
order so that no class is systematically painted over another. Labels decide the colouring:

- categorical (strings, booleans, or integer-valued numbers with at most 20 distinct
  values): one colour per class from ``tab10`` (up to 10 classes) or ``tab20``, and a legend;
- continuous (other numbers): a colormap (``viridis``) and a colorbar.

An embedding with more than two columns is drawn from its first two, with a warning.

Above :data:`DENSITY_THRESHOLD` points (500,000) a scatter is slow and unreadable, so
``kind="auto"`` draws a density picture with datashader instead (``pip install gidr[large]``):
per-pixel counts, per-class counts mixed in the class colours, or per-pixel mean values, as
an image in the same axes with the same legend or colorbar. ``html="map.html"`` writes an
interactive map instead (:mod:`gidr.html_map`, ``pip install gidr[html]``), and
``color_by="neighbor_preservation"`` colours each point by how many of its input-space
neighbours it keeps. matplotlib, datashader and bokeh are imported only when needed.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Mapping, Sequence

import numpy as np

from gidr.types import Result
from gidr.validation import Described, GidrValueError, Options, Param, check_array, format_error

__all__ = ["plot", "save_plot", "DENSITY_THRESHOLD"]

_MAX_CATEGORIES = 20
_DRAW_ORDER_SEED = 0
_KINDS = ("auto", "scatter", "density")
#: Above this many points, ``plot(kind="auto")`` draws a density picture instead of a scatter.
#: At 500,000 points a scatter's markers, one pixel each, overlap into a mass in which classes
#: and density can no longer be read, and its time grows with n (1.4 s to save 500,000 points
#: on the 2-core development machine) while the density picture's barely does (10M in ~4 s).
DENSITY_THRESHOLD = 500_000
#: Neighbourhood size of ``color_by="neighbor_preservation"`` (at most the fitted graph's k).
_QUALITY_NEIGHBORS = 15
_SINGLE_COLOR = "#3b6ea8"
_SINGLE_COLOR_LIGHT = "#c9d7ea"
#: Side of the density image, in pixels: twice the axes' side, within these bounds.
_DENSITY_PIXELS = (400, 2000)


def _import_pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "gidr.plot needs matplotlib, which is not installed. Install it with "
            "`pip install gidr[plot]` (or `pip install matplotlib`)."
        ) from error
    return plt


def _import_datashader() -> tuple[Any, Any, Any]:
    try:
        import datashader
        import datashader.transfer_functions as transfer_functions
        import pandas
    except ImportError as error:
        raise ImportError(
            "plot(kind='density') needs datashader, which is not installed. Install it with "
            "`pip install gidr[large]` (or `pip install datashader`)."
        ) from error
    return datashader, transfer_functions, pandas


def _as_points(embedding: Any, owner: str = "plot()") -> np.ndarray:
    """The (n, 2) coordinates to draw, from an array, a Result, anything with ``.embedding``,
    or a fitted estimator (its ``embedding_``)."""
    if not isinstance(embedding, np.ndarray) and hasattr(embedding, "fit") and hasattr(embedding, "get_params"):
        if not hasattr(embedding, "embedding_"):
            raise GidrValueError(
                format_error(f"The input embedding of {owner}", "an array, a Result or a fitted estimator",
                             Described(f"an unfitted {type(embedding).__name__}"),
                             "Call its fit(X) first, or pass the array fit_transform(X) returns.")
            )
        embedding = embedding.embedding_
    elif not isinstance(embedding, np.ndarray) and not hasattr(embedding, "__array__") \
            and hasattr(embedding, "embedding"):
        embedding = embedding.embedding
    points = check_array(embedding, name="embedding", min_samples=1)
    if points.shape[1] < 2:
        raise GidrValueError(
            format_error(f"The input embedding of {owner}", "an array with 2 columns",
                         Described(f"{points.shape[1]} column(s)"), "Embed into n_components=2 to plot.")
        )
    if points.shape[1] > 2:
        warnings.warn(
            f"{owner} draws the first 2 of the embedding's {points.shape[1]} columns.",
            UserWarning, stacklevel=3,
        )
    return points[:, :2]


def _default_size(n_points: int) -> float:
    """Marker area in pt²: 20 up to 750 points, 7.5 for 2,000, down to 1 from 15,000 on."""
    return float(np.clip(15000.0 / n_points, 1.0, 20.0))


def _default_alpha(n_points: int) -> float:
    """Opaque for small sets, translucent for large ones so that density shows."""
    return float(np.clip(4.0 / np.log10(max(n_points, 10)), 0.5, 1.0))


def _is_categorical(labels: np.ndarray, owner: str = "plot()") -> bool:
    if labels.dtype.kind in "OUSb":
        return True
    if labels.dtype.kind in "iu":
        return np.unique(labels).size <= _MAX_CATEGORIES
    if labels.dtype.kind == "f":
        finite = labels[np.isfinite(labels)]
        return bool(np.all(finite == np.round(finite))) and np.unique(finite).size <= _MAX_CATEGORIES
    raise GidrValueError(
        format_error(f"The 'labels' parameter of {owner}", "numbers or strings",
                     Described(f"an array of dtype {labels.dtype}"))
    )


def _class_colors(n_classes: int, cmap: Any) -> np.ndarray:
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    if cmap is None:
        cmap = "tab10" if n_classes <= 10 else "tab20"
    colormap = colormaps[cmap] if isinstance(cmap, str) else cmap
    if isinstance(colormap, ListedColormap) and colormap.N >= n_classes:
        return colormap(np.arange(n_classes))
    return colormap(np.linspace(0.0, 1.0, n_classes))


def _class_names(classes: np.ndarray, label_names: Any, owner: str = "plot()") -> list[str]:
    if label_names is None:
        return [str(c) for c in classes]
    if isinstance(label_names, Mapping):
        return [str(label_names.get(c, c)) for c in classes]
    names = list(label_names)
    if len(names) < classes.size:
        raise GidrValueError(
            format_error(f"The 'label_names' parameter of {owner}",
                         f"a mapping, or a sequence with one name per class ({classes.size})",
                         f"{len(names)} name(s)")
        )
    return [str(names[i]) for i in range(classes.size)]


def _add_legend(ax: Any, colors: np.ndarray, names: list[str]) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], linestyle="none", marker="o", markersize=7, markeredgewidth=0,
               color=color, label=name)
        for color, name in zip(colors, names)
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
              handletextpad=0.3, borderaxespad=0.5)


def _add_colorbar(ax: Any, artist: Any, label: str | None) -> None:
    colorbar = ax.figure.colorbar(artist, ax=ax, shrink=0.6, aspect=30, pad=0.02, label=label)
    colorbar.outline.set_visible(False)
    colorbar.solids.set_alpha(1.0)
    colorbar.solids.set_rasterized(True)


def _draw_categorical(ax: Any, points: np.ndarray, labels: np.ndarray, order: np.ndarray,
                      style: dict, legend: bool, label_names: Any) -> None:
    classes, codes = np.unique(labels, return_inverse=True)
    colors = _class_colors(classes.size, style.pop("cmap"))
    ax.scatter(points[order, 0], points[order, 1], c=colors[codes.reshape(-1)[order]], **style)
    if legend and classes.size <= _MAX_CATEGORIES:
        _add_legend(ax, colors, _class_names(classes, label_names))


def _draw_continuous(ax: Any, points: np.ndarray, values: np.ndarray, order: np.ndarray,
                     style: dict, colorbar_label: str | None) -> None:
    cmap = style.pop("cmap") or "viridis"
    artist = ax.scatter(points[order, 0], points[order, 1], c=values[order], cmap=cmap, **style)
    _add_colorbar(ax, artist, colorbar_label)


def plot(
    embedding: Any,
    labels: Any = None,
    *,
    ax: Any = None,
    title: str | None = None,
    s: float | None = None,
    alpha: float | None = None,
    cmap: Any = None,
    legend: bool = True,
    label_names: Mapping | Sequence[str] | None = None,
    figsize: tuple[float, float] = (7, 7),
    kind: str = "auto",
    color_by: str | None = None,
    html: str | os.PathLike | None = None,
    columns: Mapping[str, Any] | Any = None,
) -> Any:
    """Scatter plot, density picture or interactive HTML map of a 2-D embedding.

    Parameters
    ----------
    embedding : array-like of shape (n_samples, 2), a Result, or a fitted estimator
        The points; anything :func:`numpy.asarray` turns into such an array, an object
        with an ``embedding`` attribute, or a fitted estimator (its ``embedding_``). Extra columns are ignored with a warning.
    labels : array-like of shape (n_samples,) or None, default=None
        Colours: categorical labels get a legend, continuous values a colorbar (see the
        module docstring for which is which).
    ax : matplotlib.axes.Axes or None, default=None
        Axes to draw in; ``None`` creates a figure of size ``figsize`` with pyplot.
    title : str or None, default=None
        Axes title.
    s : float or None, default=None
        Marker area in pt²; ``None`` picks one from the number of points. Scatter only.
    alpha : float or None, default=None
        Marker opacity; ``None`` picks one from the number of points. Scatter only.
    cmap : str or matplotlib.colors.Colormap or None, default=None
        Colormap; ``None`` uses ``tab10``/``tab20`` for classes and ``viridis`` for values.
    legend : bool, default=True
        Draw a legend for categorical labels (only up to 20 classes).
    label_names : mapping or sequence of str or None, default=None
        Display names of the classes: a mapping from label to name, or a sequence indexed
        by class rank (the label itself for labels 0, 1, 2, ...).
    figsize : tuple of float, default=(7, 7)
        Size in inches of a figure created here.
    kind : {"auto", "scatter", "density"}, default="auto"
        ``"scatter"`` draws every point; ``"density"`` draws a datashader image (per-class
        counts shaded with the class colours, or the mean value per pixel); ``"auto"`` draws
        a scatter up to :data:`DENSITY_THRESHOLD` points and a density image above it
        (a scatter, with a warning, when datashader is not installed).
    color_by : {"neighbor_preservation"} or None, default=None
        Colour each point by a quality of the fit instead of ``labels``:
        ``"neighbor_preservation"`` is the share of the point's 15 input-space neighbours
        (from the fitted kNN graph) kept among its 15 nearest in the embedding
        (:func:`gidr.metrics.neighbor_preservation`). Needs a Result or a fitted estimator.
    html : str or path-like or None, default=None
        Write an interactive map to this HTML file instead (:func:`gidr.html_map.write_html`):
        no matplotlib figure is made, and the matplotlib-only parameters (``ax``, ``s``,
        ``alpha``, ``cmap``, ``legend``, ``figsize``, ``kind``) must keep their defaults.
    columns : mapping of str to array-like, or pandas.DataFrame, or None, default=None
        With ``html``: further values shown when hovering a point.

    Returns
    -------
    matplotlib.axes.Axes or str
        The axes drawn in; with ``html``, the path of the file written.
    """
    kind = Param("kind", "auto", (Options(_KINDS),)).validate(kind, "plot()")
    labels, colorbar_label = _color_by(embedding, labels, color_by)
    if html is not None:
        _check_html_arguments({"ax": ax, "s": s, "alpha": alpha, "cmap": cmap, "legend": legend,
                               "figsize": figsize, "kind": kind})
        from gidr.html_map import write_html

        write_html(embedding, html, labels, label_names=label_names, columns=columns, title=title)
        return os.fspath(html)
    if columns is not None:
        raise GidrValueError(
            format_error("The 'columns' parameter of plot()", "None without html=", Described("columns"),
                         "Columns are shown when hovering an HTML map: pass html='map.html' too.")
        )
    plt = _import_pyplot()
    points = _as_points(embedding)
    n_points = points.shape[0]
    labels = _check_labels(labels, n_points)
    kind = _resolve_kind(kind, n_points)
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    if kind == "density":
        _draw_density(ax, points, labels, cmap, legend, label_names, colorbar_label)
    else:
        style = {"s": _default_size(n_points) if s is None else s,
                 "alpha": _default_alpha(n_points) if alpha is None else alpha,
                 "linewidths": 0, "rasterized": n_points > 5000, "cmap": cmap}
        _draw(ax, points, labels, style, legend, label_names, colorbar_label)
    _clean_axes(ax, title)
    return ax


def _color_by(embedding: Any, labels: Any, color_by: str | None) -> tuple[Any, str | None]:
    """The colours ``color_by`` asks for (with their colorbar label), or ``labels`` unchanged."""
    if color_by is None:
        return labels, None
    Param("color_by", None, (Options(("neighbor_preservation",)),)).validate(color_by, "plot()")
    if labels is not None:
        raise GidrValueError(
            format_error("The 'labels' parameter of plot()", f"None with color_by={color_by!r}",
                         Described("labels"), "Pass either labels or color_by, not both.")
        )
    result = _fitted_result(embedding)
    if result is None:
        raise GidrValueError(
            format_error("The input embedding of plot()",
                         f"a Result or a fitted estimator with color_by={color_by!r} (they carry the kNN graph)",
                         Described(f"a {type(embedding).__name__}"),
                         "Pass the Result of Pipeline.run (or the estimator), or compute the values with "
                         "labels=gidr.metrics.neighbor_preservation(X, Y).")
        )
    from gidr.metrics import neighbor_preservation

    k = min(_QUALITY_NEIGHBORS, result.graph.n_neighbors)
    return neighbor_preservation(result.graph, result.embedding, k=k), f"neighbor preservation (k={k})"


def _fitted_result(embedding: Any) -> Result | None:
    if isinstance(embedding, Result):
        return embedding
    result = getattr(embedding, "result_", None) if hasattr(embedding, "get_params") else None
    return result if isinstance(result, Result) else None


def _check_html_arguments(arguments: dict[str, Any]) -> None:
    defaults = {"ax": None, "s": None, "alpha": None, "cmap": None, "legend": True, "figsize": (7, 7), "kind": "auto"}
    for name, value in arguments.items():
        default = defaults[name]
        if (value is not None) if default is None else (value != default):
            raise GidrValueError(
                format_error(f"The '{name}' parameter of plot()", "left at its default with html= "
                             "(the HTML map chooses its own)", value,
                             "Drop it, or call plot() without html= for a matplotlib figure.")
            )


def _resolve_kind(kind: str, n_points: int) -> str:
    if kind != "auto":
        return kind
    if n_points <= DENSITY_THRESHOLD:
        return "scatter"
    try:
        _import_datashader()
    except ImportError:
        warnings.warn(
            f"plot() draws {n_points} points as a scatter, which is slow and unreadable; install "
            "datashader (`pip install gidr[large]`) to get a density picture instead.",
            UserWarning, stacklevel=3,
        )
        return "scatter"
    return "density"


def _check_labels(labels: Any, n_points: int, owner: str = "plot()") -> np.ndarray | None:
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.shape != (n_points,):
        raise GidrValueError(
            format_error(f"The 'labels' parameter of {owner}",
                         f"a 1-D array with one label per point ({n_points})",
                         f"an array of shape {labels.shape}")
        )
    return labels


def _draw(ax: Any, points: np.ndarray, labels: np.ndarray | None, style: dict, legend: bool, label_names: Any,
          colorbar_label: str | None) -> None:
    """Scatter ``points`` in a seeded random order, coloured by ``labels``."""
    n_points = points.shape[0]
    order = np.random.default_rng(_DRAW_ORDER_SEED).permutation(n_points)
    if labels is None:
        style.pop("cmap")
        ax.scatter(points[order, 0], points[order, 1], color=_SINGLE_COLOR, **style)
        return
    if _is_categorical(labels):
        _draw_categorical(ax, points, labels, order, style, legend, label_names)
    else:
        _draw_continuous(ax, points, labels.astype(np.float64), order, style, colorbar_label)


def _square_ranges(points: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """x and y ranges of equal length holding every point, with a 2 % margin."""
    low, high = points.min(axis=0), points.max(axis=0)
    center = (low + high) / 2
    half = float(np.max(high - low)) * 0.51 or 1.0
    return (center[0] - half, center[0] + half), (center[1] - half, center[1] + half)


def _draw_density(ax: Any, points: np.ndarray, labels: np.ndarray | None, cmap: Any, legend: bool,
                  label_names: Any, colorbar_label: str | None) -> None:
    """Draw a datashader image of ``points`` into ``ax``: counts, per-class counts, or mean values.

    Counts are shaded by histogram equalisation (``how="eq_hist"``), classes mixed in their
    colours as :func:`plot`'s scatter gives them; values are averaged per pixel and drawn with
    ``imshow`` through ``cmap`` (so the colorbar is matplotlib's own).
    """
    datashader, transfer_functions, pandas = _import_datashader()
    from matplotlib.colors import to_hex

    side = int(np.clip(2 * max(ax.bbox.width, ax.bbox.height), *_DENSITY_PIXELS))
    x_range, y_range = _square_ranges(points)
    canvas = datashader.Canvas(plot_width=side, plot_height=side, x_range=x_range, y_range=y_range)
    frame = pandas.DataFrame({"x": points[:, 0].astype(np.float32), "y": points[:, 1].astype(np.float32)})
    extent = (*x_range, *y_range)
    if labels is not None and not _is_categorical(labels):
        values = labels.astype(np.float64)
        frame["value"] = values
        means = canvas.points(frame, "x", "y", datashader.mean("value")).to_numpy()
        artist = ax.imshow(means, origin="lower", extent=extent, cmap=cmap or "viridis", interpolation="nearest",
                           vmin=np.nanmin(values), vmax=np.nanmax(values))
        _add_colorbar(ax, artist, colorbar_label)
        return
    if labels is None:
        counts = canvas.points(frame, "x", "y", datashader.count())
        image = transfer_functions.shade(counts, cmap=[_SINGLE_COLOR_LIGHT, _SINGLE_COLOR], how="eq_hist")
    else:
        classes, codes = np.unique(labels, return_inverse=True)
        colors = _class_colors(classes.size, cmap)
        frame["label"] = pandas.Categorical.from_codes(codes.reshape(-1), categories=range(classes.size))
        counts = canvas.points(frame, "x", "y", datashader.count_cat("label"))
        image = transfer_functions.shade(counts, color_key=[to_hex(c) for c in colors], how="eq_hist")
        if legend and classes.size <= _MAX_CATEGORIES:
            _add_legend(ax, colors, _class_names(classes, label_names))
    image = transfer_functions.dynspread(image, threshold=0.5, max_px=1)
    rgba = np.ascontiguousarray(image.to_numpy()).view(np.uint8).reshape(side, side, 4)
    ax.imshow(rgba, origin="lower", extent=extent, interpolation="nearest")


def _clean_axes(ax: Any, title: str | None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_aspect("equal", adjustable="box")
    if title is not None:
        ax.set_title(title)


def save_plot(
    embedding: Any,
    path: str | os.PathLike,
    labels: Any = None,
    dpi: float = 150,
    **kw: Any,
) -> None:
    """Draw an embedding with :func:`plot` and write it to an image file.

    The figure is built without pyplot (nothing is left open, no display is needed).

    Parameters
    ----------
    embedding : array-like of shape (n_samples, 2), a Result, or a fitted estimator
        As for :func:`plot`.
    path : str or path-like
        Output file; PNG unless its extension names another format matplotlib writes
        (``.pdf``, ``.svg``, ...).
    labels : array-like of shape (n_samples,) or None, default=None
        As for :func:`plot`.
    dpi : float, default=150
        Resolution of raster output.
    **kw
        Further keyword arguments of :func:`plot` (``title``, ``s``, ``cmap``, ...), except ``ax``.
    """
    _import_pyplot()
    from matplotlib.figure import Figure

    if "ax" in kw:
        raise GidrValueError(
            format_error("The 'ax' parameter of save_plot()", "absent (save_plot makes its own figure)",
                         kw["ax"], "Call plot(..., ax=ax) and save that figure yourself.")
        )
    if "html" in kw:
        raise GidrValueError(
            format_error("The 'html' parameter of save_plot()", "absent (save_plot writes an image)",
                         kw["html"], "Call plot(embedding, html='map.html') for an interactive map.")
        )
    figure = Figure(figsize=kw.pop("figsize", (7, 7)), layout="constrained")
    plot(embedding, labels, ax=figure.add_subplot(), **kw)
    path = os.fspath(path)
    image_format = None if os.path.splitext(path)[1] else "png"
    figure.savefig(path, dpi=dpi, format=image_format, bbox_inches="tight", facecolor="white")
