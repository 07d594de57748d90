"""Tests of gidr.html_map.write_html: the file written is read back through bokeh's own deserializer.

The real-browser checks (drawing, colours on screen, legend clicks) are in tests/browser.
"""
from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

pytest.importorskip("bokeh")
from bokeh.document import Document  # noqa: E402
from bokeh.models import ColorBar, CustomJSHover, HoverTool, Legend  # noqa: E402

from gidr.html_map import write_html  # noqa: E402
from gidr.plot import plot, save_plot  # noqa: E402
from gidr.validation import GidrValueError  # noqa: E402

TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def _color(spec) -> str:
    """A colour as written, whether deserialised as a plain string or as a bokeh Value."""
    return getattr(spec, "value", spec)


def _figure(path):
    """The bokeh figure stored in an HTML file written by file_html."""
    html = path.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', html, re.S)
    (document,) = json.loads(match.group(1)).values()
    (figure,) = Document.from_json(document).roots
    return figure


def _hover(figure) -> HoverTool:
    (hover,) = [tool for tool in figure.tools if isinstance(tool, HoverTool)]
    return hover


def _tooltips(figure) -> list[tuple[str, str]]:
    return [tuple(pair) for pair in _hover(figure).tooltips]


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=600)
    return np.array([[-10.0, 0.0], [10.0, 0.0], [0.0, 10.0]])[labels] + rng.normal(size=(600, 2)), labels


def test_the_file_is_self_contained_and_draws_with_webgl(blobs, tmp_path) -> None:
    path = tmp_path / "map.html"
    write_html(blobs[0], path, blobs[1], title="Blobs")
    html = path.read_text(encoding="utf-8")
    assert re.search(r"<script[^>]*\bsrc=", html) is None
    assert re.search(r"<link[^>]*\bhref=", html) is None
    assert "<title>Blobs</title>" in html
    figure = _figure(path)
    assert figure.output_backend == "webgl"
    assert figure.title.text == "Blobs"
    tools = {type(tool).__name__ for tool in figure.tools}
    assert tools == {"PanTool", "WheelZoomTool", "BoxZoomTool", "ResetTool", "HoverTool"}
    assert type(figure.toolbar.active_scroll).__name__ == "WheelZoomTool"


def test_one_renderer_per_class_in_plot_colours_with_a_hiding_legend(blobs, tmp_path) -> None:
    Y, labels = blobs
    write_html(Y, tmp_path / "map.html", labels, label_names=["left", "right", "top"])
    figure = _figure(tmp_path / "map.html")
    assert [_color(r.glyph.fill_color) for r in figure.renderers] == TAB10[:3]
    assert [r.name for r in figure.renderers] == ["left", "right", "top"]
    for code, renderer in enumerate(figure.renderers):
        data = renderer.data_source.data
        np.testing.assert_array_equal(data["index"], np.flatnonzero(labels == code))
        assert data["x"].dtype == np.float32 and data["index"].dtype == np.int32
        np.testing.assert_array_equal(data["x"], Y[labels == code, 0].astype(np.float32))
        np.testing.assert_array_equal(data["y"], Y[labels == code, 1].astype(np.float32))
    (legend,) = figure.select(type=Legend)
    assert legend.click_policy == "hide"
    assert [item.label.value for item in legend.items] == ["left", "right", "top"]
    assert [item.renderers[0] for item in legend.items] == list(figure.renderers)
    assert _tooltips(figure)[:2] == [("index", "@index"), ("label", "$name")]


