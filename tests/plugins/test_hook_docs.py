"""Every hook has a documentation section and a test (datasette's idea)."""
import inspect
import re
from pathlib import Path

import pytest

from gidr import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = [name for name, obj in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("gidr_")]


def test_there_are_hooks():
    assert {"gidr_register_stages", "gidr_register_presets"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_documentation_section(hook):
    text = (ROOT / "docs" / "plugins.rst").read_text()
    assert re.search(rf"^{hook}\n~+\n", text, flags=re.M), f"docs/plugins.rst has no section for {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    me = Path(__file__).resolve()
    users = [p for p in (ROOT / "tests").rglob("test_*.py") if p.resolve() != me and hook in p.read_text()]
    assert users, f"no test under tests/ exercises {hook}"
