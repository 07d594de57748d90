"""Defaults agree across layers (as openTSNE checks with ``inspect.signature``).

An estimator's default, the preset it runs and the stage parameters' declared defaults must
say the same thing; where an estimator's default deliberately differs (None: "the preset's"),
the documented mapping is checked instead. Same-named stages of different backends declare
identical parameters.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import gidr
import gidr.testing
from gidr.pipeline import PIPELINE_PARAMS
from gidr.plugins import get_presets, get_registry
from gidr.stages import KINDS

#: estimator parameter -> (section, key) of the preset it overrides: a pipeline switch, a stage's
#: name ("name") or a stage parameter.
COMMON = {"n_components": ("pipeline", "n_components"), "metric": ("neighbors", "metric"),
          "random_state": ("pipeline", "random_state"), "backend": ("pipeline", "backend"),
          "init": ("init", "name"), "pca": ("pipeline", "pca")}
#: The supervision switches of UMAP and GDR (umap-learn's names and defaults; target_n_neighbors=-1
#: is the pipeline's None, "the data's number of neighbours").
TARGETS = {"target_metric": ("pipeline", "target_metric"), "target_weight": ("pipeline", "target_weight"),
           "target_n_neighbors": ("pipeline", "target_n_neighbors"), "a": ("pipeline", "a"), "b": ("pipeline", "b"),
           "set_op_mix_ratio": ("symmetrize", "set_op_mix_ratio"),
           "repulsion_strength": ("loss", "repulsion_strength"), "metric_kwds": ("neighbors", "metric_kwds"),
           "disconnection_distance": ("similarity", "disconnection_distance"),
           **{name: ("pipeline", name) for name in ("densmap", "dens_lambda", "dens_frac", "dens_var_shift",
                                                    "output_dens")}}
MAPPINGS = {
    gidr.UMAP: {**COMMON, **TARGETS, "n_neighbors": ("similarity", "n_neighbors"), "min_dist": ("pipeline", "min_dist"),
                "spread": ("pipeline", "spread"), "n_epochs": ("pipeline", "n_epochs"),
                "learning_rate": ("optimizer", "learning_rate"), "negative_sample_rate": ("repulsion", "n_negative")},
    gidr.TSNE: {**COMMON, "perplexity": ("similarity", "perplexity"),
                "early_exaggeration": ("optimizer", "early_exaggeration"),
                "learning_rate": ("optimizer", "learning_rate"), "max_iter": ("pipeline", "n_epochs"),
                "angle": ("repulsion", "theta"), "method": ("repulsion", "name"),
                "metric_params": ("neighbors", "metric_kwds"),
                "n_iter_without_progress": ("optimizer", "n_iter_without_progress"),
                "min_grad_norm": ("optimizer", "min_grad_norm")},
    gidr.GDR: {**COMMON, **TARGETS, "n_neighbors": ("similarity", "n_neighbors"), "normalized": ("pipeline", "normalized"),
               "loss": ("loss", "name"), "min_dist": ("pipeline", "min_dist"), "spread": ("pipeline", "spread"),
               "scalars": ("pipeline", "scalars"), "n_epochs": ("pipeline", "n_epochs"),
               "learning_rate": ("optimizer", "learning_rate"), "negative_sample_rate": ("repulsion", "n_negative")},
}
#: Parameters that only steer the run (threads, progress), not the embedding.
RUN_ONLY = {"n_jobs", "verbose"}
#: Parameters the estimator itself handles or documents as accepted no-ops (no preset layer).
ESTIMATOR_ONLY = {
    gidr.UMAP: {"unique", "transform_seed", "low_memory", "angular_rp_forest", "force_approximation_algorithm",
                "output_metric", "precomputed_knn", "transform_mode"},
    gidr.GDR: {"unique", "transform_seed", "low_memory", "angular_rp_forest", "force_approximation_algorithm",
               "output_metric", "precomputed_knn", "transform_mode"},
    gidr.TSNE: set(),
}
#: scikit-learn's stopping rules: on in gidr.TSNE (scikit-learn's defaults), off (None) in the
#: tsne stage, whose runs have a fixed length unless asked.
STOPPING_RULES = {"n_iter_without_progress": 300, "min_grad_norm": 1e-7}
#: Where a default gidr.TSNE's stages differ from the tsne preset's, as scikit-learn's TSNE: its
#: stopping rules, and its float32 distances before the perplexity search.
TSNE_DIFFERENCES = {"optimizer": STOPPING_RULES, "similarity": {"distance_dtype": "float32"}}
#: (estimator, its normalized switch) -> the preset it runs (estimators.py and the docstrings).
PRESETS = {(gidr.UMAP, None): "umap", (gidr.TSNE, None): "tsne", (gidr.GDR, False): "gdr-umap",
           (gidr.GDR, True): "gdr-tsne"}
CASES = [(estimator, normalized, parameter) for (estimator, normalized) in PRESETS for parameter in MAPPINGS[estimator]]


def signature_default(estimator, parameter):
    return inspect.signature(estimator).parameters[parameter].default


def stage_class(section: dict, kind: str):
    registry = get_registry()
    return registry.get(kind, section["name"]).bind(registry, "auto")


def preset_value(preset: str, section_name: str, key: str):
    """What ``preset`` sets for (section, key), else the declared default of that layer."""
    config = get_presets().get(preset)
    section = config.get(section_name, {})
    if key in section:
        return section[key]
    if section_name == "pipeline":
        return PIPELINE_PARAMS[key].default
    declared = {p.name: p.default for p in stage_class(section, section_name).params}
    assert key in declared, f"{section_name} '{section['name']}' of preset {preset!r} has no parameter {key!r}"
    return declared[key]


def fitted_pipeline(estimator, normalized):
    """The pipeline a default estimator fits (on 120 points: more than t-SNE's 3 * perplexity)."""
    X = np.random.default_rng(0).normal(size=(120, 5))
    params = {} if normalized is None else {"normalized": normalized}
    model = estimator(**params, random_state=0).fit(X)
    return model.pipeline_


@pytest.mark.parametrize("estimator, normalized, parameter", CASES,
                         ids=[f"{e.__name__}{'' if n is None else f'-normalized={n}'}-{p}" for e, n, p in CASES])
def test_estimator_default_is_the_presets(estimator, normalized, parameter):
    preset = PRESETS[(estimator, normalized)]
    section, key = MAPPINGS[estimator][parameter]
    default = signature_default(estimator, parameter)
    if parameter == "normalized":
        default = normalized  # GDR's switch picks the preset: normalized=False is gdr-umap, True gdr-tsne
    expected = preset_value(preset, section, key)
    if parameter == "target_n_neighbors":
        assert (default, expected) == (-1, None)  # umap-learn's -1, the pipeline's None: the data's k
        return
    if estimator is gidr.UMAP and parameter == "n_neighbors":
        assert (default, expected) == (15, 14)  # umap-learn's 15 counts the point: 14 neighbours
        assert preset_value(preset, "similarity", "self_in_target") is True
        return
    if parameter in STOPPING_RULES:
        assert (default, expected) == (STOPPING_RULES[parameter], None)
        return
    if parameter == "set_op_mix_ratio" and preset_value(preset, "symmetrize", "name") != "fuzzy_union":
        return  # only the fuzzy union has it (gdr-tsne symmetrizes by the mean)
    if default is None and expected is not None:
        # documented: None keeps the preset's value (GDR's n_epochs, negative_sample_rate)
        assert parameter in ("n_epochs", "negative_sample_rate"), f"{estimator.__name__}.{parameter}=None maps to ?"
        assert parameter in (estimator.__doc__ or "") and "preset" in (estimator.__doc__ or "")
        return
    assert default == expected, (f"{estimator.__name__}({parameter}={default!r}) but preset {preset!r} runs "
                                 f"{section}.{key} = {expected!r}")


@pytest.mark.parametrize("estimator", list(MAPPINGS), ids=lambda e: e.__name__)
def test_every_estimator_parameter_is_mapped(estimator):
    parameters = set(inspect.signature(estimator).parameters)
    assert parameters == set(MAPPINGS[estimator]) | RUN_ONLY | ESTIMATOR_ONLY[estimator], \
        "map the new parameter to the layer it sets"
    for name in ESTIMATOR_ONLY[estimator]:
        assert name in estimator.__doc__, f"{estimator.__name__}.{name} is not documented"


@pytest.mark.parametrize("estimator, normalized", list(PRESETS),
                         ids=[f"{e.__name__}-{PRESETS[(e, n)]}" for e, n in PRESETS])
def test_default_estimator_runs_its_preset_unchanged(estimator, normalized):
    """With every default, the estimator's pipeline is the preset's: same classes, same values
    (but gidr.TSNE's TSNE_DIFFERENCES), same switches (None: the preset's epochs and negatives)."""
    preset = PRESETS[(estimator, normalized)]
    fitted = fitted_pipeline(estimator, normalized)
    plain = gidr.Pipeline.from_preset(preset, random_state=0)
    for kind in KINDS:
        mine, theirs = fitted.stages[kind], plain.stages[kind]
        assert type(mine).__qualname__ == type(theirs).__qualname__, kind
        expected = dict(theirs.values)
        if estimator is gidr.TSNE:  # the documented differences: scikit-learn's stopping rules and precision
            expected.update(TSNE_DIFFERENCES.get(kind, {}))
        assert mine.values == expected, (kind, mine.values, expected)
    switches = {k: fitted.config["pipeline"].get(k, p.default) for k, p in PIPELINE_PARAMS.items()}
    assert switches == {k: plain.config["pipeline"].get(k, p.default) for k, p in PIPELINE_PARAMS.items()}


def test_documented_epoch_defaults():
    """TSNE: max_iter=None is 750 epochs; GDR: n_epochs=None is gdr-tsne's 1,000, or gdr-umap's
    optimizer default (500 below 10,000 points, else 300) - as the docstrings say."""
    registry = get_registry()
    tsne = get_presets().get("tsne")
    assert "n_epochs" not in tsne["pipeline"] and "max_iter (None: 750)" in gidr.TSNE.__doc__
    assert registry.get("optimizer", tsne["optimizer"]["name"])().default_n_epochs(1_000) == 750
    gdr_tsne = get_presets().get("gdr-tsne")
    assert "n_epochs" not in gdr_tsne["pipeline"] and gdr_tsne["optimizer"]["default_epochs"] == 1000
    assert gidr.Pipeline.from_preset("gdr-tsne").n_epochs_for(70_000) == 1000
    gdr_umap = get_presets().get("gdr-umap")
    assert "n_epochs" not in gdr_umap["pipeline"]
    optimizer = registry.get("optimizer", gdr_umap["optimizer"]["name"])()
    assert (optimizer.default_n_epochs(9_999), optimizer.default_n_epochs(10_000)) == (500, 300)
    assert "300 epochs above 10,000 points, else 500" in gidr.GDR.__doc__


@pytest.mark.parametrize("stage_class, twin", gidr.testing.twin_cases())
def test_backends_declare_identical_parameters(stage_class, twin):
    """Stricter than gidr.testing.check_same_parameters: documentation and constraints too."""
    def declared(cls):
        return [(p.name, p.default, p.allow_none, p.doc, [c.description for c in p.constraints]) for p in cls.params]

    assert declared(twin) == declared(stage_class)
