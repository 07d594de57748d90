"""Conformance checks: one suite over every registered stage, ours and third parties' alike.

A plugin runs every check that applies to its stages with one parametrized test:

.. code-block:: python

    import pytest
    import gidr.testing

    @pytest.mark.parametrize("stage_class, check", gidr.testing.check_cases(stages=[MyLoss]))
    def test_conformance(stage_class, check):
        gidr.testing.run_check(stage_class, check)

or calls :func:`check_stage` once per class. :func:`stage_cases` lists every registered stage
(ids ``kind:name:backend``). Which checks apply follows from the class's kind and declared
capabilities (``accepts``, ``answers_queries``, ``per_edge_sampler``, a ``theta`` parameter,
registered numba kernels), never from its name; a check that does not apply is skipped with
the reason. Each check raises :class:`AssertionError` naming the stage and the problem.
Problems are small (:data:`N_SAMPLES` points), so the whole suite runs in seconds.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from gidr.stages import Stage
from gidr.stages.neighbors import INPUT_KINDS
from gidr.testing._common import (_check_defaults_build, _check_identity, _check_immutable,
                                  _check_params_documented, _check_pickle, _check_unknown_parameter,
                                  check_same_parameters, check_stage_class)
from gidr.testing._forces import (_check_draws_per_edge, _check_loss_capabilities, _check_loss_gradient,
                                  _check_loss_forces, _check_loss_kernel, _check_loss_numba_kernels,
                                  _check_loss_value_estimate, _check_repulsion_capabilities,
                                  _check_repulsion_estimate, _check_repulsion_matches_exact,
                                  _check_repulsion_unbiased, _why_not_matches_exact, _why_not_numba_kernels,
                                  _why_not_sampler, check_loss_forces, check_loss_gradient)
from gidr.testing._graph import (_accepts_reason, _check_init, _check_neighbors_capabilities,
                                 _check_neighbors_input, _check_neighbors_precomputed_graph,
                                 _check_neighbors_queries, _check_similarity, _check_symmetrize, _why_not_queries)
from gidr.testing._optimizer import _check_default_n_epochs, _check_optimize
from gidr.testing._problems import N_SAMPLES, _Check, _env, _skip, pipeline_settings, random_affinities

__all__ = ["N_SAMPLES", "CHECKS", "checks_for", "check_cases", "stage_cases", "twin_cases", "run_check",
           "check_stage", "check_stage_class", "check_same_parameters", "check_loss_gradient",
           "check_loss_forces", "random_affinities", "pipeline_settings"]


# ============================================================================ the suite
def _common() -> tuple[_Check, ...]:
    return (_Check("identity", _check_identity), _Check("params_documented", _check_params_documented),
            _Check("defaults_build", _check_defaults_build), _Check("unknown_parameter", _check_unknown_parameter),
            _Check("pickle", _check_pickle), _Check("immutable", _check_immutable))


#: Every check by kind, in the order :func:`check_stage` runs them.
CHECKS: dict[str, tuple[_Check, ...]] = {
    "neighbors": (*_common(), _Check("capabilities", _check_neighbors_capabilities),
                  *(_Check(f"{kind}_input", _check_neighbors_input(kind), _accepts_reason(kind))
                    for kind in INPUT_KINDS),
                  _Check("precomputed_graph", _check_neighbors_precomputed_graph, _accepts_reason("precomputed")),
                  _Check("queries", _check_neighbors_queries, _why_not_queries)),
    "similarity": (*_common(), _Check("row_weights", _check_similarity)),
    "symmetrize": (*_common(), _Check("compute", _check_symmetrize)),
    "init": (*_common(), _Check("compute", _check_init)),
    "loss": (*_common(), _Check("capabilities", _check_loss_capabilities),
             _Check("gradient", _check_loss_gradient), _Check("forces", _check_loss_forces),
             _Check("value_estimate", _check_loss_value_estimate), _Check("kernel", _check_loss_kernel),
             _Check("numba_kernels", _check_loss_numba_kernels, _why_not_numba_kernels)),
    "repulsion": (*_common(), _Check("capabilities", _check_repulsion_capabilities),
                  _Check("estimate", _check_repulsion_estimate),
                  _Check("matches_exact", _check_repulsion_matches_exact, _why_not_matches_exact),
                  _Check("unbiased", _check_repulsion_unbiased, _why_not_sampler),
                  _Check("draws_per_edge", _check_draws_per_edge, _why_not_sampler)),
    "optimizer": (*_common(), _Check("default_n_epochs", _check_default_n_epochs),
                  _Check("optimize", _check_optimize)),
}


def checks_for(kind: str) -> list[str]:
    """The names of the checks of stage kind ``kind``."""
    return [check.name for check in CHECKS[kind]]


def _find(cls: type[Stage], name: str) -> _Check:
    for check in CHECKS[cls.kind]:
        if check.name == name:
            return check
    raise KeyError(f"no check {name!r} for kind {cls.kind!r}; checks: {checks_for(cls.kind)}")



def run_check(cls: type[Stage], check: str, *, registry=None, params=None) -> None:
    """Run one named check on ``cls``; skip (pytest) with the reason when it does not apply.

    Parameters
    ----------
    cls : type
        A registered stage class.
    check : str
        One of :func:`checks_for` ``(cls.kind)``.
    registry : gidr.registry.Registry, optional
        Where companion stages and backend kernels come from (default: the process-wide one).
    params : mapping of type to dict, optional
        Parameters for classes that cannot run on their defaults (an ``array`` init, say).
    """
    env = _env(registry, params)
    found = _find(cls, check)
    reason = found.why_not(cls, env)
    if reason is not None:
        _skip(f"{cls.describe()} ({cls.backend}): {reason}")
    found.run(cls, env)


def check_stage(cls: type[Stage], *, registry=None, params=None) -> dict[str, str]:
    """Run every check that applies to ``cls``.

    Returns
    -------
    dict of str to str
        Each check's outcome: ``"passed"`` or ``"skipped: <reason>"``. A failing check raises
        :class:`AssertionError`.
    """
    import pytest

    outcomes = {}
    for check in CHECKS[cls.kind]:
        try:
            run_check(cls, check.name, registry=registry, params=params)
        except pytest.skip.Exception as skipped:
            outcomes[check.name] = f"skipped: {skipped.msg}"
        else:
            outcomes[check.name] = "passed"
    return outcomes


def _stage_id(cls: type[Stage]) -> str:
    return f"{cls.kind}:{cls.name}:{cls.backend}"


def _classes(registry, stages) -> list[type[Stage]]:
    if stages is not None:
        return list(stages)
    return list(_env(registry).registry.entries())


def stage_cases(registry=None, *, stages: Iterable[type[Stage]] | None = None) -> list:
    """One ``pytest.param(stage_class, id="kind:name:backend")`` per registered stage."""
    import pytest

    return [pytest.param(cls, id=_stage_id(cls)) for cls in _classes(registry, stages)]


def check_cases(registry=None, *, stages: Iterable[type[Stage]] | None = None, params=None,
                expected_failures: Mapping[tuple[str, str], str] | None = None) -> list:
    """One ``pytest.param(stage_class, check)`` per stage and check (id ``kind:name:backend::check``).

    A check that does not apply is marked skip with the reason; ``expected_failures`` maps
    ``(id of the stage, check)`` to the reason of a known, strict xfail.
    """
    import pytest

    env = _env(registry, params)
    expected = dict(expected_failures or {})
    cases = []
    for cls in _classes(env.registry, stages):
        for check in CHECKS[cls.kind]:
            marks = []
            reason = check.why_not(cls, env)
            if reason is not None:
                marks.append(pytest.mark.skip(reason=reason))
            if (_stage_id(cls), check.name) in expected:
                marks.append(pytest.mark.xfail(strict=True, reason=expected.pop((_stage_id(cls), check.name))))
            cases.append(pytest.param(cls, check.name, id=f"{_stage_id(cls)}::{check.name}", marks=marks))
    assert not expected, f"expected failures name no case: {sorted(expected)}"
    return cases


def twin_cases(registry=None) -> list:
    """``pytest.param(cls, twin)`` for every (kind, name) that several backends provide: each
    other backend against the reference (else the first backend)."""
    import pytest

    registry = _env(registry).registry
    groups: dict[tuple[str, str], list[type[Stage]]] = {}
    for cls in registry.entries():
        groups.setdefault((cls.kind, cls.name), []).append(cls)
    cases = []
    for (kind, name), classes in groups.items():
        base = next((c for c in classes if c.backend == "reference"), classes[0])
        cases += [pytest.param(base, other, id=f"{kind}:{name}:{base.backend}-vs-{other.backend}")
                  for other in classes if other is not base]
    return cases
