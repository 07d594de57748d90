"""The plugin manager: built on first use, never at import time.

Built-in backends (``gidr_reference``, then ``gidr_numba`` when numba imports) are always
registered, the reference first. Third-party plugins come from the ``gidr.plugins``
entry-point group unless the environment variable ``GIDR_DISABLE_PLUGIN_AUTOLOAD`` is set
(to any non-empty value), as with pytest's ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``.

A plugin that fails never takes the others down: an exception while importing or
registering a built-in backend or an entry-point plugin, or raised by one of its
registration hooks, blocks that plugin with a :class:`GidrPluginWarning` naming it and the
error, and the registries are built from the rest. (A missing numba is expected: it is only
logged.) The reference backend and the core's presets are the exception: their failure is
raised, as nothing could run without them. Plugins passed as ``extra_plugins`` are the
caller's own code, and their errors are raised too.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import threading
import warnings
from pathlib import Path

import pluggy

from gidr import hookspecs

__all__ = ["hookimpl", "GidrPluginWarning", "ENTRY_POINT_GROUP", "make_plugin_manager", "get_plugin_manager",
           "get_registry", "get_presets", "reset"]

logger = logging.getLogger("gidr")

hookimpl = pluggy.HookimplMarker("gidr")
ENTRY_POINT_GROUP = "gidr.plugins"
DISABLE_AUTOLOAD_ENV = "GIDR_DISABLE_PLUGIN_AUTOLOAD"
#: entry-point name -> module of the built-in backends (registered under the same names,
#: so that loading the entry points does not register them twice).
BUILTIN_PLUGINS = {"reference": "gidr_reference.plugin", "numba": "gidr_numba.plugin"}

#: plugins whose failure is raised, not skipped: nothing runs without them.
ESSENTIAL_PLUGINS = ("gidr.presets", "reference")

_lock = threading.Lock()


class GidrPluginWarning(RuntimeWarning):
    """A plugin failed to load or register and was left out; the others still serve."""


def _skip_plugin(pm: pluggy.PluginManager, name: str, during: str, exc: BaseException) -> None:
    if name in ESSENTIAL_PLUGINS:
        raise exc
    warnings.warn(f"gidr plugin {name!r} was left out: {during} raised "
                  f"{type(exc).__name__}: {exc}", GidrPluginWarning, stacklevel=3)
    if pm.get_plugin(name) is not None:
        pm.unregister(name=name)
    pm.set_blocked(name)


def _register_builtins(pm: pluggy.PluginManager) -> None:
    for name, module_name in BUILTIN_PLUGINS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if name in ESSENTIAL_PLUGINS:
                raise
            # numba missing: the reference still serves every stage
            logger.info("built-in plugin %s not available: %s", module_name, exc)
            pm.set_blocked(name)
            continue
        except Exception as exc:
            _skip_plugin(pm, name, f"importing {module_name}", exc)
            continue
        pm.register(module, name=name)


def _load_entrypoints(pm: pluggy.PluginManager) -> None:
    """pluggy's ``load_setuptools_entrypoints``, one plugin at a time."""
    for dist in list(importlib.metadata.distributions()):
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or pm.get_plugin(ep.name) or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                _skip_plugin(pm, ep.name, f"loading entry point {ep.value!r}", exc)
                continue
            try:
                pm.register(plugin, name=ep.name)
            except pluggy.PluginValidationError:
                raise  # a misspelled hook: a bug to fix, as check_pending says
            except Exception as exc:
                _skip_plugin(pm, ep.name, "registering it", exc)
_state: dict = {}


class _CorePresets:
    """The core's own stage (``neighbors="auto"``) and presets (the TOML files in ``gidr/presets``)."""

    @hookimpl
    def gidr_register_stages(self, registry):
        from gidr.auto import AutoNeighbors

        registry.add(AutoNeighbors)

    @hookimpl
    def gidr_register_presets(self, presets):
        presets.add_directory(Path(__file__).parent / "presets")


def make_plugin_manager(load_entrypoints: bool | None = None, extra_plugins=()) -> pluggy.PluginManager:
    """Build a fresh plugin manager.

    Parameters
    ----------
    load_entrypoints : bool, optional
        Load third-party plugins from the ``gidr.plugins`` entry points. Default: True
        unless ``GIDR_DISABLE_PLUGIN_AUTOLOAD`` is set.
    extra_plugins : iterable
        Plugin objects or modules registered after the built-ins.
    """
    pm = pluggy.PluginManager("gidr")
    pm.add_hookspecs(hookspecs)
    pm.register(_CorePresets(), name="gidr.presets")
    _register_builtins(pm)
    if load_entrypoints is None:
        load_entrypoints = not os.environ.get(DISABLE_AUTOLOAD_ENV)
    if load_entrypoints:
        _load_entrypoints(pm)
    for plugin in extra_plugins:
        pm.register(plugin)
    pm.check_pending()
    return pm


class _HookFailed(Exception):
    def __init__(self, plugin_name: str, hook_name: str, error: Exception):
        super().__init__(plugin_name, hook_name, error)
        self.plugin_name, self.hook_name, self.error = plugin_name, hook_name, error


def _call_each(pm: pluggy.PluginManager, hook_name: str, **kwargs) -> None:
    """Call ``hook_name``'s implementations in pluggy's order, naming the one that fails."""
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        if impl.hookwrapper or impl.wrapper:
            raise pluggy.PluginValidationError(
                impl.plugin, f"gidr's registration hooks take no wrappers: {hook_name} in {impl.plugin_name!r}")
        try:
            impl.function(*[kwargs[arg] for arg in impl.argnames])
        except Exception as exc:
            raise _HookFailed(impl.plugin_name, hook_name, exc) from exc


def build_registries(pm: pluggy.PluginManager):
    """Fill a stage registry and a preset registry from ``pm``'s hooks.

    A plugin whose hook raises is unregistered and blocked (with a
    :class:`GidrPluginWarning`), and the registries are built again without it, so that
    nothing it registered before failing remains."""
    from gidr.registry import PresetRegistry, Registry

    while True:
        registry, presets = Registry(), PresetRegistry()
        try:
            _call_each(pm, "gidr_register_stages", registry=registry)
            _call_each(pm, "gidr_register_kernels", kernels=registry.kernels)
            _call_each(pm, "gidr_register_presets", presets=presets)
        except _HookFailed as failure:
            _skip_plugin(pm, failure.plugin_name, f"its hook {failure.hook_name}", failure.error)
            continue
        return registry, presets


def _ensure():
    with _lock:
        if "pm" not in _state:
            pm = make_plugin_manager()
            registry, presets = build_registries(pm)
            _state.update(pm=pm, registry=registry, presets=presets)
    return _state


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first call."""
    return _ensure()["pm"]


def get_registry():
    """The process-wide stage registry, built on first call."""
    return _ensure()["registry"]


def get_presets():
    """The process-wide preset registry, built on first call."""
    return _ensure()["presets"]


def reset() -> None:
    """Forget the process-wide plugin manager (the next use rebuilds it)."""
    with _lock:
        _state.clear()
