"""Every hook gidr calls is documented, is called with its documented arguments, and has a
test of its effect (datasette's idea, with tests that can fail).

Adding a hookspec to :mod:`gidr.hookspecs` fails this module until the hook has a section in
docs/plugins.rst (title and ``autofunction``), a method on :class:`Recorder` (so the test
that gidr calls every hook covers it) and a ``test_effect_of_<hook>`` here.
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from gidr import Pipeline, hookspecs
from gidr.plugins import build_registries, get_presets, hookimpl, make_plugin_manager
from gidr.registry import KernelRegistry, PresetRegistry, Registry

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.rst"
HOOKS = {name: spec for name, spec in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("gidr_")}
N_SAMPLES = 40


def argument_names(function) -> list[str]:
    return [name for name in inspect.signature(function).parameters if name != "self"]


def documentation_sections(text: str) -> dict[str, str]:
    """``{title: body}`` of the RST sections underlined with ``~``."""
    parts = re.split(r"^(\S[^\n]*)\n~{3,}\n", text, flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2])}


def fresh_registries(*plugins):
    """(stage registry, preset registry) of a fresh manager: built-ins plus ``plugins``."""
    return build_registries(make_plugin_manager(load_entrypoints=False, extra_plugins=plugins))


def small_data() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(N_SAMPLES, 4)) + 3.0 * np.eye(2, 4)[np.arange(N_SAMPLES) % 2]


# ---------------------------------------------------------------------- documentation
def test_there_are_hooks():
    assert {"gidr_register_stages", "gidr_register_presets", "gidr_register_kernels"} <= set(HOOKS)


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_hook_has_a_documentation_section(hook):
    sections = documentation_sections(DOCS.read_text())
    assert hook in sections, f"docs/plugins.rst has no section titled {hook}"
    assert re.search(rf"^\.\. autofunction:: gidr\.hookspecs\.{hook}$", sections[hook], flags=re.M), \
        f"the {hook} section of docs/plugins.rst has no '.. autofunction:: gidr.hookspecs.{hook}'"


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_hook_contract_names_its_arguments(hook):
    doc = inspect.getdoc(HOOKS[hook]) or ""
    for argument in argument_names(HOOKS[hook]):
        assert f"``{argument}." in doc, f"the docstring of {hook} does not say what to call on {argument!r}"


# ---------------------------------------------------------------------- gidr calls every hook
class Recorder:
    """Implements every hook; records the arguments gidr passes."""

    def __init__(self) -> None:
        self.calls: dict[str, dict] = {}

    @hookimpl
    def gidr_register_stages(self, registry):
        self.calls["gidr_register_stages"] = {"registry": registry}

    @hookimpl
    def gidr_register_presets(self, presets):
        self.calls["gidr_register_presets"] = {"presets": presets}

    @hookimpl
    def gidr_register_kernels(self, kernels):
        self.calls["gidr_register_kernels"] = {"kernels": kernels}


RECORDED_HOOKS = sorted(name for name in vars(Recorder) if name.startswith("gidr_"))


def test_the_recorder_implements_every_hook_with_the_specs_arguments():
    assert RECORDED_HOOKS == sorted(HOOKS), "add the new hook to Recorder (and an effect test below)"
    for hook in RECORDED_HOOKS:
        assert argument_names(getattr(Recorder, hook)) == argument_names(HOOKS[hook]), hook


def test_gidr_calls_every_hook_with_its_documented_arguments():
    recorder = Recorder()
    registry, presets = fresh_registries(recorder)
    assert sorted(recorder.calls) == sorted(HOOKS), "gidr never calls " + ", ".join(set(HOOKS) - set(recorder.calls))
    for hook, arguments in recorder.calls.items():
        assert list(arguments) == argument_names(HOOKS[hook]), hook
        for name, value in arguments.items():
            # every method the contract tells a plugin to call on the argument exists
            methods = re.findall(rf"``{name}\.(\w+)\(", inspect.getdoc(HOOKS[hook]))
            assert methods, f"{hook}'s docstring names no method of {name!r}"
            for method in methods:
                assert callable(getattr(value, method, None)), f"{hook}: {name}.{method} is not callable"
    # the arguments are the registries the pipeline then reads
    assert recorder.calls["gidr_register_stages"]["registry"] is registry
    assert recorder.calls["gidr_register_kernels"]["kernels"] is registry.kernels
    assert recorder.calls["gidr_register_presets"]["presets"] is presets
    assert isinstance(registry, Registry) and isinstance(registry.kernels, KernelRegistry)
    assert isinstance(presets, PresetRegistry)


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_has_an_effect_test(hook):
    assert callable(globals().get(f"test_effect_of_{hook}")), f"write test_effect_of_{hook} in this module"


# ---------------------------------------------------------------------- each hook's effect
def kl_subclass(name: str, **attributes):
    """A subclass of the reference kl loss under a test backend, at a priority above every built-in."""
    from gidr_reference.stages_forces import KL

    return type(name, (KL,), {"backend": "hook_test", "priority": 100, "__module__": __name__, **attributes})


def test_effect_of_gidr_register_stages():
    """A loss registered under a built-in name at a higher priority is the one the pipeline runs."""
    calls = []

    def attraction(self, D, p, ctx):
        calls.append(len(D))
        return super(type(self), self).attraction(D, p, ctx)

    CountingKL = kl_subclass("CountingKL", attraction=attraction)

    class StagePlugin:
        @hookimpl
        def gidr_register_stages(self, registry):
            registry.add(CountingKL)

    registry, presets = fresh_registries(StagePlugin())
    assert registry.get("loss", "kl") is CountingKL
    pipeline = Pipeline.from_preset("gdr-umap", registry=registry, presets=presets, n_epochs=3, random_state=0)
    assert type(pipeline.stages["loss"]) is CountingKL
    result = pipeline.run(small_data())
    assert calls, "the pipeline never called the registered loss"
    assert result.config["resolved"]["backends"]["loss"] == "hook_test"


def test_effect_of_gidr_register_presets(tmp_path):
    """Presets added as a mapping and as a TOML file build pipelines with their settings."""
    (tmp_path / "hook-test-file.toml").write_text(
        'description = "from a file"\n[pipeline]\nnormalized = true\nscalars = "one"\n'
        '[neighbors]\nname = "exact"\n[similarity]\nname = "tsne"\nperplexity = 7.0\n'
        '[symmetrize]\nname = "mean"\n[init]\nname = "random"\n[loss]\nname = "frobenius"\n'
        '[repulsion]\nname = "exact"\n[optimizer]\nname = "gdr"\n')

    config = get_presets().get("gdr-umap")  # pluggy calls this plugin before the core's presets

    class PresetPlugin:
        @hookimpl
        def gidr_register_presets(self, presets):
            config["description"] = "gdr-umap with three negatives"
            config["repulsion"]["n_negative"] = 3
            presets.add("hook-test", config)
            presets.add_file(tmp_path / "hook-test-file.toml")

    registry, presets = fresh_registries(PresetPlugin())
    assert {"hook-test", "hook-test-file", "gdr-umap"} <= set(presets.names())
    mapped = Pipeline.from_preset("hook-test", registry=registry, presets=presets)
    assert mapped.stages["repulsion"].n_negative == 3
    from_file = Pipeline.from_preset("hook-test-file", registry=registry, presets=presets)
    assert from_file.stages["similarity"].perplexity == 7.0 and from_file.stages["loss"].name == "frobenius"
    embedding = np.asarray(from_file.replace(n_epochs=5, random_state=0).run(small_data()))
    assert embedding.shape == (N_SAMPLES, 2) and np.all(np.isfinite(embedding))


def test_effect_of_gidr_register_kernels():
    """The numba optimizer runs a plugin's loss through the kernels the plugin registered for it."""
    pytest.importorskip("numba")
    from gidr_numba.forces import builtin_loss_kernels

    TracedKL = kl_subclass("TracedKL")
    requests = []

    def factory(stage, ctx):
        requests.append((type(stage), ctx.n_samples))
        return builtin_loss_kernels(stage, ctx)  # the same math as the built-in kl

    class KernelPlugin:
        @hookimpl
        def gidr_register_stages(self, registry):
            registry.add(TracedKL)

        @hookimpl
        def gidr_register_kernels(self, kernels):
            kernels.add(TracedKL, "numba", factory)

    registry, presets = fresh_registries(KernelPlugin())
    assert registry.kernels.has(TracedKL, "numba")
    X = small_data()
    runs = {}
    for label, overrides in (("plugin", {}), ("builtin", {"loss": {"name": "kl", "backend": "reference"}})):
        pipeline = Pipeline.from_preset("gdr-umap", registry=registry, presets=presets, n_epochs=5, random_state=0,
                                        **overrides)
        assert pipeline.stages["optimizer"].backend == "numba"
        runs[label] = np.asarray(pipeline.run(X))
    assert (TracedKL, N_SAMPLES) in requests, "the numba optimizer never asked for the plugin's kernels"
    # the plugin's loss ran on the numba kernels: the same bits as the built-in kl
    np.testing.assert_array_equal(runs["plugin"], runs["builtin"])
