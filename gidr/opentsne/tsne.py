"""openTSNE's ``TSNE`` and ``TSNEEmbedding`` over gidr's ``tsne`` stages.

``TSNE(...).fit(X)`` is openTSNE's two calls: ``prepare_initial`` (affinities and the
initial layout), then ``optimize(early_exaggeration_iter, exaggeration=early_exaggeration,
momentum=initial_momentum)`` and ``optimize(n_iter, exaggeration=exaggeration,
momentum=final_momentum)``. Each ``optimize`` is one call of the ``tsne`` optimizer stage's
``resume`` from the embedding's :class:`~gidr.types.DescentState` (gains, last update and
epoch count), so that optimizing in two calls gives the same bits as one call of the summed
length.

Units: gidr's forces are t-SNE's exact gradient ``4 sum (p - q) w (y_i - y_j)``; openTSNE's
gradient leaves out the 4. A learning rate given in openTSNE's units (and its ``"auto"``,
``n / exaggeration``) is divided by :data:`GRADIENT_SCALE`, so that the steps are openTSNE's.
"""
from __future__ import annotations

import dataclasses
import inspect
import numbers
import time
import warnings
from collections.abc import Iterable
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from gidr.opentsne import initialization as init_scheme
from gidr.opentsne.affinity import (Affinities, MultiscaleMixture, PerplexityBasedNN, check_none, job_count,
                                    neighbor_stage_name, new_point_matrix, refuse)
from gidr.opentsne.partial import PartialTSNEEmbedding, fit_result, new_point_edges
from gidr.types import DescentState, Monitor
from gidr.validation import Described, GidrValueError, format_error, resolve_seed

__all__ = ["TSNE", "TSNEEmbedding", "PartialTSNEEmbedding", "OptimizationInterrupt", "gradient_descent",
           "kl_divergence_bh", "kl_divergence_fft", "GRADIENT_SCALE", "GRADIENT_PARAMS", "EXACT_KL_MAX_SAMPLES"]

#: gidr's KL forces over openTSNE's gradient (see the module docstring).
GRADIENT_SCALE = 4.0
#: Up to this many points ``kl_divergence`` is the exact O(n^2) KL; above, ``Z`` comes from
#: the repulsion stage's estimate (:func:`kl_divergence`).
EXACT_KL_MAX_SAMPLES = 5000
#: openTSNE's gradient-descent parameters, with its defaults (``backend`` is gidr's).
GRADIENT_PARAMS = {"learning_rate": "auto", "momentum": 0.8, "exaggeration": None, "dof": 1, "min_gain": 0.01,
                   "max_grad_norm": None, "max_step_norm": 5, "theta": 0.5, "n_interpolation_points": 3,
                   "min_num_intervals": 50, "ints_in_interval": 1, "negative_gradient_method": "auto",
                   "n_jobs": 1, "callbacks": None, "callbacks_every_iters": 50, "verbose": False,
                   "backend": "auto"}
#: openTSNE's names of the negative-gradient methods -> gidr's repulsion stages.
GRADIENT_METHODS = {"bh": "barnes_hut", "barnes-hut": "barnes_hut", "fft": "fft", "interpolation": "fft"}
#: Above this many points ``negative_gradient_method="auto"`` picks FFT (openTSNE's rule).
FFT_MIN_SAMPLES = 10_000


class OptimizationInterrupt(InterruptedError):
    """A callback stopped the optimization.

    Attributes
    ----------
    error : float
        The KL divergence when it stopped.
    final_embedding : TSNEEmbedding
    """

    def __init__(self, error: float, final_embedding) -> None:
        super().__init__()
        self.error = error
        self.final_embedding = final_embedding


class TooManyDimensions(GidrValueError, RuntimeError):
    """An embedding with more components than the gradient method handles (openTSNE raises
    RuntimeError for FFT above 2)."""


class gradient_descent:  # noqa: N801 (openTSNE's name)
    """The optimizer's memory between ``optimize`` calls, as openTSNE's attributes: ``gains``
    and ``update`` (None before the first call), and gidr's ``epoch`` (epochs run so far)."""

    def __init__(self, state: DescentState | None = None) -> None:
        self.gains = None if state is None else state.gains
        self.update = None if state is None else state.update
        self.epoch = 0 if state is None else state.epoch

    @property
    def state(self) -> DescentState | None:
        """The :class:`~gidr.types.DescentState` to continue from (None before the first call)."""
        if self.gains is None or self.update is None:
            return None
        return DescentState(update=np.asarray(self.update), gains=np.asarray(self.gains), epoch=int(self.epoch))

    def copy(self) -> "gradient_descent":
        state = self.state
        if state is None:
            return gradient_descent()
        return gradient_descent(dataclasses.replace(state, update=state.update.copy(), gains=state.gains.copy()))


