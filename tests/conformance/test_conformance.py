"""One contract suite over every registered stage of every installed backend.

The cases come from :mod:`gidr.testing` (ids ``kind:name:backend::check``): the stages of
``gidr.plugins.get_registry()`` plus the worked example plugin (examples/gidr-plugin-example),
loaded from its source tree when it is not installed, so that a third-party stage is held to
exactly the checks ours are.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import gidr.plugins
import gidr.testing
from gidr.stages import KINDS

EXAMPLE_SRC = Path(__file__).resolve().parents[2] / "examples" / "gidr-plugin-example" / "src"


def _example_plugin():
    """``gidr_example.plugin``: installed, or imported from the example's source tree."""
    try:
        return importlib.import_module("gidr_example.plugin")
    except ImportError:
        sys.path.insert(0, str(EXAMPLE_SRC))
        try:
            return importlib.import_module("gidr_example.plugin")
        finally:
            sys.path.remove(str(EXAMPLE_SRC))


def _registry():
    """The process-wide plugins (entry points included) plus the example plugin."""
    pm = gidr.plugins.make_plugin_manager()
    if pm.get_plugin("example") is None:
        pm.register(_example_plugin(), name="example")
    registry, _ = gidr.plugins.build_registries(pm)
    return registry


REGISTRY = _registry()
ARRAY_INIT = REGISTRY.get("init", "array", "reference")
#: Classes that cannot run on their defaults, and what they run with.
PARAMS = {ARRAY_INIT: {"array": np.random.default_rng(0).normal(size=(gidr.testing.N_SAMPLES, 2))}}
#: (stage id, check) -> why it fails today; strict, so a fix turns the xfail into a failure to update.
EXPECTED_FAILURES: dict = {}


@pytest.mark.parametrize("stage_class, check",
                         gidr.testing.check_cases(REGISTRY, params=PARAMS, expected_failures=EXPECTED_FAILURES))
def test_stage_conforms(stage_class, check):
    gidr.testing.run_check(stage_class, check, registry=REGISTRY, params=PARAMS)


@pytest.mark.parametrize("stage_class, twin", gidr.testing.twin_cases(REGISTRY))
def test_backends_declare_the_same_parameters(stage_class, twin):
    gidr.testing.check_same_parameters(stage_class, twin)


# ---------------------------------------------------------------------- what the suite covers
def test_suite_covers_every_installed_stage_and_the_example():
    covered = set(REGISTRY.entries())
    assert set(gidr.plugins.get_registry().entries()) <= covered
    assert REGISTRY.get("loss", "hellinger").backend == "example"
    assert {cls.kind for cls in covered} == set(KINDS)
    assert {"reference", "numba", "example"} <= {cls.backend for cls in covered}


def test_every_kernel_entry_belongs_to_a_checked_loss():
    """A kernel registered for a class that is not a registered stage would escape the suite."""
    entries = REGISTRY.kernels.entries()
    assert entries, "no backend kernels are registered (gidr_register_kernels)"
    covered = set(REGISTRY.entries())
    for stage_class, backend in entries:
        assert stage_class in covered, f"kernels for {stage_class!r} ({backend}) but the class is not registered"
    numba_losses = {cls for cls, backend in entries if backend == "numba" and cls.kind == "loss"}
    assert REGISTRY.get("loss", "hellinger") in numba_losses


def test_a_check_can_fail():
    """The suite is not vacuous: a loss whose gradient is off by a factor fails its gradient check."""
    kl = REGISTRY.get("loss", "kl", "reference")

    class HalfGradientKL(kl):
        backend = "broken"

        def gradient(self, P, Y, ctx):
            return 0.5 * super().gradient(P, Y, ctx)

    with pytest.raises(AssertionError, match=r"gradient differs from finite differences"):
        gidr.testing.run_check(HalfGradientKL, "gradient", registry=REGISTRY)


def test_a_biased_sampler_fails_the_bias_check():
    sampled = REGISTRY.get("repulsion", "sampled", "reference")

    class BiasedSampled(sampled):
        backend = "broken"
        per_edge_sampler = True

        def estimate(self, Y, loss, ctx, epoch, n_edges=None):
            sums = super().estimate(Y, loss, ctx, epoch, n_edges)
            return type(sums)(channels=1.1 * sums.channels, sum_w=sums.sum_w, sum_w2=sums.sum_w2)

    with pytest.raises(AssertionError, match=r"differs from the exact channels"):
        gidr.testing.run_check(BiasedSampled, "unbiased", registry=REGISTRY)
