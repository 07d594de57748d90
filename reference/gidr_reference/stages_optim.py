"""Reference optimizer stages: ``gdr``, ``umap_sgd`` and ``tsne``.

The classes bind validated parameters; the loops are the functions of
:mod:`gidr_reference.optimizers`.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from gidr.stages import Optimizer
from gidr.types import Affinities, Context, DescentState, Monitor
from gidr.validation import Boolean, Described, GidrValueError, Interval, Options, Param, format_error
from gidr_reference import optimizers, transform

__all__ = ["GDROptimizer", "UmapSGDOptimizer", "TSNEOptimizer", "STAGES"]


def _learning_rate_param(default: Any, doc: str) -> Param:
    if default == "auto":
        constraints = (Options(("auto",)), Interval(float, 0, None, "neither"))
    else:
        constraints = (Interval(float, 0, None, "neither"),)
    return Param("learning_rate", default, constraints, doc)


_SYMMETRIC_DOC = ("Edge (i, j) also moves y_j towards y_i (roughly doubles the attraction, since P "
                  "stores both directions).")
_MOMENTUM = Interval(float, 0, 1, "left")
_POSITIVE = Interval(float, 0, None, "neither")


def _setting(settings: Mapping[str, Any] | Context, name: str) -> Any:
    """A pipeline switch from the validated settings dict (or a Context)."""
    if isinstance(settings, Mapping):
        return settings[name]
    return getattr(settings, name)


def _incompatible(owner: str, what: str, expected: str, got: Any, why: str) -> GidrValueError:
    return GidrValueError(format_error(f"The {what} used with {owner}", expected, got, why))


def checked_state(state: DescentState | None, Y: np.ndarray) -> DescentState:
    """``state``, checked against ``Y``'s shape; the start state when None."""
    if state is None:
        return DescentState.start(np.shape(Y))
    if np.shape(state.update) != np.shape(Y) or np.shape(state.gains) != np.shape(Y):
        raise GidrValueError(format_error("The optimizer state's update and gains",
                                          f"arrays of the embedding's shape {np.shape(Y)}",
                                          Described(f"shapes {np.shape(state.update)} and {np.shape(state.gains)}"),
                                          "Continue from the state returned for this embedding."))
    return state


def _n_epochs(optimizer: Optimizer, ctx: Context) -> int:
    return int(ctx.n_epochs) if ctx.n_epochs is not None else optimizer.default_n_epochs(ctx.n_samples)