def fresh_copy(array: np.ndarray) -> np.ndarray:
    """A copy of an embedding with its attributes, viewing a new plain array (its ``base``, as
    openTSNE's copies have)."""
    out = np.array(array.view(np.ndarray), dtype=np.float64, order="C").view(type(array))
    out.__dict__.update(array.__dict__)
    return out


def _checked_params(params: dict, owner: str) -> dict:
    """``params`` over :data:`GRADIENT_PARAMS`; an unknown name is an error."""
    unknown = sorted(set(params) - set(GRADIENT_PARAMS))
    if unknown:
        raise GidrValueError(format_error(f"A keyword argument of {owner}", "one of " + ", ".join(GRADIENT_PARAMS),
                                          unknown[0], "Check its spelling."))
    return dict(params)


def check_callbacks(callbacks: Any, owner: str) -> tuple:
    """openTSNE's ``callbacks``: None, a callable, or an iterable of callables."""
    if callbacks is None:
        return ()
    if callable(callbacks):
        return (callbacks,)
    if isinstance(callbacks, Iterable):
        callbacks = tuple(callbacks)
        if all(callable(c) for c in callbacks):
            return callbacks
    raise refuse(owner, "callbacks", "a callable or a list of callables", callbacks,
                 "Pass functions callback(iteration, error, embedding) that return True to stop.")


def repulsion_of(method: Any, n_samples: int, owner: str) -> str:
    """gidr's repulsion stage for openTSNE's ``negative_gradient_method`` (a name, or
    :func:`kl_divergence_bh` / :func:`kl_divergence_fft`, openTSNE's functions)."""
    if method is kl_divergence_bh or method is kl_divergence_fft:
        return "barnes_hut" if method is kl_divergence_bh else "fft"
    if isinstance(method, str) and method.lower() == "auto":
        return "fft" if n_samples >= FFT_MIN_SAMPLES else "barnes_hut"
    if isinstance(method, str) and method.lower() in GRADIENT_METHODS:
        return GRADIENT_METHODS[method.lower()]
    raise refuse(owner, "negative_gradient_method", "'auto', 'bh', 'barnes-hut', 'fft' or 'interpolation'",
                 method, "gidr takes no callable gradient; register a repulsion stage as a plugin instead.")


def phase_overrides(params: dict, n_iter: int, start: int, n_samples: int, owner: str) -> dict:
    """The ``tsne`` pipeline's overrides for one ``optimize`` call of ``n_iter`` epochs from
    epoch ``start``: the whole call exaggerated (or none of it), one momentum, the rate in
    gidr's units."""
    check_none(owner, "max_grad_norm", params["max_grad_norm"],
               "gidr's tsne optimizer bounds each point's step instead: use max_step_norm.")
    exaggeration = 1.0 if params["exaggeration"] is None else params["exaggeration"]
    rate = params["learning_rate"]
    if isinstance(rate, str) and rate == "auto":
        rate = n_samples / exaggeration
    elif isinstance(rate, (int, float, np.number)) and not isinstance(rate, bool):
        rate = float(rate)
    else:
        raise refuse(owner, "learning_rate", "'auto' or a positive float", rate, "Pass 'auto' (n / exaggeration).")
    repulsion = repulsion_of(params["negative_gradient_method"], n_samples, owner)
    exaggerated = exaggeration != 1.0
    overrides = {"repulsion": repulsion, "n_epochs": n_iter, "learning_rate": rate / GRADIENT_SCALE,
                 "early_exaggeration": exaggeration if exaggerated else 12.0,
                 "exaggeration_iter": start + n_iter if exaggerated else 0,
                 "momentum": params["momentum"], "final_momentum": params["momentum"],
                 "min_gain": params["min_gain"], "max_step_norm": params["max_step_norm"], "dof": params["dof"]}
    if repulsion == "barnes_hut":
        overrides["theta"] = params["theta"]
    else:
        overrides.update(fft_overrides(params))
    return overrides


def fft_overrides(params: dict) -> dict:
    """openTSNE's interpolation parameters as the ``fft`` repulsion stage's."""
    return {"n_interpolation_points": params["n_interpolation_points"], "min_boxes": params["min_num_intervals"],
            "max_box_width": params["ints_in_interval"]}


#: Barnes-Hut above 3 components runs the exact repulsion instead, up to this many points.
EXACT_FOR_BH_MAX_SAMPLES = 10_000


