"""Stages are asked what they can do, never what they are called (issue 11).

A plugin's repulsion named "sampled" is called, not bypassed, by the numba gdr; a subclass of
the built-in sampler that replaces ``estimate`` is called too; ``umap_sgd`` asks for
``per_edge_sampler``; ``neighbors="auto"`` is a stage whose parameters reach only the
candidate that declares them; a third-party loss with value terms reports a finite loss on
inputs too large for its exact value.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from gidr import Pipeline
from gidr.auto import AUTO_EXACT_MAX_SAMPLES, AutoNeighbors
from gidr.plugins import build_registries, make_plugin_manager
from gidr.stages import Repulsion
from gidr.stages.repulsion import sample_scaling
from gidr.validation import GidrValueError, Interval, Param
from gidr_reference import stages_forces as reference_forces
from tests.helpers import StagePlugin

numba = pytest.importorskip("numba")

from gidr_numba import stages_forces as numba_forces  # noqa: E402

#: Above every built-in stage's priority (numba's is 10).
PLUGIN_PRIORITY = 100


def blobs(n: int, n_features: int = 10, seed: int = 0) -> np.ndarray:
    """Ten well-separated Gaussian blobs."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=10.0, size=(10, n_features))
    return centers[rng.integers(0, 10, n)] + rng.normal(size=(n, n_features))


def registries_with(*classes):
    """(registry, presets) of a fresh plugin manager: the built-ins plus ``classes``."""
    return build_registries(make_plugin_manager(load_entrypoints=False, extra_plugins=[StagePlugin(*classes)]))


# ---------------------------------------------------------------------- repulsion: per_edge_sampler
class PluginSampled(Repulsion):
    """A plugin's own repulsion called "sampled": the reference's draws, with its calls counted."""

    name = "sampled"
    backend = "toy"
    priority = PLUGIN_PRIORITY
    # A stage that takes a built-in's name receives the presets' parameters for that name.
    params = (Param("n_negative", 1, (Interval(int, 1, None),), "Negatives per edge."),
              Param("pool_size", 0, (Interval(int, 0, None),), "Negatives' pool per epoch."))
    calls: list = []

    def estimate(self, Y, loss, ctx, epoch, n_edges=None):
        PluginSampled.calls.append(epoch)
        reference = reference_forces.SampledRepulsion(n_negative=self.n_negative, pool_size=self.pool_size)
        return reference.estimate(Y, loss, ctx, epoch, n_edges)


class CountingSampled(numba_forces.SampledRepulsion):
    """The built-in numba sampler with ``estimate`` replaced (counts its calls): not the
    contract's draws any more, as far as the optimizer knows, so it must be called."""

    backend = "toy"
    priority = PLUGIN_PRIORITY
    calls: list = []

    def estimate(self, Y, loss, ctx, epoch, n_edges=None):
        CountingSampled.calls.append(epoch)
        return super().estimate(Y, loss, ctx, epoch, n_edges)


class DeclaredSampled(numba_forces.SampledRepulsion):
    """As CountingSampled, but it says again that it samples per edge: it is fused."""

    backend = "toy"
    priority = PLUGIN_PRIORITY
    per_edge_sampler = True
    calls: list = []

    def estimate(self, Y, loss, ctx, epoch, n_edges=None):
        DeclaredSampled.calls.append(epoch)
        return super().estimate(Y, loss, ctx, epoch, n_edges)


def run_gdr_tsne(repulsion_class, n_epochs=6):
    registry, presets = registries_with(repulsion_class)
    repulsion_class.calls.clear()
    pipeline = Pipeline.from_preset("gdr-tsne", registry=registry, presets=presets, n_epochs=n_epochs,
                                    random_state=0, init="random")
    assert type(pipeline.stages["repulsion"]) is repulsion_class
    assert pipeline.stages["optimizer"].backend == "numba"
    result = pipeline.run(blobs(200))
    assert np.all(np.isfinite(np.asarray(result)))
    return result


