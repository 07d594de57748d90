"""The paper study's --quick mode (what CI runs) and the asv suite's discovery."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from gidr import study

ROOT = Path(__file__).resolve().parents[2]


def test_flipped_is_a_single_override_for_every_switch():
    for algorithm in study.ALGORITHMS:
        for switch in study.SWITCHES:
            assert len(study.flipped(algorithm, switch)) == 1


def test_study_quick_writes_tables_and_figures(tmp_path, monkeypatch):
    """The --quick study, with two cuts that leave every code path run (each timing is a fresh
    process: about 1 s for each of our presets, 11 s for umap-learn, 2 s and 11 s for openTSNE's
    Barnes-Hut and FFT variants):

    - Fig. 5 on two sizes instead of three: 100 (sampled down from the 300 rows) and 400
      (upsampled along the manifold), the two branches of ``scaling``; a third size repeats them.
    - openTSNE timed with Barnes-Hut only: its FFT variant runs the same branch of the timing
      script with another ``negative_gradient_method`` string (11 s of openTSNE's own FFT loop).
    """
    pytest.importorskip("matplotlib")
    peer_installed = study._peer_installed
    monkeypatch.setattr(study, "_peer_installed", lambda method: method != "openTSNE-fft" and peer_installed(method))
    assert study.main(["--quick", "--out", str(tmp_path), "--scaling-sizes", "100", "400"]) == 0
    for name in ["table5.md", "table6.md", "fig3_angles.png", "fig4_runtimes.png", "fig5_scaling.png",
                 "table7_normalization.png", "summary.json"]:
        assert (tmp_path / name).stat().st_size > 0, name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["table5"]["gdr-umap|original"][0] > 0
    assert all(0 <= angle <= 3.1416 for angle in summary["angles"].values())
    ours = ["gdr-umap", "gdr-tsne", "umap", "tsne"]
    # our presets' fresh processes ran (a failed one is recorded as None); a peer's may fail
    assert all(isinstance(summary["runtimes"][method], float) and summary["runtimes"][method] > 0
               for method in ours), summary["runtimes"]
    assert "openTSNE-fft" not in summary["runtimes"]
    assert summary["scaling"]["sizes"] == [100, 400]
    for method in ours:
        times = summary["scaling"][method]
        assert len(times) == 2 and all(isinstance(t, float) and t > 0 for t in times), (method, times)


def test_asv_benchmarks_are_discovered():
    if shutil.which("asv") is None:
        pytest.skip("asv is not installed")
    proc = subprocess.run(["asv", "check", "--python=same"], cwd=ROOT / "asv_bench", capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
