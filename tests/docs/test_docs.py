"""The Sphinx docs build without warnings, and their code examples run (doctest)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("sphinx")
pytest.importorskip("numpydoc")


@pytest.mark.parametrize("builder", ["html", "doctest"])
def test_sphinx_build(builder, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder, str(ROOT / "docs"),
         str(tmp_path / builder)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
