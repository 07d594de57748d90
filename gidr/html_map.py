"""Interactive maps of embeddings in one self-contained HTML file (needs ``pip install gidr[html]``).

:func:`write_html` draws an embedding with `bokeh <https://bokeh.org>`_ and writes a single
HTML file that carries bokeh's JavaScript inline: it opens offline, from disk, with no server
and no CDN. The map pans (drag), zooms (mouse wheel, box) and resets; hovering a point shows
its index, its label and every column passed in ``columns``. Points are drawn by WebGL, so a
million of them stay responsive.

Colours follow :func:`gidr.plot`: categorical labels take ``tab10`` (up to 10 classes) or
``tab20``, one renderer per class and a legend whose entries hide and show their class when
clicked (up to 20 classes; more classes share one renderer, coloured per point, without a
legend); continuous labels take ``viridis`` and a colour bar.

The file stays small: coordinates are stored as float32, classes as one renderer each (so no
label is stored per point), text columns as integer codes with one table of their values, and
bokeh writes numeric arrays as base64 binary: a million points in 10 classes with two hover
columns made an 18.5 MB file (``asv_bench/plot_bench.py``; ``docs/maps.rst`` has the measured
sizes and load times). bokeh is imported only when :func:`write_html` is called.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from gidr.plot import _MAX_CATEGORIES, _as_points, _check_labels, _class_names, _default_alpha, _is_categorical
from gidr.validation import Described, GidrValueError, format_error

__all__ = ["write_html"]

_OWNER = "write_html()"
_SINGLE_COLOR = "#3b6ea8"
#: Side of the square plot frame in CSS pixels (legend and colour bar come beside it). A fixed
#: size, not one stretched to the window: each re-layout redraws every point, and stretching
#: costs one more full redraw when the page opens.
_FRAME_SIDE = 720
#: JavaScript of the hover formatter that shows the text behind an integer code.
_LOOKUP_CODE = "return names[value];"


def _import_bokeh() -> None:
    try:
        import bokeh  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "gidr.html_map.write_html needs bokeh, which is not installed. Install it with "
            "`pip install gidr[html]` (or `pip install bokeh`)."
        ) from error


def _marker_size(n_points: int) -> float:
    """Marker diameter in screen pixels: 6 up to ~600 points, 1.5 from ~40,000 on."""
    return float(np.clip(np.sqrt(20000.0 / n_points), 1.5, 6.0))


def _check_path(path: Any) -> str:
    try:
        path = os.fspath(path)
    except TypeError:
        raise GidrValueError(
            format_error(f"The 'path' parameter of {_OWNER}", "a str or path-like", path)
        ) from None
    if os.path.isdir(path):
        raise GidrValueError(
            format_error(f"The 'path' parameter of {_OWNER}", "a file name, not a folder", path,
                         "Add a file name such as 'map.html'.")
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise GidrValueError(
            format_error(f"The 'path' parameter of {_OWNER}", "a file in an existing folder", path,
                         f"Create the folder {folder!r} first.")
        )
    return path


def _check_columns(columns: Any, n_points: int) -> list[tuple[str, np.ndarray]]:
    """``columns`` as (name, 1-D array of n_points values) pairs, in the caller's order."""
    if columns is None:
        return []
    if hasattr(columns, "columns") and hasattr(columns, "to_numpy"):  # pandas DataFrame
        pairs = [(str(name), columns[name].to_numpy()) for name in columns.columns]
    elif isinstance(columns, Mapping):
        pairs = [(str(name), np.asarray(values)) for name, values in columns.items()]
    else:
        raise GidrValueError(
            format_error(f"The 'columns' parameter of {_OWNER}",
                         "a mapping of column name to one value per point, or a pandas DataFrame",
                         Described(f"a {type(columns).__name__}"),
                         "Pass e.g. columns={'cell_type': cell_types}.")
        )
    for name, values in pairs:
        if values.shape != (n_points,):
            raise GidrValueError(
                format_error(f"The column {name!r} of the 'columns' parameter of {_OWNER}",
                             f"a 1-D array with one value per point ({n_points})",
                             f"an array of shape {values.shape}",
                             "Pass the columns row for row with the embedding.")
            )
    return pairs


