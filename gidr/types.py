"""Small dataclasses that pass between stages.

Stages exchange plain arrays and these containers only: no stage holds a reference to
another stage, so each one can be tested, replaced or distributed on its own.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import scipy.sparse as sp

_progress_logger = logging.getLogger("gidr")

__all__ = ["Context", "KNNGraph", "Affinities", "PairTotals", "RepulsionSums", "Monitor", "Result", "NewEdges",
           "DescentState", "DensityTarget"]


@dataclass(frozen=True)
class Context:
    """Pipeline-level switches, seen by every stage.

    Attributes
    ----------
    n_samples : int
    n_components : int
        Dimension of the embedding.
    normalized : bool
        Whether P and Q are normalized to sum to one (t-SNE) or not (UMAP).
    a, b : float
        Low-dimensional kernel ``w = 1 / (1 + a * D**b)`` with ``D = ||y_i - y_j||**2``.
    seed : int
        Resolved random seed; stages derive independent streams with :meth:`rng`.
    n_epochs : int or None
        Number of optimizer epochs; ``None`` lets the optimizer choose its default.
    """

    n_samples: int
    n_components: int = 2
    normalized: bool = False
    a: float = 1.0
    b: float = 1.0
    seed: int = 0
    n_epochs: int | None = None
    #: The stage registry whose kernels the stages use (None: the process-wide one).
    registry: Any = field(default=None, compare=False, repr=False)

    def kernels(self, stage, backend: str):
        """``backend``'s kernels for ``stage`` (the ``gidr_register_kernels`` hook), or None."""
        registry = self.registry
        if registry is None:
            from gidr.plugins import get_registry

            registry = get_registry()
        return registry.kernels.get(stage, backend, self)

    def rng(self, stream: str) -> np.random.Generator:
        """An independent generator for one named purpose (same seed → same draws)."""
        key = [ord(c) for c in stream]
        return np.random.default_rng(np.random.SeedSequence([self.seed, *key]))


@dataclass(frozen=True)
class KNNGraph:
    """k nearest neighbours of every point, self excluded, sorted by distance.

    Attributes
    ----------
    indices : ndarray of shape (n_samples, k), int64
    distances : ndarray of shape (n_samples, k), float64
        True (not squared) distances under the neighbors stage's metric.
    """

    indices: np.ndarray
    distances: np.ndarray

    @property
    def n_samples(self) -> int:
        return self.indices.shape[0]

    @property
    def n_neighbors(self) -> int:
        return self.indices.shape[1]


@dataclass(frozen=True)
class NewEdges:
    """The edges of new points to the training points, for ``transform``.

    Attributes
    ----------
    indices : ndarray of shape (n_new, k), int64
        Training neighbours of each new point.
    weights : ndarray of shape (n_new, k), float64
        Their weights p_{j|new} (from the fitted similarity stage, scaled like a row of P).
    keys : ndarray of shape (n_new,), uint64
        One key per new point for its random draws, derived from the point's own data,
        so that its result does not depend on which other points come with it.
    """

    indices: np.ndarray
    weights: np.ndarray
    keys: np.ndarray

    def __len__(self) -> int:
        return self.indices.shape[0]


@dataclass(frozen=True)
class Affinities:
    """Symmetric high-dimensional similarities P.

    Attributes
    ----------
    P : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        Symmetric, zero diagonal, sorted indices. Sums to one when ``normalized``.
    normalized : bool
    density : DensityTarget or None
        densMAP's density term (pipeline switch ``densmap``), which an optimizer that
        supports it (:meth:`gidr.stages.Optimizer.check_density`) adds to the loss's forces.
    """

    P: sp.csr_matrix
    normalized: bool
    density: "DensityTarget | None" = None

    @property
    def p_mean(self) -> float:
        """Mean of the stored (known) values of P: the stand-in for unknown p_ik (paper §4).
        The one home of this formula."""
        return mean_of_stored(self.P.data)

    @property
    def n_samples(self) -> int:
        return self.P.shape[0]

    @property
    def n_edges(self) -> np.ndarray:
        """Stored entries of each row of P, shape (n_samples,)."""
        return np.diff(self.P.indptr)

    def totals(self, sum_w: float, sum_w2: float, sum_pw: float) -> "PairTotals":
        """:class:`PairTotals` from the sums an estimator or a kernel computed, with this P's
        ``p_mean``: the one constructor every optimizer uses."""
        return PairTotals(sum_w=float(sum_w), sum_w2=float(sum_w2), p_mean=self.p_mean, sum_pw=float(sum_pw))


