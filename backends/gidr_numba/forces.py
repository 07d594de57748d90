"""Scalar force functions of the built-in losses, and the contract every loss follows.

The contract (built-in and third-party losses alike)
----------------------------------------------------
A loss reaches the numba kernels through the ``gidr_register_kernels`` hook: its factory
returns a :class:`LossKernels` of two ``numba.njit`` functions of float64 scalars and the
loss's own parameters, with ``D = ||y_i - y_j||^2`` and ``w`` the loss's kernel::

    attraction(D, p, a, b, params) -> (coefficient, w)    coefficient of (y_i - y_j) for an edge
    repulsion(D, a, b, params)     -> (phi_0, phi_1, w)   repulsion channels (phi_1 = 0.0 when
                                                          the loss has one channel)

``params`` is a tuple of :data:`MAX_PARAMS` float64 values, the loss's own parameters
padded with zeros (``(epsilon, dof, 0, 0)`` for ``kl``; anything a third-party loss needs),
so that a loss with parameters of its own can be written as a plugin. It is a tuple and
not an array on purpose: an array passed to a jitted function that is not inlined is
reference-counted at every call, which made the GDR gather twice as slow (measured: 5.6 ms
per epoch instead of 2.9 ms at 20,000 points, 2 threads). ``w`` is the loss's low-dimensional similarity at
``D`` (``1 / (1 + a D^b)`` for the built-in losses but the heavy-tailed KL): the kernels
sum it for ``Z`` and ``sum p w``, so a loss with another kernel gets the right totals.
Every argument and result is a float64 (and ``params`` a tuple of them), so that the kernels can
declare them with the first-class function types :data:`ATTRACTION_TYPE` and
:data:`REPULSION_TYPE`. A loss may keep the terms with ``D^(b-1)`` finite by taking
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
  on one thread). For the same reason the heavy-tailed KL (``dof != 1``) has markers of its
  own instead of a branch on ``dof`` inside the standard KL's functions.

numba does not track dependencies between cached files: the kernels of
:mod:`gidr_numba.gdr`, :mod:`gidr_numba.umap_sgd`, :mod:`gidr_numba.repulsion` and
:mod:`gidr_numba.barnes_hut` inline this module's force functions (and Barnes-Hut inlines
:mod:`gidr_numba.repulsion`'s helpers), so after editing this module clear
``gidr_numba/__pycache__`` to make them recompile. An installed release is not affected:
installing rewrites every file, which invalidates every cache entry.
"""
from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np
from numba import types
from numba.extending import overload

__all__ = [
    "ATTRACTION_TYPE",
    "REPULSION_TYPE",
    "PARAMS_TYPE",
    "MAX_PARAMS",
    "LossKernels",
    "loss_kernels",
    "builtin_loss_kernels",
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
    "kl_heavy_tailed_attraction",
    "kl_heavy_tailed_repulsion",
    "frobenius_normalized_attraction",
    "frobenius_normalized_repulsion",
    "frobenius_unnormalized_attraction",
    "frobenius_unnormalized_repulsion",
]

_f8 = types.float64
#: Most parameters a loss hands its force functions.
MAX_PARAMS = 4
#: The loss's parameters, as the force functions receive them: ``MAX_PARAMS`` float64 values.
PARAMS_TYPE = types.UniTuple(_f8, MAX_PARAMS)
#: ``attraction(D, p, a, b, params) -> (coefficient, w)`` as a first-class function type.
ATTRACTION_TYPE = types.FunctionType(types.UniTuple(_f8, 2)(_f8, _f8, _f8, _f8, PARAMS_TYPE))
#: ``repulsion(D, a, b, params) -> (phi_0, phi_1, w)`` as a first-class function type.
REPULSION_TYPE = types.FunctionType(types.UniTuple(_f8, 3)(_f8, _f8, _f8, PARAMS_TYPE))


