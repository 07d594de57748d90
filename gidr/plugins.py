"""The plugin manager: built on first use, never at import time.

Built-in backends (``gidr_reference``, then ``gidr_numba`` when numba imports) are always
registered, the reference first. Third-party plugins come from the ``gidr.plugins``
entry-point group unless the environment variable ``GIDR_DISABLE_PLUGIN_AUTOLOAD`` is set
(to any non-empty value), as with pytest's ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``.
"""
from __future__ import annotations

import importlib
import logging
import os
import threading
from pathlib import Path

import pluggy

from gidr import hookspecs

__all__ = ["hookimpl", "ENTRY_POINT_GROUP", "make_plugin_manager", "get_plugin_manager",
           "get_registry", "get_presets", "reset"]

logger = logging.getLogger("gidr")

hookimpl = pluggy.HookimplMarker("gidr")
ENTRY_POINT_GROUP = "gidr.plugins"
DISABLE_AUTOLOAD_ENV = "GIDR_DISABLE_PLUGIN_AUTOLOAD"
#: entry-point name -> module of the built-in backends (registered under the same names,
#: so that loading the entry points does not register them twice).
BUILTIN_PLUGINS = {"reference": "gidr_reference.plugin", "numba": "gidr_numba.plugin"}

_lock = threading.Lock()
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
    for name, module_name in BUILTIN_PLUGINS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # numba missing: the reference still serves every stage
            logger.info("built-in plugin %s not available: %s", module_name, exc)
            pm.set_blocked(name)
            continue
        pm.register(module, name=name)
    if load_entrypoints is None:
        load_entrypoints = not os.environ.get(DISABLE_AUTOLOAD_ENV)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in extra_plugins:
        pm.register(plugin)
    pm.check_pending()
    return pm


def build_registries(pm: pluggy.PluginManager):
    """Fill a stage registry and a preset registry from ``pm``'s hooks."""
    from gidr.registry import PresetRegistry, Registry

    registry, presets = Registry(), PresetRegistry()
    pm.hook.gidr_register_stages(registry=registry)
    pm.hook.gidr_register_kernels(kernels=registry.kernels)
    pm.hook.gidr_register_presets(presets=presets)
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
