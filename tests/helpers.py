"""Shared test helpers."""
from __future__ import annotations

import numpy as np

from gidr.plugins import hookimpl


def assert_matches(*, actual, reference, rtol: float = 1e-7, atol: float = 0.0, err_msg: str = "") -> None:
    """Assert that fast code's ``actual`` matches the ``reference`` implementation's output."""
    np.testing.assert_allclose(np.asarray(actual), np.asarray(reference), rtol=rtol, atol=atol, err_msg=err_msg)


class StagePlugin:
    """A plugin object that registers the given stage classes (for a fresh plugin manager)."""

    def __init__(self, *classes):
        self.classes = classes

    @hookimpl
    def gidr_register_stages(self, registry):
        for cls in self.classes:
            registry.add(cls)
