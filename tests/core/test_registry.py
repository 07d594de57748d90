"""Tests of gidr.registry: stage lookup by (kind, name, backend) and the preset registry."""
from __future__ import annotations

import numpy as np
import pytest

import gidr.plugins
from gidr.registry import PresetRegistry, Registry
from gidr.stages import KINDS, Init, Loss, Stage
from gidr.validation import GidrValueError

BUILTIN_PRESETS = ["gdr-tsne", "gdr-tsne-frob", "gdr-umap", "gdr-umap-frob", "tsne", "umap"]


def make_loss(name: str, backend: str = "reference", priority: int = 0) -> type[Loss]:
    """A concrete (do-nothing) loss class, distinct on every call."""

    def zeros(self, *args):
        return np.zeros(1)

    namespace = dict(name=name, backend=backend, priority=priority, value=lambda self, P, Y, ctx: 0.0,
                     gradient=zeros, attraction=zeros, repulsion_channels=zeros, repulsion_weights=zeros,
                     __module__=f"fake_{backend}")
    return type(f"Loss_{name}_{backend}", (Loss,), namespace)


def registry_of(*classes) -> Registry:
    registry = Registry()
    for cls in classes:
        registry.add(cls)
    return registry


# ---------------------------------------------------------------------- add / get
def test_add_returns_the_class_and_get_finds_it():
    kl = make_loss("kl")
    registry = Registry()
    assert registry.add(kl) is kl
    assert registry.get("loss", "kl") is kl
    assert registry.get("loss", "kl", "reference") is kl


def test_names_backends_and_entries():
    kl, kl_fast, frob = make_loss("kl"), make_loss("kl", "fast", 10), make_loss("frobenius")
    registry = registry_of(kl_fast, frob, kl)
    assert registry.names("loss") == ["frobenius", "kl"]
    assert registry.names("init") == []
    assert registry.backends("loss", "kl") == ["fast", "reference"]
    assert registry.backends("loss", "frobenius") == ["reference"]
    assert registry.backends() == ["fast", "reference"]
    assert registry.entries() == [frob, kl_fast, kl]


def test_adding_the_same_class_twice_is_harmless():
    kl = make_loss("kl")
    registry = registry_of(kl, kl)
    assert registry.entries() == [kl]


@pytest.mark.parametrize("order", ["fast_first", "fast_last"])
def test_priority_decides_not_registration_order(order):
    slow, fast = make_loss("kl", "reference", 0), make_loss("kl", "fast", 10)
    registry = registry_of(*((fast, slow) if order == "fast_first" else (slow, fast)))
    assert registry.get("loss", "kl") is fast
    assert registry.get("loss", "kl", "auto") is fast
    assert registry.get("loss", "kl", "reference") is slow
    assert registry.get("loss", "kl", "fast") is fast


@pytest.mark.parametrize("order", ["reference_first", "reference_last"])
def test_reference_wins_a_priority_tie(order):
    reference, other = make_loss("kl", "reference", 0), make_loss("kl", "other", 0)
    registry = registry_of(*((reference, other) if order == "reference_first" else (other, reference)))
    assert registry.get("loss", "kl") is reference


def test_tie_between_third_party_backends_does_not_depend_on_order():
    winners = set()
    for order in ((0, 1), (1, 0)):
        classes = [make_loss("toy", "alpha", 5), make_loss("toy", "beta", 5)]
        registry = registry_of(*(classes[i] for i in order))
        winners.add(registry.get("loss", "toy").backend)
    assert len(winners) == 1


def test_a_backend_lacking_the_stage_falls_back_to_the_reference():
    kl, kl_fast, frob = make_loss("kl"), make_loss("kl", "fast", 10), make_loss("frobenius")
    registry = registry_of(kl, kl_fast, frob)
    assert registry.get("loss", "frobenius", "fast") is frob


def test_fallback_goes_to_the_highest_priority_provider():
    only = make_loss("hellinger", "example", 0)
    registry = registry_of(make_loss("kl"), only)
    assert registry.get("loss", "hellinger", "reference") is only
    assert registry.get("loss", "hellinger", "auto") is only


def test_unknown_name_lists_the_registered_names():
    registry = registry_of(make_loss("kl"), make_loss("frobenius"))
    with pytest.raises(GidrValueError, match=r"^The loss stage name must be one of 'frobenius', 'kl'\. "
                                             r"Got 'hellinger'\. Install the plugin that provides it"):
        registry.get("loss", "hellinger")


