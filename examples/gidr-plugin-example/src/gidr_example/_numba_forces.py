"""The Hellinger forces as numba scalar functions, for gidr's numba optimizers.

Imported only by :func:`gidr_example.plugin.numba_kernels` (the ``gidr_register_kernels``
hook's factory), so the plugin works without numba (it then runs on the reference
optimizers only). Each function mirrors its NumPy twin in :mod:`gidr_example.loss`; the
tests compare them. The signatures are those of :mod:`gidr_numba.forces`:
``attraction(D, p, a, b, params) -> (coefficient, w)`` and
``repulsion(D, a, b, params) -> (phi_0, phi_1, w)``; the loss has no parameters of its own.
"""
import math

import numba


@numba.njit(cache=True)
def _power_b_minus_1(D, b):
    """D^(b-1), 0 where D == 0 and b != 1."""
    if b == 1.0:
        return 1.0
    if D <= 0.0:
        return 0.0
    return D ** (b - 1.0)


@numba.njit(cache=True)
def attraction(D, p, a, b, params):
    """``(2ab D^(b-1) sqrt(p) w^(3/2), w)`` with ``w = 1 / (1 + a D^b)``."""
    w = 1.0 / (1.0 + a * D ** b)
    return 2.0 * a * b * _power_b_minus_1(D, b) * math.sqrt(p) * w * math.sqrt(w), w


@numba.njit(cache=True)
def repulsion(D, a, b, params):
    """``(phi_0, phi_1, w) = (ab D^(b-1) w^2, 0, w)``; the loss has one channel."""
    w = 1.0 / (1.0 + a * D ** b)
    return a * b * _power_b_minus_1(D, b) * w * w, 0.0, w
