"""The pipeline: presets + overrides → validated stages → ``run(X)`` → :class:`Result`."""
from __future__ import annotations

import contextlib
import copy
import logging
import time
import warnings
from typing import Any, Callable, Mapping

import numpy as np
import scipy.sparse as sp

from gidr.kernel import fit_ab
from gidr.locality import LOCALITY_MIN_POINTS, LOCALITY_OPTIONS, inverse_permutation, morton_order, set_aside, \
    renumbered_affinities, uses_renumbering
from gidr.memory import check_memory, peak_resident_bytes
from gidr.outofcore import RowSource, chunked_pca, is_out_of_core, load_float32, row_source
from gidr.stages import KINDS, Stage
from gidr.stages.neighbors import MAX_DENSIFIED_CELLS, is_dask_array
from gidr.types import Affinities, Context, KNNGraph, Monitor, Result
from gidr.validation import (
    Anything,
    Boolean,
    Described,
    GidrValueError,
    Interval,
    Options,
    Param,
    check_array,
    check_dask_array,
    format_error,
    resolve_seed,
)

__all__ = ["Pipeline", "PIPELINE_PARAMS", "precomputed_input"]

logger = logging.getLogger("gidr")

#: What ``target_metric`` accepts: categorical labels; umap-learn's other discrete metrics (ordinal
#: values, counts, strings: each edge scaled by the distance of its two targets,
#: gidr_reference.supervised); or a distance between continuous targets (``l1`` and ``l2`` are
#: umap-learn's names for manhattan and euclidean).
DISCRETE_TARGET_METRICS = ("ordinal", "count", "string")
TARGET_METRICS = ("categorical", *DISCRETE_TARGET_METRICS, "euclidean", "l2", "manhattan", "l1", "chebyshev",
                  "cosine", "correlation")
_TARGET_METRIC_ALIASES = {"l2": "euclidean", "l1": "manhattan"}

#: Pipeline-level switches, seen by every stage.
PIPELINE_PARAMS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("normalized", False, (Boolean(),), "Normalize P and Q to sum to one (t-SNE) or not (UMAP)."),
        Param("scalars", "fit", (Options(("fit", "one")),),
              "'fit': a, b fitted to min_dist and spread (UMAP); 'one': a = b = 1 (t-SNE)."),
        Param("a", None, (Interval(float, 0, None, "neither"),), "Kernel a; overrides 'scalars'.", True),
        Param("b", None, (Interval(float, 0, None, "neither"),), "Kernel b; overrides 'scalars'.", True),
        Param("min_dist", 0.1, (Interval(float, 0, None, "left"),), "UMAP's min_dist for fitting a, b."),
        Param("spread", 1.0, (Interval(float, 0, None, "neither"),), "UMAP's spread for fitting a, b."),
        Param("n_components", 2, (Interval(int, 1, None),), "Dimension of the embedding."),
        Param("n_epochs", None, (Interval(int, 1, None),), "Optimizer epochs; None: its default.", True),
        Param("random_state", None, (Anything(),), "Seed; None is not reproducible.", True),
        Param("backend", "auto", (Anything(),), "'auto', 'reference', 'numba' or a plugin's backend."),
        Param("target_metric", "categorical", (Options(TARGET_METRICS),),
              "How run(X, y=...) reads y: 'categorical' labels (-1: unknown); 'ordinal' values, 'count' "
              "(non-negative whole numbers) or 'string' labels (an edit distance), umap-learn's discrete "
              "metrics; or a distance between continuous targets."),
        Param("target_weight", 0.5, (Interval(float, 0, 1, "both"),),
              "Weight of y against the data in a supervised run (umap-learn's scale: an edge between two "
              "classes is scaled by exp(-2.5 / (1 - target_weight)); 1 cuts the classes apart)."),
        Param("target_n_neighbors", None, (Interval(int, 1, None),),
              "Neighbours of each point in a continuous y's graph; None: the data's number.", True),
        Param("pca", None, (Interval(int, 1, None),),
              "Reduce X to this many principal components first (a chunked PCA that reads a memmap, "
              "h5py or zarr input in row chunks, gidr.outofcore); the neighbours and a data-reading init "
              "see the float32 scores. None: no reduction.", True),
        Param("densmap", False, (Boolean(),),
              "densMAP: add the density term (the correlation of local radii, gidr_reference.densmap) to "
              "the loss during the last dens_frac of the epochs (optimizers umap_sgd and unnormalized gdr)."),
        Param("dens_lambda", 2.0, (Interval(float, 0, None, "left"),), "Weight of densMAP's density term."),
        Param("dens_frac", 0.3, (Interval(float, 0, 1, "both"),),
              "Share of the epochs, the last ones, in which densMAP's term acts."),
        Param("dens_var_shift", 0.1, (Interval(float, 0, None, "left"),),
              "Added to the variance of the embedding's log radii in densMAP's correlation."),
        Param("output_dens", False, (Boolean(),),
              "Compute the local log radii in the data and in the embedding (Result.densities, umap-learn's "
              "rad_orig_ and rad_emb_); the embedding's needs a kNN graph of the embedding."),
        Param("landmarks", None, (Interval(int, 2, None),),
              "Above this many points, start from a sample: embed that many rows (drawn from the seed) with "
              "the pipeline's own stages and settings, put every other point at the P-weighted mean of its "
              "placed neighbours (gidr_reference.init.place_from_sample), then optimize all points from there "
              "(the route Kobak & Berens, 2019, take for t-SNE of millions of cells). None, or at most this many "
              "points: the init stage on all points.", True),
        Param("landmark_epochs", None, (Interval(int, 1, None),),
              "Epochs of the run over all points after a landmark start (it refines a layout the sample "
              "already has); None: as without one. An n_epochs set wins.", True),
        Param("locality", "auto", (Options(LOCALITY_OPTIONS),),
              "Renumber the points along a Z-order curve of the start layout before the optimizer runs, "
              "for cache locality (gidr.locality); results come back in the caller's order. 'auto': from "
              f"{LOCALITY_MIN_POINTS:,} points on; 'morton': always; 'none': never."),
    )
}

#: ``max|Y|`` of an unnormalized landmark start. Fashion-MNIST's 50 PCs upsampled along the
#: manifold, ``gdr-umap`` (70,000 landmarks, 150 epochs), 100-NN accuracy / V-measure on a fixed
#: 20,000-point subsample: at 250,000 points 0.775 / 0.603 from 0.1, 0.754 / 0.585 from 10 and
#: 0.708 / 0.423 from the spectral init's extent there (1.6); at 1,000,000 (300 epochs) 0.762 from
#: 0.1 against 0.750 from the sample's own scale (about 35).
LANDMARK_START_MAX = 0.1