@dataclass(frozen=True, eq=False)
class LossKernels:
    """A loss's numba kernels, as a ``gidr_register_kernels`` factory returns them.

    Attributes
    ----------
    attraction : numba function
        ``attraction(D, p, a, b, params) -> (coefficient, w)``.
    repulsion : numba function
        ``repulsion(D, a, b, params) -> (phi_0, phi_1, w)``.
    params : tuple of MAX_PARAMS floats
        The loss's own parameters (given as any sequence of at most :data:`MAX_PARAMS`
        numbers; stored padded with zeros), handed to both functions.
    """

    attraction: Callable
    repulsion: Callable
    params: tuple = ()

    def __post_init__(self) -> None:
        values = [float(v) for v in np.asarray(self.params, dtype=np.float64).reshape(-1)]
        if len(values) > MAX_PARAMS:
            raise ValueError(f"a loss hands its numba kernels at most {MAX_PARAMS} parameters; got {len(values)}")
        object.__setattr__(self, "params", tuple(values + [0.0] * (MAX_PARAMS - len(values))))


def loss_kernels(loss, ctx) -> LossKernels | None:
    """The numba kernels registered for ``loss`` (``gidr_register_kernels``), or None."""
    if ctx is None:
        return None
    kernels = ctx.kernels(loss, "numba")
    if kernels is not None and not isinstance(kernels, LossKernels):
        raise TypeError(f"the numba kernels registered for {loss.describe()} must be a "
                        f"gidr_numba.forces.LossKernels; got {type(kernels).__name__}")
    return kernels


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
def kl_normalized_attraction(D, p, a, b, params):
    """t-SNE's attraction ``4ab D^(b-1) w p``."""
    w = kernel_w(D, a, b)
    return 4.0 * a * b * _d_pow_b_minus_1(D, b) * w * p, w


@numba.njit(cache=True)
def kl_normalized_repulsion(D, a, b, params):
    """``(ab D^(b-1) w^2, 0, w)``."""
    w = kernel_w(D, a, b)
    return a * b * _d_pow_b_minus_1(D, b) * w * w, 0.0, w


@numba.njit(cache=True)
def kl_unnormalized_attraction(D, p, a, b, params):
    """UMAP's attraction ``2ab D^(b-1) w p``."""
    w = kernel_w(D, a, b)
    return 2.0 * a * b * _d_pow_b_minus_1(D, b) * w * p, w


@numba.njit(cache=True)
def kl_unnormalized_repulsion(D, a, b, params):
    """UMAP's ``(2b gamma / ((epsilon + D)(1 + a D^b)), 0, w)``, 0 where the denominator is 0;
    ``epsilon = params[0]``, ``gamma = params[2]`` (``repulsion_strength``)."""
    w = kernel_w(D, a, b)
    denominator = (params[0] + D) * (1.0 + a * _pow_b(D, b))
    if denominator > 0.0:
        return 2.0 * b * params[2] / denominator, 0.0, w
    return 0.0, 0.0, w


@numba.njit(cache=True)
def _heavy_tailed(D, a, b, dof):
    """``(w, w^(1/dof))`` of the kernel ``w = (1 + a D^b / dof)^(-dof)``."""
    base = 1.0 + a * _pow_b(D, b) / dof
    return base ** (-dof), 1.0 / base


@numba.njit(cache=True)
def kl_heavy_tailed_attraction(D, p, a, b, params):
    """Normalized KL with ``w = (1 + a D^b / dof)^(-dof)``, ``dof = params[1]``:
    ``4ab D^(b-1) w^(1/dof) p``."""
    w, w_root = _heavy_tailed(D, a, b, params[1])
    return 4.0 * a * b * _d_pow_b_minus_1(D, b) * w_root * p, w


@numba.njit(cache=True)
def kl_heavy_tailed_repulsion(D, a, b, params):
    """``(ab D^(b-1) w^(1 + 1/dof), 0, w)``, ``dof = params[1]``."""
    w, w_root = _heavy_tailed(D, a, b, params[1])
    return a * b * _d_pow_b_minus_1(D, b) * w * w_root, 0.0, w


# ----------------------------------------------------------------------------- frobenius

@numba.njit(cache=True)
def frobenius_normalized_attraction(D, p, a, b, params):
    """``8ab D^(b-1) w^2 p``."""
    w = kernel_w(D, a, b)
    return 8.0 * a * b * _d_pow_b_minus_1(D, b) * w * w * p, w


@numba.njit(cache=True)
def frobenius_normalized_repulsion(D, a, b, params):
    """``(ab D^(b-1) w^2, ab D^(b-1) w^3, w)``."""
    w = kernel_w(D, a, b)
    base = a * b * _d_pow_b_minus_1(D, b) * w * w
    return base, base * w, w