def test_declarations_of_the_built_in_estimators():
    for module in (reference_forces, numba_forces):
        assert module.SampledRepulsion.per_edge_sampler is True
        assert module.ExactRepulsion.per_edge_sampler is False
        assert module.BarnesHutRepulsion.per_edge_sampler is False
    assert reference_forces.SampledRepulsion(n_negative=4).draws_per_edge() == 4
    with pytest.raises(NotImplementedError, match=r"repulsion 'exact' does not sample per edge"):
        reference_forces.ExactRepulsion().draws_per_edge()


def test_replacing_estimate_withdraws_the_per_edge_declaration():
    assert PluginSampled.per_edge_sampler is False
    assert CountingSampled.per_edge_sampler is False  # reset by Repulsion.__init_subclass__
    assert DeclaredSampled.per_edge_sampler is True

    class Renamed(numba_forces.SampledRepulsion):  # estimate untouched: still the contract's draws
        name = "renamed_sampler"

    assert Renamed.per_edge_sampler is True


def test_a_plugins_sampled_repulsion_is_called_by_the_numba_gdr():
    result = run_gdr_tsne(PluginSampled)
    assert result.config["resolved"]["backends"]["repulsion"] == "toy"
    assert PluginSampled.calls == list(range(6))  # once per epoch, never bypassed


def test_a_subclass_of_the_sampler_that_replaces_estimate_is_called():
    run_gdr_tsne(CountingSampled)
    assert CountingSampled.calls == list(range(6))


def test_a_subclass_that_declares_per_edge_sampling_is_fused():
    """The control of the two tests above: what is declared a per-edge sampler is fused into the
    gather (its estimate is not called), and gives the built-in sampler's bits."""
    fused = run_gdr_tsne(DeclaredSampled)
    assert DeclaredSampled.calls == []
    registry, presets = build_registries(make_plugin_manager(load_entrypoints=False))
    builtin = Pipeline.from_preset("gdr-tsne", registry=registry, presets=presets, n_epochs=6, random_state=0,
                                   init="random").run(blobs(200))
    np.testing.assert_array_equal(np.asarray(fused), np.asarray(builtin))


def test_umap_sgd_refuses_a_repulsion_that_does_not_sample_per_edge():
    registry, presets = registries_with(PluginSampled)
    with pytest.raises(GidrValueError, match=r"^The repulsion used with optimizer 'umap_sgd' must be a per-edge "
                                             r"sampler \(e\.g\. 'sampled'\)\. Got 'sampled'\. umap_sgd draws its own "
                                             r"negative samples"):
        Pipeline.from_preset("umap", registry=registry, presets=presets)


def test_umap_sgd_accepts_a_sampler_under_another_name():
    class OtherSampler(numba_forces.SampledRepulsion):
        name, backend = "other_sampler", "toy"

    registry, presets = registries_with(OtherSampler)
    pipeline = Pipeline.from_preset("umap", registry=registry, presets=presets, repulsion="other_sampler",
                                    n_negative=2, n_epochs=3, random_state=0, init="random")
    assert pipeline.stages["repulsion"].draws_per_edge() == 2
    assert np.all(np.isfinite(np.asarray(pipeline.run(blobs(120)))))


def test_sample_scaling_is_the_sampled_rescaling():
    m = np.array([0, 1, 2, 3])
    channel_scale, pair_scale = sample_scaling(4, m, normalized=True)
    np.testing.assert_array_equal(channel_scale, [0.0, 3.0, 1.5, 1.0])  # (n - 1) / m_i, 0 without draws
    assert pair_scale == 4 * 3 / 6
    channel_scale, pair_scale = sample_scaling(4, m, normalized=False)
    np.testing.assert_array_equal(channel_scale, np.ones(4))
    assert pair_scale == 2.0
    assert sample_scaling(3, np.zeros(3, dtype=int), True)[1] == 0.0


