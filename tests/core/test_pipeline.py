"""Tests of gidr.pipeline: building from presets, overrides, validation at build time, run()."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

import gidr.plugins
from gidr import Pipeline
from gidr.plugins import build_registries, make_plugin_manager
from gidr.stages import KINDS
from gidr.types import Result
from gidr.validation import GidrValueError

PRESETS = ["gdr-tsne", "gdr-tsne-frob", "gdr-umap", "gdr-umap-frob", "tsne", "umap"]
SMALL = dict(backend="reference", n_epochs=30, random_state=0)

#: Table 2 of the paper (plus KL vs Frobenius): switch -> (where it lives, how to flip it).
FLIP = {"spectral": "random", "pca": "spectral", "random": "spectral", "fuzzy_union": "mean",
        "mean": "fuzzy_union", "kl": "frobenius", "frobenius": "kl", "fit": "one", "one": "fit"}
TABLE_2 = {
    "normalized": ("pipeline", lambda current: not current),
    "scalars": ("pipeline", FLIP.get),
    "init": ("stage name", FLIP.get),
    "symmetrize": ("stage name", FLIP.get),
    "loss": ("stage name", FLIP.get),
    "pseudo_distance": ("similarity", lambda current: not current),
    "symmetric_attraction": ("optimizer", lambda current: not current),
}
#: (preset, switch) pairs that are incompatible by design, with the reason the error must give.
INCOMPATIBLE = {
    ("umap", "normalized"): r"'normalized' switch used with optimizer 'umap_sgd' must be False\. Got True\. "
                            r"umap_sgd samples repulsions in proportion to 1 - p",
    ("umap", "loss"): r"loss used with optimizer 'umap_sgd' must be UMAP's cross-entropy \(a loss declaring "
                      r"edge_sampling_sgd, e\.g\. 'kl'\)\. Got 'frobenius'\.",
    ("tsne", "normalized"): r"'normalized' switch used with optimizer 'tsne' must be True\. Got False\.",
}


@pytest.fixture(scope="module")
def registries():
    """A fresh (stage registry, preset registry) with the built-in backends only."""
    return build_registries(make_plugin_manager(load_entrypoints=False))


@pytest.fixture
def build(registries):
    registry, presets = registries

    def build(preset: str = "gdr-umap", **overrides) -> Pipeline:
        return Pipeline.from_preset(preset, registry=registry, presets=presets, **overrides)

    return build


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    return load_digits().data[:150]


def _flatten(config: dict) -> dict:
    return {(section, key): value for section, table in config.items() for key, value in table.items()}


def _current(pipeline: Pipeline, switch: str):
    where, _ = TABLE_2[switch]
    config = pipeline.config
    if where == "pipeline":
        settings = {"normalized": False, "scalars": "fit", **config["pipeline"]}
        return settings[switch]
    if where == "stage name":
        return config[switch]["name"]
    return getattr(pipeline.stages[where], switch)


# ---------------------------------------------------------------------- presets and switches
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_builds(build, preset):
    pipeline = build(preset)
    config = pipeline.config
    assert config["pipeline"]["preset"] == preset
    assert set(pipeline.stages) == set(KINDS)
    for kind in KINDS:
        stage = pipeline.stages[kind]
        assert stage.kind == kind
        assert stage.name == config[kind]["name"]  # "auto" too: a stage of its own
        assert f"{kind}={config[kind]['name']!r}" in repr(pipeline)
    if config["neighbors"]["name"] == "auto":  # it picks exact neighbours for small inputs
        assert pipeline.neighbors_for(np.zeros((150, 4))).name == "exact"


@pytest.mark.parametrize("switch", list(TABLE_2))
@pytest.mark.parametrize("preset", PRESETS)
def test_table_2_switch_is_one_override(build, preset, switch):
    before = build(preset)
    where, flip = TABLE_2[switch]
    value = flip(_current(before, switch))
    if (preset, switch) in INCOMPATIBLE:
        with pytest.raises(GidrValueError, match=INCOMPATIBLE[(preset, switch)]):
            before.replace(**{switch: value})
        return
    after = before.replace(**{switch: value})
    assert _current(after, switch) == value
    old, new = _flatten(before.config), _flatten(after.config)
    changed = {key for key in old.keys() | new.keys() if old.get(key, "<unset>") != new.get(key, "<unset>")}
    if where == "pipeline":
        assert changed == {("pipeline", switch)}
        changed_kind = None
    elif where == "stage name":
        assert after.config[switch] == {"name": value}
        assert {section for section, _ in changed} == {switch}
        changed_kind = switch
    else:
        assert changed == {(where, switch)}
        changed_kind = where
    for kind in KINDS:
        if kind != changed_kind:
            assert type(after.stages[kind]) is type(before.stages[kind]), kind
            assert after.stages[kind].values == before.stages[kind].values, kind


def test_scalars_switch_changes_the_resolved_kernel(build, digits):
    fitted = build("gdr-umap", scalars="fit", **SMALL).replace(n_epochs=1).run(digits[:60])
    one = build("gdr-umap", scalars="one", **SMALL).replace(n_epochs=1).run(digits[:60])
    assert fitted.config["resolved"]["a"] == pytest.approx(1.577, abs=0.01)
    assert fitted.config["resolved"]["b"] == pytest.approx(0.895, abs=0.01)
    assert (one.config["resolved"]["a"], one.config["resolved"]["b"]) == (1.0, 1.0)


def test_backend_override(build, registries):
    pipeline = build("gdr-umap", backend="reference")
    assert pipeline.config["pipeline"]["backend"] == "reference"
    assert {stage.backend for stage in pipeline.stages.values()} == {"reference"}
    backends = ", ".join(repr(b) for b in registries[0].backends())
    with pytest.raises(GidrValueError, match=rf"^The 'backend' parameter must be 'auto' or one of {backends}\. "
                                             r"Got 'gpu'\.$"):
        build("gdr-umap", backend="gpu")


def test_random_state_override(build):
    assert build("gdr-umap", random_state=7).config["pipeline"]["random_state"] == 7
    with pytest.raises(GidrValueError, match=r"'random_state' parameter must be a non-negative int, a Generator or "
                                             r"None\. Got -1\."):
        build("gdr-umap", random_state=-1)
    with pytest.raises(GidrValueError, match=r"'random_state' parameter must be an int, a Generator or None\. "
                                             r"Got 'seed'\."):
        build("gdr-umap", random_state="seed")


@pytest.mark.parametrize("key", ["similarity.n_neighbors", "similarity__n_neighbors", "n_neighbors"])
def test_parameter_override_spellings(build, key):
    pipeline = build("gdr-umap", **{key: 10})
    assert pipeline.stages["similarity"].n_neighbors == 10
    assert pipeline.config["similarity"]["n_neighbors"] == 10


def test_stage_and_its_parameter_in_one_override(build):
    pipeline = build("gdr-umap", similarity="tsne", perplexity=10.0)
    assert pipeline.stages["similarity"].name == "tsne"
    assert pipeline.stages["similarity"].perplexity == 10.0


def test_stage_override_as_a_table(build):
    pipeline = build("gdr-umap", repulsion={"name": "sampled", "n_negative": 3})
    assert pipeline.stages["repulsion"].n_negative == 3


def test_unknown_override_lists_valid_names(build):
    with pytest.raises(GidrValueError, match=r"^The override 'perplexty' must be a stage kind, a pipeline switch or a "
                                             r"parameter of the chosen stages: .*\bn_neighbors\b.*\bnormalized\b.*"
                                             r"Got 'perplexty'\.$"):
        build("gdr-umap", perplexty=30)


def test_unknown_kind_in_dotted_override(build):
    with pytest.raises(GidrValueError, match=r"^The stage kind in override 'simlarity\.n_neighbors' must be one of "
                                             r"'neighbors', .*Got 'simlarity'\.$"):
        build("gdr-umap", **{"simlarity.n_neighbors": 10})


def test_dotted_override_of_an_undeclared_parameter(build):
    with pytest.raises(GidrValueError, match=r"^A parameter name of similarity 'umap' must be one of 'n_neighbors', "
                                             r"'pseudo_distance', 'disconnection_distance', 'self_in_target'\. Got 'perplexity'\.$"):
        build("gdr-umap", **{"similarity.perplexity": 30.0})


def test_bad_parameter_value(build):
    with pytest.raises(GidrValueError, match=r"^The 'perplexity' parameter of similarity 'tsne' must be a float in "
                                             r"\(0, inf\)\. Got -3\.0\.$"):
        build("tsne", perplexity=-3.0)


def test_bad_pipeline_switch_value(build):
    with pytest.raises(GidrValueError, match=r"^The 'normalized' parameter of the pipeline must be a bool\. "
                                             r"Got 'yes'\.$"):
        build("gdr-umap", normalized="yes")


def test_bad_stage_override_type(build):
    with pytest.raises(GidrValueError, match=r"^The 'loss' override must be a stage name \(str\) or a table with "
                                             r"'name'\. Got 3\.$"):
        build("gdr-umap", loss=3)


@pytest.mark.parametrize("overrides, message", [
    (dict(preset="umap", normalized=True), r"optimizer 'umap_sgd' must be False\. Got True\. umap_sgd samples "
                                           r"repulsions in proportion to 1 - p, which only the unnormalized loss has"),
    (dict(preset="umap", repulsion="exact"), r"repulsion used with optimizer 'umap_sgd' must be a per-edge sampler "
                                             r"\(e\.g\. 'sampled'\)\. Got 'exact'\."),
    (dict(preset="gdr-umap", repulsion="barnes_hut", n_components=4),
     r"'n_components' setting for repulsion 'barnes_hut' must be at most 3 .*Got 4\. "
     r"Use repulsion 'exact' or 'sampled'"),
    (dict(preset="tsne", n_components=4), r"'n_components' setting for repulsion 'barnes_hut' must be at most 3"),
])
def test_incompatible_combinations_fail_at_build(build, overrides, message):
    with pytest.raises(GidrValueError, match=message):
        build(**overrides)


def test_numpy_integer_n_epochs_is_accepted(build, digits):
    pipeline = build("gdr-umap", backend="reference", random_state=0, n_epochs=np.int64(5))
    result = pipeline.run(digits[:60])
    assert result.config["resolved"]["n_epochs"] == 5
    assert type(result.config["resolved"]["n_epochs"]) is int


# ---------------------------------------------------------------------- configuration objects
def test_from_config_accepts_string_sections(registries):
    registry, presets = registries
    config = presets.get("gdr-umap")
    config["loss"] = "frobenius"
    pipeline = Pipeline.from_config(config, registry=registry, presets=presets)
    assert pipeline.stages["loss"].name == "frobenius"


def test_from_config_missing_section(registries):
    registry, presets = registries
    config = presets.get("gdr-umap")
    del config["loss"]
    with pytest.raises(GidrValueError, match=r"^The 'loss' section of the configuration must be a table with a 'name' "
                                             r"key\. Got None\.$"):
        Pipeline.from_config(config, registry=registry, presets=presets)


def test_from_config_unknown_pipeline_switch(registries):
    registry, presets = registries
    config = presets.get("gdr-umap")
    config["pipeline"]["normalised"] = True
    with pytest.raises(GidrValueError, match=r"^A pipeline switch must be one of 'normalized', .*Got 'normalised'\.$"):
        Pipeline.from_config(config, registry=registry, presets=presets)


def test_unknown_preset(build):
    with pytest.raises(GidrValueError, match=r"^The preset name must be one of 'gdr-tsne', .*'umap'\. Got 'UMAP'\.$"):
        build("UMAP")


def test_pipeline_is_immutable(build):
    original = build("gdr-umap")
    before = original.config
    changed = original.replace(loss="frobenius", n_neighbors=10)
    assert changed is not original
    assert original.config == before
    assert original.stages["loss"].name == "kl" and changed.stages["loss"].name == "frobenius"
    original.config["loss"]["name"] = "mutated copy"
    original.stages["loss"] = None
    assert original.config == before and original.stages["loss"].name == "kl"
    with pytest.raises(AttributeError, match=r"loss 'kl' is immutable"):
        original.stages["loss"].epsilon = 1.0


def test_default_registries_are_the_process_wide_ones():
    pipeline = Pipeline.from_preset("gdr-umap", **SMALL)
    assert pipeline.stages["optimizer"].name == "gdr"
    assert pipeline.registry is gidr.plugins.get_registry()


# ---------------------------------------------------------------------- run()
@pytest.fixture(scope="module")
def small_result(registries, digits):
    registry, presets = registries
    pipeline = Pipeline.from_preset("gdr-umap", registry=registry, presets=presets, **SMALL)
    return pipeline, pipeline.run(digits, loss_every=10)


def test_result_contents(small_result, digits):
    pipeline, result = small_result
    assert isinstance(result, Result)
    embedding = np.asarray(result)
    assert embedding.shape == result.shape == (len(digits), 2) and len(result) == len(digits)
    np.testing.assert_array_equal(embedding, result.embedding)
    assert np.asarray(result, dtype=np.float32).dtype == np.float32
    assert set(result.timings) == {"neighbors", "similarity", "symmetrize", "init", "optimize"}
    assert all(seconds >= 0 for seconds in result.timings.values())
    assert [epoch for epoch, _ in result.loss_history] == [10, 20, 30]
    assert all(np.isfinite(loss) for _, loss in result.loss_history)
    resolved = result.config["resolved"]
    assert resolved["n_epochs"] == 30 and resolved["seed"] == 0 and resolved["n_neighbors"] == 15
    assert set(resolved["backends"]) == set(KINDS)
    assert result.config["neighbors"]["name"] == "exact"
    assert result.config["resolved"]["neighbors"] == {"name": "exact", "backend": "reference",
                                                      "metric": "euclidean", "metric_kwds": None}
    assert set(result.stages) == set(KINDS) and result.stages["neighbors"].name == "exact"
    for kind in set(KINDS) - {"neighbors"}:
        assert type(result.stages[kind]) is type(pipeline.stages[kind]), kind
        assert result.stages[kind].values == pipeline.stages[kind].values, kind
    assert result.graph.n_samples == len(digits) and result.graph.n_neighbors == 15
    P = result.affinities.P
    assert P.shape == (len(digits), len(digits)) and not result.affinities.normalized
    assert abs(P - P.T).max() < 1e-12


def test_running_twice_gives_identical_results(small_result, digits):
    pipeline, first = small_result
    second = pipeline.run(digits, loss_every=10)
    np.testing.assert_array_equal(np.asarray(second), np.asarray(first))
    assert second.loss_history == first.loss_history


def test_the_callers_arrays_are_not_modified(build, digits):
    X = digits[:80].copy()
    Y0 = np.random.default_rng(0).normal(size=(80, 2))
    X_before, Y0_before = X.copy(), Y0.copy()
    result = build("gdr-umap", init=Y0, **SMALL).replace(n_epochs=5).run(X)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(Y0, Y0_before)
    assert not np.shares_memory(np.asarray(result), Y0)


def test_callback_can_stop_the_run(build, digits):
    calls = []

    def callback(epoch, loss, Y):
        calls.append((epoch, loss, Y.shape))
        return epoch >= 10

    result = build("gdr-umap", **SMALL).run(digits[:80], callback=callback, callback_every=5)
    assert [epoch for epoch, _, _ in calls] == [5, 10]
    assert calls[0][2] == (80, 2)
    assert [epoch for epoch, _ in result.loss_history] == [5, 10]


def test_progress_is_advanced_once_per_epoch(build, digits):
    class Progress:
        count = 0

        def update(self, n):
            self.count += n

    progress = Progress()
    build("gdr-umap", **SMALL).replace(n_epochs=7).run(digits[:60], progress=progress)
    assert progress.count == 7


def test_too_few_samples_for_the_neighbors_warns(build, digits):
    with pytest.warns(UserWarning, match=r"similarity 'umap' asks for 15 neighbours but there are only 10 samples; "
                                         r"using 9\."):
        build("gdr-umap", **SMALL).replace(n_epochs=3).run(digits[:10])


def test_one_sample_is_rejected(build, digits):
    with pytest.raises(GidrValueError, match=r"at least 2 samples\. Got 1 sample\(s\)\."):
        build("gdr-umap", **SMALL).run(digits[:1])


def test_n_epochs_none_keeps_the_presets_number():
    """The study and the estimators pass n_epochs=None to mean "the preset's own number"."""
    assert Pipeline.from_preset("gdr-tsne-frob", n_epochs=None).config["pipeline"]["n_epochs"] == 1000
    assert Pipeline.from_preset("gdr-tsne-frob", n_epochs=40).config["pipeline"]["n_epochs"] == 40
    assert Pipeline.from_preset("gdr-tsne", n_epochs=None).n_epochs_for(70_000) == 1000
    assert Pipeline.from_preset("gdr-tsne", n_epochs=40).n_epochs_for(70_000) == 40
    assert Pipeline.from_preset("gdr-umap", n_epochs=None).config["pipeline"].get("n_epochs") is None


@pytest.mark.parametrize("make", [np.random.default_rng, np.random.RandomState])
def test_a_generator_as_random_state_is_advanced_by_each_run(make):
    """scikit-learn's convention: runs with one generator differ; the same state reproduces them."""
    X = load_digits().data[:150]
    pipeline = Pipeline.from_preset("gdr-umap", random_state=make(0), n_epochs=5)
    first, second = np.asarray(pipeline.run(X)), np.asarray(pipeline.run(X))
    assert not np.array_equal(first, second)
    again = np.asarray(Pipeline.from_preset("gdr-umap", random_state=make(0), n_epochs=5).run(X))
    np.testing.assert_array_equal(again, first)


def test_min_dist_above_spread_is_refused_by_the_pipeline():
    with pytest.raises(GidrValueError, match=r"The 'min_dist' parameter of the pipeline must be a float in "
                                             r"\[0, spread=1.0\]\. Got 2\.0"):
        Pipeline.from_preset("umap", min_dist=2.0)
