"""Counter-based random numbers for numba kernels: the scalar twin of
:mod:`gidr_reference.random`, equal to it bit for bit.

A draw depends only on ``(seed, epoch, i, slot)``, never on a shared state, so a kernel
that runs over points in parallel draws exactly the same numbers whatever the number of
threads and whatever order the threads take. The hash is the splitmix64 finalizer::

    mix(z): z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27;
            z *= 0x94D049BB133111EB; z ^= z >> 31          (uint64, wrapping)
    h = mix(seed + 0x9E3779B97F4A7C15 * (epoch + 1))
    h = mix(h ^ i); h = mix(h ^ slot)

``negative_sample`` maps ``h`` to a point ``k != i`` uniform over the other ``n - 1``
points (``k = below(h, n - 1)``, shifted past ``i``); ``uniform`` maps it to a float in
[0, 1) with 53 random bits. ``below(h, m)`` is ``floor(h * m / 2**64)``, the high word of
the 128-bit product, computed from 32-bit halves for ``m < 2**32`` (two multiplies where a
64-bit ``h % m`` is one division, about 40 cycles: measured 49 ms against 3 ms for 40
million draws), and ``h % m`` for larger ``m``.

Kernels that draw many samples can hoist the shared mixes out of their loops: the first
with :func:`epoch_key` (per epoch, then :func:`negative_sample_from_key`), the second with
:func:`row_key` (per point, then :func:`negative_sample_from_row_key`). Every path gives
the same numbers.

The negative pool (:func:`fill_negative_pool`, :func:`pooled_negative_from_row_key`) is
:func:`gidr_reference.random.negative_pool` and ``pooled_negative_sample``, bit for bit.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["mix", "below", "epoch_key", "row_key", "counter_hash", "negative_sample", "negative_sample_from_key",
           "negative_sample_from_row_key", "uniform", "fill_negative_pool", "pooled_negative_from_row_key",
           "pool_redraw"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S32 = np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)
_TWO_32 = np.uint64(1 << 32)
_TWO_M53 = 1.0 / 9007199254740992.0  # 2**-53
#: :data:`gidr_reference.random.POOL_ROW`.
_POOL_ROW = np.uint64(1 << 63)


@njit(cache=True)
def mix(z):
    """The splitmix64 finalizer of a uint64 (wrapping arithmetic)."""
    z = np.uint64(z)
    z = z ^ (z >> _S30)
    z = z * _MUL1
    z = z ^ (z >> _S27)
    z = z * _MUL2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def below(h, m):
    """A uint64 hash ``h`` mapped to ``[0, m)``: ``floor(h * m / 2**64)`` for ``m < 2**32``
    (exact, from the 32-bit halves of ``h``), ``h % m`` above."""
    h = np.uint64(h)
    m = np.uint64(m)
    if m < _TWO_32:
        return ((h >> _S32) * m + (((h & _LOW32) * m) >> _S32)) >> _S32
    return h % m


@njit(cache=True)
def epoch_key(seed, epoch):
    """``mix(seed + 0x9E3779B97F4A7C15 * (epoch + 1))``: the part of the hash shared by an epoch."""
    return mix(np.uint64(seed) + _GOLDEN * (np.uint64(epoch) + np.uint64(1)))


@njit(cache=True)
def row_key(key, i):
    """``mix(epoch_key ^ i)``: the part of the hash shared by point ``i``'s draws in an epoch."""
    return mix(np.uint64(key) ^ np.uint64(i))


@njit(cache=True)
def _hash_from_key(key, i, slot):
    return mix(row_key(key, i) ^ np.uint64(slot))


@njit(cache=True)
def negative_sample_from_row_key(point_key, i, slot, n):
    """:func:`negative_sample` with point ``i``'s :func:`row_key` precomputed."""
    k = np.int64(below(mix(np.uint64(point_key) ^ np.uint64(slot)), n - 1))
    if k >= i:
        k += 1
    return k


@njit(cache=True)
def counter_hash(seed, epoch, i, slot):
    """The uint64 hash of ``(seed, epoch, i, slot)``."""
    return _hash_from_key(epoch_key(seed, epoch), i, slot)


@njit(cache=True)
def negative_sample_from_key(key, i, slot, n):
    """:func:`negative_sample` with the epoch's key from :func:`epoch_key` precomputed."""
    h = _hash_from_key(key, i, slot)
    k = np.int64(below(h, n - 1))
    if k >= i:
        k += 1
    return k


@njit(cache=True)
def negative_sample(seed, epoch, i, slot, n):
    """A point index ``k != i`` in ``[0, n)``, uniform over the ``n - 1`` others (int64).

    Parameters
    ----------
    seed, epoch, i, slot : int
        Non-negative; the draw is a pure function of them.
    n : int
        Number of points, at least 2.
    """
    return negative_sample_from_key(epoch_key(seed, epoch), i, slot, n)


@njit(cache=True)
def uniform(seed, epoch, i, slot):
    """A float in [0, 1): the top 53 bits of the hash times 2**-53."""
    h = counter_hash(seed, epoch, i, slot)
    return np.float64(h >> _S11) * _TWO_M53


@njit(cache=True)
def fill_negative_pool(key, n, pool):
    """``pool[q] = below(mix(row_key(key, POOL_ROW) ^ q), n)``: the epoch's negative pool
    (:func:`gidr_reference.random.negative_pool`; ``key`` from :func:`epoch_key`)."""
    pool_key = row_key(key, _POOL_ROW)
    for q in range(pool.shape[0]):
        pool[q] = np.int64(below(mix(pool_key ^ np.uint64(q)), n))


@njit(cache=True, inline="always")
def pool_slot(point_key, slot, size):
    """The pool entry ``below(h, size)`` of point ``i``'s draw ``slot`` (``point_key`` its :func:`row_key`)."""
    return np.int64(below(mix(np.uint64(point_key) ^ np.uint64(slot)), size))


@njit(cache=True)
def pool_redraw(point_key, i, slot, n):
    """The draw that replaces a pool entry equal to ``i`` itself: ``below(mix(h), n - 1)``,
    shifted past ``i``."""
    k = np.int64(below(mix(mix(np.uint64(point_key) ^ np.uint64(slot))), n - 1))
    if k >= i:
        k += 1
    return k


@njit(cache=True, inline="always")
def pooled_negative_from_row_key(point_key, i, slot, n, pool):
    """:func:`gidr_reference.random.pooled_negative_sample` with point ``i``'s :func:`row_key`."""
    k = pool[pool_slot(point_key, slot, pool.shape[0])]
    if k == i:
        k = pool_redraw(point_key, i, slot, n)
    return k