#: Epochs densMAP adds to the optimizer's default when the pipeline's n_epochs is None (umap-learn's rule).
DENSMAP_EXTRA_EPOCHS = 200



class Pipeline:
    """An immutable, validated configuration of the seven stages.

    Build one with :meth:`from_preset` (or :meth:`from_config`), derive variants with
    :meth:`replace`, and embed data with :meth:`run`.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X = load_digits().data[:300]
    >>> result = gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=50).run(X)
    >>> np.asarray(result).shape
    (300, 2)
    """

    def __init__(self, config: Mapping[str, Any], *, registry=None, presets=None) -> None:
        from gidr.plugins import get_presets, get_registry

        self._registry = registry if registry is not None else get_registry()
        self._presets = presets if presets is not None else get_presets()
        self._config = _complete_config(config)
        self._settings = _validate_settings(self._config["pipeline"])
        self._stages = self._build_stages()
        for stage in self._stages.values():
            stage.check_settings(self._settings)
        self._stages["optimizer"].check_compatible(self._stages["loss"], self._stages["repulsion"], self._settings)
        if self._settings["densmap"]:
            self._stages["optimizer"].check_density(self._settings)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_preset(cls, name: str, *, registry=None, presets=None, **overrides: Any) -> "Pipeline":
        """Build the named preset, with overrides.

        Any override is one word: a stage kind (``init="pca"``, ``loss="frobenius"``), a
        pipeline switch (``normalized=True``, ``scalars="one"``, ``backend="reference"``,
        ``random_state=0``), or a stage parameter (``perplexity=50``,
        ``symmetric_attraction=True``), which is set on every stage that declares it.
        ``"kind.param"`` (or ``kind__param``) targets one stage. ``n_epochs=None`` keeps
        the preset's number of epochs (the optimizer's default when the preset sets none).
        """
        from gidr.plugins import get_presets

        presets = presets if presets is not None else get_presets()
        config = presets.get(name)
        config.setdefault("pipeline", {})["preset"] = name
        base = cls(config, registry=registry, presets=presets)
        return base.replace(**overrides) if overrides else base

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, registry=None, presets=None) -> "Pipeline":
        """Build from a mapping shaped like a preset file."""
        return cls(config, registry=registry, presets=presets)

    def replace(self, **overrides: Any) -> "Pipeline":
        """A new pipeline with ``overrides`` applied (see :meth:`from_preset`)."""
        config = _apply_overrides(_copy_config(self._config), overrides, self._registry)
        return type(self)(config, registry=self._registry, presets=self._presets)

    def _build_stages(self) -> dict[str, Stage]:
        backend = self._config["pipeline"].get("backend", "auto")
        stages = {}
        for kind in KINDS:
            params = {k: v for k, v in self._config[kind].items() if k not in ("name", "backend")}
            stages[kind] = _stage_class(self._config, kind, self._registry, backend)(**params)
        return stages

    # ------------------------------------------------------------------ introspection
    @property
    def config(self) -> dict[str, Any]:
        """The configuration (a deep copy): sections per stage kind plus 'pipeline'."""
        return copy.deepcopy(self._config)

    @property
    def stages(self) -> dict[str, Stage]:
        """The validated stage instances, by kind."""
        return dict(self._stages)

    @property
    def registry(self):
        return self._registry

    def __repr__(self) -> str:
        parts = [f"{k}={self._config[k]['name']!r}" for k in KINDS]
        return f"Pipeline({', '.join(parts)}, normalized={self._settings['normalized']})"

    # ------------------------------------------------------------------ running
    def run(
        self,
        X: Any,
        y: Any = None,
        *,
        callback: Callable[[int, float, np.ndarray], Any] | None = None,
        callback_every: int = 0,
        loss_every: int | None = None,
        progress: Any = None,
        init_data: Any = None,
    ) -> Result:
        """Embed ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            With ``neighbors="precomputed"``: a square distance matrix, a
            :class:`~gidr.types.KNNGraph`, or an ``(indices, distances)`` tuple. An
            ``np.memmap``, ``h5py.Dataset`` or ``zarr.Array`` is read in row chunks
            (:mod:`gidr.outofcore`): loaded whole as float32 when the memory check allows it,
            or reduced by the chunked PCA of the ``pca`` switch without ever being loaded.
        y : array-like of shape (n_samples,) or (n_samples, n_targets), optional
            Targets for a supervised embedding (umap-learn's model): class labels, -1 for
            an unlabeled point (semi-supervised), with ``target_metric="categorical"``;
            ordered values, counts or strings with umap-learn's discrete metrics
            ``"ordinal"``, ``"count"``, ``"string"``; continuous values with a distance as
            ``target_metric``. ``target_weight`` balances y against the data
            (:mod:`gidr_reference.supervised`).
        callback : callable, optional
            ``callback(epoch, loss, Y)``; returning True stops the optimization.
        callback_every : int
            Call ``callback`` (and record the loss) every this many epochs.
        loss_every : int, optional
            Record the loss every this many epochs (default: ``callback_every``, or 50).
        progress : object with ``update(int)``, optional
            A tqdm-like progress bar advanced once per epoch.
        init_data : array-like of shape (n_samples, n_features), optional
            With precomputed neighbours (``X`` a graph or a distance matrix), the data matrix
            an init that reads data (``init="pca"``) uses; ignored when the init reads ``X``.
        """
        with interrupts_as_keyboard_interrupt():
            return self._run(X, y, callback, callback_every, loss_every, progress, init_data)

    def run_affinities(
        self,
        P: Any,
        *,
        callback: Callable[[int, float, np.ndarray], Any] | None = None,
        callback_every: int = 0,
        loss_every: int | None = None,
        progress: Any = None,
    ) -> Result:
        """Embed a given affinity matrix: the init and optimizer stages on ``P``.

        For a graph built outside the neighbours, similarity and symmetrize stages, such as
        two fits' fuzzy graphs combined (``umap1 + umap2``: :mod:`gidr_reference.composite`).
        ``Result.graph`` is None (there are no neighbours).

        Parameters
        ----------
        P : sparse matrix of shape (n_samples, n_samples)
            Symmetric, finite and non-negative, with no empty row; normalized here when the
            pipeline is.
        callback, callback_every, loss_every, progress
            As for :meth:`run`.
        """
        with interrupts_as_keyboard_interrupt():
            P = _check_affinity_matrix(P)
            n_samples = P.shape[0]
            for stage in self._stages.values():
                stage.check_n_samples(n_samples)
            if self._settings["densmap"]:
                raise GidrValueError(format_error(
                    "The 'densmap' switch used with Pipeline.run_affinities", "False", True,
                    "densMAP's density term needs the data's neighbour distances; run() the data."))
            if getattr(self._stages["init"], "needs_data", False):
                raise GidrValueError(format_error(
                    "The init stage used with Pipeline.run_affinities", "one that reads only P (e.g. 'spectral', "
                    "'random') or an array", self._stages["init"].name, "There is no data matrix to read."))
            ctx = self._context(n_samples)
            timings: dict[str, float] = {}
            peaks: dict[str, int | None] = {}
            clock = _StageClock(timings, peaks, n_samples)
            if ctx.normalized:
                P = (P / P.sum()).tocsr()
            affinities = Affinities(P, ctx.normalized)
            Y0 = self._stages["init"].compute(None, P, ctx)
            clock.done("init", self._stages["init"])
            Y, monitor = self._optimize_from(Y0, affinities, ctx, clock, callback, callback_every, loss_every,
                                             progress)
            config = self.config
            config["resolved"] = self._resolved(None, n_samples, None, monitor, ctx, peaks)
            return Result(embedding=Y, graph=None, affinities=affinities, timings=timings,
                          loss_history=list(monitor.history), config=config, stages=dict(self._stages))

    def _optimize_from(self, Y0, affinities: Affinities, ctx: Context, clock, callback, callback_every, loss_every,
                       progress, owns_P: bool = False) -> tuple[np.ndarray, Monitor]:
        """The optimizer's run from ``Y0``, timed, its output checked: ``(Y, monitor)``."""
        every = loss_every if loss_every is not None else (callback_every or 50)
        monitor = Monitor(every=every if callback is None else (callback_every or every),
                          callback=callback, progress=progress)
        Y = self._optimize(Y0, affinities, ctx, monitor, owns_P)
        clock.done("optimize", self._stages["optimizer"])
        _check_finite_output(Y)
        return Y, monitor

    def _resolved(self, neighbors, n_samples: int, n_neighbors, monitor: Monitor, ctx: Context, peaks) -> dict:
        """``config["resolved"]``: what the run used (``neighbors`` None for :meth:`run_affinities`)."""
        stages = self._stages if neighbors is None else {**self._stages, "neighbors": neighbors}
        resolved = {
            "backends": {k: s.backend for k, s in stages.items()},
            "a": ctx.a, "b": ctx.b, "seed": ctx.seed,
            "n_epochs": self._epochs(ctx),
            "n_neighbors": n_neighbors,
            "epochs_run": monitor.epochs_run,
            "early_stop": monitor.early_stop,
            "locality": "morton" if uses_renumbering(self._settings["locality"], n_samples) else "none",
            "peak_memory_bytes": peaks,
        }
        if neighbors is not None:
            resolved = {"neighbors": {"name": neighbors.name, "backend": neighbors.backend, **neighbors.values},
                        **resolved}
        return resolved

    def _run(self, X, y, callback, callback_every, loss_every, progress, init_data=None) -> Result:
        timings: dict[str, float] = {}
        data, n_samples, neighbors = self._check_input(X)
        targets = None if y is None else _check_targets(y, n_samples, self._settings["target_metric"])
        for stage in (neighbors, *self._stages.values()):
            stage.check_n_samples(n_samples)
        landmark_start = self._uses_landmarks(neighbors, n_samples)
        ctx = self._context(n_samples, landmark_start)
        stages = self._stages

        peaks: dict[str, int | None] = {}
        clock = _StageClock(timings, peaks, n_samples)
        n_neighbors = _clamped_n_neighbors(stages["similarity"], n_samples)
        check_memory(data, n_samples, n_neighbors, ctx.n_components,
                     copy_bytes_per_value=neighbors.copy_bytes_per_value, pca=self._settings["pca"])
        data, pca = self._read_rows(data, ctx, clock) if isinstance(data, RowSource) else (data, None)
        graph = neighbors.compute(data, n_neighbors, ctx)
        _check_graph_distances(graph, neighbors)
        clock.done("neighbors", neighbors)
        P_directed = stages["similarity"].compute(graph, ctx)
        clock.done("similarity", stages["similarity"])
        P = stages["symmetrize"].compute(P_directed, ctx)
        del P_directed  # not needed again: its 12 bytes per entry would stay alive to the end
        if targets is not None:
            P = self._supervised(P, targets, n_neighbors, ctx)
        if ctx.normalized:
            P = (P / P.sum()).tocsr()
        clock.done("symmetrize", stages["symmetrize"])
        target = self._density_target(P, graph, ctx) if self._settings["densmap"] else None
        affinities = Affinities(P, ctx.normalized, density=target)
        landmarks = None
        if landmark_start:
            Y0, landmarks = self._landmark_start(data, y, P, ctx)
            clock.done("init", f"{landmarks['n_landmarks']:,} landmarks")
        else:
            Y0 = stages["init"].compute(self._init_input(neighbors, data, init_data, n_samples, ctx), P, ctx)
            clock.done("init", stages["init"])
        Y, monitor = self._optimize_from(Y0, affinities, ctx, clock, callback, callback_every, loss_every, progress,
                                         owns_P=True)
        densities = self._densities(Y, P, graph, target, n_neighbors, ctx)
        if densities:
            clock.done("densities", "local radii")
        logger.info("gidr timings: %s", ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
        config = self.config
        config["neighbors"]["name"] = neighbors.name
        config["resolved"] = self._resolved(neighbors, n_samples, n_neighbors, monitor, ctx, peaks)
        if pca is not None:
            config["resolved"]["pca"] = pca
        if landmarks is not None:
            config["resolved"]["landmarks"] = landmarks
        return Result(embedding=Y, graph=graph, affinities=affinities, timings=timings,
                      loss_history=list(monitor.history), config=config, stages={**stages, "neighbors": neighbors},
                      densities=densities)

    def _uses_landmarks(self, neighbors: Stage, n_samples: int) -> bool:
        """Whether this run starts from a sample's embedding: ``landmarks`` set, below
        ``n_samples``, a data matrix to embed the sample from (not precomputed neighbours), and
        no start positions given (an init array)."""
        m = self._settings["landmarks"]
        return (m is not None and n_samples > m and _reads_data_matrix(neighbors)
                and self._stages["init"].name != "array")

    def _landmark_start(self, data: Any, y: Any, P: sp.csr_matrix, ctx: Context) -> tuple[np.ndarray, dict]:
        """The start layout of the ``landmarks`` switch: this pipeline's own run on a sample of
        the rows (drawn from ``ctx.rng("landmarks")``, sorted), the other points placed from it
        by :func:`gidr_reference.init.place_from_sample`, then rescaled: unnormalized, jittered
        and shrunk to ``max|Y| =`` :data:`LANDMARK_START_MAX`; normalized, to the init stage's
        ``"auto"`` scale (``std(Y[:, 0]) = 1e-4``); and its record."""
        from gidr_reference import init as init_math

        m = self._settings["landmarks"]
        rows = np.sort(ctx.rng("landmarks").choice(ctx.n_samples, m, replace=False))
        config = self.config
        config["pipeline"].update(landmarks=None, random_state=ctx.seed, densmap=False, output_dens=False, pca=None)
        sample = type(self)(config, registry=self._registry, presets=self._presets)
        logger.info("gidr init: embedding %s landmarks of %s points", f"{m:,}", f"{ctx.n_samples:,}")
        fit = sample.run(_take_rows(data, rows), None if y is None else np.asarray(y)[rows])
        Y, record = init_math.place_from_sample(P, rows, fit.embedding, ctx.rng("landmarks-unreached"))
        if ctx.normalized:
            Y = init_math.rescale(Y, "auto", True)
        else:
            Y = init_math.add_jitter(Y, ctx.rng("init"))
            Y *= LANDMARK_START_MAX / np.abs(Y).max()
        record = {"n_landmarks": m, "sample_seconds": sum(fit.timings.values()), "sample_timings": fit.timings,
                  "sample_epochs": fit.config["resolved"]["epochs_run"], **record}
        return Y, record

    def _density_target(self, P, graph: KNNGraph, ctx: Context):
        """densMAP's :class:`~gidr.types.DensityTarget` from the fit's P and kNN distances."""
        from gidr_reference import densmap

        s = self._settings
        return densmap.density_target(P, graph, self._epochs(ctx), dens_lambda=s["dens_lambda"],
                                      dens_frac=s["dens_frac"], dens_var_shift=s["dens_var_shift"])

    def _densities(self, Y, P, graph: KNNGraph, target, n_neighbors: int, ctx: Context) -> dict:
        """``Result.densities``: the data's log radii with ``densmap`` or ``output_dens``, and with
        ``output_dens`` the embedding's, from a fuzzy graph (similarity 'umap', fuzzy union) of
        each point's ``n_neighbors`` nearest neighbours in the embedding, as umap-learn computes them."""
        from gidr_reference import densmap

        if not (self._settings["densmap"] or self._settings["output_dens"]):
            return {}
        out = {"rad_orig": (target or self._density_target(P, graph, ctx)).rad_orig}
        if self._settings["output_dens"]:
            backend = self._config["pipeline"].get("backend", "auto")
            neighbors = self._registry.get("neighbors", "auto", backend).bind(self._registry, backend)()
            embedding_graph = neighbors.select(Y, len(Y), self._registry, backend).compute(Y, n_neighbors, ctx)
            similarity = self._registry.get("similarity", "umap", backend)(n_neighbors=n_neighbors)
            union = self._registry.get("symmetrize", "fuzzy_union", backend)()
            out["rad_emb"] = densmap.output_radii(Y, union.compute(similarity.compute(embedding_graph, ctx), ctx))
        return out

    def _init_input(self, neighbors: Stage, data: Any, init_data: Any, n_samples: int, ctx: Context) -> Any:
        """What the init stage reads: the neighbours stage's data, or else ``init_data`` (the
        data matrix given beside precomputed neighbours), checked."""
        X = neighbors.init_data(data, self._stages["init"], ctx)
        if X is not None or init_data is None or not getattr(self._stages["init"], "needs_data", False):
            return X
        X = check_array(init_data, name="init_data")
        if X.shape[0] != n_samples:
            raise GidrValueError(format_error(
                "The 'init_data' argument of Pipeline.run", f"an array with {n_samples} rows (one per point)",
                Described(f"an array of shape {X.shape}"), "Pass the data matrix whose neighbours X holds."))
        return X

    def _optimize(self, Y0: np.ndarray, affinities: Affinities, ctx: Context, monitor: Monitor,
                  owns_P: bool = False) -> np.ndarray:
        """The optimizer's run, on the points renumbered for locality where the ``locality``
        switch says so (:mod:`gidr.locality`): the embedding it returns, and each one a
        callback sees, is in the caller's order. ``owns_P``: P is this run's own (not a
        caller's, as in :meth:`run_affinities`), so that a large one is set aside while the
        optimizer runs on its renumbered copy (:func:`gidr.locality.set_aside`)."""
        stages = self._stages
        if not uses_renumbering(self._settings["locality"], ctx.n_samples):
            return stages["optimizer"].optimize(Y0, affinities, stages["loss"], stages["repulsion"], ctx, monitor)
        order = morton_order(Y0)
        inverse = inverse_permutation(order)
        renumbered = renumbered_affinities(affinities, order, inverse)
        callback = monitor.callback
        if callback is not None:
            monitor.callback = lambda epoch, loss, Y: callback(epoch, loss, np.asarray(Y)[inverse])
        aside = set_aside(affinities.P, renumbered.P, order, inverse) if owns_P else contextlib.nullcontext()
        try:
            with aside:
                Y = stages["optimizer"].optimize(np.ascontiguousarray(Y0[order]), renumbered, stages["loss"],
                                                 stages["repulsion"], ctx, monitor)
        finally:
            monitor.callback = callback
        return np.ascontiguousarray(np.asarray(Y)[inverse])

    def _supervised(self, P, targets: np.ndarray, n_neighbors: int, ctx: Context):
        """P combined with the targets' graph (see :mod:`gidr_reference.supervised`). A
        normalized pipeline keeps its P's shape: no local-connectivity reset, only the
        combination."""
        from gidr_reference import supervised

        s = self._settings
        reset = not ctx.normalized
        if s["target_metric"] == "categorical":
            return supervised.categorical_intersection(P, targets, s["target_weight"], reset=reset)
        if s["target_metric"] in DISCRETE_TARGET_METRICS:
            return supervised.discrete_intersection(P, targets, s["target_metric"], s["target_weight"], reset=reset)
        k = min(s["target_n_neighbors"] or n_neighbors, len(targets) - 1)
        metric = _TARGET_METRIC_ALIASES.get(s["target_metric"], s["target_metric"])
        backend = self._config["pipeline"].get("backend", "auto")
        neighbors = self._registry.get("neighbors", "auto", backend).bind(self._registry, backend)(metric=metric)
        graph = neighbors.compute(targets, k, ctx)
        counts_self = bool(self._stages["similarity"].values.get("self_in_target", False))  # as the data's graph
        similarity = self._registry.get("similarity", "umap", backend)(n_neighbors=k, self_in_target=counts_self)
        union = self._registry.get("symmetrize", "fuzzy_union", backend)()
        T = union.compute(similarity.compute(graph, ctx), ctx)
        return supervised.general_intersection(P, T, s["target_weight"], reset=reset)

    def _read_rows(self, source: RowSource, ctx: Context, clock: "_StageClock"):
        """``(data, pca)``: a row-chunked input as the neighbours stage reads it, the float32
        scores of the chunked PCA (``pca``, then the record of ``Result.config["resolved"]["pca"]``)
        or the whole input loaded as float32 (``pca`` None)."""
        k = self._settings["pca"]
        if k is None:
            data = load_float32(source)
            clock.done("load", f"float32 copy of {source.n_features} features")
            return data, None
        fitted = chunked_pca(source, k, ctx.rng("pca"))
        clock.done("pca", f"chunked PCA to {k} components")
        return fitted.scores, {
            "n_components": k, "explained_variance_ratio": float(fitted.explained_variance_ratio.sum()),
            "method": fitted.method, "seconds": clock.timings["pca"], "chunk_rows": fitted.chunk_rows,
            "mean": fitted.mean, "components": fitted.components}

    def _check_input(self, X: Any):
        """``(data, n_samples, neighbors)``: the checked input and the neighbors stage that reads
        it (``select``-ed, e.g. by ``"auto"``), by what the stage ``accepts``. An out-of-core
        input, and any input with ``pca``, is a :class:`~gidr.outofcore.RowSource` checked
        from its metadata only: the pipeline reads it after the memory check."""
        stage = self._stages["neighbors"]
        pca = self._settings["pca"]
        if not _reads_data_matrix(stage):
            if pca is not None:
                raise GidrValueError(format_error(
                    "The 'pca' parameter of the pipeline", f"None for {stage.describe()}", pca,
                    "Precomputed neighbours have no data matrix to reduce: pass pca=None."))
            data = precomputed_input(X)
            return data, data.n_samples if isinstance(data, KNNGraph) else data.shape[0], stage
        if is_dask_array(X) and pca is not None:
            raise GidrValueError(format_error(
                "The 'pca' parameter of the pipeline", "None for a Dask array", pca,
                "The Dask stages read it on the workers; reduce it there first (e.g. with "
                "dask_ml.decomposition.PCA), or pass X.compute() when it fits in memory."))
        if is_out_of_core(X) or pca is not None:
            source = row_source(X if is_out_of_core(X) else check_array(X, allow_sparse=True))
            if pca is not None and pca > min(source.shape):
                raise GidrValueError(format_error(
                    "The 'pca' parameter of the pipeline",
                    f"an int in [1, {min(source.shape)}] (min(n_samples, n_features) of X, shape {source.shape})",
                    pca, "Ask for fewer components, or pca=None for no reduction."))
            width = source.n_features if pca is None else pca
            return source, source.n_samples, self.neighbors_for(_dense_stand_in(source.n_samples, width))
        if is_dask_array(X):
            X = check_dask_array(X)
            neighbors = self.neighbors_for(X)
            if "distributed" not in neighbors.accepts:
                raise GidrValueError(format_error(
                    "The input X", f"an in-memory array for {neighbors.describe()} (backend '{neighbors.backend}')",
                    Described(f"a Dask array of shape {X.shape}"),
                    "Use neighbors='auto' (the default), 'dask-exact' or 'dask-nndescent', which read a Dask array "
                    "on its workers (pip install 'gidr[dask]'), or pass X.compute() when it fits in memory."))
            return X, X.shape[0], neighbors
        X = check_array(X, allow_sparse=True)
        neighbors = self.neighbors_for(X)
        if sp.issparse(X) and "sparse" not in neighbors.accepts:
            if X.shape[0] * X.shape[1] > MAX_DENSIFIED_CELLS:
                raise GidrValueError(format_error(
                    "The input X", f"a dense array, or a sparse matrix of at most {MAX_DENSIFIED_CELLS} cells for "
                    f"{neighbors.describe()}", Described(f"shape {X.shape}"),
                    "Use a neighbors stage that accepts sparse input: " + _sparse_stages(self._registry)))
            X = X.toarray()
            neighbors = self.neighbors_for(X)
        return X, X.shape[0], neighbors

    def neighbors_for(self, X: Any) -> Stage:
        """The neighbors stage that computes the graph of ``X`` (the configured one, or the one
        a selecting stage such as ``"auto"`` picks for this input)."""
        backend = self._config["neighbors"].get("backend", self._config["pipeline"].get("backend", "auto"))
        return self._stages["neighbors"].select(X, X.shape[0], self._registry, backend)

    def _context(self, n_samples: int, landmark_start: bool = False) -> Context:
        s = self._settings
        if s["a"] is not None or s["b"] is not None:
            fitted = fit_ab(s["min_dist"], s["spread"]) if s["scalars"] == "fit" else (1.0, 1.0)
            a = s["a"] if s["a"] is not None else fitted[0]
            b = s["b"] if s["b"] is not None else fitted[1]
        elif s["scalars"] == "fit":
            a, b = fit_ab(s["min_dist"], s["spread"])
        else:
            a, b = 1.0, 1.0
        return Context(n_samples=n_samples, n_components=s["n_components"], normalized=s["normalized"],
                       a=a, b=b, seed=resolve_seed(s["random_state"]),
                       n_epochs=(self.n_epochs_for(n_samples, landmark_start)
                                 if s["densmap"] or (landmark_start and s["landmark_epochs"] is not None)
                                 else s["n_epochs"]),
                       registry=self._registry)

    def _epochs(self, ctx: Context) -> int:
        """The epochs the optimizer runs under ``ctx``: its ``n_epochs``, which :meth:`_context`
        sets wherever it is not the optimizer's own default, else that default."""
        return ctx.n_epochs if ctx.n_epochs is not None else self.n_epochs_for(ctx.n_samples, False)

    def n_epochs_for(self, n_samples: int, landmark_start: bool | None = None) -> int:
        """The epochs a run on ``n_samples`` points takes: the ``n_epochs`` switch, else
        ``landmark_epochs`` after a landmark start, else the optimizer's default, plus
        :data:`DENSMAP_EXTRA_EPOCHS` with ``densmap`` (as umap-learn). ``landmark_start``
        None: whether a run on a data matrix of ``n_samples`` rows starts from landmarks."""
        if landmark_start is None:
            landmark_start = self._uses_landmarks(self._stages["neighbors"], n_samples)
        n_epochs = self._settings["n_epochs"]
        if n_epochs is not None:
            return int(n_epochs)
        extra = DENSMAP_EXTRA_EPOCHS if self._settings["densmap"] else 0
        if landmark_start and self._settings["landmark_epochs"] is not None:
            return int(self._settings["landmark_epochs"]) + extra
        return int(self._stages["optimizer"].default_n_epochs(n_samples)) + extra


class _StageClock:
    """Times the stages one after the other and logs one line per stage: its seconds and the
    process's peak resident memory so far (:func:`gidr.memory.peak_resident_bytes`)."""

    def __init__(self, timings: dict, peaks: dict, n_samples: int):
        self.timings, self.peaks, self.n_samples = timings, peaks, n_samples
        self.start = time.perf_counter()

    def done(self, kind: str, stage: Stage | str) -> None:
        """Record ``kind``'s seconds; ``stage`` is the stage or, for a step that is none, what it did."""
        now = time.perf_counter()
        self.timings[kind] = now - self.start
        self.start = now
        peak = self.peaks[kind] = peak_resident_bytes()
        memory = "" if peak is None else f", peak memory {peak / 2**30:.2f} GiB"
        what = stage if isinstance(stage, str) else stage.describe()
        logger.info("gidr %s (%s, %d points): %.2f s%s", kind, what, self.n_samples,
                    self.timings[kind], memory)


# ---------------------------------------------------------------------- config helpers
def _complete_config(config: Mapping[str, Any]) -> dict[str, Any]:
    config = _copy_config(dict(config))
    config.pop("description", None)
    config.setdefault("pipeline", {})
    for kind in KINDS:
        section = config.get(kind)
        if isinstance(section, str):
            section = {"name": section}
        if not isinstance(section, Mapping) or "name" not in section:
            raise GidrValueError(
                format_error(f"The '{kind}' section of the configuration", "a table with a 'name' key", section)
            )
        config[kind] = dict(section)
    unknown = sorted(set(config) - {"pipeline", *KINDS})
    if unknown:
        raise GidrValueError(format_error("A configuration section", "one of 'pipeline', " +
                                          ", ".join(repr(k) for k in KINDS), unknown[0]))
    return config


def _copy_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy that keeps a ``random_state`` Generator or RandomState by reference, so that
    each run draws its seed from the live generator (scikit-learn's convention: runs with one
    generator differ, and the same generator state reproduces them)."""
    state = config.get("pipeline", {}).get("random_state") if isinstance(config.get("pipeline"), Mapping) else None
    memo = {id(state): state} if isinstance(state, (np.random.Generator, np.random.RandomState)) else {}
    return copy.deepcopy(dict(config), memo)


def _validate_settings(pipeline: Mapping[str, Any]) -> dict[str, Any]:
    settings = {}
    extra = sorted(set(pipeline) - set(PIPELINE_PARAMS) - {"preset"})
    if extra:
        raise GidrValueError(format_error("A pipeline switch", "one of " + ", ".join(repr(k) for k in PIPELINE_PARAMS),
                                          extra[0]))
    for name, spec in PIPELINE_PARAMS.items():
        settings[name] = spec.validate(pipeline.get(name, spec.default), "the pipeline")
    if not isinstance(settings["random_state"], (np.random.Generator, np.random.RandomState)):
        resolve_seed(settings["random_state"])  # raises for a bad value
    if not isinstance(settings["backend"], str):
        raise GidrValueError(format_error("The 'backend' parameter of the pipeline", "a string", settings["backend"]))
    if settings["min_dist"] > settings["spread"]:
        raise GidrValueError(format_error("The 'min_dist' parameter of the pipeline",
                                          f"a float in [0, spread={settings['spread']}]", settings["min_dist"],
                                          "As in umap-learn, min_dist must not exceed spread."))
    return settings


def _apply_overrides(config: dict[str, Any], overrides: Mapping[str, Any], registry) -> dict[str, Any]:
    params = {}
    for key, value in overrides.items():
        if key in KINDS:
            _set_stage_name(config, key, value)
        elif key == "n_epochs" and value is None:
            continue  # the preset's number, else the optimizer's default
        elif key in PIPELINE_PARAMS:
            config["pipeline"][key] = value
        else:
            params[key] = value
    backend = config["pipeline"].get("backend", "auto")
    for key, value in params.items():
        kind, sep, param = key.replace("__", ".").partition(".")
        if sep:
            if kind not in KINDS:
                raise GidrValueError(format_error(f"The stage kind in override {key!r}",
                                                  "one of " + ", ".join(repr(k) for k in KINDS), kind))
            config[kind][param] = value
            continue
        targets = [k for k in KINDS if key in _stage_class(config, k, registry, backend).param_names()]
        if not targets:
            raise GidrValueError(format_error(f"The override {key!r}", _override_help(config, registry, backend), key))
        for kind in targets:
            config[kind][key] = value
    return config


def _set_stage_name(config: dict[str, Any], kind: str, value: Any) -> None:
    if kind == "init" and not isinstance(value, (str, Mapping)):
        config["init"] = {"name": "array", "array": value}
    elif isinstance(value, str):
        if value != config[kind]["name"]:
            config[kind] = {"name": value}
    elif isinstance(value, Mapping) and "name" in value:
        config[kind] = dict(value)
    else:
        raise GidrValueError(format_error(f"The '{kind}' override", "a stage name (str) or a table with 'name'",
                                          value))


def _stage_class(config, kind, registry, backend):
    """The class a configuration section selects, bound to ``registry`` (:meth:`Stage.bind`)."""
    section_backend = config[kind].get("backend", backend)
    return registry.get(kind, config[kind]["name"], section_backend).bind(registry, section_backend)


def _sparse_stages(registry) -> str:
    names = [name for name in registry.names("neighbors")
             if any("sparse" in registry.get("neighbors", name, b).accepts
                    for b in registry.backends("neighbors", name))]
    return ", ".join(f"neighbors={name!r}" for name in names) or "(none is installed)"


def _override_help(config, registry, backend) -> str:
    names = set(KINDS) | set(PIPELINE_PARAMS)
    for kind in KINDS:
        names |= set(_stage_class(config, kind, registry, backend).param_names())
    return "a stage kind, a pipeline switch or a parameter of the chosen stages: " + ", ".join(sorted(names))


@contextlib.contextmanager
def interrupts_as_keyboard_interrupt():
    """Re-raise a KeyboardInterrupt that a signal handler raised inside a numba kernel: numba
    surfaces it as ``SystemError(... returned a result with an exception set)`` with the
    interrupt as its cause (or as the cause of a chain of such SystemErrors)."""
    try:
        yield
    except SystemError as exc:
        cause, seen = exc, 0
        while isinstance(cause, SystemError) and seen < 100:  # numba may nest several
            cause, seen = cause.__cause__ or cause.__context__, seen + 1
        if isinstance(cause, KeyboardInterrupt):
            raise cause from None
        raise


def _dense_stand_in(n_samples: int, n_features: int) -> np.ndarray:
    """A read-only float32 array of the given shape that holds no memory (zero strides): what a
    selecting neighbours stage (``"auto"``) sees of data that is read after the memory check."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype=np.float32), shape=(n_samples, n_features),
                                           strides=(0, 0), writeable=False)