@numba.njit(cache=True)
def frobenius_unnormalized_attraction(D, p, a, b, params):
    """``4ab D^(b-1) w^2 p``."""
    w = kernel_w(D, a, b)
    return 4.0 * a * b * _d_pow_b_minus_1(D, b) * w * w * p, w


@numba.njit(cache=True)
def frobenius_unnormalized_repulsion(D, a, b, params):
    """``(ab D^(b-1) w^3, 0, w)``."""
    w = kernel_w(D, a, b)
    return a * b * _d_pow_b_minus_1(D, b) * w * w * w, 0.0, w


# ----------------------------------------------------------------------------- markers

#: Markers of the built-in losses: empty named tuples, one numba type per force pair.
KLNormalized = namedtuple("KLNormalized", ())
KLUnnormalized = namedtuple("KLUnnormalized", ())
KLHeavyTailed = namedtuple("KLHeavyTailed", ())
FrobeniusNormalized = namedtuple("FrobeniusNormalized", ())
FrobeniusUnnormalized = namedtuple("FrobeniusUnnormalized", ())

_MARKER_PAIRS = {
    KLNormalized: (kl_normalized_attraction, kl_normalized_repulsion),
    KLUnnormalized: (kl_unnormalized_attraction, kl_unnormalized_repulsion),
    KLHeavyTailed: (kl_heavy_tailed_attraction, kl_heavy_tailed_repulsion),
    FrobeniusNormalized: (frobenius_normalized_attraction, frobenius_normalized_repulsion),
    FrobeniusUnnormalized: (frobenius_unnormalized_attraction, frobenius_unnormalized_repulsion),
}
_MARKER_OF = {function: marker() for marker, pair in _MARKER_PAIRS.items() for function in pair}


def builtin_loss_kernels(loss, ctx) -> LossKernels:
    """The ``gidr_register_kernels`` factory of the built-in losses ``kl`` and ``frobenius``:
    the force pair for ``ctx.normalized`` (and, for ``kl``, its ``dof``), with the loss's
    parameters ``(epsilon, dof, repulsion_strength)`` for ``kl``."""
    values = loss.values
    if "dof" in values:  # kl
        params = (values["epsilon"], values["dof"], values["repulsion_strength"])
        if values["dof"] != 1.0:
            marker = KLHeavyTailed
        else:
            marker = KLNormalized if ctx.normalized else KLUnnormalized
    else:  # frobenius
        params = ()
        marker = FrobeniusNormalized if ctx.normalized else FrobeniusUnnormalized
    attraction, repulsion = _MARKER_PAIRS[marker]
    return LossKernels(attraction, repulsion, params)


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


def call_attraction(attraction, D, p, a, b, params):
    """``attraction(D, p, a, b, params)`` for a force function or a marker (also in jitted code)."""
    if is_marker(attraction):
        return _MARKER_PAIRS[type(attraction)][0](D, p, a, b, params)
    return attraction(D, p, a, b, params)


def call_repulsion(repulsion, D, a, b, params):
    """``repulsion(D, a, b, params)`` for a force function or a marker (also in jitted code)."""
    if is_marker(repulsion):
        return _MARKER_PAIRS[type(repulsion)][1](D, a, b, params)
    return repulsion(D, a, b, params)


def _marked_function(argument, position):
    """The built-in function a marker type stands for, or None for a function type."""
    if isinstance(argument, types.BaseNamedTuple) and argument.instance_class in _MARKER_PAIRS:
        return _MARKER_PAIRS[argument.instance_class][position]
    return None


@overload(call_attraction)
def _call_attraction_jit(attraction, D, p, a, b, params):
    function = _marked_function(attraction, 0)
    if function is not None:
        def direct(attraction, D, p, a, b, params):
            return function(D, p, a, b, params)
        return direct

    def through_pointer(attraction, D, p, a, b, params):
        return attraction(D, p, a, b, params)
    return through_pointer


@overload(call_repulsion)
def _call_repulsion_jit(repulsion, D, a, b, params):
    function = _marked_function(repulsion, 1)
    if function is not None:
        def direct(repulsion, D, a, b, params):
            return function(D, a, b, params)
        return direct

    def through_pointer(repulsion, D, a, b, params):
        return repulsion(D, a, b, params)
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