def _compact(values: np.ndarray) -> tuple[np.ndarray, list[str] | None]:
    """The smallest faithful array bokeh serialises in binary, and the text table of coded values.

    Numbers become float32 or int32 (int64 when out of int32's range); text, booleans and
    other objects become int32 codes into the sorted table of their distinct values.
    """
    if values.dtype.kind == "f":
        return values.astype(np.float32), None
    if values.dtype.kind in "iu":
        info = np.iinfo(np.int32)
        if values.size and (values.min() < info.min or values.max() > info.max):
            return values.astype(np.int64), None
        return values.astype(np.int32), None
    names, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.reshape(-1).astype(np.int32), [str(name) for name in names]


class _Page:
    """The bokeh figure being built, with the hover's tooltips and formatters."""

    def __init__(self, title: str | None) -> None:
        from bokeh.plotting import figure

        self.figure = figure(title=title, output_backend="webgl", match_aspect=True,
                             frame_width=_FRAME_SIDE, frame_height=_FRAME_SIDE,
                             tools="pan,wheel_zoom,box_zoom,reset", active_scroll="wheel_zoom")
        self.figure.axis.visible = False
        self.figure.grid.visible = False
        self.figure.outline_line_color = None
        self.tooltips: list[tuple[str, str]] = []
        self.formatters: dict[str, Any] = {}

    def add_field(self, label: str, field: str, names: list[str] | None) -> None:
        """Show ``field`` under ``label`` in the hover, through its text table when coded."""
        from bokeh.models import CustomJSHover

        if names is None:
            self.tooltips.append((label, f"@{{{field}}}"))
            return
        self.tooltips.append((label, f"@{{{field}}}{{custom}}"))
        self.formatters[f"@{{{field}}}"] = CustomJSHover(args={"names": names}, code=_LOOKUP_CODE)

    def scatter(self, data: dict[str, np.ndarray], color: Any, size: float, alpha: float, name: str | None = None):
        from bokeh.models import ColumnDataSource

        return self.figure.scatter("x", "y", source=ColumnDataSource(data), size=size, fill_color=color,
                                   fill_alpha=alpha, line_color=None, name=name)

    def finish(self, renderers: list) -> Any:
        from bokeh.models import HoverTool

        self.figure.add_tools(HoverTool(renderers=renderers, tooltips=self.tooltips, formatters=self.formatters))
        return self.figure


def _class_palette(n_classes: int) -> list[str]:
    """The colours :func:`gidr.plot` gives ``n_classes`` classes (tab10, tab20, tab20 sampled)."""
    from bokeh.palettes import Category10, Category20

    if n_classes <= 10:
        return list(Category10[10][:n_classes])
    if n_classes <= 20:
        return list(Category20[20][:n_classes])
    # matplotlib samples a 20-colour ListedColormap at linspace(0, 1, n) as int(x * 20), clipped.
    ranks = np.minimum((np.linspace(0.0, 1.0, n_classes) * 20).astype(int), 19)
    return [Category20[20][rank] for rank in ranks]