def test_unknown_name_in_an_empty_kind():
    registry = registry_of(make_loss("kl"))
    with pytest.raises(GidrValueError, match=r"The init stage name must be one of \(none registered\)\. Got 'pca'"):
        registry.get("init", "pca")


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(GidrValueError, match=r"The stage kind must be one of 'neighbors', 'similarity', "
                                             r"'symmetrize', 'init', 'loss', 'repulsion', 'optimizer'\. Got 'losss'"):
        Registry().get("losss", "kl")


def test_unknown_backend_lists_the_backends():
    registry = registry_of(make_loss("kl"), make_loss("kl", "fast", 10))
    with pytest.raises(GidrValueError, match=r"^The 'backend' parameter must be 'auto' or one of 'fast', 'reference'\. "
                                             r"Got 'gpu'\.$"):
        registry.get("loss", "kl", "gpu")


def test_double_registration_names_both_modules():
    registry = registry_of(make_loss("kl"))
    with pytest.raises(GidrValueError, match=r"^The stage loss 'kl' of backend 'reference' is registered twice: by "
                                             r"fake_reference and fake_reference\. Rename one of them\.$"):
        registry.add(make_loss("kl"))


def test_a_class_that_is_not_a_stage_is_rejected():
    class NotAStage:
        kind, name, backend, priority = "loss", "kl", "reference", 0

    with pytest.raises(GidrValueError, match=r"The stage class .*NotAStage.* must be a subclass of gidr\.stages\.Loss"):
        Registry().add(NotAStage)


def test_a_stage_instance_is_rejected():
    with pytest.raises(GidrValueError, match=r"must be a subclass of gidr\.stages\.Loss"):
        Registry().add(make_loss("kl")())


def test_a_stage_declaring_the_wrong_kind_is_rejected():
    class Confused(Init):
        kind, name = "loss", "pca"

    with pytest.raises(GidrValueError, match=r"The stage class .*Confused.* must be a subclass of gidr\.stages\.Loss"):
        Registry().add(Confused)


def test_a_class_without_a_kind_is_rejected():
    class Kindless(Stage):
        name = "nothing"

    with pytest.raises(GidrValueError, match=r"The kind of .*Kindless.* must be one of neighbors, similarity, "
                                             r"symmetrize, init, loss, repulsion, optimizer\. Got None"):
        Registry().add(Kindless)


def test_a_stage_without_a_name_is_rejected():
    class Nameless(Loss):
        pass

    with pytest.raises(GidrValueError, match=r"name"):
        Registry().add(Nameless)


def test_an_abstract_stage_is_rejected():
    class Unfinished(Loss):
        name = "unfinished"

    with pytest.raises(GidrValueError, match=r"Unfinished.*abstract|abstract.*Unfinished"):
        Registry().add(Unfinished)


# ---------------------------------------------------------------------- presets
def _config(**changes):
    config = {kind: {"name": "x"} for kind in KINDS}
    config.update(pipeline={"normalized": False}, description="a test preset", **changes)
    return config


def builtin_presets() -> PresetRegistry:
    """The core's presets, through the real hook (no stage plugin is called)."""
    presets = PresetRegistry()
    gidr.plugins.make_plugin_manager(load_entrypoints=False).hook.gidr_register_presets(presets=presets)
    return presets


def test_builtin_presets_are_the_six():
    presets = builtin_presets()
    assert presets.names() == BUILTIN_PRESETS
    assert list(presets) == BUILTIN_PRESETS
    for name in BUILTIN_PRESETS:
        assert set(presets.get(name)) == {"description", "pipeline", *KINDS}
        assert presets.describe(name)


def test_preset_add_and_get_are_copies():
    config = _config()
    presets = PresetRegistry()
    presets.add("mine", config)
    config["loss"]["name"] = "changed after add"
    got = presets.get("mine")
    assert got["loss"] == {"name": "x"}
    got["loss"]["name"] = "changed after get"
    assert presets.get("mine")["loss"] == {"name": "x"}
    assert presets.describe("mine") == "a test preset"


def test_duplicate_preset_is_an_error():
    presets = PresetRegistry()
    presets.add("mine", _config())
    with pytest.raises(GidrValueError, match=r"^The preset 'mine' is registered twice\. Rename one of them\.$"):
        presets.add("mine", _config())