# ---------------------------------------------------------------------- neighbors="auto"
def test_auto_neighbors_passes_n_trees_to_nndescent_only():
    pipeline = Pipeline.from_preset("gdr-umap", n_trees=4, n_epochs=2, random_state=0, init="random")
    assert isinstance(pipeline.stages["neighbors"], AutoNeighbors)
    assert pipeline.stages["neighbors"].n_trees == 4
    small = pipeline.neighbors_for(np.zeros((300, 10)))
    assert small.name == "exact" and "n_trees" not in small.values
    large = blobs(AUTO_EXACT_MAX_SAMPLES + 1000)
    result = pipeline.run(large)
    resolved = result.config["resolved"]["neighbors"]
    assert resolved["name"] == "nndescent" and resolved["n_trees"] == 4
    assert result.stages["neighbors"].name == "nndescent" and result.stages["neighbors"].n_trees == 4
    assert result.config["neighbors"]["name"] == "nndescent"


def test_auto_neighbors_picks_exact_for_small_inputs():
    result = Pipeline.from_preset("gdr-umap", n_trees=4, n_epochs=2, random_state=0, init="random").run(blobs(300))
    assert result.config["resolved"]["neighbors"]["name"] == "exact"
    assert "n_trees" not in result.config["resolved"]["neighbors"]
    assert np.all(np.isfinite(np.asarray(result)))


def test_a_bad_candidate_parameter_is_rejected_at_construction():
    with pytest.raises(GidrValueError, match=r"^The 'n_trees' parameter of neighbors 'auto' must be an int .*"
                                             r"Got -1\.$"):
        Pipeline.from_preset("gdr-umap", n_trees=-1)


def test_auto_neighbors_declares_its_candidates_parameters():
    registry, _ = build_registries(make_plugin_manager(load_entrypoints=False))
    bound = AutoNeighbors.bind(registry, "auto")
    candidates = {name: registry.get("neighbors", name, "auto") for name in AutoNeighbors.SMALL}
    expected = set().union(*(cls.param_names() for cls in candidates.values()))
    assert set(bound.param_names()) == expected and "n_trees" in expected


# ---------------------------------------------------------------------- a plugin loss at scale
@pytest.fixture
def example_plugin_registries(monkeypatch):
    """The example plugin registered on a fresh manager (its src put on sys.path, as
    tests/plugins/conftest.py does); the modules this fixture imported are dropped afterwards
    (not those another test module imported before it: their classes must stay importable,
    e.g. for the conformance suite's pickle check)."""
    from tests.plugins.conftest import EXAMPLE_SRC

    already = set(sys.modules)
    monkeypatch.syspath_prepend(str(EXAMPLE_SRC))
    import gidr_example.plugin

    yield build_registries(make_plugin_manager(load_entrypoints=False, extra_plugins=[gidr_example.plugin]))
    for module in [m for m in sys.modules if (m == "gidr_example" or m.startswith("gidr_example."))
                   and m not in already]:
        del sys.modules[module]


def test_the_example_hellinger_loss_reports_a_finite_loss_at_5000_points(example_plugin_registries):
    """Above EXACT_MAX_SAMPLES (3,000) points a loss without value terms reports NaN; the
    Hellinger loss defines them, so the numba gdr's monitor gets finite estimates."""
    from gidr_reference.loss_estimate import EXACT_MAX_SAMPLES

    registry, presets = example_plugin_registries
    n = 5000
    assert n > EXACT_MAX_SAMPLES
    pipeline = Pipeline.from_preset("gdr-hellinger", registry=registry, presets=presets, n_epochs=4,
                                    random_state=0, init="random")
    result = pipeline.run(blobs(n), loss_every=2)
    assert result.config["resolved"]["backends"]["optimizer"] == "numba"
    assert result.stages["loss"].name == "hellinger"
    assert [epoch for epoch, _ in result.loss_history] == [2, 4]
    assert all(np.isfinite(value) and value > 0 for _, value in result.loss_history), result.loss_history
