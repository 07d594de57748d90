"""The small problems the checks run on, and what a check is."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import scipy.sparse as sp

from gidr.stages import Stage
from gidr.stages.similarity import directed_matrix
from gidr.types import Context, KNNGraph
from gidr.validation import GidrValueError


#: Points in the problems the checks build.
N_SAMPLES = 40
#: Kernels (a, b) the loss checks run with: t-SNE's and UMAP's fitted (min_dist 0.1).
KERNELS = ((1.0, 1.0), (1.577, 0.895))
_K = 6  # neighbours in the graphs the checks build


@dataclass(frozen=True)
class _Env:
    """What a check may need besides the class: the registry (companion stages, kernels)
    and parameters for classes that cannot run on their defaults."""

    registry: Any
    params: Mapping[type, Mapping[str, Any]]

    def build(self, cls: type[Stage], **extra: Any) -> Stage:
        """An instance as a pipeline on :attr:`registry` builds it (``cls.bind``)."""
        return cls.bind(self.registry, cls.backend)(**{**self.params.get(cls, {}), **extra})

    def ctx(self, **switches: Any) -> Context:
        """A Context whose kernels come from :attr:`registry`."""
        return Context(registry=self.registry, **switches)

    def companion(self, kind: str, name: str, backend: str) -> Stage:
        """The registry's ``kind`` ``name`` in ``backend`` (falling back as ``Registry.get`` does;
        ``"auto"`` for a backend the registry does not know)."""
        known = backend in self.registry.backends()
        return self.registry.get(kind, name, backend if known else "auto")()


@dataclass(frozen=True)
class _Check:
    name: str
    run: Callable[[type[Stage], _Env], None]
    #: ``why_not(cls, env)``: None when the check applies, else the reason it does not.
    why_not: Callable[[type[Stage], _Env], str | None] = lambda cls, env: None


def _env(registry=None, params=None) -> _Env:
    if registry is None:
        from gidr.plugins import get_registry

        registry = get_registry()
    return _Env(registry, dict(params or {}))


# ============================================================================ problems
def pipeline_settings(**switches: Any) -> dict[str, Any]:
    """The pipeline's validated switches (their defaults, updated with ``switches``), as
    :meth:`gidr.stages.Stage.check_settings` and ``Optimizer.check_compatible`` receive them."""
    from gidr.pipeline import PIPELINE_PARAMS

    settings = {name: param.default for name, param in PIPELINE_PARAMS.items()}
    settings.update(switches)
    return settings


def _dataset(n: int = N_SAMPLES, n_features: int = 5, seed: int = 0, separation: float = 2.5) -> np.ndarray:
    """Three Gaussian blobs (overlapping at the default ``separation``: the kNN graph is
    connected); row 1 duplicates row 0 (a neighbour at distance 0 that is not the point itself)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)) + separation * np.eye(3, n_features)[np.arange(n) % 3]
    X[1] = X[0]
    return X


def _exact_neighbors(queries: np.ndarray, X: np.ndarray, k: int, metric: str, exclude_self: bool):
    from scipy.spatial.distance import cdist

    D = cdist(queries, X, metric=metric)
    if exclude_self:
        np.fill_diagonal(D, np.inf)
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(D, order, axis=1)


def _graph(X: np.ndarray, k: int = _K) -> KNNGraph:
    indices, distances = _exact_neighbors(X, X, k, "euclidean", exclude_self=True)
    return KNNGraph(indices.astype(np.int64), distances)


def _fuzzy_affinities(X: np.ndarray, normalized: bool, k: int = _K) -> sp.csr_matrix:
    """A symmetric P with zero diagonal from the exact kNN graph of ``X`` (weights exp(-d / mean d))."""
    graph = _graph(X, k)
    weights = np.exp(-graph.distances / graph.distances.mean(axis=1, keepdims=True))
    P = directed_matrix(graph.indices, weights)
    P = (P + P.T - P.multiply(P.T)).tocsr()
    P.eliminate_zeros()
    P.sort_indices()
    return (P / P.sum()).tocsr() if normalized else P


def random_affinities(n: int, normalized: bool, seed: int = 0, density: float = 0.2) -> sp.csr_matrix:
    """A random symmetric P with zero diagonal (summing to one when ``normalized``)."""
    rng = np.random.default_rng(seed)
    A = sp.random(n, n, density=density, random_state=rng, format="csr")
    P = (A + A.T).tocsr()
    P.setdiag(0)
    P.eliminate_zeros()
    P.data = np.minimum(P.data, 1.0)
    return (P / P.sum()).tocsr() if normalized else P


def _assert_sorted_csr(P, owner: str) -> None:
    assert sp.issparse(P) and P.format == "csr", f"{owner}: must return a CSR matrix, got {type(P).__name__}"
    for i in range(P.shape[0]):
        row = P.indices[P.indptr[i]:P.indptr[i + 1]]
        assert np.all(np.diff(row) > 0), f"{owner}: row {i} has unsorted or duplicate column indices"
    assert np.all(P.data != 0), f"{owner}: stores explicit zeros"
    assert np.all(np.isfinite(P.data)) and np.all(P.data > 0), f"{owner}: values must be finite and positive"

def _rejects(stage, settings) -> bool:
    try:
        stage.check_settings(settings)
    except GidrValueError:
        return True
    return False


def _skip(reason: str) -> None:
    import pytest

    pytest.skip(reason)
