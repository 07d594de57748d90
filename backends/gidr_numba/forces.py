"""Scalar force functions of the built-in losses, and the contract every loss follows.

The contract (built-in and third-party losses alike)
----------------------------------------------------
:meth:`gidr.stages.Loss.numba_forces` returns ``(attraction, repulsion)``, two
``numba.njit`` functions of float64 scalars, with ``D = ||y_i - y_j||^2`` and
``w = 1 / (1 + a D^b)``::

    attraction(D, p, a, b)      -> float             coefficient of (y_i - y_j) for an edge
    repulsion(D, a, b, epsilon) -> (phi_0, phi_1)    repulsion channels (phi_1 = 0.0 when
                                                     the loss has one channel)

Every argument and result is a float64 and ``repulsion`` always returns a 2-tuple, so
that the kernels can declare them with the first-class function types
:data:`ATTRACTION_TYPE` and :data:`REPULSION_TYPE`. ``epsilon`` is the loss's parameter
named ``epsilon`` when it declares one, else 0.0 (:func:`force_epsilon`); a loss that has
no use for it ignores it. A loss may keep the terms with ``D^(b-1)`` finite by taking
``D^(b-1) = 0`` at ``D == 0`` when ``b != 1`` (their vector ``y_i - y_j`` is zero there).

How kernels take a force function (measured with numba 0.68, fresh processes)
---------------------------------------------------------------------------
* A kernel that takes a jitted function as an ordinary (lazily typed) argument is typed
  on that dispatcher's own type, whose cache key holds a memory address: ``cache=True``
  misses in every new process (first call 1.6-2.1 s each time) and writes one more
  ``.nbc`` file per process. Closures made by a factory, and cached wrappers that call
  such a kernel, do not cache either ("dynamic globals", per-process closure keys).
* A kernel compiled with an explicit signature whose argument is the first-class function
  type :data:`REPULSION_TYPE` receives a function pointer: it is compiled once, cached, and
  loaded from the cache in a fresh process (first call 7-16 ms). The indirect call cannot
  be inlined: on one thread, Barnes-Hut (theta 0.5, n = 70,000, 2-D) takes 345 ms per call
  instead of 262 ms, the sampled estimator (15 draws per point) 21 ms instead of 13 ms.
* So each kernel body is compiled twice (:func:`compile_twice`). The built-in losses are
  passed as *markers* (:func:`kernel_argument`): empty named tuples whose numba type is
  stable across processes, so the kernel is specialized on each built-in loss (its force
  function inlined, through :func:`call_repulsion`) and cached. Any other force function
  goes to the explicit-signature twin: one cached kernel serves every third-party loss;
  the function itself is compiled for the float64 signature when first passed (once per
  process, unless it is ``cache=True`` too). The twin is itself compiled (or loaded from
  the cache) on its first call, so that processes that only use built-in losses skip it.
* Inside the kernels, ``b == 1`` is passed on as the literal 1.0 to inlined per-point
  helpers: with ``b`` a variable, LLVM turns ``D if b == 1 else D**b`` into a select and
  evaluates ``pow`` for every pair (the GDR gather at n = 70,000 took 41 ms instead of 10 ms
  on one thread).

numba does not track dependencies between cached files: the kernels of
:mod:`gidr_numba.gdr`, :mod:`gidr_numba.umap_sgd`, :mod:`gidr_numba.repulsion` and
:mod:`gidr_numba.barnes_hut` inline this module's force functions (and Barnes-Hut inlines
:mod:`gidr_numba.repulsion`'s helpers), so after editing this module clear
``gidr_numba/__pycache__`` to make them recompile. An installed release is not affected:
installing rewrites every file, which invalidates every cache entry.
"""
from __future__ import annotations

from collections import namedtuple

import numba
from numba import types
from numba.extending import overload

__all__ = [
    "ATTRACTION_TYPE",
    "REPULSION_TYPE",
    "force_epsilon",
    "force_pair",
    "kernel_argument",
    "is_marker",
    "kernel_arguments",
    "call_attraction",
    "call_repulsion",
    "compile_twice",
    "kernel_w",
    "kl_normalized_attraction",
    "kl_normalized_repulsion",
    "kl_unnormalized_attraction",
    "kl_unnormalized_repulsion",
    "frobenius_normalized_attraction",
    "frobenius_normalized_repulsion",
    "frobenius_unnormalized_attraction",
    "frobenius_unnormalized_repulsion",
]