class GDROptimizer(Optimizer):
    """GDR's loop: all forces gathered at the epoch-start Y, then applied.

    Normalized: gradient amplification (early exaggeration of the attraction during the first
    ``exaggeration_fraction`` of the epochs, momentum, gains), then the learning rate decays
    linearly to 0 so that momentum averages out the noise of a sampled repulsion.
    ``"auto"`` is ``max(n / early_exaggeration, 50) / 4`` (above 600 points scikit-learn's
    ``n / early_exaggeration / 4``: the forces carry t-SNE's factor 4, which openTSNE's rate
    ``n / early_exaggeration`` does not see), doubled
    for KL, whose annealed steps average out the sampled repulsion's noise: on Fashion-MNIST
    (70,000 points, 1,000 epochs) 100-NN accuracy 0.816 at a rate of 3,000 (the doubled rule
    gives 2,917) against 0.802 at the undoubled 1,458. Frobenius does not take
    the doubled rate (digits: 15-NN accuracy 0.889 against 0.975), nor do other losses.
    Unnormalized: each coordinate of the force clipped to ``±max_step``, learning rate decaying
    linearly from ``learning_rate`` (``"auto"`` is the loss's ``auto_rate_unnormalized``: 3 for
    ``kl``, 1 for the others).
    """

    name = "gdr"
    backend = "reference"
    priority = 0
    params = (
        Param("symmetric_attraction", False, (Boolean(),), _SYMMETRIC_DOC),
        _learning_rate_param("auto", "Initial step size; 'auto': max(n / early_exaggeration, 50) / 4 when "
                                     "normalized (/ 2 with the kl loss); when not, the loss's "
                                     "auto_rate_unnormalized (3.0 for kl, else 1.0)."),
        Param("early_exaggeration", 12.0, (_POSITIVE,),
              "Factor on the attraction at the start (normalized only)."),
        Param("exaggeration_fraction", 0.25, (Interval(float, 0, 1, "both"),),
              "Share of the epochs run with early exaggeration and `momentum` (normalized only)."),
        Param("momentum", 0.5, (_MOMENTUM,), "Momentum during the exaggeration (normalized only)."),
        Param("final_momentum", 0.8, (_MOMENTUM,), "Momentum after the exaggeration (normalized only)."),
        Param("min_gain", 0.01, (_POSITIVE,), "Floor of the per-coordinate gains (normalized only)."),
        Param("max_step", 4.0, (_POSITIVE,), "Clip of each force coordinate (unnormalized only)."),
        Param("default_epochs", None, (Interval(int, 1, None),),
              "Epochs when the pipeline's n_epochs is None and no landmark start sets landmark_epochs; "
              "None: 500 below 10,000 points, else 300.", True),
    )

    def default_n_epochs(self, n_samples: int) -> int:
        """``default_epochs``, else 500 below 10,000 points and 300 above (umap-learn likewise
        shortens its schedule for large inputs): on Fashion-MNIST (70,000, seeds 0-2) gdr-umap's
        100-NN accuracy is 0.786-0.787 with 300 epochs at its "auto" rate of 3, and V-measure
        0.616-0.617; 400 epochs gave 0.782-0.785 and 0.606-0.620. ``gdr-tsne`` sets
        ``default_epochs = 1000``: a pipeline ``n_epochs`` would also override its
        ``landmark_epochs`` (``gdr-tsne-frob``, without a landmark start, keeps ``n_epochs``)."""
        if self.default_epochs is not None:
            return int(self.default_epochs)
        return 500 if n_samples < 10_000 else 300

    def check_density(self, settings) -> None:
        """densMAP's term joins the unnormalized loop's forces (before the clip); the normalized
        loop's gains and momentum act on forces of another scale, so it is refused there."""
        if _setting(settings, "normalized"):
            raise _incompatible(self.describe(), "'densmap' switch", "False with normalized=True", True,
                                "densMAP's term weighs against UMAP's unnormalized cross-entropy; use "
                                "normalized=False (gdr-umap, gidr.GDR's default) or gidr.UMAP.")

    def unnormalized_rate(self, loss) -> float:
        """The unnormalized loop's initial step: ``learning_rate``, or for ``"auto"`` the loss's
        ``auto_rate_unnormalized`` (fit and transform both use it)."""
        if self.learning_rate == "auto":
            return float(loss.auto_rate_unnormalized)
        return float(self.learning_rate)

    def schedule(self, n_samples: int, n_epochs: int, loss) -> optimizers.AmplifiedSchedule:
        """The normalized loop's constants: the ``"auto"`` rate ``max(n / early_exaggeration, 50)
        / 4`` times the loss's ``auto_rate_factor`` (2 for ``kl``), annealed after the exaggeration."""
        lr = self.learning_rate
        if lr == "auto":
            lr = max(n_samples / self.early_exaggeration, 50.0) / 4.0 * float(loss.auto_rate_factor)
        return optimizers.AmplifiedSchedule(
            learning_rate=float(lr), exaggeration=self.early_exaggeration,
            n_exaggerated=int(self.exaggeration_fraction * n_epochs), momentum=self.momentum,
            final_momentum=self.final_momentum, min_gain=self.min_gain, anneal=True)

    def optimize(self, Y: np.ndarray, affinities: Affinities, loss, repulsion, ctx: Context,
                 monitor: Monitor) -> np.ndarray:
        n_epochs = _n_epochs(self, ctx)
        if ctx.normalized:
            return optimizers.amplified_descent(Y, affinities, loss, repulsion, ctx, monitor,
                                                schedule=self.schedule(ctx.n_samples, n_epochs, loss),
                                                symmetric_attraction=self.symmetric_attraction,
                                                n_epochs=n_epochs)
        return optimizers.clipped_descent(Y, affinities, loss, repulsion, ctx, monitor,
                                          learning_rate=self.unnormalized_rate(loss),
                                          max_step=self.max_step,
                                          symmetric_attraction=self.symmetric_attraction, n_epochs=n_epochs)

    _embed_new_points = staticmethod(transform.embed_new_points)

    def embed_new(self, Y_start, Y_train, edges, affinities, loss, ctx, n_epochs, repulsion=None):
        schedule = self.schedule(ctx.n_samples, ctx.n_epochs, loss) if ctx.normalized else None
        steps = transform.new_point_steps(self, ctx, n_epochs, repulsion=repulsion, schedule=schedule,
                                          learning_rate=None if ctx.normalized else self.unnormalized_rate(loss))
        return self._embed_new_points(Y_start, Y_train, edges, affinities, loss, ctx, n_epochs, steps=steps)


