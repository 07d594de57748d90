"""Stage and preset registries, filled through plugin hooks.

Selection lives here, not in plugin load order: ``backend="auto"`` picks, for a given
(kind, name), the registered class with the highest declared ``priority``.
"""
from __future__ import annotations

import copy
import inspect
import tomllib
from pathlib import Path
from typing import Any, Iterable, Mapping

from gidr.stages import BASES, KINDS, Stage
from gidr.validation import GidrValueError, format_error

__all__ = ["Registry", "PresetRegistry", "KernelRegistry"]


class KernelRegistry:
    """Backend kernels keyed by (stage class, backend), filled by ``gidr_register_kernels``."""

    def __init__(self) -> None:
        self._factories: dict[tuple[type, str], Any] = {}

    def add(self, stage_class: type[Stage], backend: str, factory) -> None:
        """Register ``factory(stage, ctx)`` as ``backend``'s kernels for ``stage_class``."""
        if not (isinstance(stage_class, type) and issubclass(stage_class, Stage)):
            raise GidrValueError(format_error("The stage class of a kernel", "a gidr.stages.Stage subclass",
                                              stage_class))
        if not (isinstance(backend, str) and backend):
            raise GidrValueError(format_error(f"The backend of the kernels of {stage_class!r}", "a non-empty string",
                                              backend))
        if not callable(factory):
            raise GidrValueError(format_error(f"The kernel factory of {stage_class.describe()} for backend "
                                              f"'{backend}'", "a callable factory(stage, ctx)", factory))
        key = (stage_class, backend)
        if key in self._factories and self._factories[key] is not factory:
            raise GidrValueError(f"The kernels of {stage_class.describe()} ({stage_class.__module__}."
                                 f"{stage_class.__qualname__}) for backend '{backend}' are registered twice.")
        self._factories[key] = factory

    def get(self, stage: Stage, backend: str, ctx=None):
        """``backend``'s kernels for ``stage`` (the exact class), built by the registered
        factory with ``ctx``; None when none is registered or the factory declines."""
        factory = self._factories.get((type(stage), backend))
        return None if factory is None else factory(stage, ctx)

    def has(self, stage_class: type[Stage], backend: str) -> bool:
        return (stage_class, backend) in self._factories

    def entries(self) -> list[tuple[type[Stage], str]]:
        """Every registered (stage class, backend) pair."""
        return sorted(self._factories, key=lambda key: (key[0].kind, key[0].name, key[0].backend, key[1]))


