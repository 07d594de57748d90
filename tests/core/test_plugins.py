"""Tests of gidr.plugins: fresh plugin managers, hook validation, entry-point autoload."""
from __future__ import annotations

import itertools
import sys

import numpy as np
import pluggy
import pytest

import gidr.plugins
from gidr import Pipeline, hookspecs
from gidr.plugins import build_registries, hookimpl, make_plugin_manager
from gidr.registry import PresetRegistry, Registry
from gidr.stages import KINDS, Loss
from tests.helpers import StagePlugin

_module_ids = itertools.count()

BAD_HOOK_SOURCE = """
from gidr.plugins import hookimpl


@hookimpl
def gidr_register_stagez(registry):
    pass
"""

PRESET_SOURCE = """
from gidr.plugins import hookimpl


@hookimpl
def gidr_register_presets(presets):
    presets.add("from-{name}", {{"description": "registered by {name}"}})
"""


def make_loss(name: str, backend: str, priority: int) -> type[Loss]:
    def zeros(self, *args):
        return np.zeros(1)

    namespace = dict(name=name, backend=backend, priority=priority, value=zeros, gradient=zeros,
                     attraction=zeros, repulsion_channels=zeros, repulsion_weights=zeros)
    return type(f"Loss_{name}_{backend}", (Loss,), namespace)


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """Install a one-module plugin into ``tmp_path`` (module + dist-info with an entry point).

    Returns ``install(source) -> module name``; the module name is unique per call.
    """
    monkeypatch.delenv(gidr.plugins.DISABLE_AUTOLOAD_ENV, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    installed = []

    def install(source: str) -> str:
        module = f"gidr_test_plugin_{next(_module_ids)}"
        (tmp_path / f"{module}.py").write_text(source.format(name=module))
        dist_info = tmp_path / f"{module}-1.0.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
        (dist_info / "entry_points.txt").write_text(f"[gidr.plugins]\n{module} = {module}\n")
        installed.append(module)
        return module

    yield install
    for module in installed:
        sys.modules.pop(module, None)


# ---------------------------------------------------------------------- managers
def test_builtins_are_registered_reference_first():
    pm = make_plugin_manager(load_entrypoints=False)
    names = [name for name, _ in pm.list_name_plugin()]
    assert names[:2] == ["gidr.presets", "reference"]
    assert pm.get_plugin("reference").__name__ == "gidr_reference.plugin"
    assert pm.get_plugin("numba") is not None or pm.is_blocked("numba")


def test_entry_points_do_not_register_the_builtins_twice(monkeypatch):
    monkeypatch.delenv(gidr.plugins.DISABLE_AUTOLOAD_ENV, raising=False)
    pm = make_plugin_manager(load_entrypoints=True)
    reference = sys.modules["gidr_reference.plugin"]
    assert sum(plugin is reference for plugin in pm.get_plugins()) == 1


def test_a_missing_builtin_backend_is_blocked_not_fatal(monkeypatch):
    monkeypatch.setitem(sys.modules, "gidr_numba.plugin", None)  # import -> ImportError
    monkeypatch.delenv(gidr.plugins.DISABLE_AUTOLOAD_ENV, raising=False)
    pm = make_plugin_manager()
    assert pm.is_blocked("numba")
    assert pm.get_plugin("reference") is not None


def test_fresh_managers_are_independent():
    extra = StagePlugin(make_loss("toy", "fast", 10))
    with_extra = make_plugin_manager(load_entrypoints=False, extra_plugins=[extra])
    without = make_plugin_manager(load_entrypoints=False)
    assert with_extra is not without
    assert with_extra.is_registered(extra) and not without.is_registered(extra)
    with_extra.unregister(extra)
    assert not with_extra.is_registered(extra)
    assert [n for n, _ in make_plugin_manager(load_entrypoints=False).list_name_plugin()] == \
        [n for n, _ in without.list_name_plugin()]


def test_build_registries_returns_fresh_registries():
    pm = make_plugin_manager(load_entrypoints=False)
    first, second = build_registries(pm), build_registries(pm)
    assert isinstance(first[0], Registry) and isinstance(first[1], PresetRegistry)
    assert first[0] is not second[0] and first[1] is not second[1]
    assert [c.__name__ for c in first[0].entries()] == [c.__name__ for c in second[0].entries()]


def test_every_preset_stage_resolves_with_the_builtins():
    registry, presets = build_registries(make_plugin_manager(load_entrypoints=False))
    for preset in presets.names():
        config = presets.get(preset)
        for kind in KINDS:
            # "auto" neighbours are a stage of the core's, registered like any other
            assert registry.get(kind, config[kind]["name"], "reference").backend == "reference", (preset, kind)


@pytest.mark.parametrize("order", ["fast_first", "fast_last"])
def test_plugin_order_does_not_decide_the_winner(order):
    slow, fast = StagePlugin(make_loss("toy", "slow", 0)), StagePlugin(make_loss("toy", "fast", 10))
    pm = pluggy.PluginManager("gidr")
    pm.add_hookspecs(hookspecs)
    for plugin in ((fast, slow) if order == "fast_first" else (slow, fast)):
        pm.register(plugin)
    registry, _ = build_registries(pm)
    assert registry.get("loss", "toy").backend == "fast"
    assert registry.get("loss", "toy", "slow").backend == "slow"


def test_extra_plugin_outranks_the_reference_by_priority():
    fast_kl = make_loss("kl", "fast", 100)
    registry, _ = build_registries(make_plugin_manager(load_entrypoints=False,
                                                       extra_plugins=[StagePlugin(fast_kl)]))
    assert registry.get("loss", "kl") is fast_kl
    assert registry.get("loss", "kl", "reference").backend == "reference"
    assert registry.get("loss", "frobenius", "fast").backend in ("reference", "numba")


# ---------------------------------------------------------------------- hook validation
def test_check_pending_catches_a_misspelled_hook():
    class Misspelled:
        @hookimpl
        def gidr_register_stagez(self, registry):
            pass

    with pytest.raises(pluggy.PluginValidationError, match=r"unknown hook 'gidr_register_stagez'"):
        make_plugin_manager(load_entrypoints=False, extra_plugins=[Misspelled()])


def test_a_misspelled_hook_argument_is_caught():
    class WrongArgument:
        @hookimpl
        def gidr_register_stages(self, registy):
            pass

    with pytest.raises(pluggy.PluginValidationError, match=r"Argument\(s\) \{'registy'\} are declared in the hookimpl"):
        make_plugin_manager(load_entrypoints=False, extra_plugins=[WrongArgument()])


def test_check_pending_catches_a_misspelled_hook_in_an_entry_point(install_plugin):
    install_plugin(BAD_HOOK_SOURCE)
    with pytest.raises(pluggy.PluginValidationError, match=r"unknown hook 'gidr_register_stagez' in plugin"):
        make_plugin_manager()


# ---------------------------------------------------------------------- autoload switch
def test_entry_points_are_loaded_by_default(install_plugin):
    module = install_plugin(PRESET_SOURCE)
    pm = make_plugin_manager()
    assert pm.get_plugin(module) is sys.modules[module]
    _, presets = build_registries(pm)
    assert presets.describe(f"from-{module}") == f"registered by {module}"


@pytest.mark.parametrize("value", ["1", "true", "0"])
def test_env_var_disables_autoload(install_plugin, monkeypatch, value):
    module = install_plugin(PRESET_SOURCE)
    monkeypatch.setenv(gidr.plugins.DISABLE_AUTOLOAD_ENV, value)  # any non-empty value, even "0"
    pm = make_plugin_manager()
    assert pm.get_plugin(module) is None
    assert pm.get_plugin("reference") is not None
    assert f"from-{module}" not in build_registries(pm)[1].names()


def test_empty_env_var_does_not_disable_autoload(install_plugin, monkeypatch):
    module = install_plugin(PRESET_SOURCE)
    monkeypatch.setenv(gidr.plugins.DISABLE_AUTOLOAD_ENV, "")
    assert make_plugin_manager().get_plugin(module) is not None


def test_explicit_argument_beats_the_env_var(install_plugin, monkeypatch):
    module = install_plugin(PRESET_SOURCE)
    monkeypatch.setenv(gidr.plugins.DISABLE_AUTOLOAD_ENV, "1")
    assert make_plugin_manager(load_entrypoints=True).get_plugin(module) is not None
    monkeypatch.delenv(gidr.plugins.DISABLE_AUTOLOAD_ENV)
    assert make_plugin_manager(load_entrypoints=False).get_plugin(module) is None


# ---------------------------------------------------------------------- process-wide state
def test_process_wide_manager_is_built_once_and_reset(monkeypatch):
    monkeypatch.setattr(gidr.plugins, "_state", {})  # leave the real process-wide state alone
    pm = gidr.plugins.get_plugin_manager()
    assert gidr.plugins.get_plugin_manager() is pm
    assert gidr.plugins.get_registry() is gidr.plugins.get_registry()
    assert "gdr-umap" in gidr.plugins.get_presets().names()
    gidr.plugins.reset()
    assert gidr.plugins.get_plugin_manager() is not pm


def test_importing_gidr_builds_no_manager():
    import subprocess

    code = "import gidr, gidr.plugins; assert gidr.plugins._state == {}, gidr.plugins._state"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------- gidr_register_kernels
class KernelPlugin:
    """A plugin that registers kernels for a stage class on a made-up backend."""

    def __init__(self, stage_class, factory):
        self.stage_class, self.factory = stage_class, factory

    @hookimpl
    def gidr_register_kernels(self, kernels):
        kernels.add(self.stage_class, "toy_backend", self.factory)


def test_gidr_register_kernels_fills_the_registrys_kernels():
    from gidr.types import Context

    toy = make_loss("toy", "reference", 0)
    plugin = KernelPlugin(toy, lambda stage, ctx: ("toy kernels", ctx.n_samples))
    registry, _ = build_registries(make_plugin_manager(load_entrypoints=False,
                                                       extra_plugins=[StagePlugin(toy), plugin]))
    assert registry.kernels.has(toy, "toy_backend")
    assert Context(n_samples=7, registry=registry).kernels(toy(), "toy_backend") == ("toy kernels", 7)
    # a fresh manager without the plugin knows nothing of them
    plain, _ = build_registries(make_plugin_manager(load_entrypoints=False))
    assert not plain.kernels.has(toy, "toy_backend")


def test_the_numba_backend_registers_kernels_for_the_reference_losses():
    pytest.importorskip("numba")
    from gidr_reference.stages_forces import KL, Frobenius

    registry, _ = build_registries(make_plugin_manager(load_entrypoints=False))
    assert registry.kernels.has(KL, "numba") and registry.kernels.has(Frobenius, "numba")
    assert {backend for _, backend in registry.kernels.entries()} == {"numba"}
    # there is no numba loss class: backend="numba" for a loss is the reference class
    assert registry.get("loss", "kl", "numba") is KL


def test_a_misspelled_kernels_hook_argument_is_caught():
    class WrongArgument:
        @hookimpl
        def gidr_register_kernels(self, kernel):
            pass

    with pytest.raises(pluggy.PluginValidationError, match=r"Argument\(s\) \{'kernel'\} are declared in the hookimpl"):
        make_plugin_manager(load_entrypoints=False, extra_plugins=[WrongArgument()])


def test_the_core_registers_auto_neighbors():
    from gidr.auto import AutoNeighbors

    registry, _ = build_registries(make_plugin_manager(load_entrypoints=False))
    assert registry.get("neighbors", "auto", "reference") is AutoNeighbors
    assert registry.get("neighbors", "auto", "auto") is AutoNeighbors  # no backend has its own


# ---------------------------------------------------------------------- failing plugins (issue 12)
class _BrokenStages:
    """A third-party plugin whose registration hook raises after registering a stage."""

    @hookimpl
    def gidr_register_stages(self, registry):
        raise RuntimeError("cannot cache function '_pow_b': no locator available")


def test_a_plugin_whose_hook_raises_is_left_out_and_the_reference_still_serves():
    from gidr.plugins import GidrPluginWarning

    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(_BrokenStages(), name="broken-example")
    with pytest.warns(GidrPluginWarning, match=r"gidr plugin 'broken-example' was left out: its hook "
                                               r"gidr_register_stages raised RuntimeError: cannot cache"):
        registry, presets = build_registries(pm)
    assert pm.is_blocked("broken-example")
    assert registry.get("loss", "kl", "reference").backend == "reference"
    Y = Pipeline.from_preset("gdr-umap", registry=registry, presets=presets, backend="reference",
                             random_state=0, n_epochs=5).run(np.random.default_rng(0).normal(size=(60, 4)))
    assert np.all(np.isfinite(np.asarray(Y)))
