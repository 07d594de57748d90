"""Make the worked example plugin discoverable without pip-installing it.

``example_plugin`` writes a ``*.dist-info`` directory (METADATA + entry_points.txt, built
from the example's own pyproject.toml) into ``tmp_path`` and puts ``tmp_path`` and the
example's ``src`` directory on ``sys.path`` for one test: ``importlib.metadata`` then sees
the distribution exactly as if it were installed, and pluggy loads its entry point.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "gidr-plugin-example"
EXAMPLE_SRC = EXAMPLE_DIR / "src"


def _read_project() -> dict:
    with (EXAMPLE_DIR / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["project"]


@pytest.fixture
def example_project() -> dict:
    """The ``[project]`` table of the example's pyproject.toml."""
    return _read_project()


@pytest.fixture
def example_source(monkeypatch) -> Path:
    """The example's ``src`` directory, put on ``sys.path`` (importable, not discoverable)."""
    monkeypatch.syspath_prepend(str(EXAMPLE_SRC))
    return EXAMPLE_SRC


def write_dist_info(site: Path, project: dict) -> Path:
    """Write the installed-package metadata pip would write for ``project`` into ``site``."""
    name, version = project["name"], project["version"]
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, entries in project.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines.extend(f"{key} = {value}" for key, value in entries.items())
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return dist_info


@pytest.fixture
def example_plugin(tmp_path, monkeypatch):
    """The example plugin, visible to entry-point discovery for the duration of one test."""
    monkeypatch.delenv("GIDR_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    dist_info = write_dist_info(tmp_path, _read_project())
    monkeypatch.syspath_prepend(str(EXAMPLE_SRC))
    monkeypatch.syspath_prepend(str(tmp_path))
    return dist_info
