"""The worked third-party plugin (examples/gidr-plugin-example), found through its entry point.

The plugin is made discoverable by the ``example_plugin`` fixture (conftest.py), which writes
the package's installed metadata into ``tmp_path``: nothing is pip-installed.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp

import gidr.plugins
import gidr.testing
from gidr import Pipeline
from gidr.metrics import knn_accuracy
from gidr.types import Context
from gidr.validation import GidrValueError
from tests.helpers import assert_matches

BUILTIN_PRESETS = ["gdr-tsne", "gdr-tsne-frob", "gdr-umap", "gdr-umap-frob", "tsne", "umap"]
KERNELS = [(1.0, 1.0), (1.577, 0.895), (0.7, 1.3)]


@pytest.fixture
def hellinger_module(example_source):
    """gidr_example.loss imported straight from the example's source tree."""
    import gidr_example.loss

    return gidr_example.loss


@pytest.fixture
def registries(example_plugin):
    """(plugin manager, stage registry, preset registry) built fresh with the example loaded."""
    pm = gidr.plugins.make_plugin_manager()
    registry, presets = gidr.plugins.build_registries(pm)
    return pm, registry, presets


def _random_problem(n_samples: int = 24, n_components: int = 2, seed: int = 0):
    """A symmetric sparse P with zero diagonal (about 20% density) and a random Y."""
    rng = np.random.default_rng(seed)
    dense = rng.uniform(0.05, 1.0, size=(n_samples, n_samples)) * (rng.uniform(size=(n_samples, n_samples)) < 0.2)
    dense = np.triu(dense, 1)
    P = sp.csr_matrix(dense + dense.T)
    Y = rng.normal(scale=1.5, size=(n_samples, n_components))
    return P, Y


# ---------------------------------------------------------------------- packaging
def test_pyproject_declares_the_entry_point(example_project):
    project = example_project
    assert project["name"] == "gidr-plugin-example"
    assert project["entry-points"]["gidr.plugins"] == {"example": "gidr_example.plugin"}


def test_entry_point_loads_the_plugin(registries):
    pm, registry, presets = registries
    plugin = pm.get_plugin("example")
    assert plugin is not None and plugin.__name__ == "gidr_example.plugin"
    from gidr_example.loss import HellingerLoss

    assert registry.get("loss", "hellinger") is HellingerLoss
    assert registry.backends("loss", "hellinger") == ["example"]
    assert presets.names() == sorted([*BUILTIN_PRESETS, "gdr-hellinger"])


