"""Tests of gidr.plot on the Agg backend."""
from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gidr.plot import plot, save_plot  # noqa: E402
from gidr.validation import GidrValueError  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def embedding() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(300, 2))


def _n_points(ax) -> int:
    return sum(len(collection.get_offsets()) for collection in ax.collections)


def _has_colorbar(ax) -> bool:
    return len(ax.figure.axes) == 2


def test_all_points_are_drawn_without_ticks_or_spines(embedding) -> None:
    ax = plot(embedding)
    assert _n_points(ax) == 300
    assert len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0
    assert not any(spine.get_visible() for spine in ax.spines.values())
    assert ax.get_aspect() == 1.0
    assert ax.get_legend() is None and not _has_colorbar(ax)


def test_points_are_drawn_in_a_seeded_shuffled_order(embedding) -> None:
    offsets = np.asarray(plot(embedding).collections[0].get_offsets())
    assert not np.array_equal(offsets, embedding)
    np.testing.assert_array_equal(np.sort(offsets, axis=0), np.sort(embedding, axis=0))
    np.testing.assert_array_equal(offsets, plot(embedding).collections[0].get_offsets())


def test_categorical_int_labels_get_a_legend(embedding) -> None:
    labels = np.arange(300) % 4
    ax = plot(embedding, labels)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["0", "1", "2", "3"]
    assert not _has_colorbar(ax)
    colors = ax.collections[0].get_facecolors()
    assert len(np.unique(colors.round(6), axis=0)) == 4


def test_string_labels_and_label_names(embedding) -> None:
    labels = np.where(np.arange(300) % 2 == 0, "cat", "dog")
    ax = plot(embedding, labels, label_names={"cat": "Cats", "dog": "Dogs"})
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Cats", "Dogs"]