@dataclass(frozen=True)
class DensityTarget:
    """densMAP's density term: what the data says about each point's local radius, and the
    term's settings (:mod:`gidr_reference.densmap` has the formulas).

    Attributes
    ----------
    entries : ndarray of shape (P.nnz,), bool
        The stored entries of P that the term uses (CSR order).
    rad_orig : ndarray of shape (n_samples,)
        Log radius of each point in the data space (umap-learn's ``rad_orig``); NaN for a
        point without entries.
    standardized : ndarray of shape (n_samples,)
        ``rad_orig`` standardized over the active points (0 elsewhere): densMAP's R.
    active : ndarray of shape (n_samples,), bool
        Points with at least one entry: the correlation is taken over them.
    weight : float
        Sum of P over the term's entries (umap-learn's ``mu_tot``).
    dens_lambda, dens_frac, dens_var_shift : float
        The weight of the term, the share of the epochs (the last ones) it is active in,
        and the shift added to the variance of the embedding radii.

    A field over P's entries or over the points must also be renumbered by
    :func:`gidr.locality.renumbered_affinities`, which the pipeline applies before the optimizer.
    """

    entries: np.ndarray
    rad_orig: np.ndarray
    standardized: np.ndarray
    active: np.ndarray
    weight: float
    dens_lambda: float
    dens_frac: float
    dens_var_shift: float

    def active_at(self, epoch: int, n_epochs: int) -> bool:
        """Whether the term acts in ``epoch`` (0-based): ``dens_lambda > 0`` and
        ``(epoch + 1) / n_epochs > 1 - dens_frac`` (umap-learn's rule: the last ``dens_frac``
        of the epochs)."""
        return self.dens_lambda > 0 and (epoch + 1) / n_epochs > 1.0 - self.dens_frac

    def force_weight(self, symmetric_attraction: bool) -> float:
        """``W``: :attr:`weight`, halved when the optimizer's attraction is asymmetric (each
        stored entry then pulls one end only: the forces of half the cross-entropy)."""
        return self.weight if symmetric_attraction else 0.5 * self.weight


def mean_of_stored(values: np.ndarray) -> float:
    """Mean of the stored values of P (0.0 when there are none)."""
    return float(np.mean(values)) if np.size(values) else 0.0


@dataclass(frozen=True)
class PairTotals:
    """Global sums that losses need to weight their repulsion channels.

    Attributes
    ----------
    sum_w : float
        ``Z = sum_{k != l} w_kl`` over ordered pairs (exact or estimated).
    sum_w2 : float
        ``sum_{k != l} w_kl**2`` over ordered pairs (exact or estimated).
    p_mean : float
        Mean of the known values of P.
    sum_pw : float
        ``sum_{(k, l) in P} p_kl * w_kl`` over the stored edges of P.
    """

    sum_w: float
    sum_w2: float
    p_mean: float
    sum_pw: float = 0.0


@dataclass(frozen=True)
class RepulsionSums:
    """What a repulsion estimator returns.

    Attributes
    ----------
    channels : ndarray of shape (n_channels, n_samples, n_components)
        ``channels[c, i] ≈ sum_{k != i} phi_c(D_ik) (y_i - y_k)`` for the loss's
        repulsion channels ``phi_c``.
    sum_w, sum_w2 : float
        Estimates of ``sum_{k != l} w_kl`` and ``sum_{k != l} w_kl**2``.
    """

    channels: np.ndarray
    sum_w: float
    sum_w2: float