_f8 = types.float64
#: ``attraction(D, p, a, b) -> float64`` as a first-class function type.
ATTRACTION_TYPE = types.FunctionType(_f8(_f8, _f8, _f8, _f8))
#: ``repulsion(D, a, b, epsilon) -> (float64, float64)`` as a first-class function type.
REPULSION_TYPE = types.FunctionType(types.UniTuple(_f8, 2)(_f8, _f8, _f8, _f8))


def force_epsilon(loss) -> float:
    """The ``epsilon`` argument of ``loss``'s repulsion: its parameter ``epsilon``, else 0.0."""
    return float(getattr(loss, "values", {}).get("epsilon", 0.0))


# ----------------------------------------------------------------------------- helpers

@numba.njit(cache=True)
def _pow_b(D, b):
    """``D^b`` (``D`` itself when ``b == 1``: equal to ``pow(D, 1.0)`` bit for bit)."""
    if b == 1.0:
        return D
    return D**b


@numba.njit(cache=True)
def kernel_w(D, a, b):
    """``w = 1 / (1 + a D^b)``."""
    return 1.0 / (1.0 + a * _pow_b(D, b))


@numba.njit(cache=True)
def _d_pow_b_minus_1(D, b):
    """``D^(b-1)``, taken as 0 at ``D == 0`` when ``b != 1``."""
    if b == 1.0:
        return 1.0
    if D > 0.0:
        return D ** (b - 1.0)
    return 0.0


# ----------------------------------------------------------------------------- kl

@numba.njit(cache=True)
def kl_normalized_attraction(D, p, a, b):
    """t-SNE's attraction ``4ab D^(b-1) w p``."""
    return 4.0 * a * b * _d_pow_b_minus_1(D, b) * kernel_w(D, a, b) * p


@numba.njit(cache=True)
def kl_normalized_repulsion(D, a, b, epsilon):
    """``(ab D^(b-1) w^2, 0)``; ``epsilon`` is unused."""
    w = kernel_w(D, a, b)
    return a * b * _d_pow_b_minus_1(D, b) * w * w, 0.0


@numba.njit(cache=True)
def kl_unnormalized_attraction(D, p, a, b):
    """UMAP's attraction ``2ab D^(b-1) w p``."""
    return 2.0 * a * b * _d_pow_b_minus_1(D, b) * kernel_w(D, a, b) * p


@numba.njit(cache=True)
def kl_unnormalized_repulsion(D, a, b, epsilon):
    """UMAP's ``(2b / ((epsilon + D)(1 + a D^b)), 0)``, 0 where the denominator is 0."""
    denominator = (epsilon + D) * (1.0 + a * _pow_b(D, b))
    if denominator > 0.0:
        return 2.0 * b / denominator, 0.0
    return 0.0, 0.0


# ----------------------------------------------------------------------------- frobenius

@numba.njit(cache=True)
def frobenius_normalized_attraction(D, p, a, b):
    """``8ab D^(b-1) w^2 p``."""
    w = kernel_w(D, a, b)
    return 8.0 * a * b * _d_pow_b_minus_1(D, b) * w * w * p


@numba.njit(cache=True)
def frobenius_normalized_repulsion(D, a, b, epsilon):
    """``(ab D^(b-1) w^2, ab D^(b-1) w^3)``; ``epsilon`` is unused."""
    w = kernel_w(D, a, b)
    base = a * b * _d_pow_b_minus_1(D, b) * w * w
    return base, base * w


@numba.njit(cache=True)
def frobenius_unnormalized_attraction(D, p, a, b):
    """``4ab D^(b-1) w^2 p``."""
    w = kernel_w(D, a, b)
    return 4.0 * a * b * _d_pow_b_minus_1(D, b) * w * w * p


@numba.njit(cache=True)
def frobenius_unnormalized_repulsion(D, a, b, epsilon):
    """``(ab D^(b-1) w^3, 0)``; ``epsilon`` is unused."""
    w = kernel_w(D, a, b)
    return a * b * _d_pow_b_minus_1(D, b) * w * w * w, 0.0


_PAIRS = {
    ("kl", True): (kl_normalized_attraction, kl_normalized_repulsion),
    ("kl", False): (kl_unnormalized_attraction, kl_unnormalized_repulsion),
    ("frobenius", True): (frobenius_normalized_attraction, frobenius_normalized_repulsion),
    ("frobenius", False): (frobenius_unnormalized_attraction, frobenius_unnormalized_repulsion),
}


def force_pair(loss_name: str, normalized: bool):
    """``(attraction, repulsion)`` of the built-in loss ``loss_name`` ('kl' or 'frobenius')."""
    return _PAIRS[(loss_name, bool(normalized))]


# ----------------------------------------------------------------------------- markers

