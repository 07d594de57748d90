"""``neighbors="auto"``: a neighbors stage that picks another by input kind and size (for a
Dask array, the distributed stages of ``gidr_dask``).

It is a stage like any other (registered by the core, backend ``"reference"``): its
parameters are the union of its candidates' parameters, each passed only to the candidate
that declares it, and :meth:`AutoNeighbors.select` returns the candidate that computes the
graph, which the pipeline records in ``Result.config`` and ``Result.stages``. A plugin that
registers a candidate name (``exact``, ``nndescent``, ``pynndescent``) at a higher priority
is the one that is picked.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from gidr.stages.neighbors import MAX_DENSIFIED_CELLS, Neighbors, input_kind
from gidr.validation import GidrValueError, Param, format_error

__all__ = ["AutoNeighbors", "AUTO_EXACT_MAX_SAMPLES"]

logger = logging.getLogger("gidr")

#: Up to this many samples, exact neighbours come first (they cost less than building a forest).
AUTO_EXACT_MAX_SAMPLES = 4096


class AutoNeighbors(Neighbors):
    """Exact neighbours up to :data:`AUTO_EXACT_MAX_SAMPLES` points; above, our cached NN-descent
    where it supports the metric, else pynndescent, else exact. A candidate is skipped when it is
    not installed, does not accept the input kind (``accepts``), or refuses the parameters. A
    sparse input small enough to densify (:data:`~gidr.stages.neighbors.MAX_DENSIFIED_CELLS`)
    counts as dense, so that it gets the graph its dense twin gets."""

    name = "auto"
    backend = "reference"
    priority = 0
    #: Candidates in order of preference for small and for large inputs.
    SMALL = ("exact", "nndescent", "pynndescent")
    LARGE = ("nndescent", "pynndescent", "exact")
    #: The same for a Dask array (the ``gidr_dask`` backend's stages, read on the workers).
    DISTRIBUTED_SMALL = ("dask-exact", "dask-nndescent")
    DISTRIBUTED_LARGE = ("dask-nndescent", "dask-exact")
    accepts = frozenset({"dense", "sparse", "distributed"})
    _registry: Any = None
    _backend: str = "auto"

    @classmethod
    def bind(cls, registry, backend: str) -> type["AutoNeighbors"]:
        """This stage with the parameters of the candidates ``registry`` has for ``backend``."""
        return _bound(cls, registry, backend)

    def compute(self, X, n_neighbors: int, ctx):
        from gidr.plugins import get_registry

        registry = self._registry if self._registry is not None else get_registry()
        stage = self.select(X, X.shape[0], registry, self._backend)
        if input_kind(X) == "sparse" and "sparse" not in stage.accepts:
            X = X.toarray()  # small enough: select counted it as dense
        return stage.compute(X, n_neighbors, ctx)

    def select(self, X: Any, n_samples: int, registry, backend: str) -> Neighbors:
        kind = input_kind(X)
        if kind == "sparse" and X.shape[0] * X.shape[1] <= MAX_DENSIFIED_CELLS:
            kind = "dense"  # the pipeline densifies it for a stage that reads dense data only
        refusals = []
        parameter_errors: list[GidrValueError] = []
        small = n_samples <= AUTO_EXACT_MAX_SAMPLES
        if kind == "distributed":
            candidates = self.DISTRIBUTED_SMALL if small else self.DISTRIBUTED_LARGE
        else:
            candidates = self.SMALL if small else self.LARGE
        for name in candidates:
            if name not in registry.names("neighbors"):
                if kind == "distributed":
                    refusals.append(f"'{name}' is not installed")
                continue
            cls = registry.get("neighbors", name, backend)
            if kind not in cls.accepts:
                refusals.append(f"'{name}' does not accept {kind} input")
                continue
            try:
                stage = cls(**{k: v for k, v in self.values.items() if k in cls.param_names()})
            except GidrValueError as exc:
                refusals.append(str(exc))
                parameter_errors.append(exc)
                continue
            if not small and name == candidates[-1] and refusals:
                logger.warning("neighbors 'auto': %d points with metric %r go to %s, a brute-force search of "
                               "O(n^2) = %.3g distances, because the approximate candidates refused (%s). "
                               "Install pynndescent, or use a metric NN-descent knows ('euclidean', 'cosine'), "
                               "for an approximate graph.", n_samples, self.values.get("metric"), stage.describe(),
                               float(n_samples) ** 2, "; ".join(refusals))
            return stage
        if parameter_errors:
            # the parameters themselves are wrong (a metric_kwds, a metric function): the last
            # candidate's own message names the parameter and the fix, whole
            raise parameter_errors[-1]
        raise GidrValueError(format_error("The input or parameters of neighbors 'auto'",
                                          "ones a candidate stage accepts", "; ".join(refusals) or "no candidate",
                                          "Install gidr[dask] for a Dask array." if kind == "distributed" else
                                          "Choose a neighbors stage by name, e.g. neighbors='pynndescent'."))

    def __reduce__(self):
        return (_rebuild_auto, (dict(self._values), self._backend))


@lru_cache(maxsize=32)
def _bound(cls, registry, backend: str):
    params: dict[str, Param] = {}
    for name in dict.fromkeys(cls.SMALL + cls.LARGE + cls.DISTRIBUTED_SMALL + cls.DISTRIBUTED_LARGE):
        if name not in registry.names("neighbors"):
            continue
        candidate = registry.get("neighbors", name, backend)
        for param in candidate.params:
            known = params.get(param.name)
            if known is None:
                params[param.name] = Param(param.name, param.default, param.constraints,
                                           f"({name}) {param.doc}", param.allow_none)
            else:
                params[param.name] = Param(param.name, known.default, known.constraints + param.constraints,
                                           f"{known.doc}; ({name}) {param.doc}", known.allow_none or param.allow_none)
    attributes = {"params": tuple(params.values()), "_registry": registry, "_backend": backend,
                  "__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    return type(cls.__name__, (cls,), attributes)


def _rebuild_auto(values, backend="auto"):
    from gidr.plugins import get_registry

    return AutoNeighbors.bind(get_registry(), backend)(**values)
