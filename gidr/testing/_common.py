"""Checks every stage passes, whatever its kind."""
from __future__ import annotations

import pickle
from typing import Mapping

import numpy as np

from gidr.stages import BASES, KINDS, Stage
from gidr.types import KNNGraph
from gidr.validation import GidrValueError, Param
from gidr.testing._problems import N_SAMPLES, _K, _Env, _dataset


# ============================================================================ every stage
def _check_identity(cls, env) -> None:
    assert getattr(cls, "kind", None) in KINDS, f"{cls!r}: 'kind' must be one of {KINDS}"
    assert issubclass(cls, BASES[cls.kind]), f"{cls!r}: must subclass gidr.stages.{BASES[cls.kind].__name__}"
    assert isinstance(getattr(cls, "name", None), str) and cls.name, f"{cls!r}: 'name' must be a non-empty str"
    assert isinstance(cls.backend, str) and cls.backend, f"{cls!r}: 'backend' must be a non-empty str"
    assert isinstance(cls.priority, int) and not isinstance(cls.priority, bool), \
        f"{cls.describe()}: 'priority' must be an int"
    assert cls.max_samples is None or (isinstance(cls.max_samples, int) and cls.max_samples > 0), \
        f"{cls.describe()}: 'max_samples' must be None or a positive int"
    assert cls.kind in cls.describe() and cls.name in cls.describe(), f"{cls!r}: describe() must name it"


def _check_params_documented(cls, env) -> None:
    assert isinstance(cls.params, tuple) and all(isinstance(p, Param) for p in cls.params), \
        f"{cls.describe()}: 'params' must be a tuple of gidr.validation.Param"
    names = [p.name for p in cls.params]
    assert len(names) == len(set(names)), f"{cls.describe()}: duplicate parameter names {names}"
    for param in cls.params:
        assert isinstance(param.doc, str) and param.doc.strip(), \
            f"{cls.describe()}: parameter {param.name!r} has no documentation"


def _check_defaults_build(cls, env) -> None:
    stage = cls()  # the declared defaults must validate
    assert set(stage.values) == set(cls.param_names()), f"{cls.describe()}: values must hold every parameter"
    assert repr(stage).startswith(cls.__name__), f"{cls.describe()}: repr must start with the class name"


def _check_unknown_parameter(cls, env) -> None:
    try:
        cls(no_such_parameter_xyz=1)
    except GidrValueError as exc:
        assert "no_such_parameter_xyz" in str(exc), f"{cls.describe()}: the unknown-parameter error must name it"
    else:
        raise AssertionError(f"{cls.describe()}: accepted an unknown parameter")


def _same_values(first: Mapping, second: Mapping) -> bool:
    if set(first) != set(second):
        return False
    return all(np.array_equal(first[k], second[k]) if isinstance(first[k], np.ndarray) else first[k] == second[k]
               for k in first)


def _check_pickle(cls, env) -> None:
    stage = env.build(cls)
    copy = pickle.loads(pickle.dumps(stage))
    assert type(copy).__qualname__ == type(stage).__qualname__ and isinstance(copy, cls) \
        and _same_values(copy.values, stage.values), \
        f"{cls.describe()}: a pickle round trip must rebuild the same class with the same values"
    if cls.kind == "neighbors" and "dense" in cls.accepts:
        X = _dataset()
        chosen, again = (s.select(X, N_SAMPLES, env.registry, cls.backend) for s in (stage, copy))
        assert type(again) is type(chosen) and _same_values(again.values, chosen.values), \
            f"{cls.describe()}: after a pickle round trip it selects {again!r} instead of {chosen!r}"
        assert type(copy.compute(X, _K, env.ctx(n_samples=N_SAMPLES))) is KNNGraph


def _check_immutable(cls, env) -> None:
    stage = env.build(cls)
    for attribute in (*cls.param_names()[:1], "some_new_attribute"):
        try:
            setattr(stage, attribute, 1)
        except AttributeError:
            continue
        raise AssertionError(f"{cls.describe()}: setting {attribute!r} on an instance must raise AttributeError")
    values = stage.values
    if values:
        values[next(iter(values))] = "changed"
        assert "changed" not in repr(stage.values), f"{cls.describe()}: 'values' must be a copy"


def check_stage_class(cls: type[Stage]) -> None:
    """A stage class declares its identity and documented parameters, builds from its
    defaults and rejects an unknown parameter by name."""
    env = _Env(None, {})
    for check in (_check_identity, _check_params_documented, _check_defaults_build, _check_unknown_parameter):
        check(cls, env)


def check_same_parameters(cls: type[Stage], twin: type[Stage]) -> None:
    """Two implementations of one (kind, name) declare the same parameters and defaults."""
    mine = {p.name: (p.default, p.allow_none) for p in cls.params}
    theirs = {p.name: (p.default, p.allow_none) for p in twin.params}
    assert mine == theirs, (f"{cls.describe()} in backend {cls.backend!r} declares {mine}, but backend "
                            f"{twin.backend!r} declares {theirs}")