def _clamped_n_neighbors(similarity: Stage, n_samples: int) -> int:
    k = int(similarity.n_neighbors_required(n_samples))
    if k > n_samples - 1:
        warnings.warn(f"{similarity.describe()} asks for {k} neighbours but there are only {n_samples} "
                      f"samples; using {n_samples - 1}.", UserWarning, stacklevel=3)
        k = n_samples - 1
    return max(k, 1)


def _reads_data_matrix(neighbors: Stage) -> bool:
    """Whether ``neighbors`` reads a data matrix (not only precomputed distances or a graph)."""
    return not ("precomputed" in neighbors.accepts and "dense" not in neighbors.accepts)


def _take_rows(data: Any, rows: np.ndarray) -> Any:
    """``data[rows]`` in memory (a Dask array's rows computed)."""
    taken = data[rows]
    return np.asarray(taken.compute()) if is_dask_array(taken) else taken


def precomputed_input(X):
    """The input of a precomputed neighbours stage (``metric="precomputed"``, or
    ``neighbors="precomputed"``): a square distance matrix, a sparse one holding each
    point's nearest neighbours (``kneighbors_graph(mode="distance")``, as scikit-learn reads
    it), or a kNN graph given as a :class:`~gidr.types.KNNGraph` or an ``(indices, distances)``
    pair."""
    if isinstance(X, KNNGraph):
        return X
    if isinstance(X, tuple) and len(X) == 2:
        return KNNGraph(np.asarray(X[0]), np.asarray(X[1], dtype=np.float64))
    if sp.issparse(X):
        _check_square(X.shape)
        return _sparse_neighbors(check_array(X, name="X (precomputed distances)", allow_sparse=True))
    D = check_array(X, name="X (precomputed distances)")
    _check_square(D.shape)
    return D


