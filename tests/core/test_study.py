"""The paper study's --quick mode (what CI runs) and the asv suite's discovery."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gidr import study

ROOT = Path(__file__).resolve().parents[2]


def test_flipped_is_a_single_override_for_every_switch():
    for algorithm in study.ALGORITHMS:
        for switch in study.SWITCHES:
            assert len(study.flipped(algorithm, switch)) == 1


def test_study_quick_writes_tables_and_figures(tmp_path):
    pytest.importorskip("matplotlib")
    assert study.main(["--quick", "--out", str(tmp_path)]) == 0
    for name in ["table5.md", "table6.md", "fig3_angles.png", "fig4_runtimes.png", "fig5_scaling.png",
                 "table7_normalization.png", "summary.json"]:
        assert (tmp_path / name).stat().st_size > 0, name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["table5"]["gdr-umap|original"][0] > 0
    assert all(0 <= angle <= 3.1416 for angle in summary["angles"].values())


def test_asv_benchmarks_are_discovered():
    if shutil.which("asv") is None:
        pytest.skip("asv is not installed")
    proc = subprocess.run(["asv", "check", "--python=same"], cwd=ROOT / "asv_bench", capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
