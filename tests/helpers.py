"""Shared test helpers."""
from __future__ import annotations

import numpy as np


def assert_matches(*, actual, reference, rtol: float = 1e-7, atol: float = 0.0, err_msg: str = "") -> None:
    """Assert that fast code's ``actual`` matches the ``reference`` implementation's output."""
    np.testing.assert_allclose(np.asarray(actual), np.asarray(reference), rtol=rtol, atol=atol, err_msg=err_msg)