def _check_square(shape) -> None:
    if shape[0] != shape[1]:
        raise GidrValueError(format_error("The precomputed distance matrix X", "a square distance matrix",
                                          Described(f"shape {shape}"),
                                          "With metric='precomputed', pass an (n, n) distance matrix or an "
                                          "(indices, distances) kNN pair."))


def _sparse_neighbors(D) -> KNNGraph:
    """Each row's stored entries (its neighbours, the diagonal left out) as a kNN graph sorted
    by (distance, index), as wide as the row with the fewest."""
    coo = D.tocoo()
    off_diagonal = coo.row != coo.col  # a stored zero off the diagonal is a duplicate point: kept
    D = sp.csr_matrix((coo.data[off_diagonal], (coo.row[off_diagonal], coo.col[off_diagonal])), shape=coo.shape)
    counts = np.diff(D.indptr)
    if D.nnz and D.data.min() < 0:
        raise GidrValueError(format_error("The precomputed distance matrix X",
                                          "a matrix of positive or zero distances",
                                          Described(f"{int((D.data < 0).sum())} negative value(s)")))
    width = int(counts.min()) if len(counts) else 0
    if width < 1:
        raise GidrValueError(format_error(
            "The sparse precomputed distance matrix X", "at least one stored neighbour per row",
            Described(f"a row with none (row {int(np.argmin(counts))})"),
            "Build it with sklearn.neighbors.kneighbors_graph(X, n_neighbors=k, mode='distance')."))
    indices = np.empty((D.shape[0], width), dtype=np.int64)
    distances = np.empty((D.shape[0], width))
    for i in range(D.shape[0]):
        cols, vals = D.indices[D.indptr[i]:D.indptr[i + 1]], D.data[D.indptr[i]:D.indptr[i + 1]]
        order = np.lexsort((cols, vals))[:width]
        indices[i], distances[i] = cols[order], vals[order]
    return KNNGraph(indices, distances)


