"""Scatter plots of embeddings (needs the ``plot`` extra: ``pip install gidr[plot]``).

:func:`plot` draws an embedding on a clean square canvas: no ticks, no frame, equal aspect,
marker size and opacity chosen from the number of points, and points drawn in a seeded random
order so that no class is systematically painted over another. Labels decide the colouring:

- categorical (strings, booleans, or integer-valued numbers with at most 20 distinct
  values): one colour per class from ``tab10`` (up to 10 classes) or ``tab20``, and a legend;
- continuous (other numbers): a colormap (``viridis``) and a colorbar.

An embedding with more than two columns is drawn from its first two, with a warning.
matplotlib is imported only when a function here is called.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Mapping, Sequence

import numpy as np

from gidr.validation import Described, GidrValueError, check_array, format_error

__all__ = ["plot", "save_plot"]

_MAX_CATEGORIES = 20
_DRAW_ORDER_SEED = 0


def _import_pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "gidr.plot needs matplotlib, which is not installed. Install it with "
            "`pip install gidr[plot]` (or `pip install matplotlib`)."
        ) from error
    return plt


def _as_points(embedding: Any) -> np.ndarray:
    """The (n, 2) coordinates to draw, from an array, a Result, anything with ``.embedding``,
    or a fitted estimator (its ``embedding_``)."""
    if not isinstance(embedding, np.ndarray) and hasattr(embedding, "fit") and hasattr(embedding, "get_params"):
        if not hasattr(embedding, "embedding_"):
            raise GidrValueError(
                format_error("The input embedding of plot()", "an array, a Result or a fitted estimator",
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
            format_error("The input embedding of plot()", "an array with 2 columns",
                         Described(f"{points.shape[1]} column(s)"), "Embed into n_components=2 to plot.")
        )
    if points.shape[1] > 2:
        warnings.warn(
            f"plot() draws the first 2 of the embedding's {points.shape[1]} columns.",
            UserWarning, stacklevel=3,
        )
    return points[:, :2]


def _default_size(n_points: int) -> float:
    """Marker area in pt²: 20 up to 750 points, 7.5 for 2,000, down to 1 from 15,000 on."""
    return float(np.clip(15000.0 / n_points, 1.0, 20.0))


def _default_alpha(n_points: int) -> float:
    """Opaque for small sets, translucent for large ones so that density shows."""
    return float(np.clip(4.0 / np.log10(max(n_points, 10)), 0.5, 1.0))


def _is_categorical(labels: np.ndarray) -> bool:
    if labels.dtype.kind in "OUSb":
        return True
    if labels.dtype.kind in "iu":
        return np.unique(labels).size <= _MAX_CATEGORIES
    if labels.dtype.kind == "f":
        finite = labels[np.isfinite(labels)]
        return bool(np.all(finite == np.round(finite))) and np.unique(finite).size <= _MAX_CATEGORIES
    raise GidrValueError(
        format_error("The 'labels' parameter of plot()", "numbers or strings",
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


def _class_names(classes: np.ndarray, label_names: Any) -> list[str]:
    if label_names is None:
        return [str(c) for c in classes]
    if isinstance(label_names, Mapping):
        return [str(label_names.get(c, c)) for c in classes]
    names = list(label_names)
    if len(names) < classes.size:
        raise GidrValueError(
            format_error("The 'label_names' parameter of plot()",
                         f"a mapping, or a sequence with one name per class ({classes.size})",
                         f"{len(names)} name(s)")
        )
    return [str(names[i]) for i in range(classes.size)]


def _draw_categorical(ax: Any, points: np.ndarray, labels: np.ndarray, order: np.ndarray,
                      style: dict, legend: bool, label_names: Any) -> None:
    from matplotlib.lines import Line2D

    classes, codes = np.unique(labels, return_inverse=True)
    colors = _class_colors(classes.size, style.pop("cmap"))
    ax.scatter(points[order, 0], points[order, 1], c=colors[codes.reshape(-1)[order]], **style)
    if not legend or classes.size > _MAX_CATEGORIES:
        return
    handles = [
        Line2D([], [], linestyle="none", marker="o", markersize=7, markeredgewidth=0,
               color=color, label=name)
        for color, name in zip(colors, _class_names(classes, label_names))
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
              handletextpad=0.3, borderaxespad=0.5)


def _draw_continuous(ax: Any, points: np.ndarray, values: np.ndarray, order: np.ndarray,
                     style: dict) -> None:
    cmap = style.pop("cmap") or "viridis"
    artist = ax.scatter(points[order, 0], points[order, 1], c=values[order], cmap=cmap, **style)
    colorbar = ax.figure.colorbar(artist, ax=ax, shrink=0.6, aspect=30, pad=0.02)
    colorbar.outline.set_visible(False)
    colorbar.solids.set_alpha(1.0)
    colorbar.solids.set_rasterized(True)


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
) -> Any:
    """Scatter plot of a 2-D embedding.

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
        Marker area in pt²; ``None`` picks one from the number of points.
    alpha : float or None, default=None
        Marker opacity; ``None`` picks one from the number of points.
    cmap : str or matplotlib.colors.Colormap or None, default=None
        Colormap; ``None`` uses ``tab10``/``tab20`` for classes and ``viridis`` for values.
    legend : bool, default=True
        Draw a legend for categorical labels (only up to 20 classes).
    label_names : mapping or sequence of str or None, default=None
        Display names of the classes: a mapping from label to name, or a sequence indexed
        by class rank (the label itself for labels 0, 1, 2, ...).
    figsize : tuple of float, default=(7, 7)
        Size in inches of a figure created here.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn in.
    """
    plt = _import_pyplot()
    points = _as_points(embedding)
    n_points = points.shape[0]
    labels = _check_labels(labels, n_points)
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    style = {"s": _default_size(n_points) if s is None else s,
             "alpha": _default_alpha(n_points) if alpha is None else alpha,
             "linewidths": 0, "rasterized": n_points > 5000, "cmap": cmap}
    _draw(ax, points, labels, style, legend, label_names)
    _clean_axes(ax, title)
    return ax


def _check_labels(labels: Any, n_points: int) -> np.ndarray | None:
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.shape != (n_points,):
        raise GidrValueError(
            format_error("The 'labels' parameter of plot()",
                         f"a 1-D array with one label per point ({n_points})",
                         f"an array of shape {labels.shape}")
        )
    return labels


def _draw(ax: Any, points: np.ndarray, labels: np.ndarray | None, style: dict, legend: bool, label_names: Any) -> None:
    """Scatter ``points`` in a seeded random order, coloured by ``labels``."""
    n_points = points.shape[0]
    order = np.random.default_rng(_DRAW_ORDER_SEED).permutation(n_points)
    if labels is None:
        style.pop("cmap")
        ax.scatter(points[order, 0], points[order, 1], color="#3b6ea8", **style)
        return
    if _is_categorical(labels):
        _draw_categorical(ax, points, labels, order, style, legend, label_names)
    else:
        _draw_continuous(ax, points, labels.astype(np.float64), order, style)


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
    figure = Figure(figsize=kw.pop("figsize", (7, 7)), layout="constrained")
    plot(embedding, labels, ax=figure.add_subplot(), **kw)
    path = os.fspath(path)
    image_format = None if os.path.splitext(path)[1] else "png"
    figure.savefig(path, dpi=dpi, format=image_format, bbox_inches="tight", facecolor="white")
