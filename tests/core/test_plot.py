"""Tests of gidr.plot on the Agg backend."""
from __future__ import annotations

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