def _draw_classes(page: _Page, data: dict, labels: np.ndarray, label_names: Any, size: float, alpha: float) -> list:
    """One renderer per class and a clickable legend; above 20 classes, one renderer coloured per point."""
    from bokeh.models import Legend, LegendItem, LinearColorMapper

    classes, codes = np.unique(labels, return_inverse=True)
    codes = codes.reshape(-1)
    names = _class_names(classes, label_names, owner=_OWNER)
    palette = _class_palette(classes.size)
    if classes.size > _MAX_CATEGORIES:
        page.tooltips.insert(0, ("index", "$index"))
        data["label"] = codes.astype(np.int32)
        page.add_field("label", "label", names)
        mapper = LinearColorMapper(palette=palette, low=-0.5, high=classes.size - 0.5)
        return [page.scatter(data, {"field": "label", "transform": mapper}, size, alpha)]
    page.tooltips[:0] = [("index", "@index"), ("label", "$name")]
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(classes.size + 1))
    renderers = []
    for code in range(classes.size):
        rows = order[bounds[code]:bounds[code + 1]]
        subset = {key: column[rows] for key, column in data.items()}
        subset["index"] = rows.astype(np.int32)
        renderers.append(page.scatter(subset, palette[code], size, alpha, name=names[code]))
    legend = Legend(items=[LegendItem(label=name, renderers=[renderer]) for name, renderer in zip(names, renderers)],
                    click_policy="hide", location="center", border_line_color=None)
    page.figure.add_layout(legend, "right")
    return renderers


def _draw_values(page: _Page, data: dict, values: np.ndarray, size: float, alpha: float) -> list:
    """One renderer coloured by ``values`` through viridis, and a colour bar."""
    from bokeh.models import ColorBar, LinearColorMapper
    from bokeh.palettes import Viridis256

    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    mapper = LinearColorMapper(palette=Viridis256, low=low, high=high, nan_color="#bbbbbb")
    data["value"] = values.astype(np.float32)
    page.tooltips[:0] = [("index", "$index"), ("label", "@value")]
    renderer = page.scatter(data, {"field": "value", "transform": mapper}, size, alpha)
    page.figure.add_layout(ColorBar(color_mapper=mapper, width=12, border_line_color=None), "right")
    return [renderer]


def write_html(
    embedding: Any,
    path: str | os.PathLike,
    labels: Any = None,
    *,
    label_names: Mapping | list[str] | None = None,
    columns: Mapping[str, Any] | Any = None,
    title: str | None = None,
) -> None:
    """Write an interactive map of a 2-D embedding to one self-contained HTML file.

    Parameters
    ----------
    embedding : array-like of shape (n_samples, 2), a Result, or a fitted estimator
        The points, as :func:`gidr.plot` takes them.
    path : str or path-like
        The HTML file to write (replaced if it exists); its folder must exist.
    labels : array-like of shape (n_samples,) or None, default=None
        Colours, classified as :func:`gidr.plot` does: categorical labels get one colour and
        one legend entry per class, continuous values a viridis colour bar.
    label_names : mapping or sequence of str or None, default=None
        Display names of the classes, as for :func:`gidr.plot`; shown in the legend and the hover.
    columns : mapping of str to array-like of shape (n_samples,), or pandas.DataFrame, or None
        Further values shown in the hover, one per point (numbers or text).
    title : str or None, default=None
        Title above the map and of the page.

    Raises
    ------
    ImportError
        When bokeh is not installed (``pip install gidr[html]``).
    GidrValueError
        For a path in a missing folder, labels or columns of the wrong length, bad label names.
    """
    path = _check_path(path)
    points = _as_points(embedding, owner=_OWNER)
    n_points = points.shape[0]
    labels = _check_labels(labels, n_points, owner=_OWNER)
    extra = _check_columns(columns, n_points)
    _import_bokeh()
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    page = _Page(title)
    data = {"x": points[:, 0].astype(np.float32), "y": points[:, 1].astype(np.float32)}
    for rank, (name, values) in enumerate(extra):
        data[f"column{rank}"], names = _compact(values)
        page.add_field(name, f"column{rank}", names)
    size, alpha = _marker_size(n_points), _default_alpha(n_points)
    if labels is None:
        page.tooltips.insert(0, ("index", "$index"))
        renderers = [page.scatter(data, _SINGLE_COLOR, size, alpha)]
    elif _is_categorical(labels, owner=_OWNER):
        renderers = _draw_classes(page, data, labels, label_names, size, alpha)
    else:
        renderers = _draw_values(page, data, labels.astype(np.float64), size, alpha)
    html = file_html(page.finish(renderers), resources=INLINE, title=title or "gidr map")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(html)
