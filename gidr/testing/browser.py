"""gidr's HTML maps in headless Chromium (Debian's ``chromium`` driven by ``chromedriver``
through selenium): what the browser test and the map benchmark share.

``selenium`` is imported when a driver is started, not with this module.
"""
from __future__ import annotations

import time

__all__ = ["CHROMIUM_ARGUMENTS", "DRAWN_SCRIPT", "start_chromium", "wait_until_drawn"]

#: Headless, and WebGL through ANGLE on SwiftShader (software) as on a machine without a GPU:
#: without the last two, Chromium 156 here draws the 1M-point map about 15 times slower.
CHROMIUM_ARGUMENTS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,800",
                      "--enable-unsafe-swiftshader", "--use-gl=angle", "--use-angle=swiftshader")

#: An async script that answers True once bokeh's document is idle and two frames were drawn.
DRAWN_SCRIPT = """
const done = arguments[arguments.length - 1];
const docs = window.Bokeh ? window.Bokeh.documents : [];
if (!docs.length || !docs[0].is_idle) { done(false); return; }
requestAnimationFrame(() => requestAnimationFrame(() => done(true)));
"""


def start_chromium(chromium: str, chromedriver: str, script_timeout: float):
    """A selenium driver of headless ``chromium`` (:data:`CHROMIUM_ARGUMENTS`) that keeps the
    browser console's messages; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in CHROMIUM_ARGUMENTS:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    driver.set_script_timeout(script_timeout)
    return driver


def wait_until_drawn(driver, timeout: float) -> bool:
    """Poll :data:`DRAWN_SCRIPT` until the open map is drawn; False when ``timeout`` seconds pass first."""
    start = time.perf_counter()
    while not driver.execute_async_script(DRAWN_SCRIPT):
        if time.perf_counter() - start > timeout:
            return False
        time.sleep(0.05)
    return True
