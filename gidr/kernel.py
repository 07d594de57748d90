"""The low-dimensional kernel w = 1 / (1 + a D^b) and UMAP's fit of (a, b)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from gidr.validation import GidrValueError, format_error

__all__ = ["fit_ab", "kernel"]


def kernel(D: np.ndarray, a: float, b: float) -> np.ndarray:
    """w = 1 / (1 + a * D**b), with D the squared low-dimensional distance."""
    return 1.0 / (1.0 + a * np.power(D, b))


@lru_cache(maxsize=64)
def fit_ab(min_dist: float, spread: float) -> tuple[float, float]:
    """Fit (a, b) so that 1/(1 + a x^(2b)) matches UMAP's target curve.

    The target is 1 for x < min_dist and exp(-(x - min_dist)/spread) beyond, sampled at
    300 points of [0, 3*spread] (x is the low-dimensional distance, so D = x^2).
    For (0.1, 1.0) this gives a ≈ 1.577, b ≈ 0.895.
    """
    if not (spread > 0):
        raise GidrValueError(format_error("The 'spread' parameter", "a float in (0, inf)", spread))
    if not (0 <= min_dist <= spread):
        raise GidrValueError(
            format_error("The 'min_dist' parameter", f"a float in [0, spread={spread}]", min_dist)
        )
    from scipy.optimize import curve_fit

    x = np.linspace(0.0, 3.0 * spread, 300)
    y = np.where(x < min_dist, 1.0, np.exp(-(x - min_dist) / spread))

    def curve(x, a, b):
        return 1.0 / (1.0 + a * x ** (2 * b))

    (a, b), _ = curve_fit(curve, x, y, p0=(1.0, 1.0), maxfev=10000)
    return float(a), float(b)
