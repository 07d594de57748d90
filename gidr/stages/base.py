"""The base of every stage: declared parameters, validated once at construction."""
from __future__ import annotations

from abc import ABC
from typing import Any, ClassVar, Mapping

from gidr.validation import GidrValueError, Param, format_error

__all__ = ["Stage", "KINDS"]

#: Stage kinds, in the order the pipeline runs them.
KINDS = ("neighbors", "similarity", "symmetrize", "init", "loss", "repulsion", "optimizer")


class Stage(ABC):
    """A named, parameterized implementation of one stage kind in one backend.

    Subclasses declare, as class attributes:

    ``kind``
        one of :data:`KINDS`.
    ``name``
        the name users select it by (``"tsne"``, ``"barnes_hut"``, ...).
    ``backend``
        ``"reference"``, ``"numba"`` or a third-party backend's name.
    ``priority``
        higher wins when ``backend="auto"``; the reference uses 0.
    ``params``
        a tuple of :class:`~gidr.validation.Param`: names, defaults and constraints.
    ``max_samples``
        the largest input the implementation accepts (``None``: no limit). O(n²)
        reference stages set it so that a large input fails at once, not after
        exhausting memory.

    Instances are immutable bags of validated parameters; the math lives in module-level
    functions that the methods call.
    """

    kind: ClassVar[str]
    name: ClassVar[str]
    backend: ClassVar[str] = "reference"
    priority: ClassVar[int] = 0
    params: ClassVar[tuple[Param, ...]] = ()
    max_samples: ClassVar[int | None] = None

    def __init__(self, **params: Any) -> None:
        declared = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(declared))
        if unknown:
            expected = "one of " + (", ".join(repr(n) for n in declared) or "(no parameters)")
            raise GidrValueError(
                format_error(f"A parameter name of {self.describe()}", expected, unknown[0])
            )
        values = {}
        for name, spec in declared.items():
            value = params.get(name, spec.default)
            values[name] = spec.validate(value, self.describe())
        object.__setattr__(self, "_values", values)
        self.check()

    def check(self) -> None:
        """Cross-parameter checks; raise :class:`GidrValueError`. Default: nothing."""

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        """Checks against the pipeline switches (``normalized``, ``n_components``, ...),
        run when the pipeline is built; raise :class:`GidrValueError`. Default: nothing."""

    @classmethod
    def bind(cls, registry, backend: str) -> type["Stage"]:
        """The class to instantiate in a pipeline built on ``registry`` for ``backend``:
        ``cls`` itself, except for stages whose parameters depend on what is registered
        (``neighbors="auto"`` declares the union of its candidates')."""
        return cls

    @classmethod
    def describe(cls) -> str:
        return f"{cls.kind} '{cls.name}'"

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        return tuple(p.name for p in cls.params)

    @property
    def values(self) -> Mapping[str, Any]:
        """The validated parameters (read-only view)."""
        return dict(self._values)

    def __getattr__(self, item: str) -> Any:
        values = self.__dict__.get("_values")
        if values is not None and item in values:
            return values[item]
        raise AttributeError(f"{type(self).__name__!r} has no attribute {item!r}")

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"{self.describe()} is immutable; build a new stage instead")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({args})"

    def __reduce__(self):
        return (_rebuild, (type(self), dict(self._values)))

    def check_n_samples(self, n_samples: int) -> None:
        """Refuse inputs larger than :attr:`max_samples` with a clear error."""
        if self.max_samples is not None and n_samples > self.max_samples:
            raise GidrValueError(
                format_error(
                    f"The number of samples for {self.describe()} in backend '{self.backend}'",
                    f"at most {self.max_samples} (it needs O(n^2) memory)",
                    n_samples,
                    "Use backend='numba' or backend='auto', or subsample the data.",
                )
            )


def _rebuild(cls, values):
    return cls(**values)