def _check_targets(y: Any, n_samples: int, target_metric: str) -> np.ndarray:
    """``y`` checked against ``n_samples``: int codes (-1 unknown) for categorical targets, a
    1-D float64 or str array for a discrete metric (:func:`_check_discrete_targets`), a finite
    float64 (n_samples, n_targets) array for continuous ones."""
    values = np.asarray(y)
    if values.ndim == 0 or len(values) != n_samples:
        got = "a scalar" if values.ndim == 0 else f"length {len(values)}"
        raise GidrValueError(format_error(
            "The targets y", f"one value per sample ({n_samples}, the length of X)", Described(got),
            "Pass y with one entry per row of X, or no y for an unsupervised embedding."))
    if target_metric == "categorical":
        return _label_codes(values)
    if target_metric in DISCRETE_TARGET_METRICS:
        return _check_discrete_targets(values, target_metric)
    if values.dtype.kind not in "iufb":
        raise GidrValueError(format_error(f"The targets y for target_metric={target_metric!r}", "numbers",
                                          Described(f"dtype {values.dtype}"),
                                          "Use target_metric='categorical' for class labels."))
    values = np.asarray(values, dtype=np.float64).reshape(n_samples, -1)
    if not np.all(np.isfinite(values)):
        raise GidrValueError(format_error("The targets y", "finite values", Described("NaN or infinite values"),
                                          "Remove or impute them first."))
    return values