class UmapSGDOptimizer(Optimizer):
    """umap-learn's SGD: edges sampled in proportion to p, negative samples, clipped updates.

    Valid only with a loss that declares ``edge_sampling_sgd`` (unnormalized ``kl``) and a
    repulsion stage that declares ``per_edge_sampler`` (``sampled``, whose
    ``draws_per_edge()`` sets the negatives per processed edge). The reference applies each epoch's updates as one
    batch at the epoch-start Y (see :func:`gidr_reference.optimizers.umap_sgd`).
    """

    name = "umap_sgd"
    backend = "reference"
    priority = 0
    params = (
        Param("symmetric_attraction", True, (Boolean(),), _SYMMETRIC_DOC),
        _learning_rate_param(1.0, "Initial step size, decaying linearly to 0."),
        Param("max_step", 4.0, (_POSITIVE,), "Clip of each coordinate of every single update."),
        Param("force_table", True, (Boolean(),),
              "Interpolate the attraction and repulsion coefficients (functions of the squared "
              "distance alone) on a table of 128 knots per octave (gidr_reference.force_table: "
              "relative error below 1e-4) instead of a power per pair when b != 1; False: exact."),
    )

    def default_n_epochs(self, n_samples: int) -> int:
        """500 below 10,000 points, else 300 where umap-learn runs 200: this loop applies each
        epoch's updates against the epoch-start positions (deterministic in parallel), which on
        Fashion-MNIST (70,000) reached 100-NN accuracy 0.776 / 0.781 (seeds 0 / 1) with 200 epochs
        against 0.785 / 0.786 with 300 (umap-learn: 0.789)."""
        return 500 if n_samples < 10_000 else 300

    def check_compatible(self, loss, repulsion, settings) -> None:
        owner = self.describe()
        if _setting(settings, "normalized"):
            raise _incompatible(owner, "'normalized' switch", "False", True,
                                "umap_sgd samples repulsions in proportion to 1 - p, which only the "
                                "unnormalized loss has; use optimizer='gdr' for normalized embeddings.")
        if not loss.edge_sampling_sgd:
            raise _incompatible(owner, "loss", "UMAP's cross-entropy (a loss declaring edge_sampling_sgd, "
                                "e.g. 'kl')", loss.name,
                                "umap_sgd's scalar sampling replaces the factors p and 1 - p of UMAP's "
                                "cross-entropy; use optimizer='gdr' for other losses.")
        if not repulsion.per_edge_sampler:
            raise _incompatible(owner, "repulsion", "a per-edge sampler (e.g. 'sampled')", repulsion.name,
                                "umap_sgd draws its own negative samples (n_negative of the 'sampled' "
                                "repulsion); use optimizer='gdr' for exact or Barnes-Hut repulsion.")
        pool_size = getattr(repulsion, "negative_pool_size", None)  # a Repulsion stage has it
        pool = pool_size(1 << 62) if pool_size is not None else 0  # the pool it would use on a large input
        if pool > 0:
            raise _incompatible(owner, "repulsion's 'pool_size'", "0", pool,
                                "umap_sgd moves each point as its edges come due, against the other points' "
                                "positions, not a pool drawn for the epoch; leave pool_size at 0, or use "
                                "optimizer='gdr' (the gdr-umap preset) for pooled negatives.")

    def check_density(self, settings) -> None:
        """densMAP's term is supported: each epoch adds the expectation of umap-learn's per-edge
        density updates (see :mod:`gidr_reference.densmap`)."""

    def optimize(self, Y: np.ndarray, affinities: Affinities, loss, repulsion, ctx: Context,
                 monitor: Monitor) -> np.ndarray:
        return optimizers.umap_sgd(Y, affinities, loss, ctx, monitor, n_negative=repulsion.draws_per_edge(),
                                   symmetric_attraction=self.symmetric_attraction,
                                   learning_rate=float(self.learning_rate), max_step=self.max_step,
                                   n_epochs=_n_epochs(self, ctx), force_table=self.force_table)

    _embed_new_points = staticmethod(transform.embed_new_points)

    def embed_new(self, Y_start, Y_train, edges, affinities, loss, ctx, n_epochs, repulsion=None):
        steps = transform.new_point_steps(self, ctx, n_epochs, repulsion=repulsion)
        return self._embed_new_points(Y_start, Y_train, edges, affinities, loss, ctx, n_epochs, steps=steps)


