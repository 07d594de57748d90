"""Smoke test of asv_bench/compare.py: one quick gidr preset on digits, in fresh processes."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "asv_bench" / "compare.py"


def _compare(tmp_path: Path, *arguments: str) -> tuple[str, dict]:
    out = tmp_path / "compare.md"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out), *arguments],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert out.is_file() and out.with_suffix(".json").is_file()
    return out.read_text(), json.loads(out.with_suffix(".json").read_text())


def test_quick_gdr_umap_writes_a_row_with_good_accuracy(tmp_path):
    text, raw = _compare(tmp_path, "--methods", "gdr-umap", "--profile")
    [row] = raw["rows"]
    assert (row["method"], row["n"], row["status"]) == ("gdr-umap", 1797, "ok")
    assert math.isfinite(row["knn_accuracy"]) and row["knn_accuracy"] > 0.8
    assert 0 < row["fit_seconds"] <= row["process_seconds"]
    assert row["peak_mb"] > 0
    assert set(row["timings"]) == {"neighbors", "similarity", "symmetrize", "init", "optimize"}
    table_row = next(line for line in text.splitlines() if line.startswith("| gdr-umap |"))
    assert f"{row['knn_accuracy']:.3f}" in table_row
    assert text.startswith("Machine: ")


def test_a_failing_child_becomes_a_row_not_a_crash(tmp_path):
    # A 0.001 s limit kills the child (and its process group) before it can import anything.
    text, raw = _compare(tmp_path, "--methods", "umap", "--timeout", "0.001")
    [row] = raw["rows"]
    assert row["status"] == "timeout" and "knn_accuracy" not in row
    assert "timeout after 0.001 s" in next(line for line in text.splitlines() if line.startswith("| umap |"))


def test_warm_times_the_second_fit_and_keeps_the_first(tmp_path):
    text, raw = _compare(tmp_path, "--methods", "gdr-umap", "--warm")
    [row] = raw["rows"]
    assert row["status"] == "ok" and row["first_fit_seconds"] > 0 and row["fit_seconds"] > 0
    assert "first fit s" in text and "the second fit is timed" in text
    table_row = next(line for line in text.splitlines() if line.startswith("| gdr-umap |"))
    assert f"{row['first_fit_seconds']:.1f}" in table_row


def test_score_points_subsample_and_scaling_figure(tmp_path):
    figure = tmp_path / "scaling.png"
    text, raw = _compare(tmp_path, "--methods", "gdr-umap", "umap", "--score-points", "1000", "--figure",
                         str(figure))
    rows = {row["method"]: row for row in raw["rows"]}
    assert rows["gdr-umap"]["scored_points"] == 1000 and 0.5 < rows["gdr-umap"]["knn_accuracy"] <= 1.0
    assert "1,000 of 1,797 points" in text
    assert figure.stat().st_size > 10_000


def test_the_default_score_subsample_is_fixed_and_only_above_70000_points():
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_script", SCRIPT)
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    assert compare.score_subsample(70_000, None) is None
    assert compare.score_subsample(1000, 5000) is None
    rows = compare.score_subsample(250_000, None)
    assert len(rows) == 20_000 and np.all(np.diff(rows) > 0) and rows[-1] < 250_000
    np.testing.assert_array_equal(rows, compare.score_subsample(250_000, None))
    assert len(compare.score_subsample(5000, 300)) == 300