def test_unknown_preset_section_is_an_error():
    with pytest.raises(GidrValueError, match=r"^A section of preset 'mine' must be one of 'description', 'pipeline', "
                                             r"'neighbors', .*'optimizer'\. Got 'optimiser'\.$"):
        PresetRegistry().add("mine", _config(optimiser={"name": "gdr"}))


def test_unknown_preset_name_lists_the_builtin_presets():
    expected = ", ".join(repr(name) for name in BUILTIN_PRESETS)
    with pytest.raises(GidrValueError, match=rf"^The preset name must be one of {expected}\. Got 'gdr_umap'\.$"):
        builtin_presets().get("gdr_umap")


def test_describe_unknown_preset_is_a_gidr_error():
    with pytest.raises(GidrValueError, match=r"The preset name must be one of"):
        builtin_presets().describe("nope")


def test_add_file_and_directory(tmp_path):
    (tmp_path / "one.toml").write_text('description = "first"\n[loss]\nname = "kl"\n')
    (tmp_path / "two.toml").write_text('[pipeline]\nnormalized = true\n')
    (tmp_path / "notes.txt").write_text("ignored")
    presets = PresetRegistry()
    presets.add_directory(tmp_path)
    assert presets.names() == ["one", "two"]
    assert presets.get("one") == {"description": "first", "loss": {"name": "kl"}}
    with pytest.raises(GidrValueError, match=r"The preset 'one' is registered twice"):
        presets.add_file(tmp_path / "one.toml")


# ---------------------------------------------------------------------- kernels
def test_kernel_registry_serves_the_exact_class_only():
    from gidr.types import Context

    kl = make_loss("kl")
    subclass = type("KLVariant", (kl,), {"__module__": "fake_reference"})
    registry = registry_of(kl)
    calls = []

    def factory(stage, ctx):
        calls.append((stage, ctx))
        return ("kernels for", stage.name)

    registry.kernels.add(kl, "fast", factory)
    ctx = Context(n_samples=3, registry=registry)
    stage = kl()
    assert registry.kernels.get(stage, "fast", ctx) == ("kernels for", "kl")
    assert ctx.kernels(stage, "fast") == ("kernels for", "kl")
    assert calls == [(stage, ctx), (stage, ctx)]
    # a subclass may change the math: it is never handed its parent's kernels
    assert registry.kernels.get(subclass(), "fast", ctx) is None
    assert registry.kernels.get(stage, "other", ctx) is None
    assert registry.kernels.has(kl, "fast") and not registry.kernels.has(subclass, "fast")
    assert registry.kernels.entries() == [(kl, "fast")]


def test_a_kernel_factory_may_decline():
    kl = make_loss("kl")
    registry = registry_of(kl)
    registry.kernels.add(kl, "fast", lambda stage, ctx: None)
    assert registry.kernels.get(kl(), "fast") is None


def test_kernels_registered_twice_are_an_error():
    kl = make_loss("kl")
    kernels = Registry().kernels
    first = lambda stage, ctx: 1  # noqa: E731
    kernels.add(kl, "fast", first)
    kernels.add(kl, "fast", first)  # the same factory again is harmless
    with pytest.raises(GidrValueError, match=r"^The kernels of loss 'kl' \(fake_reference\.Loss_kl_reference\) for "
                                             r"backend 'fast' are registered twice\.$"):
        kernels.add(kl, "fast", lambda stage, ctx: 2)


def test_kernels_for_a_non_stage_are_rejected():
    with pytest.raises(GidrValueError, match=r"^The stage class of a kernel must be a gidr\.stages\.Stage subclass\. "
                                             r"Got 'kl'\.$"):
        Registry().kernels.add("kl", "fast", lambda stage, ctx: None)


def test_kernels_need_a_backend_name():
    with pytest.raises(GidrValueError, match=r"The backend of the kernels of .*Loss_kl_reference.* must be a "
                                             r"non-empty string\. Got ''\."):
        Registry().kernels.add(make_loss("kl"), "", lambda stage, ctx: None)


def test_kernels_need_a_callable_factory():
    with pytest.raises(GidrValueError, match=r"^The kernel factory of loss 'kl' for backend 'fast' must be a callable "
                                             r"factory\(stage, ctx\)\. Got 3\.$"):
        Registry().kernels.add(make_loss("kl"), "fast", 3)