class TSNEOptimizer(Optimizer):
    """Standard Barnes-Hut t-SNE loop: ``exaggeration_iter`` epochs with early exaggeration and
    ``momentum``, then ``final_momentum``; gains; learning rate ``"auto"`` = max(n / 12, 200);
    each point's step bounded by ``max_step_norm`` (openTSNE's 5; ``None``: unbounded, as
    scikit-learn's). scikit-learn's stopping rules, ``n_iter_without_progress`` and
    ``min_grad_norm`` (:class:`gidr_reference.optimizers.EarlyStop`), are off by default.

    Requires ``normalized=True``.
    """

    name = "tsne"
    backend = "reference"
    priority = 0
    params = (
        _learning_rate_param("auto", "Step size; 'auto': max(n / 12, 200)."),
        Param("early_exaggeration", 12.0, (_POSITIVE,), "Factor on the attraction at the start."),
        Param("exaggeration_iter", 250, (Interval(int, 0, None),), "Epochs run with early exaggeration."),
        Param("momentum", 0.5, (_MOMENTUM,), "Momentum during the exaggeration."),
        Param("final_momentum", 0.8, (_MOMENTUM,), "Momentum after the exaggeration."),
        Param("min_gain", 0.01, (_POSITIVE,), "Floor of the per-coordinate gains."),
        Param("max_step_norm", 5.0, (Interval(float, 0, None, "neither"),),
              "Longest step of a point in one epoch (openTSNE's default 5); None: unbounded, as "
              "scikit-learn's TSNE.", allow_none=True),
        Param("symmetric_attraction", False, (Boolean(),), _SYMMETRIC_DOC),
        Param("n_iter_without_progress", None, (Interval(int, -1, None),),
              "Stop when the loss has not improved for more than this many epochs after the "
              "exaggeration, checked every check_every epochs (scikit-learn's rule); None: off.",
              allow_none=True),
        Param("min_grad_norm", None, (Interval(float, 0, None, "left"),),
              "Stop when the norm of gains * gradient is at most this at a check (during the "
              "exaggeration: end the exaggeration), as scikit-learn's; None: off.", allow_none=True),
        Param("check_every", 50, (Interval(int, 1, None),),
              "Epochs between the stopping rules' checks (scikit-learn's 50)."),
    )

    def default_n_epochs(self, n_samples: int) -> int:
        return 750

    def check_compatible(self, loss, repulsion, settings) -> None:
        if not _setting(settings, "normalized"):
            raise _incompatible(self.describe(), "'normalized' switch", "True", False,
                                "t-SNE's gradient amplification needs normalized P and Q (it is unstable "
                                "on UMAP's unnormalized forces); use optimizer='gdr' or 'umap_sgd'.")

    def schedule(self, n_samples: int) -> optimizers.AmplifiedSchedule:
        """t-SNE's constants: ``"auto"`` rate ``max(n / 12, 200)``, held constant."""
        lr = self.learning_rate
        if lr == "auto":
            lr = max(n_samples / 12.0, 200.0)
        return optimizers.AmplifiedSchedule(
            learning_rate=float(lr), exaggeration=self.early_exaggeration,
            n_exaggerated=self.exaggeration_iter, momentum=self.momentum,
            final_momentum=self.final_momentum, min_gain=self.min_gain,
            max_step_norm=math.inf if self.max_step_norm is None else self.max_step_norm,
            n_iter_without_progress=self.n_iter_without_progress, min_grad_norm=self.min_grad_norm,
            check_every=self.check_every)

    def optimize(self, Y: np.ndarray, affinities: Affinities, loss, repulsion, ctx: Context,
                 monitor: Monitor) -> np.ndarray:
        return optimizers.amplified_descent(Y, affinities, loss, repulsion, ctx, monitor,
                                            schedule=self.schedule(ctx.n_samples),
                                            symmetric_attraction=self.symmetric_attraction,
                                            n_epochs=_n_epochs(self, ctx))

    def resume(self, Y: np.ndarray, affinities: Affinities, loss, repulsion, ctx: Context, monitor: Monitor,
               state: DescentState | None = None) -> tuple[np.ndarray, DescentState]:
        """:meth:`optimize` for ``ctx.n_epochs`` epochs (the default when None) from ``state``
        (None: the start, ``update = 0`` and ``gains = 1`` at epoch 0); returns the embedding
        and the state after its last epoch. Continuing from the returned state gives the same
        bits as one longer run (:func:`gidr_reference.optimizers.amplified_descent_from`)."""
        return optimizers.amplified_descent_from(Y, affinities, loss, repulsion, ctx, monitor,
                                                 schedule=self.schedule(ctx.n_samples),
                                                 symmetric_attraction=self.symmetric_attraction,
                                                 n_epochs=_n_epochs(self, ctx), state=checked_state(state, Y))

    _embed_new_points = staticmethod(transform.embed_new_points)

    def embed_new(self, Y_start, Y_train, edges, affinities, loss, ctx, n_epochs, repulsion=None):
        steps = transform.new_point_steps(self, ctx, n_epochs, repulsion=repulsion,
                                          schedule=self.schedule(ctx.n_samples))
        return self._embed_new_points(Y_start, Y_train, edges, affinities, loss, ctx, n_epochs, steps=steps)


STAGES = [GDROptimizer, UmapSGDOptimizer, TSNEOptimizer]
