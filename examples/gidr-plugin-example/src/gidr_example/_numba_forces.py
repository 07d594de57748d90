"""The Hellinger forces as numba scalar functions, for gidr's numba optimizers.

Imported only by :meth:`gidr_example.loss.HellingerLoss.numba_forces`, so the plugin works
without numba (it then runs on the reference optimizers only). Each function mirrors its
NumPy twin in :mod:`gidr_example.loss`; the tests compare them.
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
def attraction(D, p, a, b):
    """``2ab D^(b-1) sqrt(p) w^(3/2)`` with ``w = 1 / (1 + a D^b)``."""
    w = 1.0 / (1.0 + a * D ** b)
    return 2.0 * a * b * _power_b_minus_1(D, b) * math.sqrt(p) * w * math.sqrt(w)


@numba.njit(cache=True)
def repulsion(D, a, b, epsilon):
    """``(phi_0, phi_1) = (ab D^(b-1) w^2, 0)``; the loss has one channel and ignores ``epsilon``."""
    w = 1.0 / (1.0 + a * D ** b)
    return a * b * _power_b_minus_1(D, b) * w * w, 0.0
