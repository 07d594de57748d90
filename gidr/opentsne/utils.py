"""openTSNE's ``utils`` helpers that code written against openTSNE imports."""
from __future__ import annotations

import importlib.util

__all__ = ["is_package_installed"]


def is_package_installed(name: str) -> bool:
    """Whether the package ``name`` can be imported (it is looked up, not imported)."""
    return importlib.util.find_spec(name) is not None