#: Markers of the built-in losses: empty named tuples, one numba type per (loss, normalized).
KLNormalized = namedtuple("KLNormalized", ())
KLUnnormalized = namedtuple("KLUnnormalized", ())
FrobeniusNormalized = namedtuple("FrobeniusNormalized", ())
FrobeniusUnnormalized = namedtuple("FrobeniusUnnormalized", ())

_MARKER_PAIRS = {
    KLNormalized: _PAIRS[("kl", True)],
    KLUnnormalized: _PAIRS[("kl", False)],
    FrobeniusNormalized: _PAIRS[("frobenius", True)],
    FrobeniusUnnormalized: _PAIRS[("frobenius", False)],
}
_MARKER_OF = {function: marker() for marker, pair in _MARKER_PAIRS.items() for function in pair}


def kernel_argument(function):
    """What a kernel receives for the force ``function``: the marker of a built-in loss
    (the kernel is specialized on it), or the function itself (called through a pointer)."""
    return _MARKER_OF.get(function, function)


def is_marker(argument) -> bool:
    """Whether ``argument`` (from :func:`kernel_argument`) is a built-in loss's marker."""
    return type(argument) in _MARKER_PAIRS


def kernel_arguments(*functions):
    """``(arguments, markers)``: the built-in markers of ``functions`` and True when every one
    of them has a marker (the kernel specialized on a built-in loss runs, its forces inlined),
    else the functions themselves and False (the kernel that calls through pointers runs)."""
    arguments = tuple(kernel_argument(function) for function in functions)
    if all(is_marker(argument) for argument in arguments):
        return arguments, True
    return functions, False


def call_attraction(attraction, D, p, a, b):
    """``attraction(D, p, a, b)`` for a force function or a marker (also in jitted code)."""
    if is_marker(attraction):
        return _MARKER_PAIRS[type(attraction)][0](D, p, a, b)
    return attraction(D, p, a, b)


def call_repulsion(repulsion, D, a, b, epsilon):
    """``repulsion(D, a, b, epsilon)`` for a force function or a marker (also in jitted code)."""
    if is_marker(repulsion):
        return _MARKER_PAIRS[type(repulsion)][1](D, a, b, epsilon)
    return repulsion(D, a, b, epsilon)


def _marked_function(argument, position):
    """The built-in function a marker type stands for, or None for a function type."""
    if isinstance(argument, types.BaseNamedTuple) and argument.instance_class in _MARKER_PAIRS:
        return _MARKER_PAIRS[argument.instance_class][position]
    return None


@overload(call_attraction)
def _call_attraction_jit(attraction, D, p, a, b):
    function = _marked_function(attraction, 0)
    if function is not None:
        def direct(attraction, D, p, a, b):
            return function(D, p, a, b)
        return direct

    def through_pointer(attraction, D, p, a, b):
        return attraction(D, p, a, b)
    return through_pointer


@overload(call_repulsion)
def _call_repulsion_jit(repulsion, D, a, b, epsilon):
    function = _marked_function(repulsion, 1)
    if function is not None:
        def direct(repulsion, D, a, b, epsilon):
            return function(D, a, b, epsilon)
        return direct

    def through_pointer(repulsion, D, a, b, epsilon):
        return repulsion(D, a, b, epsilon)
    return through_pointer


class _CompiledOnFirstCall:
    """A kernel compiled for an explicit signature when it is first called, not at import:
    only third-party losses use the pointer twins, and loading one from the cache at import
    cost every fresh process 7-50 ms per kernel (measured: 88 ms for the two of
    :mod:`gidr_numba.gdr`)."""

    def __init__(self, body, signature):
        self._body, self._signature, self._dispatcher = body, signature, None
        self.__name__ = getattr(body, "__name__", "kernel")
        self.__doc__ = getattr(body, "__doc__", None)

    @property
    def dispatcher(self):
        """The numba dispatcher (compiled, or loaded from the cache, on first access)."""
        if self._dispatcher is None:
            self._dispatcher = numba.njit(self._signature, cache=True, parallel=True)(self._body)
        return self._dispatcher

    def __call__(self, *args):
        return self.dispatcher(*args)


def compile_twice(body, signature):
    """Compile a kernel ``body`` (parallel, cached) for markers and for function pointers.

    Returns ``(for_markers, for_functions)``: the first is typed lazily, once per built-in
    loss; the second is compiled for ``signature`` (force functions typed as
    :data:`REPULSION_TYPE` or :data:`ATTRACTION_TYPE`) when first called. Both share one
    cache index.
    """
    return (numba.njit(cache=True, parallel=True)(body), _CompiledOnFirstCall(body, signature))