def exact_for_many_dimensions(overrides: dict, n_samples: int, n_components: int, owner: str) -> dict:
    """Barnes-Hut's trees hold at most 3 dimensions: above, the exact repulsion (O(n^2) per
    iteration) with a FutureWarning, as openTSNE warns and runs; refused above
    :data:`EXACT_FOR_BH_MAX_SAMPLES` points."""
    if n_samples > EXACT_FOR_BH_MAX_SAMPLES:
        raise TooManyDimensions(format_error(
            f"The 'negative_gradient_method' parameter of {owner}", "'bh' with at most 3 components",
            Described(f"'bh' with {n_components} components for {n_samples} points"),
            f"Embed in 2 or 3 components; the exact repulsion gidr substitutes above 3 takes O(n^2) per "
            f"iteration and is offered up to {EXACT_FOR_BH_MAX_SAMPLES} points."))
    warnings.warn(f"Barnes-Hut handles at most 3 components; for these {n_components} gidr computes the exact "
                  f"repulsion, O(n^2) per iteration ({n_samples} points). openTSNE warns that this case will "
                  f"become an error.", FutureWarning, stacklevel=3)
    return {**{k: v for k, v in overrides.items() if k != "theta"}, "repulsion": "exact"}


@dataclasses.dataclass
class PhaseMonitor(Monitor):
    """openTSNE's callbacks and progress lines for one ``optimize`` call: iterations counted
    from 1 within the call, callbacks every ``every`` of them, a line every 50 with ``verbose``."""

    offset: int = 0
    callbacks: tuple = ()
    verbose: bool = False
    wrap: Callable[[np.ndarray], Any] = np.asarray
    error: Callable[[np.ndarray, int], float] | None = None
    stopped_error: float | None = None
    clock: float = 0.0

    def due(self, epoch: int, n_epochs: int) -> bool:
        self.epochs_run = epoch + 1
        iteration = epoch - self.offset + 1
        return bool((self.callbacks and iteration % self.every == 0) or (self.verbose and iteration % 50 == 0))

    def report(self, epoch: int, loss: float, Y: np.ndarray) -> bool:
        """``loss`` is replaced by :func:`kl_divergence` (``error``), the value ``optimize`` reports."""
        iteration = epoch - self.offset + 1
        loss = self.error(Y, epoch) if self.error is not None else loss
        self.history.append((iteration, float(loss)))
        if self.verbose and iteration % 50 == 0:
            now = time.perf_counter()
            print(f"Iteration {iteration:4d}, KL divergence {loss:6.4f}, 50 iterations in {now - self.clock:.4f} sec")
            self.clock = now
        if self.callbacks and iteration % self.every == 0:
            embedding = self.wrap(Y)
            if any([bool(c(iteration, float(loss), embedding)) for c in self.callbacks]):
                self.stopped_error = float(loss)
                return True
        return False


def kl_divergence(loss, repulsion, affinities, Y: np.ndarray, ctx, epoch: int) -> float:
    """The KL divergence of ``Y``: exact up to :data:`EXACT_KL_MAX_SAMPLES` points; above, exact
    over the stored entries of P with ``Z`` from the repulsion stage's estimate (as openTSNE
    takes its ``sum_Q`` from its Barnes-Hut or FFT pass)::

        KL = sum p log p - sum p log w + (sum p) log Z
    """
    if Y.shape[0] <= EXACT_KL_MAX_SAMPLES:
        return float(loss.value(affinities.P, Y, ctx))
    P = affinities.P
    rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
    diff = Y[rows] - Y[P.indices]
    edge_sums = np.asarray(loss.value_edge_terms(np.einsum("ij,ij->i", diff, diff), P.data, ctx)).sum(axis=0)
    sums = repulsion.estimate(Y, loss, ctx, epoch, affinities.n_edges)
    return float(loss.value_from_sums(edge_sums, np.array([sums.sum_w]), ctx))


