"""umap_sgd's force table read in numba: :mod:`gidr_reference.force_table`'s lookup, same bits.

The table (knots, values) is built once per run by the reference
(:func:`gidr_reference.force_table.build`); the kernels of :mod:`gidr_numba.umap_sgd` read it
with :func:`coefficient`, which repeats the reference's integer arithmetic on the float64
bit pattern of ``D`` and its interpolation ``c[k] + f (c[k + 1] - c[k])`` operation for
operation (numba does not contract ``a + f * b`` into a fused multiply-add without
``fastmath``), so both backends interpolate the same bits (tested).
"""
from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from gidr_reference.force_table import FRACTION_MASK, FRACTION_SCALE, HIGH, LOW, LOW_BITS, SHIFT

__all__ = ["bits_of", "interpolate", "inside"]


@intrinsic
def bits_of(typingctx, x):
    """The float64 ``x``'s bit pattern as an int64 (``np.float64(x).view(np.int64)``)."""
    if not isinstance(x, types.Float) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@njit(cache=True, inline="always")
def inside(D):
    """Whether ``D`` is in the tabulated range ``[LOW, HIGH)``."""
    return D >= LOW and D < HIGH


@njit(cache=True, inline="always")
def interpolate(values, D):
    """The table ``values`` at ``D`` (``D`` in ``[LOW, HIGH)``)."""
    u = bits_of(D) - LOW_BITS
    k = u >> SHIFT
    f = (u & FRACTION_MASK) * FRACTION_SCALE
    low = values[k]
    return low + f * (values[k + 1] - low)
