"""Counter-based random numbers: the same draw for the same (seed, epoch, i, slot).

Stochastic kernels never carry a random state. Each draw is a pure function of its
coordinates, so the result does not depend on the order in which points are processed,
nor on the number of threads. The hash is splitmix64's finalizer, chained::

    mix(z):  z ^= z >> 30; z *= 0xBF58476D1CE4E5B9
             z ^= z >> 27; z *= 0x94D049BB133111EB
             z ^= z >> 31                      (uint64, wrapping)
    h = mix(seed + 0x9E3779B97F4A7C15 * (epoch + 1))
    h = mix(h ^ i)
    h = mix(h ^ slot)

A negative sample of point ``i`` among ``n`` points is ``k = below(h, n - 1)``, then
``k += 1`` if ``k >= i`` (uniform over the ``n - 1`` points other than ``i``); a uniform
float is ``(h >> 11) * 2**-53`` in [0, 1). ``below(h, m) = floor(h * m / 2**64)`` (the high
word of the 128-bit product: multiplications, no division) for ``m < 2**32``, and ``h % m``
for larger ``m``; both are uniform to within ``m / 2**64``.

A **negative pool** (:func:`negative_pool`, :func:`pooled_negative_sample`) draws ``P`` points
per epoch, ``pool[q] = below(counter_hash(seed, epoch, POOL_ROW, q), n)``, and point ``i``'s
draw ``s`` is ``pool[below(h, P)]``; where that is ``i`` itself it is redrawn as
``below(mix(h), n - 1)``, shifted past ``i``. Each draw is still uniform over the ``n - 1``
others (``1/n + (1/n) (1/(n - 1)) = 1/(n - 1)``), but the draws of one epoch share the pool's
points, whose positions a kernel can then read from a copy small enough for a core's cache.

The vectorised functions (NumPy uint64 arrays) and the scalar ones (Python ints, written
like the numba twin in ``gidr_numba``) return identical bits; the tests pin a few values.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "GOLDEN_GAMMA",
    "mix",
    "below",
    "counter_hash",
    "negative_sample",
    "negative_pool",
    "pooled_negative_sample",
    "POOL_ROW",
    "uniform",
    "mix_scalar",
    "below_scalar",
    "counter_hash_scalar",
    "negative_sample_scalar",
    "uniform_scalar",
]

#: splitmix64's increment (2**64 / golden ratio).
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_MIX_1 = 0xBF58476D1CE4E5B9
_MIX_2 = 0x94D049BB133111EB
_MASK = (1 << 64) - 1
#: The ``i`` coordinate of the pool's draws: above every point index, so that no point's own
#: draws share its hashes.
POOL_ROW = 1 << 63


def _as_u64(x) -> np.ndarray:
    """Non-negative integers (scalars or arrays) as a uint64 array, taken modulo 2**64."""
    arr = np.asarray(x)
    if arr.dtype == np.uint64:
        return arr
    if arr.dtype.kind in "iu":
        return arr.astype(np.uint64)  # two's complement: wraps like the scalar version
    if arr.dtype == object or arr.ndim == 0:
        return np.asarray(int(x) & _MASK, dtype=np.uint64)
    raise TypeError(f"expected integers, got an array of dtype {arr.dtype}")


def mix(z) -> np.ndarray:
    """splitmix64's finalizer, element-wise on uint64 (wrapping arithmetic).

    Parameters
    ----------
    z : array-like of uint64

    Returns
    -------
    ndarray of uint64, same shape as ``z``
    """
    z = _as_u64(z)
    with np.errstate(over="ignore"):
        z = z ^ (z >> np.uint64(30))
        z = z * np.uint64(_MIX_1)
        z = z ^ (z >> np.uint64(27))
        z = z * np.uint64(_MIX_2)
        z = z ^ (z >> np.uint64(31))
    return z


def below(h, m: int) -> np.ndarray:
    """Hashes mapped to ``[0, m)``: ``floor(h * m / 2**64)`` for ``m < 2**32``, ``h % m`` above.

    The high word of ``h * m`` is ``(h_hi * m + (h_lo * m >> 32)) >> 32`` with ``h_hi``, ``h_lo``
    the 32-bit halves of ``h``: exact, and no term overflows 64 bits while ``m < 2**32``.

    Parameters
    ----------
    h : array-like of uint64
    m : int
        At least 1.

    Returns
    -------
    ndarray of uint64, same shape as ``h``
    """
    h = _as_u64(h)
    if m >= 1 << 32:
        return h % np.uint64(m)
    m_u, s32 = np.uint64(m), np.uint64(32)
    return ((h >> s32) * m_u + (((h & np.uint64(0xFFFFFFFF)) * m_u) >> s32)) >> s32


def counter_hash(seed, epoch, i, slot) -> np.ndarray:
    """``mix(mix(mix(seed + GOLDEN_GAMMA * (epoch + 1)) ^ i) ^ slot)``, broadcast over arrays.

    Parameters
    ----------
    seed, epoch : int
    i, slot : int or ndarray of int
        Non-negative; broadcast together.

    Returns
    -------
    ndarray of uint64 of the broadcast shape of ``i`` and ``slot``
    """
    seed_u, epoch_u = _as_u64(seed), _as_u64(epoch)
    with np.errstate(over="ignore"):
        start = seed_u + np.uint64(GOLDEN_GAMMA) * (epoch_u + np.uint64(1))
    h = mix(start)
    h = mix(h ^ _as_u64(i))
    return mix(h ^ _as_u64(slot))


def negative_sample(seed, epoch, i, slot, n: int) -> np.ndarray:
    """A point drawn uniformly among the ``n - 1`` points other than ``i``.

    ``k = below(h, n - 1)``; ``k += 1`` where ``k >= i``, with ``h = counter_hash(...)``.

    Parameters
    ----------
    seed, epoch : int
    i, slot : int or ndarray of int
        The point that samples, and the index of the draw; broadcast together.
    n : int
        Number of points (at least 2).

    Returns
    -------
    ndarray of int64 of the broadcast shape of ``i`` and ``slot``
    """
    if n < 2:
        raise ValueError(f"negative sampling needs at least 2 points; got n = {n}")
    k = below(counter_hash(seed, epoch, i, slot), n - 1)
    k = k.astype(np.int64)
    return k + (k >= np.asarray(i, dtype=np.int64))


def negative_pool(seed, epoch, n: int, size: int) -> np.ndarray:
    """The epoch's pool of ``size`` points, drawn uniformly from all ``n`` with replacement.

    ``pool[q] = below(counter_hash(seed, epoch, POOL_ROW, q), n)``.

    Returns
    -------
    ndarray of int64 of shape (size,)
    """
    return below(counter_hash(seed, epoch, POOL_ROW, np.arange(size, dtype=np.uint64)), n).astype(np.int64)


def pooled_negative_sample(seed, epoch, i, slot, n: int, pool: np.ndarray) -> np.ndarray:
    """:func:`negative_sample` through the epoch's :func:`negative_pool` (see the module docstring).

    ``k = pool[below(h, P)]``, and where ``k == i``: ``k = below(mix(h), n - 1)``, plus 1 where
    ``k >= i``; ``h = counter_hash(seed, epoch, i, slot)``, ``P = len(pool)``. Uniform over the
    ``n - 1`` points other than ``i``.

    Returns
    -------
    ndarray of int64 of the broadcast shape of ``i`` and ``slot``
    """
    if n < 2:
        raise ValueError(f"negative sampling needs at least 2 points; got n = {n}")
    pool = np.asarray(pool, dtype=np.int64)
    h = counter_hash(seed, epoch, i, slot)
    i = np.broadcast_to(np.asarray(i, dtype=np.int64), h.shape)
    k = np.array(pool[below(h, pool.size).astype(np.int64)], dtype=np.int64)
    own = k == i
    redrawn = below(mix(h[own]), n - 1).astype(np.int64)
    k[own] = redrawn + (redrawn >= i[own])
    return k


def uniform(seed, epoch, i, slot) -> np.ndarray:
    """A float in [0, 1): ``(h >> 11) * 2**-53``, ``h = counter_hash(seed, epoch, i, slot)``.

    Returns
    -------
    ndarray of float64 of the broadcast shape of ``i`` and ``slot``
    """
    h = counter_hash(seed, epoch, i, slot)
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


# Scalar versions: the algorithm as the numba twin writes it, on Python ints.

def mix_scalar(z: int) -> int:
    """splitmix64's finalizer on one Python int (reduced modulo 2**64)."""
    z &= _MASK
    z ^= z >> 30
    z = (z * _MIX_1) & _MASK
    z ^= z >> 27
    z = (z * _MIX_2) & _MASK
    z ^= z >> 31
    return z


def below_scalar(h: int, m: int) -> int:
    """Scalar :func:`below` (Python's big integers give the high word directly)."""
    h &= _MASK
    return (h * m) >> 64 if m < 1 << 32 else h % m


def counter_hash_scalar(seed: int, epoch: int, i: int, slot: int) -> int:
    """Scalar :func:`counter_hash`."""
    h = mix_scalar(seed + GOLDEN_GAMMA * (epoch + 1))
    h = mix_scalar(h ^ i)
    return mix_scalar(h ^ slot)


def negative_sample_scalar(seed: int, epoch: int, i: int, slot: int, n: int) -> int:
    """Scalar :func:`negative_sample`."""
    k = below_scalar(counter_hash_scalar(seed, epoch, i, slot), n - 1)
    return k + 1 if k >= i else k


def uniform_scalar(seed: int, epoch: int, i: int, slot: int) -> float:
    """Scalar :func:`uniform`."""
    return (counter_hash_scalar(seed, epoch, i, slot) >> 11) * 2.0**-53