def test_eleven_to_twenty_classes_use_tab20_as_plot_does(tmp_path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib.colors import to_hex

    from gidr.plot import _class_colors

    labels = np.arange(240) % 12
    write_html(np.random.default_rng(0).normal(size=(240, 2)), tmp_path / "map.html", labels)
    colors = [_color(r.glyph.fill_color) for r in _figure(tmp_path / "map.html").renderers]
    assert colors == [to_hex(c) for c in _class_colors(12, None)]
    assert matplotlib.colormaps["tab20"].N == 20


def test_more_than_twenty_classes_share_one_renderer_coloured_by_code(tmp_path) -> None:
    names = np.array([f"cluster {i:02d}" for i in range(25)])
    labels = names[np.random.default_rng(0).integers(0, 25, size=500)]
    write_html(np.random.default_rng(1).normal(size=(500, 2)), tmp_path / "map.html", labels)
    figure = _figure(tmp_path / "map.html")
    (renderer,) = figure.renderers
    codes = renderer.data_source.data["label"]
    lookup = _hover(figure).formatters["@{label}"]
    assert isinstance(lookup, CustomJSHover)
    np.testing.assert_array_equal(np.asarray(lookup.args["names"])[codes], labels)
    assert ("label", "@{label}{custom}") in _tooltips(figure)
    assert not figure.select(type=Legend)


def test_continuous_labels_get_viridis_and_a_colour_bar(tmp_path) -> None:
    values = np.linspace(-1.0, 3.0, 400)
    write_html(np.random.default_rng(0).normal(size=(400, 2)), tmp_path / "map.html", values)
    figure = _figure(tmp_path / "map.html")
    (renderer,) = figure.renderers
    np.testing.assert_array_equal(renderer.data_source.data["value"], values.astype(np.float32))
    (colorbar,) = figure.select(type=ColorBar)
    assert (colorbar.color_mapper.low, colorbar.color_mapper.high) == (-1.0, 3.0)
    assert colorbar.color_mapper.palette[0].lower() == "#440154"
    assert _tooltips(figure)[:2] == [("index", "$index"), ("label", "@value")]


def test_hover_shows_every_column_numbers_and_text(blobs, tmp_path) -> None:
    Y, labels = blobs
    score = np.random.default_rng(2).random(600)
    batch = np.where(np.arange(600) % 2 == 0, "batch A", "batch B")
    write_html(Y, tmp_path / "map.html", labels, columns={"score": score, "batch": batch, "count": np.arange(600)})
    figure = _figure(tmp_path / "map.html")
    assert _tooltips(figure)[2:] == [("score", "@{column0}"), ("batch", "@{column1}{custom}"), ("count", "@{column2}")]
    names = np.asarray(_hover(figure).formatters["@{column1}"].args["names"])
    for renderer in figure.renderers:
        data = renderer.data_source.data
        rows = data["index"]
        np.testing.assert_array_equal(data["column0"], score[rows].astype(np.float32))
        np.testing.assert_array_equal(names[data["column1"]], batch[rows])
        assert data["column2"].dtype == np.int32
        np.testing.assert_array_equal(data["column2"], rows)


def test_a_dataframe_gives_the_columns(blobs, tmp_path) -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"gene count": np.arange(600), "tissue": pandas.Categorical(["liver", "lung"] * 300)})
    write_html(blobs[0], tmp_path / "map.html", columns=frame)
    figure = _figure(tmp_path / "map.html")
    assert _tooltips(figure) == [("index", "$index"), ("gene count", "@{column0}"), ("tissue", "@{column1}{custom}")]
    assert _hover(figure).formatters["@{column1}"].args["names"] == ["liver", "lung"]


def test_the_file_grows_by_at_most_17_bytes_per_point(tmp_path) -> None:
    # x, y (float32) and the index (int32) are 12 bytes per point, 16 in base64: nothing else
    # is stored per point (no label strings), so 17 leaves room only for fixed overheads.
    rng = np.random.default_rng(0)
    sizes = []
    for n_points in (1_000, 101_000):
        path = tmp_path / f"map{n_points}.html"
        write_html(rng.normal(size=(n_points, 2)), path, rng.integers(0, 10, size=n_points))
        sizes.append(path.stat().st_size)
    assert (sizes[1] - sizes[0]) / 100_000 <= 17