class Registry:
    """Stage classes keyed by (kind, name, backend), and the backends' kernels for them
    (:attr:`kernels`)."""

    def __init__(self) -> None:
        self._stages: dict[tuple[str, str, str], type[Stage]] = {}
        #: Backend kernels per stage class (the ``gidr_register_kernels`` hook fills it).
        self.kernels = KernelRegistry()

    def add(self, stage_class: type[Stage]) -> type[Stage]:
        """Register ``stage_class``; it must subclass the base of its declared kind."""
        kind = getattr(stage_class, "kind", None)
        for attribute in ("name", "backend"):
            value = getattr(stage_class, attribute, None)
            if not (isinstance(value, str) and value):
                raise GidrValueError(format_error(f"The '{attribute}' of {stage_class!r}", "a non-empty string", value))
        if kind not in BASES:
            raise GidrValueError(format_error(f"The kind of {stage_class!r}", "one of " + ", ".join(KINDS), kind))
        if not (isinstance(stage_class, type) and issubclass(stage_class, BASES[kind])):
            raise GidrValueError(
                format_error(f"The stage class {stage_class!r}", f"a subclass of gidr.stages.{BASES[kind].__name__}",
                             stage_class)
            )
        if inspect.isabstract(stage_class):
            missing = ", ".join(sorted(stage_class.__abstractmethods__))
            raise GidrValueError(f"The stage class {stage_class!r} cannot be registered: it does not implement "
                                 f"{missing}.")
        key = (kind, stage_class.name, stage_class.backend)
        if key in self._stages and self._stages[key] is not stage_class:
            raise GidrValueError(
                f"The stage {kind} '{key[1]}' of backend '{key[2]}' is registered twice: by "
                f"{self._stages[key].__module__} and {stage_class.__module__}. Rename one of them."
            )
        self._stages[key] = stage_class
        return stage_class

    def names(self, kind: str) -> list[str]:
        """Names registered for ``kind``, sorted."""
        return sorted({name for (k, name, _) in self._stages if k == kind})

    def backends(self, kind: str | None = None, name: str | None = None) -> list[str]:
        """Backends that provide (kind, name); all backends when both are None."""
        return sorted({b for (k, n, b) in self._stages
                       if (kind is None or k == kind) and (name is None or n == name)})

    def entries(self) -> list[type[Stage]]:
        """Every registered class, sorted by kind order, name, backend."""
        order = {k: i for i, k in enumerate(KINDS)}
        return [self._stages[key] for key in sorted(self._stages, key=lambda k: (order[k[0]], k[1], k[2]))]

    def get(self, kind: str, name: str, backend: str = "auto") -> type[Stage]:
        """The class for (kind, name) in ``backend``, or by priority when ``"auto"``.

        A backend that lacks the stage falls back to the highest-priority backend that has
        it (the reference always has it); a name that exists nowhere is an error listing the
        names that do.
        """
        if kind not in BASES:
            raise GidrValueError(format_error("The stage kind", "one of " + ", ".join(repr(k) for k in KINDS), kind))
        candidates = {b: cls for (k, n, b), cls in self._stages.items() if k == kind and n == name}
        if not candidates:
            options = ", ".join(repr(n) for n in self.names(kind)) or "(none registered)"
            raise GidrValueError(
                format_error(f"The {kind} stage name", f"one of {options}", name,
                             "Install the plugin that provides it, or pick a listed name.")
            )
        if backend != "auto":
            all_backends = self.backends()
            if backend not in all_backends:
                raise GidrValueError(
                    format_error("The 'backend' parameter", "'auto' or one of " + ", ".join(repr(b) for b in all_backends),
                                 backend)
                )
            if backend in candidates:
                return candidates[backend]
        # Highest priority wins; ties go to the reference, then to the backend name: never to load order.
        return min(candidates.values(), key=lambda cls: (-cls.priority, cls.backend != "reference", cls.backend))


class PresetRegistry:
    """Named configurations, kept as data (mappings shaped like the preset TOML files)."""

    def __init__(self) -> None:
        self._presets: dict[str, dict[str, Any]] = {}

    def add(self, name: str, config: Mapping[str, Any]) -> None:
        if name in self._presets:
            raise GidrValueError(f"The preset '{name}' is registered twice. Rename one of them.")
        unknown = sorted(set(config) - {"pipeline", "description", *KINDS})
        if unknown:
            raise GidrValueError(
                format_error(f"A section of preset '{name}'", "one of 'description', 'pipeline', " +
                             ", ".join(repr(k) for k in KINDS), unknown[0])
            )
        self._presets[name] = copy.deepcopy(dict(config))

    def add_file(self, path: str | Path) -> None:
        path = Path(path)
        with path.open("rb") as fh:
            self.add(path.stem, tomllib.load(fh))

    def add_directory(self, directory: str | Path) -> None:
        for path in sorted(Path(directory).glob("*.toml")):
            self.add_file(path)

    def names(self) -> list[str]:
        return sorted(self._presets)

    def get(self, name: str) -> dict[str, Any]:
        if name not in self._presets:
            raise GidrValueError(
                format_error("The preset name", "one of " + ", ".join(repr(n) for n in self.names()), name)
            )
        return copy.deepcopy(self._presets[name])

    def describe(self, name: str) -> str:
        return str(self.get(name).get("description", ""))

    def __iter__(self) -> Iterable[str]:
        return iter(self.names())