def test_label_names_as_a_sequence(embedding) -> None:
    ax = plot(embedding, np.arange(300) % 3, label_names=["zero", "one", "two"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["zero", "one", "two"]


def test_legend_can_be_turned_off(embedding) -> None:
    assert plot(embedding, np.arange(300) % 3, legend=False).get_legend() is None


def test_continuous_labels_get_a_colorbar(embedding) -> None:
    ax = plot(embedding, np.linspace(0.0, 1.0, 300))
    assert _has_colorbar(ax)
    assert ax.get_legend() is None
    assert _n_points(ax) == 300


def test_many_integer_classes_are_continuous(embedding) -> None:
    assert _has_colorbar(plot(embedding, np.arange(300)))


def test_integer_valued_floats_are_categorical(embedding) -> None:
    ax = plot(embedding, (np.arange(300) % 5).astype(float))
    assert len(ax.get_legend().get_texts()) == 5


def test_twenty_classes_use_tab20(embedding) -> None:
    ax = plot(embedding, np.arange(300) % 20)
    assert len(ax.get_legend().get_texts()) == 20
    colors = ax.collections[0].get_facecolors()
    assert len(np.unique(colors.round(6), axis=0)) == 20


def test_existing_axes_and_title(embedding) -> None:
    fig, ax = plt.subplots()
    assert plot(embedding, ax=ax, title="t-SNE") is ax
    assert ax.get_title() == "t-SNE"


def test_marker_size_and_alpha_follow_n(embedding) -> None:
    small = plot(embedding).collections[0]
    large = plot(np.random.default_rng(1).normal(size=(20000, 2))).collections[0]
    assert small.get_sizes()[0] > large.get_sizes()[0]
    assert small.get_alpha() >= large.get_alpha()
    assert plot(embedding, s=3.0, alpha=0.2).collections[0].get_sizes()[0] == 3.0


def test_object_with_an_embedding_attribute(embedding) -> None:
    class Result:
        def __init__(self, Y):
            self.embedding = Y

    assert _n_points(plot(Result(embedding))) == 300


def test_object_with_array_protocol(embedding) -> None:
    class Result:
        def __array__(self, dtype=None, copy=None):
            return embedding

    assert _n_points(plot(Result())) == 300


def test_three_columns_warn_and_use_the_first_two(embedding) -> None:
    Y3 = np.c_[embedding, np.ones(300)]
    with pytest.warns(UserWarning, match=r"draws the first 2 of the embedding's 3 columns"):
        ax = plot(Y3)
    assert _n_points(ax) == 300


def test_one_column_is_rejected() -> None:
    with pytest.raises(GidrValueError, match=r"input embedding of plot\(\) must be an array with 2 columns"):
        plot(np.zeros((10, 1)))


def test_labels_of_wrong_length_are_rejected(embedding) -> None:
    with pytest.raises(GidrValueError, match=r"'labels' parameter of plot\(\) must be a 1-D array with one label per point \(300\)"):
        plot(embedding, np.zeros(10))
    assert plt.get_fignums() == []  # checked before a figure is made


def test_too_few_label_names_are_rejected(embedding) -> None:
    with pytest.raises(GidrValueError, match=r"'label_names' parameter of plot\(\) must be a mapping, or a sequence"):
        plot(embedding, np.arange(300) % 3, label_names=["a"])


def test_caller_arrays_are_not_modified(embedding) -> None:
    labels = np.arange(300) % 3
    before = embedding.copy(), labels.copy()
    plot(embedding, labels)
    np.testing.assert_array_equal(embedding, before[0])
    np.testing.assert_array_equal(labels, before[1])


def test_save_plot_writes_a_png_and_leaves_no_figure(embedding, tmp_path) -> None:
    open_before = plt.get_fignums()
    path = tmp_path / "embedding.png"
    save_plot(embedding, path, np.arange(300) % 3, title="x")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == open_before


def test_save_plot_without_extension_writes_png(embedding, tmp_path) -> None:
    path = tmp_path / "embedding"
    save_plot(embedding, path, dpi=50)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_save_plot_rejects_ax(embedding, tmp_path) -> None:
    with pytest.raises(GidrValueError, match=r"'ax' parameter of save_plot\(\) must be absent"):
        save_plot(embedding, tmp_path / "x.png", ax=object())


def test_missing_matplotlib_names_the_extra(embedding, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install gidr\[plot\]"):
        plot(embedding)


# --- density pictures (datashader) -------------------------------------------------------------

def _blobs(n_points: int = 6000) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated blobs: class 0 left, class 1 right, class 2 top."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=n_points)
    centers = np.array([[-10.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    return centers[labels] + rng.normal(scale=0.7, size=(n_points, 2)), labels


def _image(ax):
    (image,) = ax.get_images()
    return image


def _pixels_near(ax, x: float, y: float, radius: float = 1.0) -> np.ndarray:
    """The image's pixels within ``radius`` of data point (x, y), as rows (origin='lower': row 0 is the bottom)."""
    image = _image(ax)
    x0, x1, y0, y1 = image.get_extent()
    array = np.asarray(image.get_array())
    rows, cols = array.shape[:2]
    row = slice(int((y - radius - y0) / (y1 - y0) * rows), int((y + radius - y0) / (y1 - y0) * rows))
    col = slice(int((x - radius - x0) / (x1 - x0) * cols), int((x + radius - x0) / (x1 - x0) * cols))
    return array[row, col].reshape(-1, array.shape[2]) if array.ndim == 3 else array[row, col].ravel()


def test_density_shades_each_class_in_its_scatter_colour_at_its_place() -> None:
    pytest.importorskip("datashader")
    from matplotlib.colors import to_rgb

    Y, labels = _blobs()
    ax = plot(Y, labels, kind="density", label_names=["left", "right", "top"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["left", "right", "top"]
    assert not ax.collections and not _has_colorbar(ax)
    for center, color in zip([(-10, 0), (10, 0), (0, 10)], ["tab:blue", "tab:orange", "tab:green"]):
        pixels = _pixels_near(ax, *center)
        drawn = pixels[pixels[:, 3] > 0]
        assert drawn.shape[0] > 0.1 * pixels.shape[0]
        np.testing.assert_allclose(drawn[:, :3] / 255, np.tile(to_rgb(color), (drawn.shape[0], 1)), atol=2 / 255)
    assert not _pixels_near(ax, 0.0, -6.0)[:, 3].any()  # empty background is transparent


def test_density_of_values_is_the_mean_per_pixel_with_a_colorbar() -> None:
    pytest.importorskip("datashader")
    Y, _ = _blobs()
    ax = plot(Y, Y[:, 0], kind="density")
    assert _has_colorbar(ax) and ax.get_legend() is None
    image = _image(ax)
    means = np.asarray(image.get_array().filled(np.nan))
    x0, x1, _, _ = image.get_extent()
    edges = np.linspace(x0, x1, means.shape[1] + 1)
    rows, cols = np.nonzero(np.isfinite(means))
    assert rows.size > 100
    # Each pixel's mean of x lies within the pixel's own x bounds (float32 coordinates).
    slack = 1e-5 * (x1 - x0)
    assert np.all(means[rows, cols] >= edges[cols] - slack)
    assert np.all(means[rows, cols] <= edges[cols + 1] + slack)
    assert image.get_clim() == (Y[:, 0].min(), Y[:, 0].max())


def test_density_without_labels_counts_points() -> None:
    pytest.importorskip("datashader")
    Y, _ = _blobs()
    ax = plot(Y, kind="density")
    assert ax.get_legend() is None and not _has_colorbar(ax)
    assert (_pixels_near(ax, -10.0, 0.0)[:, 3] > 0).mean() > 0.1
    assert not _pixels_near(ax, 0.0, -6.0)[:, 3].any()


def test_auto_switches_to_density_above_the_threshold(monkeypatch) -> None:
    pytest.importorskip("datashader")
    plot_module = importlib.import_module("gidr.plot")  # the attribute gidr.plot is the function
    assert plot_module.DENSITY_THRESHOLD == 500_000
    monkeypatch.setattr(plot_module, "DENSITY_THRESHOLD", 5000)
    Y, labels = _blobs(5001)
    assert len(plot(Y, labels).get_images()) == 1
    ax = plot(Y[:5000], labels[:5000])
    assert _n_points(ax) == 5000 and not ax.get_images()
    assert _n_points(plot(Y, labels, kind="scatter")) == 5001


def test_without_datashader_large_inputs_fall_back_to_a_scatter_with_a_warning(monkeypatch) -> None:
    monkeypatch.setattr(importlib.import_module("gidr.plot"), "DENSITY_THRESHOLD", 1000)
    monkeypatch.setitem(sys.modules, "datashader", None)
    Y, labels = _blobs(1001)
    with pytest.warns(UserWarning, match=r"pip install gidr\[large\]"):
        ax = plot(Y, labels)
    assert _n_points(ax) == 1001
    with pytest.raises(ImportError, match=r"pip install gidr\[large\]"):
        plot(Y, labels, kind="density")


def test_an_unknown_kind_is_rejected(embedding) -> None:
    with pytest.raises(GidrValueError, match=r"'kind' parameter of plot\(\) must be one of 'auto', 'scatter', "
                                             r"'density'. Got 'hexbin'"):
        plot(embedding, kind="hexbin")


def test_save_plot_writes_a_density_png(tmp_path) -> None:
    pytest.importorskip("datashader")
    Y, labels = _blobs()
    save_plot(Y, tmp_path / "density.png", labels, kind="density", dpi=50)
    assert (tmp_path / "density.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- neighbor preservation ---------------------------------------------------------------------

def _brute_force_preservation(X: np.ndarray, Y: np.ndarray, k: int) -> np.ndarray:
    def neighbors(data):
        distances = ((data[:, None, :] - data[None, :, :]) ** 2).sum(axis=2)
        np.fill_diagonal(distances, np.inf)
        return np.argsort(distances, axis=1, kind="stable")[:, :k]

    high, low = neighbors(X), neighbors(Y)
    return np.array([len(set(h) & set(l)) / k for h, l in zip(high, low)])


def _compare(*, actual: np.ndarray, reference: np.ndarray) -> None:
    np.testing.assert_allclose(actual, reference, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 5, 15])
def test_neighbor_preservation_matches_brute_force(k) -> None:
    from gidr.metrics import neighbor_preservation

    rng = np.random.default_rng(k)
    X = rng.normal(size=(160, 6))
    Y = X[:, :2] + 0.5 * rng.normal(size=(160, 2))
    reference = _brute_force_preservation(X, Y, k)
    assert 0 < reference.mean() < 1
    _compare(actual=neighbor_preservation(X, Y, k=k), reference=reference)


def test_neighbor_preservation_reuses_a_graph_and_its_first_k_columns(monkeypatch) -> None:
    import gidr.metrics
    from gidr import KNNGraph
    from gidr.metrics import neighbor_preservation

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(200, 5)), rng.normal(size=(200, 2))
    distances = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(distances, np.inf)
    order = np.argsort(distances, axis=1, kind="stable")[:, :30]
    graph = KNNGraph(indices=order.astype(np.int64), distances=np.sqrt(np.take_along_axis(distances, order, 1)))
    reference = _brute_force_preservation(X, Y, 10)
    _compare(actual=neighbor_preservation(graph, Y, k=10), reference=reference)
    monkeypatch.setattr(gidr.metrics, "_MATCH_TABLE_CELLS", 7 * 10 * 10)  # 7 rows per chunk
    _compare(actual=neighbor_preservation(graph, Y, k=10), reference=reference)


def test_neighbor_preservation_is_one_for_an_isometric_embedding() -> None:
    from gidr.metrics import neighbor_preservation

    X = np.random.default_rng(0).normal(size=(300, 2))
    np.testing.assert_array_equal(neighbor_preservation(X, 3.0 * X[:, ::-1]), np.ones(300))


def test_neighbor_preservation_rejects_a_graph_with_too_few_neighbours() -> None:
    from gidr import KNNGraph
    from gidr.metrics import neighbor_preservation

    graph = KNNGraph(indices=np.zeros((50, 5), dtype=np.int64), distances=np.ones((50, 5)))
    with pytest.raises(GidrValueError, match=r"'k' parameter of neighbor_preservation\(\) must be at most the "
                                             r"graph's number of neighbours \(5\). Got 15. Pass k=5"):
        neighbor_preservation(graph, np.zeros((50, 2)))
    with pytest.raises(GidrValueError, match=r"graph of neighbor_preservation\(\) must be a graph of as many "
                                             r"points as Y \(40\)"):
        neighbor_preservation(graph, np.zeros((40, 2)), k=5)


def test_neighbor_preservation_rejects_data_of_another_length() -> None:
    from gidr.metrics import neighbor_preservation

    with pytest.raises(GidrValueError, match=r"input X of neighbor_preservation\(\) must be an array with as many "
                                             r"rows as Y \(40\)"):
        neighbor_preservation(np.zeros((50, 3)), np.zeros((40, 2)))


# --- the quality view: color_by="neighbor_preservation" ----------------------------------------

@pytest.fixture(scope="module")
def fitted():
    from gidr import Pipeline

    X = np.random.default_rng(1).normal(size=(400, 6))
    return X, Pipeline.from_preset("gdr-umap", random_state=0).run(X)


def test_color_by_neighbor_preservation_colours_points_by_the_fitted_graph(fitted) -> None:
    from gidr.metrics import neighbor_preservation

    _, result = fitted
    ax = plot(result, color_by="neighbor_preservation")
    assert _has_colorbar(ax)
    assert ax.figure.axes[1].get_ylabel() == "neighbor preservation (k=15)"
    expected = neighbor_preservation(result.graph, result.embedding, k=15)
    order = np.random.default_rng(0).permutation(400)  # plot's seeded draw order
    np.testing.assert_array_equal(ax.collections[0].get_array(), expected[order])


def test_color_by_works_in_the_density_mode(fitted) -> None:
    pytest.importorskip("datashader")
    _, result = fitted
    ax = plot(result, color_by="neighbor_preservation", kind="density")
    assert len(ax.get_images()) == 1 and _has_colorbar(ax)
    means = _image(ax).get_array().compressed()
    assert means.size > 0 and np.all((means >= 0) & (means <= 1))


def test_color_by_reads_a_fitted_estimators_result(fitted) -> None:
    from gidr import GDR

    X, _ = fitted
    estimator = GDR(random_state=0).fit(X)
    ax = plot(estimator, color_by="neighbor_preservation")
    assert _has_colorbar(ax) and _n_points(ax) == 400


def test_color_by_needs_a_result(embedding) -> None:
    with pytest.raises(GidrValueError, match=r"input embedding of plot\(\) must be a Result or a fitted estimator "
                                             r"with color_by='neighbor_preservation'.*neighbor_preservation\(X, Y\)"):
        plot(embedding, color_by="neighbor_preservation")


def test_color_by_and_labels_are_exclusive(fitted) -> None:
    _, result = fitted
    with pytest.raises(GidrValueError, match=r"'labels' parameter of plot\(\) must be None with color_by="):
        plot(result, np.zeros(400), color_by="neighbor_preservation")


def test_an_unknown_color_by_is_rejected(fitted) -> None:
    _, result = fitted
    with pytest.raises(GidrValueError, match=r"'color_by' parameter of plot\(\) must be one of "
                                             r"'neighbor_preservation'. Got 'trust'"):
        plot(result, color_by="trust")