def test_plot_with_html_writes_the_map_and_returns_its_path(blobs, tmp_path) -> None:
    path = tmp_path / "map.html"
    assert plot(blobs[0], blobs[1], html=path, columns={"score": np.ones(600)}, title="t") == str(path)
    figure = _figure(path)
    assert len(figure.renderers) == 3 and figure.title.text == "t"


def test_plot_with_html_does_not_need_matplotlib(blobs, tmp_path, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    plot(blobs[0], blobs[1], html=tmp_path / "map.html")
    assert len(_figure(tmp_path / "map.html").renderers) == 3


def test_plot_with_html_rejects_matplotlib_only_arguments(blobs, tmp_path) -> None:
    with pytest.raises(GidrValueError, match=r"'s' parameter of plot\(\) must be left at its default with html="):
        plot(blobs[0], html=tmp_path / "map.html", s=3.0)
    with pytest.raises(GidrValueError, match=r"'kind' parameter of plot\(\) must be left at its default"):
        plot(blobs[0], html=tmp_path / "map.html", kind="density")
    assert not (tmp_path / "map.html").exists()


def test_columns_without_html_are_rejected(blobs) -> None:
    with pytest.raises(GidrValueError, match=r"'columns' parameter of plot\(\) must be None without html="):
        plot(blobs[0], columns={"a": np.ones(600)})


def test_save_plot_rejects_html(blobs, tmp_path) -> None:
    with pytest.raises(GidrValueError, match=r"'html' parameter of save_plot\(\) must be absent"):
        save_plot(blobs[0], tmp_path / "x.png", html=tmp_path / "map.html")


def test_a_column_of_the_wrong_length_is_rejected(blobs, tmp_path) -> None:
    with pytest.raises(GidrValueError, match=r"column 'score' of the 'columns' parameter of write_html\(\) must be "
                                             r"a 1-D array with one value per point \(600\)"):
        write_html(blobs[0], tmp_path / "map.html", columns={"score": np.ones(599)})


def test_columns_that_are_not_a_mapping_are_rejected(blobs, tmp_path) -> None:
    with pytest.raises(GidrValueError, match=r"'columns' parameter of write_html\(\) must be a mapping"):
        write_html(blobs[0], tmp_path / "map.html", columns=[np.ones(600)])


def test_a_path_in_a_missing_folder_is_rejected(blobs, tmp_path) -> None:
    with pytest.raises(GidrValueError, match=r"'path' parameter of write_html\(\) must be a file in an existing "
                                             r"folder.*Create the folder"):
        write_html(blobs[0], tmp_path / "missing" / "map.html")


def test_a_folder_as_path_is_rejected(blobs, tmp_path) -> None:
    with pytest.raises(GidrValueError, match=r"'path' parameter of write_html\(\) must be a file name, not a folder"):
        write_html(blobs[0], tmp_path)


def test_labels_of_the_wrong_length_are_rejected(blobs, tmp_path) -> None:
    with pytest.raises(GidrValueError, match=r"'labels' parameter of write_html\(\) must be a 1-D array with one "
                                             r"label per point \(600\)"):
        write_html(blobs[0], tmp_path / "map.html", np.zeros(5))


def test_missing_bokeh_names_the_extra(blobs, tmp_path, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "bokeh" or m.startswith("bokeh.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install gidr\[html\]"):
        write_html(blobs[0], tmp_path / "map.html")
    assert not (tmp_path / "map.html").exists()


def test_an_object_with_an_embedding_attribute_is_drawn(blobs, tmp_path) -> None:
    class Fitted:
        embedding = blobs[0]

    write_html(Fitted(), tmp_path / "map.html")
    (renderer,) = _figure(tmp_path / "map.html").renderers
    np.testing.assert_array_equal(renderer.data_source.data["x"], blobs[0][:, 0].astype(np.float32))