def test_autoload_disabled_makes_hellinger_unknown(example_plugin, monkeypatch):
    monkeypatch.setenv("GIDR_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = gidr.plugins.make_plugin_manager()
    registry, presets = gidr.plugins.build_registries(pm)
    assert pm.get_plugin("example") is None
    with pytest.raises(GidrValueError, match=r"loss stage name must be one of .*'frobenius'.*'kl'.*Got 'hellinger'"):
        Pipeline.from_preset("gdr-umap", loss="hellinger", registry=registry, presets=presets)


# ---------------------------------------------------------------------- resolution
@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_hellinger_resolves_for_any_backend(registries, backend):
    _, registry, presets = registries
    pipeline = Pipeline.from_preset("gdr-umap", loss="hellinger", backend=backend, registry=registry,
                                    presets=presets)
    assert pipeline.stages["loss"].name == "hellinger"
    assert pipeline.stages["loss"].backend == "example"
    assert pipeline.config["loss"] == {"name": "hellinger"}


def test_preset_from_the_plugin_builds(registries):
    _, registry, presets = registries
    pipeline = Pipeline.from_preset("gdr-hellinger", registry=registry, presets=presets)
    assert pipeline.stages["loss"].name == "hellinger"
    assert presets.describe("gdr-hellinger").startswith("GDR, UMAP-like, with the Hellinger loss")


def test_normalized_is_rejected_with_the_reason(registries):
    _, registry, presets = registries
    with pytest.raises(GidrValueError, match=r"'normalized' switch with loss 'hellinger' must be False\. "
                                             r"Got True\. .*unnormalized P and Q only"):
        Pipeline.from_preset("gdr-tsne", loss="hellinger", registry=registry, presets=presets)


def test_end_to_end_on_digits(registries):
    from sklearn.datasets import load_digits

    _, registry, presets = registries
    digits = load_digits()
    X, labels = digits.data[:400], digits.target[:400]
    pipeline = Pipeline.from_preset("gdr-umap", loss="hellinger", backend="reference", registry=registry,
                                    presets=presets, n_epochs=100, random_state=0)
    result = pipeline.run(X)
    assert result.config["loss"]["name"] == "hellinger"
    assert result.config["resolved"]["backends"]["loss"] == "example"
    assert result.config["resolved"]["n_epochs"] == 100
    assert knn_accuracy(np.asarray(result), labels, k=15) > 0.85


def test_loss_decreases_with_exact_repulsion(registries):
    """With exact repulsion the gdr optimizer follows the true gradient: the loss goes down."""
    from sklearn.datasets import load_digits

    _, registry, presets = registries
    pipeline = Pipeline.from_preset("gdr-hellinger", repulsion="exact", backend="reference", registry=registry,
                                    presets=presets, n_epochs=40, random_state=0)
    history = [loss for _, loss in pipeline.run(load_digits().data[:150], loss_every=10).loss_history]
    assert len(history) == 4
    assert all(later < earlier for earlier, later in zip(history, history[1:]))


@pytest.mark.parametrize("repulsion", ["sampled", "exact", "barnes_hut"])
def test_runs_with_the_fastest_backend(registries, repulsion):
    """backend='auto' picks the fastest stages installed; they must accept a third-party loss."""
    from sklearn.datasets import load_digits

    _, registry, presets = registries
    pipeline = Pipeline.from_preset("gdr-hellinger", repulsion=repulsion, registry=registry, presets=presets,
                                    n_epochs=30, random_state=0)
    embedding = np.asarray(pipeline.run(load_digits().data[:150]))
    assert embedding.shape == (150, 2) and np.all(np.isfinite(embedding))


def test_numba_optimizer_with_the_plugin_matches_the_reference(registries):
    """The numba gdr optimizer runs the loss through numba_forces and reproduces the reference."""
    from sklearn.datasets import load_digits

    _, registry, presets = registries
    if "numba" not in registry.backends("optimizer", "gdr"):
        pytest.skip("the numba backend has no gdr optimizer")
    X = load_digits().data[:150]
    runs = {}
    for backend in ("numba", "reference"):
        pipeline = Pipeline.from_preset("gdr-hellinger", backend=backend, registry=registry, presets=presets,
                                        n_epochs=30, random_state=0)
        assert pipeline.stages["optimizer"].backend == backend
        runs[backend] = np.asarray(pipeline.run(X))
    assert_matches(actual=runs["numba"], reference=runs["reference"], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------- the math
@pytest.mark.parametrize("a, b", KERNELS)
def test_value_matches_the_pairwise_definition(hellinger_module, a, b):
    P, Y = _random_problem(n_samples=15)
    dense = P.toarray()
    expected = 0.0
    for i in range(len(Y)):
        for j in range(i + 1, len(Y)):
            w = 1.0 / (1.0 + a * np.sum((Y[i] - Y[j]) ** 2) ** b)
            expected += (np.sqrt(dense[i, j]) - np.sqrt(w)) ** 2
    assert hellinger_module.hellinger_value(P, Y, a, b) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("check", gidr.testing.checks_for("loss"))
def test_hellinger_passes_the_conformance_suite(registries, check):
    """gidr's own checks, as any plugin runs them: gradient vs finite differences, forces ==
    force_scale * gradient, the value estimate, the kernel, the numba kernels vs NumPy, ..."""
    _, registry, _ = registries
    gidr.testing.run_check(registry.get("loss", "hellinger"), check, registry=registry)


def test_zero_distance_terms_are_zero_when_b_differs_from_one(hellinger_module):
    D = np.array([0.0, 0.0])
    assert np.all(hellinger_module.hellinger_attraction(D, np.array([0.5, 1.0]), 1.577, 0.895) == 0.0)
    assert np.all(hellinger_module.hellinger_repulsion(D, 1.577, 0.895) == 0.0)


def test_gradient_with_duplicate_points_is_finite(hellinger_module):
    P, Y = _random_problem(seed=3)
    Y[1] = Y[0]
    assert np.all(np.isfinite(hellinger_module.hellinger_gradient(P, Y, 1.577, 0.895)))


def test_numba_kernels_are_none_without_numba(hellinger_module, monkeypatch):
    import gidr_example.plugin

    monkeypatch.setitem(sys.modules, "numba", None)  # import numba -> ImportError
    monkeypatch.delitem(sys.modules, "gidr_example._numba_forces", raising=False)
    monkeypatch.delattr(sys.modules["gidr_example"], "_numba_forces", raising=False)
    assert gidr_example.plugin.numba_kernels(hellinger_module.HellingerLoss(), Context(n_samples=10)) is None
