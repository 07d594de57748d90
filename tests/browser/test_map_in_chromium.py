"""The interactive map in a real browser: Debian's chromium, headless, driven by chromedriver.

A map of three well-separated classes is opened from disk; the test checks that the page
loads nothing from the network and logs no SEVERE console message, that bokeh drew with
WebGL, that a screenshot shows each class in its tab10 colour where its cluster lies, and
that clicking a class's legend entry hides that class (and clicking again shows it).

It skips only when the chromium or chromedriver binary is absent (``.ci/run`` installs both);
a browser that is present but fails to start fails the test.
"""
from __future__ import annotations

import io
import shutil
import time

import numpy as np
import pytest

pytest.importorskip("bokeh")
webdriver = pytest.importorskip("selenium.webdriver")
Image = pytest.importorskip("PIL.Image")

from gidr.html_map import write_html  # noqa: E402
from gidr.testing.browser import start_chromium, wait_until_drawn  # noqa: E402

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
TAB10 = [(31, 119, 180), (255, 127, 14), (44, 160, 44)]
CENTERS = np.array([[-10.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
TIMEOUT = 30.0

# Page coordinates of the plot frame and of data points, from the figure's own scales.
_GEOMETRY = """
const points = arguments[0];
for (const view of Bokeh.index) {
  if (!view.canvas_view) continue;
  const canvas = view.canvas_view.el.getBoundingClientRect();
  const frame = view.frame.bbox;
  return {webgl: view.canvas_view.webgl != null,
          frame: [canvas.left + frame.left, canvas.top + frame.top, canvas.left + frame.right, canvas.top + frame.bottom],
          points: points.map(([x, y]) => [canvas.left + view.frame.x_scale.compute(x),
                                          canvas.top + view.frame.y_scale.compute(y)])};
}
return null;
"""


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(f"the browser test needs Debian's chromium and chromium-driver; not found on PATH: "
                    f"chromium={CHROMIUM}, chromedriver={CHROMEDRIVER} (.ci/run installs them)")
    driver = start_chromium(CHROMIUM, CHROMEDRIVER, TIMEOUT)  # a failure here fails the test
    yield driver
    driver.quit()


# The text of the hover's tooltip, which bokeh draws inside nested shadow roots.
_TOOLTIP = """
function find(root) {
  for (const element of root.querySelectorAll("*")) {
    if (String(element.className).includes("bk-tooltip-content")) return element.innerText;
    if (element.shadowRoot) { const text = find(element.shadowRoot); if (text) return text; }
  }
  return null;
}
return find(document);
"""
SCORE = np.random.default_rng(1).random(3000)


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    """The map of 3,000 points in three classes, opened and drawn."""
    labels = np.repeat([0, 1, 2], 1000)
    Y = CENTERS[labels] + np.random.default_rng(0).normal(size=(3000, 2))
    path = tmp_path_factory.mktemp("map") / "map.html"
    write_html(Y, path, labels, label_names=["left", "right", "top"], columns={"score": SCORE})
    browser.get(path.as_uri())
    _wait_until_drawn(browser)
    return browser


def _wait_until_drawn(driver) -> None:
    assert wait_until_drawn(driver, TIMEOUT), f"the map was not drawn within {TIMEOUT} s"


def _screenshot(driver) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")).astype(int)


def _is_color(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 30) -> np.ndarray:
    return np.all(np.abs(pixels - np.array(rgb)) <= tolerance, axis=-1)


def _window(pixels: np.ndarray, center, half: int = 25) -> np.ndarray:
    x, y = (int(round(c)) for c in center)
    return pixels[y - half:y + half, x - half:x + half]


def _frame(pixels: np.ndarray, frame) -> np.ndarray:
    left, top, right, bottom = (int(round(c)) for c in frame)
    return pixels[top:bottom, left:right]


def test_the_page_loads_offline_without_console_errors_and_draws_with_webgl(page) -> None:
    severe = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []
    fetched = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [name for name in fetched if not name.startswith(("file:", "data:", "blob:"))] == []
    assert page.execute_script(_GEOMETRY, CENTERS.tolist())["webgl"] is True


def test_each_class_is_drawn_in_its_colour_where_its_cluster_lies(page) -> None:
    geometry = page.execute_script(_GEOMETRY, CENTERS.tolist())
    pixels = _screenshot(page)
    for code, center in enumerate(geometry["points"]):
        window = _window(pixels, center)
        assert _is_color(window, TAB10[code]).sum() > 100, f"class {code} is not drawn at its cluster"
        for other in set(range(3)) - {code}:
            assert _is_color(window, TAB10[other]).sum() == 0, f"class {other} is drawn in class {code}'s cluster"


def test_clicking_a_legend_entry_hides_its_class_and_clicking_again_shows_it(page) -> None:
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    geometry = page.execute_script(_GEOMETRY, CENTERS.tolist())
    pixels = _screenshot(page)
    right_of_frame = pixels.copy()
    right_of_frame[:, : int(geometry["frame"][2])] = 255  # the legend is right of the plot frame
    rows, cols = np.nonzero(_is_color(right_of_frame, TAB10[0], tolerance=10))
    assert rows.size > 0, "class 0's legend glyph was not found right of the plot frame"

    def click_legend_entry() -> None:
        action = ActionBuilder(page)
        action.pointer_action.move_to_location(int(cols.mean()), int(rows.mean())).click()
        action.perform()
        _wait_until_drawn(page)

    click_legend_entry()
    hidden = _frame(_screenshot(page), geometry["frame"])
    assert _is_color(hidden, TAB10[0]).sum() == 0
    assert _is_color(hidden, TAB10[1]).sum() > 100 and _is_color(hidden, TAB10[2]).sum() > 100
    click_legend_entry()
    assert _is_color(_frame(_screenshot(page), geometry["frame"]), TAB10[0]).sum() > 100


def test_hovering_a_point_shows_its_index_label_and_columns(page) -> None:
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    x, y = page.execute_script(_GEOMETRY, CENTERS.tolist())["points"][2]
    text = None
    for offset in range(0, 12, 2):  # a few pointer moves over the dense centre of the "top" class
        action = ActionBuilder(page)
        action.pointer_action.move_to_location(int(x) + offset, int(y) + offset)
        action.perform()
        time.sleep(0.2)
        text = page.execute_script(_TOOLTIP)
        if text:
            break
    assert text, "no tooltip appeared over the densest cluster"
    fields = dict(line.split(":\t") for line in text.splitlines())
    index = int(fields["index"])
    assert 2000 <= index < 3000 and fields["label"] == "top"
    assert fields["score"] == f"{SCORE[index]:.3f}"
