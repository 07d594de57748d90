"""umap_sgd's two force coefficients interpolated on a table instead of a power per pair.

umap_sgd (:func:`gidr_reference.optimizers.umap_sgd` and its numba twin) evaluates, for every
processed edge and each of its negatives, a coefficient that depends on the squared distance
``D`` alone: the attraction ``attraction(D, 1)`` and the repulsion ``phi_0(D)``. With UMAP's
fitted ``b`` (0.895 for ``min_dist = 0.1``) each costs a ``pow``, and on Fashion-MNIST 70,000
those powers were 60 % of the numba epoch (100 epochs of the ``umap`` preset: 10.2-10.7 s, 4.1 s
with ``b = 1``, where the power is compiled out).

The table holds both coefficients at knots spaced by the bit pattern of ``D`` (float64):
``2**KNOT_BITS = 128`` knots per octave between ``LOW = 2**-14`` and ``HIGH = 2**14``
(3,585 knots, 28 KiB per coefficient). Within one octave the mantissa bits are linear in ``D``,
so with ``u = bits(D) - bits(LOW)``, ``k = u >> SHIFT`` and ``f = (u mod 2**SHIFT) / 2**SHIFT``
the coefficient is the linear interpolation ``c[k] + f (c[k + 1] - c[k])`` between two knots
whose ``D`` differ by 1/128 to 1/256 of ``D``. Outside ``[LOW, HIGH)`` (points 0.008 apart or
128 apart, rare in a layout) the exact function is used.

The interpolation error is about ``(h / D)**2 / 8`` times ``D**2 |c''| / |c|`` with ``h / D``
at most 1/128: for UMAP's coefficients (``c ~ D**-(1 + b)`` far out) the measured maximum
(:func:`max_relative_error`) is 1.5e-5 for the attraction and 4.2e-5 for the repulsion with
``min_dist = 0.1`` (a = 1.577, b = 0.895), 5.9e-5 with b = 1.334;
``tests/reference/test_force_table.py`` states the bound 1e-4. That is well inside the noise
of the sampled repulsion. The layout keeps its quality (see
:mod:`gidr_numba.umap_sgd`).

Both backends read the same knots and values (built here from the loss's NumPy force
functions) with the same arithmetic, so they interpolate the same bits.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from gidr.types import Context

__all__ = ["ForceTable", "LOW", "HIGH", "SHIFT", "KNOT_BITS", "LOW_BITS", "FRACTION_MASK", "FRACTION_SCALE",
           "knots", "build", "interpolate", "coefficients", "wanted", "EMPTY", "max_relative_error"]

#: mantissa bits that select the knot within an octave: 2**KNOT_BITS knots per octave.
KNOT_BITS = 7
#: bits of the float64 pattern below the knot number: the interpolation fraction.
SHIFT = 52 - KNOT_BITS
#: the tabulated range of D, [LOW, HIGH): both powers of two, so knots fall on octaves.
LOW = 2.0 ** -14
HIGH = 2.0 ** 14
#: the bit patterns of LOW and HIGH (int64): a D's offset from LOW_BITS, shifted right by
#: SHIFT, is its knot; the bits under FRACTION_MASK, times FRACTION_SCALE, its fraction.
LOW_BITS = int(np.float64(LOW).view(np.int64))
_HIGH_BITS = int(np.float64(HIGH).view(np.int64))
FRACTION_MASK = (1 << SHIFT) - 1
FRACTION_SCALE = 2.0 ** -SHIFT


class ForceTable(NamedTuple):
    """umap_sgd's coefficients at :func:`knots` (float64, C-contiguous); both empty: no table."""

    attraction: np.ndarray
    repulsion: np.ndarray

    @property
    def enabled(self) -> bool:
        return self.attraction.size > 0


#: the table of a run that evaluates every coefficient exactly.
EMPTY = ForceTable(np.empty(0), np.empty(0))


def knots() -> np.ndarray:
    """The ``D`` of each knot, ``LOW`` to ``HIGH`` inclusive (``2**KNOT_BITS`` per octave)."""
    count = ((_HIGH_BITS - LOW_BITS) >> SHIFT) + 1
    return (LOW_BITS + (np.arange(count, dtype=np.int64) << SHIFT)).view(np.float64)


def wanted(ctx: Context, force_table: bool) -> bool:
    """Whether a run tabulates: asked for, and ``b != 1`` (with ``b == 1`` there is no power:
    the exact coefficients cost less than the lookup and keep their bits)."""
    return bool(force_table) and float(ctx.b) != 1.0


def build(loss, ctx: Context) -> ForceTable:
    """The loss's umap_sgd coefficients at :func:`knots`: ``attraction(D, 1)`` and ``phi_0(D)``."""
    D = knots()
    attraction = np.asarray(loss.attraction(D, np.ones_like(D), ctx), dtype=np.float64)
    repulsion = np.asarray(loss.repulsion_channels(D, ctx), dtype=np.float64)[..., 0]
    if not (np.all(np.isfinite(attraction)) and np.all(np.isfinite(repulsion))):
        raise ValueError(f"{loss.describe()}: its umap_sgd coefficients are not finite on "
                         f"[{LOW}, {HIGH}]; use force_table=False")
    return ForceTable(np.ascontiguousarray(attraction), np.ascontiguousarray(repulsion))


def interpolate(values: np.ndarray, D: np.ndarray) -> np.ndarray:
    """The table ``values`` at ``D`` (every ``D`` in ``[LOW, HIGH)``)."""
    u = np.asarray(D, dtype=np.float64).view(np.int64) - LOW_BITS
    k = u >> SHIFT
    f = (u & FRACTION_MASK) * FRACTION_SCALE
    low = values[k]
    return low + f * (values[k + 1] - low)


def coefficients(values: np.ndarray, D: np.ndarray, exact: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The table's coefficient inside ``[LOW, HIGH)``, ``exact(D)`` outside (or everywhere
    when ``values`` is empty)."""
    D = np.asarray(D, dtype=np.float64)
    if values.size == 0:
        return np.asarray(exact(D), dtype=np.float64)
    inside = (D >= LOW) & (D < HIGH)
    out = np.empty_like(D)
    out[inside] = interpolate(values, D[inside])
    if not inside.all():
        out[~inside] = exact(D[~inside])
    return out


def max_relative_error(loss, ctx: Context, samples: int = 200_001) -> tuple[float, float]:
    """The largest relative error of the table's (attraction, repulsion) against the exact
    coefficients, on ``samples`` log-spaced ``D`` in ``[LOW, HIGH)`` (knots excluded)."""
    table = build(loss, ctx)
    D = np.geomspace(LOW, HIGH, samples, endpoint=False)[1:]
    exact_attraction = np.asarray(loss.attraction(D, np.ones_like(D), ctx), dtype=np.float64)
    exact_repulsion = np.asarray(loss.repulsion_channels(D, ctx), dtype=np.float64)[..., 0]
    return (float(np.max(np.abs(interpolate(table.attraction, D) / exact_attraction - 1.0))),
            float(np.max(np.abs(interpolate(table.repulsion, D) / exact_repulsion - 1.0))))