def _kl_gradient(embedding, P, dof, overrides: dict, reference_embedding, should_eval_error, n_jobs, owner: str):
    """openTSNE's (error, gradient) of the KL divergence at ``embedding`` with gidr's stages
    (``overrides``: the repulsion stage and its parameters)."""
    from gidr.estimators import _threads  # noqa: PLC0415 (optional numba)
    from gidr.opentsne.affinity import tsne_pipeline  # noqa: PLC0415 (circular)
    from gidr.types import Affinities as GidrAffinities, Context  # noqa: PLC0415
    from gidr_reference.optimizers import edge_list, gather_forces  # noqa: PLC0415

    check_none(owner, "reference_embedding", reference_embedding,
               "Embed new points with TSNEEmbedding.prepare_partial and PartialTSNEEmbedding.optimize.")
    Y = np.ascontiguousarray(embedding, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    P = sp.csr_matrix(P, dtype=np.float64)
    if Y.ndim != 2 or P.shape != (Y.shape[0], Y.shape[0]):
        raise refuse(owner, "P", f"a square matrix with one row per embedded point ({Y.shape[0]})",
                     Described(f"shape {P.shape} for an embedding of shape {np.shape(embedding)}"),
                     "Pass the affinities' P of the points embedded.")
    if overrides["repulsion"] == "barnes_hut" and Y.shape[1] > 3:
        overrides = exact_for_many_dimensions(overrides, Y.shape[0], Y.shape[1], owner)
    pipeline = tsne_pipeline("auto", 0, neighbors="precomputed", dof=dof, **overrides)
    stages = pipeline.stages
    ctx = Context(n_samples=Y.shape[0], n_components=Y.shape[1], normalized=True, a=1.0, b=1.0, seed=0,
                  registry=pipeline.registry, n_epochs=1)
    affinities = GidrAffinities(P, True)
    with _threads(job_count(n_jobs, owner)):
        forces = gather_forces(Y, edge_list(P), stages["loss"], stages["repulsion"], ctx, 0, affinities=affinities)
        error = kl_divergence(stages["loss"], stages["repulsion"], affinities, Y, ctx, 0) if should_eval_error \
            else None
    gradient = forces / GRADIENT_SCALE  # gather_forces returns the gradient of the loss (the optimizer steps against it)
    return error, gradient.reshape(np.shape(embedding))


def kl_divergence_bh(embedding, P, dof=1, bh_params=None, reference_embedding=None, should_eval_error=False,
                     n_jobs=1, **_):
    """openTSNE's Barnes-Hut gradient function: ``(error, gradient)`` of the KL divergence of
    ``embedding`` against the normalized ``P``, in openTSNE's units (gidr's forces divided by
    :data:`GRADIENT_SCALE`); ``error`` is None unless ``should_eval_error``. ``bh_params``:
    ``{"theta": 0.5}``. Passed as ``negative_gradient_method`` it selects ``"bh"``."""
    overrides = {"repulsion": "barnes_hut", "theta": (bh_params or {}).get("theta", 0.5)}
    return _kl_gradient(embedding, P, dof, overrides, reference_embedding, should_eval_error, n_jobs,
                        "kl_divergence_bh")


def kl_divergence_fft(embedding, P, dof=1, fft_params=None, reference_embedding=None, should_eval_error=False,
                      n_jobs=1, **_):
    """openTSNE's interpolation gradient function, as :func:`kl_divergence_bh` with gidr's FFT
    repulsion. ``fft_params``: ``n_interpolation_points`` (3), ``min_num_intervals`` (50),
    ``ints_in_interval`` (1). Passed as ``negative_gradient_method`` it selects ``"fft"``."""
    params = {**GRADIENT_PARAMS, **(fft_params or {})}  # openTSNE's defaults: 3, 50, 1
    return _kl_gradient(embedding, P, dof, {"repulsion": "fft", **fft_overrides(params)}, reference_embedding,
                        should_eval_error, n_jobs, "kl_divergence_fft")


class TSNEEmbedding(np.ndarray):
    """A t-SNE embedding (an ndarray of shape (n_samples, n_components)) that can be optimized
    further, transform new points and be extended.

    Parameters
    ----------
    embedding : ndarray of shape (n_samples, n_components)
    affinities : gidr.opentsne.affinity.Affinities
    dof, n_interpolation_points, min_num_intervals, ints_in_interval, negative_gradient_method
        Defaults of :meth:`optimize` (see :class:`TSNE`).
    random_state : int, RandomState or None
    optimizer : gradient_descent, optional
        The state to continue from (None: start with gains 1 and no momentum).
    **gradient_descent_params
        Further defaults of :meth:`optimize` (:data:`GRADIENT_PARAMS`).

    Attributes
    ----------
    kl_divergence : float or None
        After :meth:`optimize`: the KL divergence of the final embedding.
    affinities, gradient_descent_params, random_state, optimizer
    """

    def __new__(cls, embedding, affinities, dof=1, n_interpolation_points=3, min_num_intervals=50,
                ints_in_interval=1, negative_gradient_method="auto", random_state=None, optimizer=None,
                **gradient_descent_params):
        if not isinstance(affinities, Affinities):
            raise refuse("TSNEEmbedding", "affinities", "a gidr.opentsne.affinity.Affinities (e.g. PerplexityBasedNN)",
                         affinities, "openTSNE's own affinity objects cannot drive gidr's stages.")
        embedding = np.asarray(embedding)
        if embedding.ndim != 2 or embedding.shape[0] != affinities.P.shape[0]:
            raise GidrValueError(format_error("The 'embedding' of a TSNEEmbedding",
                                              f"an array of shape ({affinities.P.shape[0]}, n_components)", embedding,
                                              "Pass one row per row of the affinities' P."))
        if optimizer is not None and not isinstance(optimizer, gradient_descent):
            raise refuse("TSNEEmbedding", "optimizer", "a gidr.opentsne.gradient_descent or None", optimizer,
                         "Pass the optimizer of another gidr TSNEEmbedding, or None.")
        obj = np.array(embedding, dtype=np.float64, order="C").view(cls)
        obj.affinities = affinities
        obj.gradient_descent_params = _checked_params(
            {**gradient_descent_params, "dof": dof, "n_interpolation_points": n_interpolation_points,
             "min_num_intervals": min_num_intervals, "ints_in_interval": ints_in_interval,
             "negative_gradient_method": negative_gradient_method}, "TSNEEmbedding")
        obj.random_state = random_state
        obj.optimizer = optimizer if optimizer is not None else gradient_descent()
        obj.kl_divergence = None
        obj.interp_coeffs = obj.box_x_lower_bounds = obj.box_y_lower_bounds = None
        return obj

    def __array_finalize__(self, obj) -> None:
        for name in ("affinities", "random_state", "kl_divergence", "interp_coeffs", "box_x_lower_bounds",
                     "box_y_lower_bounds"):
            setattr(self, name, getattr(obj, name, None))
        self.gradient_descent_params = dict(getattr(obj, "gradient_descent_params", None) or {})
        self.optimizer = getattr(obj, "optimizer", None) or gradient_descent()  # its state is never mutated

    def __reduce__(self):
        constructor, arguments, state = super().__reduce__()
        extra = {name: getattr(self, name) for name in ("affinities", "gradient_descent_params", "random_state",
                                                          "optimizer", "kl_divergence")}
        return constructor, arguments, (state, extra)

    def __setstate__(self, state) -> None:
        array_state, extra = state
        super().__setstate__(array_state)
        for name, value in extra.items():
            setattr(self, name, value)
        self.interp_coeffs = self.box_x_lower_bounds = self.box_y_lower_bounds = None

    def _wrap(self, Y: np.ndarray) -> "TSNEEmbedding":
        """``Y`` as an embedding over these affinities (what callbacks receive)."""
        return TSNEEmbedding(Y, self.affinities, random_state=self.random_state, optimizer=self.optimizer,
                             **self.gradient_descent_params)

    def optimize(self, n_iter: int, inplace: bool = False, propagate_exception: bool = False,
                 **gradient_descent_params) -> "TSNEEmbedding":
        """Run ``n_iter`` more iterations, continuing from this embedding's optimizer state.

        Parameters
        ----------
        n_iter : int
        inplace : bool
            Update this embedding (True) or return an optimized copy (False).
        propagate_exception : bool
            When a callback stops the run: raise :class:`OptimizationInterrupt` (True) or
            return the embedding where it stopped (False).
        **gradient_descent_params
            Overrides of :data:`GRADIENT_PARAMS` for this call: ``learning_rate``
            (openTSNE's units, ``"auto"``: ``n / exaggeration``), ``momentum``,
            ``exaggeration``, ``dof``, ``min_gain``, ``max_step_norm``, ``theta``, the FFT
            grid (``n_interpolation_points``, ``min_num_intervals``, ``ints_in_interval``),
            ``negative_gradient_method``, ``n_jobs``, ``callbacks``,
            ``callbacks_every_iters``, ``verbose``, ``backend``. ``max_grad_norm`` must be None.

        Returns
        -------
        TSNEEmbedding
        """
        from gidr.estimators import _threads

        owner = "TSNEEmbedding.optimize"
        params = {**GRADIENT_PARAMS, **self.gradient_descent_params,
                  **_checked_params(gradient_descent_params, owner)}
        embedding = self if inplace else fresh_copy(self)
        state = self.optimizer.state
        start = 0 if state is None else state.epoch
        n_samples = self.shape[0]
        if isinstance(n_iter, (bool, np.bool_)) or not isinstance(n_iter, (int, np.integer)) or n_iter < 0:
            raise refuse(owner, "n_iter", "a non-negative int", n_iter, "Pass the number of iterations to run.")
        if n_iter == 0:  # nothing to run: the state starts (openTSNE's), the error is the current one
            return self._no_iterations(embedding, params, owner)
        overrides = phase_overrides(params, int(n_iter), start, n_samples, owner)
        if overrides["repulsion"] == "barnes_hut" and self.shape[1] > 3:
            overrides = exact_for_many_dimensions(overrides, n_samples, self.shape[1], owner)
        if overrides["repulsion"] == "fft" and self.shape[1] > 2:
            raise TooManyDimensions(format_error(
                f"The 'negative_gradient_method' parameter of {owner}", "'bh' for more than 2 components",
                Described(f"'fft' with {self.shape[1]} components"),
                "The FFT grid is 1-D or 2-D: use negative_gradient_method='bh' (up to 3 components)."))
        pipeline = self.affinities.pipeline.replace(backend=params["backend"], **overrides)
        stages = pipeline.stages
        if not hasattr(stages["optimizer"], "resume"):
            raise refuse(owner, "optimizer", "a tsne optimizer stage that can resume from a state",
                         stages["optimizer"].describe(), "Use gidr's own 'tsne' optimizer.")
        callbacks = check_callbacks(params["callbacks"], owner)
        for callback in callbacks:
            getattr(callback, "optimization_about_to_start", lambda: None)()
        ctx = dataclasses.replace(self.affinities.context, n_components=self.shape[1], n_epochs=int(n_iter))
        affinities = self.affinities.gidr_affinities()
        monitor = PhaseMonitor(every=int(params["callbacks_every_iters"]), offset=start, callbacks=callbacks,
                               verbose=bool(params["verbose"]), wrap=self._wrap, clock=time.perf_counter(),
                               error=lambda Y, epoch: kl_divergence(stages["loss"], stages["repulsion"], affinities,
                                                                    Y, ctx, epoch))
        with _threads(job_count(params["n_jobs"], owner)):
            Y, state = stages["optimizer"].resume(np.asarray(self), affinities, stages["loss"], stages["repulsion"],
                                                  ctx, monitor, state)
            error = kl_divergence(stages["loss"], stages["repulsion"], affinities, Y, ctx, state.epoch)
        np.copyto(embedding.view(np.ndarray), Y)
        embedding.optimizer = gradient_descent(state)
        embedding.kl_divergence = error if monitor.stopped_error is None else monitor.stopped_error
        if monitor.stopped_error is not None and propagate_exception:
            raise OptimizationInterrupt(error=embedding.kl_divergence, final_embedding=embedding)
        return embedding

    def _no_iterations(self, embedding: "TSNEEmbedding", params: dict, owner: str) -> "TSNEEmbedding":
        """``optimize(0)``: the optimizer state starts if it has not, ``kl_divergence`` is the
        current embedding's."""
        pipeline = self.affinities.pipeline.replace(
            backend=params["backend"], **phase_overrides(params, 1, 0, self.shape[0], owner))
        stages = pipeline.stages
        ctx = dataclasses.replace(self.affinities.context, n_components=self.shape[1])
        if embedding.optimizer.state is None:
            embedding.optimizer = gradient_descent(DescentState.start(self.shape))
        embedding.kl_divergence = kl_divergence(stages["loss"], stages["repulsion"], self.affinities.gidr_affinities(),
                                                np.asarray(self), ctx, embedding.optimizer.epoch)
        return embedding

    def transform(self, X, perplexity=5, initialization="median", k=25, learning_rate=0.1, early_exaggeration=4,
                  early_exaggeration_iter=0, exaggeration=1.5, n_iter=250, initial_momentum=0.8,
                  final_momentum=0.8, max_grad_norm=0.25, max_step_norm=None) -> PartialTSNEEmbedding:
        """Embed new points without moving this embedding: gidr's transform path
        (:func:`gidr.transform.transform_new_points`) for ``early_exaggeration_iter + n_iter``
        epochs.

        The new points' neighbours and weights come from the fitted neighbours and similarity
        stages (the fit's perplexity), they start at the weighted mean of their neighbours, and
        gidr's transform loop moves them (momentum and gains, steps capped at 5 % of this
        embedding's extent, no exaggeration). An array ``initialization`` (one row per new point)
        is the start instead, moved by :meth:`PartialTSNEEmbedding.optimize` with the fit's
        gradient parameters. openTSNE's other parameters here are accepted for its signature and
        change nothing. This embedding is not recentred (openTSNE's is, in place).

        Returns
        -------
        PartialTSNEEmbedding of shape (n_new, n_components)
        """
        from gidr.transform import transform_new_points

        n_epochs = int(early_exaggeration_iter) + int(n_iter)
        if n_epochs < 0:
            raise refuse("TSNEEmbedding.transform", "n_iter", "a non-negative int", n_iter,
                         "Pass n_iter=250, openTSNE's default.")
        if isinstance(initialization, np.ndarray):  # the caller's start (shape-checked), moved by the partial loop
            partial = self.prepare_partial(X, initialization=initialization)
            return partial if n_epochs == 0 else partial.optimize(n_epochs, inplace=True)
        partial = self.prepare_partial(X, initialization="weighted")
        if n_epochs == 0:
            return partial
        result = fit_result(self.affinities, self, self._fit_epochs())
        from gidr.opentsne.partial import _index

        Y = transform_new_points(self.affinities.pipeline, result, self.affinities.data, X, n_epochs,
                                 index=_index(self.affinities))
        np.copyto(partial.view(np.ndarray), Y)
        return partial

    def _fit_epochs(self) -> int:
        state = self.optimizer.state
        return max(state.epoch if state is not None else 1, 1)

    def prepare_partial(self, X, initialization="median", k=25, **affinity_params) -> PartialTSNEEmbedding:
        """New points placed against this embedding, ready for :meth:`PartialTSNEEmbedding.optimize`.

        Parameters
        ----------
        X : array-like of shape (n_new, n_features)
        initialization : {"median", "weighted", "random"} or ndarray of shape (n_new, n_components)
            ``"median"``: the median position of the ``k`` nearest training points;
            ``"weighted"``: their mean weighted by the fitted similarity (gidr's transform start).
        k : int
            Neighbours for ``"median"`` (at most the fit's number).
        **affinity_params
            ``perplexity`` (None or the fit's), as :meth:`PerplexityBasedNN.to_new`.
        """
        owner = "TSNEEmbedding.prepare_partial"
        settings = getattr(self.affinities, "new_point_settings", None)
        if settings is None:
            raise refuse(owner, "affinities", "affinities computed from data", self.affinities,
                         "A precomputed affinity matrix has no data to find new points' neighbours in.")
        accepted = set(inspect.signature(settings).parameters)
        unknown = sorted(set(affinity_params) - accepted)
        if unknown:
            raise refuse(owner, unknown[0], "one of the affinities' to_new parameters (" + ", ".join(sorted(accepted))
                         + ")", affinity_params[unknown[0]], "Check its spelling.")
        n_neighbors, overrides = settings(**affinity_params)
        edges, _ = new_point_edges(self.affinities, X, self, n_neighbors, overrides)
        P = new_point_matrix(edges.indices, edges.weights, self.affinities.n_samples)
        n_new = edges.indices.shape[0]
        if isinstance(initialization, np.ndarray):
            if initialization.shape != (n_new, self.shape[1]):
                raise refuse(owner, "initialization", f"an array of shape ({n_new}, {self.shape[1]})",
                             initialization, "Pass one row per new point.")
            start = np.array(initialization, dtype=np.float64)
        elif isinstance(initialization, str) and initialization == "median":
            start = init_scheme.median(self, edges.indices[:, :k])
        elif isinstance(initialization, str) and initialization == "weighted":
            w = edges.weights / np.maximum(edges.weights.sum(axis=1, keepdims=True), np.finfo(float).tiny)
            start = np.einsum("mk,mkd->md", w, np.asarray(self)[edges.indices])
        elif isinstance(initialization, str) and initialization == "random":
            start = init_scheme.random(n_new, self.shape[1], random_state=self.random_state)
        else:
            raise refuse(owner, "initialization", "'median', 'weighted', 'random' or an array", initialization,
                         "Pass 'median' (openTSNE's default).")
        defaults = {k_: v for k_, v in self.gradient_descent_params.items() if k_ != "callbacks"}
        return PartialTSNEEmbedding(start, self, P, edges=edges, **defaults)


class TSNE:
    """openTSNE's ``TSNE`` over gidr's ``tsne`` stages (see :mod:`gidr.opentsne`).

    The parameters, their defaults and their meanings are openTSNE 1.0.4's, with ``backend``
    (gidr's) added at the end. Refused with a clear error: ``max_grad_norm`` other than None,
    ``metric_params`` and ``knn_kwargs`` other than None, ``neighbors`` ``"annoy"`` or
    ``"hnsw"``, a callable ``negative_gradient_method``. ``dof`` other than 1 is the heavy-
    tailed kernel of gidr's ``kl`` loss.
    """

    def __init__(self, n_components=2, perplexity=30, learning_rate="auto", early_exaggeration_iter=250,
                 early_exaggeration="auto", n_iter=500, exaggeration=None, dof=1, theta=0.5,
                 n_interpolation_points=3, min_num_intervals=50, ints_in_interval=1, initialization="pca",
                 metric="euclidean", metric_params=None, initial_momentum=0.8, final_momentum=0.8,
                 max_grad_norm=None, max_step_norm=5, n_jobs=1, neighbors="auto", knn_kwargs=None,
                 negative_gradient_method="auto", callbacks=None, callbacks_every_iters=50, random_state=None,
                 verbose=False, backend="auto"):
        for name, value in list(locals().items()):
            if name != "self":
                setattr(self, name, value)
        if isinstance(initialization, np.ndarray) and (initialization.ndim != 2
                                                       or initialization.shape[1] != n_components):
            raise refuse("TSNE", "initialization", f"an array of n_components = {n_components} columns",
                         initialization, "Pass one row per sample and n_components columns.")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(perplexity={self.perplexity!r}, n_iter={self.n_iter!r})"

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's parameters (scikit-learn's convention)."""
        import inspect

        return {name: getattr(self, name) for name in inspect.signature(type(self).__init__).parameters
                if name != "self"}

    def _early_exaggeration(self):
        if isinstance(self.early_exaggeration, str) and self.early_exaggeration == "auto":
            return 12.0 if self.exaggeration is None else max(12.0, float(self.exaggeration))
        return self.early_exaggeration

    def fit(self, X=None, affinities=None, initialization=None) -> TSNEEmbedding:
        """Affinities, initial layout, the exaggerated phase, then the normal one.

        Returns
        -------
        TSNEEmbedding of shape (n_samples, n_components)
        """
        if self.verbose:
            print("-" * 80, repr(self), "-" * 80, sep="\n")
        embedding = self.prepare_initial(X, affinities, initialization)
        try:
            embedding.optimize(self.early_exaggeration_iter, exaggeration=self._early_exaggeration(),
                               momentum=self.initial_momentum, inplace=True, propagate_exception=True)
            embedding.optimize(self.n_iter, exaggeration=self.exaggeration, momentum=self.final_momentum,
                               inplace=True, propagate_exception=True)
        except OptimizationInterrupt as interrupt:
            embedding = interrupt.final_embedding
        return embedding

    def prepare_initial(self, X=None, affinities=None, initialization=None) -> TSNEEmbedding:
        """The affinities (``PerplexityBasedNN`` of ``X`` unless given; ``MultiscaleMixture``
        when ``perplexity`` is a list, as in openTSNE) and the initial layout.

        Returns
        -------
        TSNEEmbedding
            Not optimized yet.
        """
        owner = type(self).__name__
        if X is None and affinities is None:
            raise refuse(owner, "X", "an array (or pass affinities)", None, "Pass the data matrix to fit.")
        check_none(owner, "max_grad_norm", self.max_grad_norm,
                   "gidr's tsne optimizer bounds each point's step instead: use max_step_norm.")
        neighbor_stage_name(owner, "neighbors", self.neighbors)
        seed = resolve_seed(self.random_state, f"of {owner}")
        if affinities is None:
            # openTSNE's: a list of perplexities is its Gaussian-mixture kernel (MultiscaleMixture)
            several = not isinstance(self.perplexity, numbers.Real)
            kind = MultiscaleMixture if several else PerplexityBasedNN
            affinities = kind(X, self.perplexity, method=self.neighbors, metric=self.metric,
                              metric_params=self.metric_params, n_jobs=self.n_jobs, random_state=seed,
                              knn_kwargs=self.knn_kwargs, backend=self.backend)
        elif not isinstance(affinities, Affinities):
            raise refuse(owner, "affinities", "a gidr.opentsne.affinity.Affinities", affinities,
                         "Build them with gidr.opentsne.affinity.PerplexityBasedNN.")
        n_samples = affinities.n_samples
        layout = self.initialization if initialization is None else initialization
        if isinstance(layout, str) and layout == "pca" and (X is None or self.metric == "precomputed"):
            layout = "spectral"  # openTSNE's fallback when there is no data matrix
        start = self._layout(layout, X, affinities, n_samples, seed, owner)
        params = {"learning_rate": self.learning_rate, "momentum": self.final_momentum, "theta": self.theta,
                  "max_grad_norm": self.max_grad_norm, "max_step_norm": self.max_step_norm, "n_jobs": self.n_jobs,
                  "verbose": self.verbose, "callbacks": self.callbacks,
                  "callbacks_every_iters": self.callbacks_every_iters, "backend": self.backend}
        return TSNEEmbedding(start, affinities, dof=self.dof, n_interpolation_points=self.n_interpolation_points,
                             min_num_intervals=self.min_num_intervals, ints_in_interval=self.ints_in_interval,
                             negative_gradient_method=self.negative_gradient_method, random_state=seed, **params)

    def _layout(self, layout, X, affinities, n_samples: int, seed: int, owner: str) -> np.ndarray:
        if isinstance(layout, np.ndarray):
            if layout.shape != (n_samples, self.n_components):
                raise refuse(owner, "initialization", f"an array of shape ({n_samples}, {self.n_components})",
                             layout, "Pass one row per sample and n_components columns.")
            return np.array(layout, dtype=np.float64)
        if isinstance(layout, str) and layout == "pca":
            return init_scheme.pca(X, self.n_components, random_state=seed, backend=self.backend)
        if isinstance(layout, str) and layout == "spectral":
            return init_scheme.spectral(affinities.P, self.n_components, random_state=seed, backend=self.backend)
        if isinstance(layout, str) and layout == "random":
            return init_scheme.random(n_samples, self.n_components, random_state=seed, backend=self.backend)
        raise refuse(owner, "initialization", "'pca', 'spectral', 'random' or an array", layout,
                     "Pass 'pca' (openTSNE's default).")
