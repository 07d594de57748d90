"""Large-data pictures: the 1M-point HTML map and the 10M-point density PNG.

Synthetic embeddings: ``n`` points in 10 Gaussian blobs in 2-D (seed 0), labelled by blob.
Each case runs in a fresh Python process (so datashader's and bokeh's first-call costs are
included, as a user's script sees them) and reports its own peak resident memory
(``ru_maxrss``), which includes the synthetic input itself.

- **html**: :func:`gidr.html_map.write_html` of ``--html-points`` points (default 1,000,000)
  with two hover columns (a float and a 10-value text column): write time and file size, then
  headless Chromium (Debian's ``chromium`` through ``chromedriver``, a 1000x800 window) opens
  the file; *open* is the time from the navigation request until bokeh reports the document
  idle (every renderer drawn) and two animation frames have passed; *screenshot* until a
  screenshot taken then has come back (the compositor has the drawn frame), and the number
  of its pixels in class 0's colour (tab10 blue) shows that points were drawn. Also
  reported: whether WebGL drew, and the number of console messages of level SEVERE.
- **density**: :func:`gidr.plot.save_plot` of ``--density-points`` points (default
  10,000,000) with ``kind="auto"`` (a datashader picture: per-class counts) to a 150 dpi PNG.

Heavy: run it alone on a shared machine::

    python asv_bench/plot_bench.py --out /tmp/plot_bench.md
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_CHROMIUM = "/usr/bin/chromium"
_CHROMEDRIVER = "/usr/bin/chromedriver"
_TAB10_BLUE = (31, 119, 180)
_WEBGL_SCRIPT = """
for (const view of Bokeh.index) { if (view.canvas_view) return view.canvas_view.webgl != null; }
return null;
"""


def blobs(n_points: int, n_classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n_points`` points in ``n_classes`` unit Gaussian blobs on a circle of radius 12."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=n_points)
    angles = 2 * np.pi * np.arange(n_classes) / n_classes
    centers = 12 * np.c_[np.cos(angles), np.sin(angles)]
    return centers[labels] + rng.standard_normal((n_points, 2)), labels


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def open_in_chromium(path: str, timeout: float = 120.0) -> dict:
    """Open ``path`` in headless Chromium; seconds until rendered, WebGL used, SEVERE messages."""
    from gidr.testing.browser import start_chromium, wait_until_drawn

    driver = start_chromium(_CHROMIUM, _CHROMEDRIVER, timeout)
    try:
        driver.set_page_load_timeout(timeout)
        start = time.perf_counter()
        driver.get(Path(path).resolve().as_uri())
        if not wait_until_drawn(driver, timeout):
            raise TimeoutError(f"the map did not render within {timeout} s")
        seconds = time.perf_counter() - start
        screenshot = driver.get_screenshot_as_png()
        visible = time.perf_counter() - start
        severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        return {"open s": seconds, "screenshot s": visible, "class-0 pixels": _count_color(screenshot, _TAB10_BLUE),
                "webgl": driver.execute_script(_WEBGL_SCRIPT), "severe": len(severe)}
    finally:
        driver.quit()


def _count_color(png: bytes, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    """Pixels of a PNG screenshot within ``tolerance`` (per channel) of ``rgb``."""
    import io

    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int(np.all(np.abs(pixels - np.array(rgb)) <= tolerance, axis=2).sum())


def case_html(n_points: int) -> dict:
    from gidr.html_map import write_html

    Y, labels = blobs(n_points)
    columns = {"score": np.random.default_rng(1).random(n_points),
               "batch": np.array([f"batch-{i}" for i in range(10)])[labels[::-1]]}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "map.html")
        start = time.perf_counter()
        write_html(Y, path, labels, columns=columns, title="blobs")
        write_seconds = time.perf_counter() - start
        size_mb = os.path.getsize(path) / 1e6
        peak = _peak_mb()
        opened = open_in_chromium(path)
    return {"case": f"HTML map, {n_points:,} points", "seconds": write_seconds, "peak MB": peak,
            "file MB": size_mb, **opened}


def case_density(n_points: int) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    from gidr.plot import save_plot

    Y, labels = blobs(n_points)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "density.png")
        start = time.perf_counter()
        save_plot(Y, path, labels, dpi=150)
        seconds = time.perf_counter() - start
        size_mb = os.path.getsize(path) / 1e6
    return {"case": f"density PNG, {n_points:,} points", "seconds": seconds, "peak MB": _peak_mb(),
            "file MB": size_mb}


def _in_fresh_process(case: str, n_points: int) -> dict:
    completed = subprocess.run([sys.executable, __file__, "--case", case, "--n", str(n_points)],
                               capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"case {case} failed:\n{completed.stdout}\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _table(rows: list[dict]) -> str:
    columns = ["case", "seconds", "peak MB", "file MB", "open s", "screenshot s", "class-0 pixels", "webgl", "severe"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [row.get(c, "") for c in columns]
        lines.append("| " + " | ".join(f"{c:.2f}" if isinstance(c, float) else str(c) for c in cells) + " |")
    return "\n".join(lines)


def _versions() -> str:
    names = ("numpy", "bokeh", "datashader", "matplotlib", "selenium")
    found = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in names)
    chromium = subprocess.run([_CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    return f"Python {platform.python_version()}, {found}, {chromium}; {os.cpu_count()} CPU(s)"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html-points", type=int, default=1_000_000)
    parser.add_argument("--density-points", type=int, default=10_000_000)
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here too")
    parser.add_argument("--case", choices=("html", "density"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case is not None:
        print(json.dumps(case_html(args.n) if args.case == "html" else case_density(args.n)))
        return
    rows = [_in_fresh_process("html", args.html_points), _in_fresh_process("density", args.density_points)]
    text = "\n\n".join([_table(rows), _versions(),
                        "Command: python asv_bench/plot_bench.py"])
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