def _label_codes(values: np.ndarray) -> np.ndarray:
    """Categorical labels (numbers, -1 unknown, or strings) as int codes in [0, n_classes), -1 unknown."""
    if values.ndim != 1:
        raise GidrValueError(format_error("The targets y for target_metric='categorical'", "a 1-D array of labels",
                                          Described(f"shape {values.shape}"),
                                          "Pass one label per sample, or a distance as target_metric."))
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise GidrValueError(format_error("The labels y", "finite labels (-1 for unknown)",
                                          Described("NaN or infinite values"), "Mark unlabeled points with -1."))
    unknown = (values == -1) if values.dtype.kind in "iuf" else np.zeros(len(values), dtype=bool)
    codes = np.full(len(values), -1, dtype=np.int64)
    if (~unknown).any():
        codes[~unknown] = np.unique(values[~unknown], return_inverse=True)[1].ravel()
    return codes


def _check_discrete_targets(values: np.ndarray, target_metric: str) -> np.ndarray:
    """Targets for ``"ordinal"``, ``"count"`` or ``"string"``: one per sample, strings (as str)
    for "string", finite numbers (as float64) for the others, non-negative whole numbers for
    "count", and for these two at least two distinct values (their distance divides by the range)."""
    what = f"The targets y for target_metric={target_metric!r}"
    if values.ndim != 1:
        raise GidrValueError(format_error(what, "a 1-D array (one value per sample)",
                                          Described(f"shape {values.shape}"),
                                          "Pass one value per sample; several targets per sample need a distance "
                                          "such as target_metric='l1'."))
    if target_metric == "string":
        if values.dtype.kind in "UST" or (values.dtype.kind == "O" and all(isinstance(v, str) for v in values)):
            return values.astype(str) if values.dtype.kind in "US" else np.array(values.tolist(), dtype=str)
        raise GidrValueError(format_error(what, "strings", Described(f"dtype {values.dtype}"),
                                          "Convert the labels with y.astype(str), or use target_metric='categorical' "
                                          "(class labels) or 'ordinal' (ordered numbers)."))
    if values.dtype.kind not in "iufb":
        raise GidrValueError(format_error(what, "numbers", Described(f"dtype {values.dtype}"),
                                          "Map ordered categories to their ranks first (e.g. low/mid/high to 0/1/2), "
                                          "or use target_metric='string' or 'categorical' for names."))
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise GidrValueError(format_error(what, "finite values", Described("NaN or infinite values"),
                                          "Remove or impute them first."))
    if target_metric == "count" and (values.min() < 0 or not np.all(values == np.round(values))):
        bad = values[(values < 0) | (values != np.round(values))]
        raise GidrValueError(format_error(what, "non-negative whole numbers (counts)",
                                          Described(f"{bad.size} value(s) that are not (the first: {float(bad[0])!r})"),
                                          "Pass counts 0, 1, 2, ...; for continuous values use a distance such as "
                                          "target_metric='l1'."))
    if values.min() == values.max():
        raise GidrValueError(format_error(what, "at least two distinct values (the distance is scaled by their range)",
                                          Described(f"the same value, {float(values[0])!r}, for every sample"),
                                          "Pass no y for an unsupervised embedding."))
    return values