@dataclass(frozen=True)
class DescentState:
    """Where a gradient-amplification run (the ``tsne`` optimizer) stopped, to continue it.

    Attributes
    ----------
    update : ndarray of shape (n_samples, n_components)
        The last step (the momentum term's memory).
    gains : ndarray of shape (n_samples, n_components)
        The per-coordinate gains.
    epoch : int
        Epochs run so far: the next epoch's number (the schedule and any per-epoch random
        draws continue from it).
    """

    update: np.ndarray
    gains: np.ndarray
    epoch: int = 0

    @classmethod
    def start(cls, shape: tuple) -> "DescentState":
        """The state before the first epoch: ``update = 0``, ``gains = 1``, epoch 0."""
        return cls(update=np.zeros(shape), gains=np.ones(shape), epoch=0)


@dataclass
class Monitor:
    """Loss history, callbacks and progress, shared by every optimizer.

    The optimizer calls :meth:`due` each epoch and, when due, :meth:`report` with the
    current loss; ``report`` returns True when a callback asks to stop.
    """

    every: int = 0
    callback: Callable[[int, float, np.ndarray], Any] | None = None
    progress: Any = None
    history: list = field(default_factory=list)

    epochs_run: int = 0
    #: The stopping rules' record (:attr:`gidr_reference.optimizers.EarlyStop.record`), left by
    #: an optimizer that has them; None otherwise.
    early_stop: dict | None = None
    #: When the monitor was made (the optimizer's start): the epoch progress lines'
    #: elapsed time (:class:`gidr.progress.EpochProgress`) counts from it.
    started: float = field(default_factory=time.perf_counter)
    _lines: Any = field(default=None, repr=False, compare=False)

    def due(self, epoch: int, n_epochs: int) -> bool:
        self.epochs_run = epoch + 1
        if self.progress is not None:
            self.progress.update(1)
        if _progress_logger.isEnabledFor(logging.INFO):
            if self._lines is None or self._lines.total != n_epochs:
                from gidr.progress import EpochProgress

                self._lines = EpochProgress(n_epochs, start=self.started)
            self._lines.epoch_done(epoch)
        if self.every <= 0:
            return False
        return (epoch + 1) % self.every == 0 or epoch + 1 == n_epochs

    def report(self, epoch: int, loss: float, Y: np.ndarray) -> bool:
        self.history.append((epoch + 1, float(loss)))
        if self.callback is not None:
            return bool(self.callback(epoch + 1, float(loss), Y))
        return False


@dataclass(frozen=True)
class Result:
    """The outcome of :meth:`gidr.Pipeline.run`.

    ``np.asarray(result)`` is the embedding.

    Attributes
    ----------
    embedding : ndarray of shape (n_samples, n_components)
    graph : KNNGraph or None
        The neighbours; None from :meth:`gidr.Pipeline.run_affinities` (a given P).
    affinities : Affinities
    timings : dict of str to float
        Seconds spent in each stage.
    loss_history : list of (int, float)
        ``(epoch, loss)`` pairs recorded by the optimizer.
    config : dict
        The resolved configuration: stage names, backends, parameters and switches.
    stages : dict
        The stage instances that ran, by kind (``neighbors`` as resolved from ``"auto"``).
    densities : dict of str to ndarray of shape (n_samples,)
        Local log radii: ``"rad_orig"`` (data space) with ``densmap`` or ``output_dens``,
        ``"rad_emb"`` (embedding) with ``output_dens``, as umap-learn's ``rad_orig_`` and
        ``rad_emb_``; empty otherwise.
    """

    embedding: np.ndarray
    graph: KNNGraph | None
    affinities: Affinities
    timings: Mapping[str, float]
    loss_history: list
    config: Mapping[str, Any]
    #: The stage instances that ran, by kind (``neighbors`` as resolved from ``"auto"``).
    stages: Mapping[str, Any] = field(default_factory=dict)
    densities: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __array__(self, dtype=None, copy=None):
        if dtype is None:
            return self.embedding
        return self.embedding.astype(dtype)

    def __len__(self) -> int:
        return len(self.embedding)

    @property
    def shape(self) -> tuple:
        return self.embedding.shape