def _check_affinity_matrix(P: Any) -> sp.csr_matrix:
    """``P`` for :meth:`Pipeline.run_affinities` as float64 CSR with sorted indices, checked."""
    what = "The 'P' argument of Pipeline.run_affinities"
    if not sp.issparse(P) or P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise GidrValueError(format_error(what, "a square scipy sparse matrix",
                                          Described(f"{type(P).__name__} of shape {getattr(P, 'shape', None)}"),
                                          "Pass the symmetric affinity graph, e.g. an estimator's graph_."))
    P = sp.csr_matrix(P, dtype=np.float64, copy=True)
    P.sum_duplicates()
    P.setdiag(0.0)  # a point's affinity to itself moves nothing
    P.eliminate_zeros()
    P.sort_indices()
    if P.shape[0] < 2 or not np.all(np.isfinite(P.data)) or (P.data < 0).any():
        raise GidrValueError(format_error(what, "finite non-negative weights on at least 2 points",
                                          Described(f"{P.shape[0]} points, weights in "
                                                    f"[{P.data.min() if P.nnz else 0}, "
                                                    f"{P.data.max() if P.nnz else 0}]"),
                                          "Drop the non-finite or negative entries."))
    if abs(P - P.T).max() > 1e-12 * max(float(abs(P).max()), 1.0):
        raise GidrValueError(format_error(what, "a symmetric matrix", Described("an asymmetric one"),
                                          "Symmetrize it first, e.g. with the fuzzy union P + P.T - P.multiply(P.T)."))
    empty = np.flatnonzero(np.diff(P.indptr) == 0)
    if empty.size:
        raise GidrValueError(format_error(what, "a row with an edge for every point",
                                          Described(f"{empty.size} empty rows (the first: {empty[0]})"),
                                          "A point without edges has no place in the embedding; remove it."))
    return P


def _check_graph_distances(graph: KNNGraph, neighbors) -> None:
    """A neighbours stage must return finite, non-negative distances (a metric function may not)."""
    distances = np.asarray(graph.distances)
    bad = ~np.isfinite(distances) | (distances < 0)
    if not bad.any():
        return
    i, c = (int(v) for v in np.argwhere(bad)[0])
    metric = neighbors.values.get("metric")
    what = "the metric given" if callable(metric) else f"{neighbors.describe()}"
    raise GidrValueError(
        f"All distances should be finite and non-negative, but {what} returned {distances[i, c]!r} between points "
        f"{i} and {int(graph.indices[i, c])} ({int(bad.sum())} such neighbour distance(s)). Fix the metric so that "
        "it returns a distance: d(x, y) >= 0, finite.")


def _check_finite_output(Y: np.ndarray) -> None:
    if not np.all(np.isfinite(Y)):
        raise FloatingPointError(
            "The optimizer produced non-finite coordinates; this is a bug in gidr, please report it "
            "with the data shape and the pipeline configuration."
        )
