"""End to end on the reference backend: every preset embeds digits well, and every switch of the
paper's Table 2 is one override on every preset.

Peers on the same 600 digits and metric (15-NN leave-one-out accuracy): umap-learn 0.983,
openTSNE 0.975 (both ``random_state=0``).
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from gidr.metrics import knn_accuracy
from gidr.pipeline import Pipeline
from gidr.validation import GidrValueError

PRESETS = ["umap", "tsne", "gdr-umap", "gdr-tsne", "gdr-umap-frob", "gdr-tsne-frob"]
MIN_ACCURACY = 0.92


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.data.astype(float), data.target


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_separates_the_digits(preset, digits):
    X, y = digits
    result = Pipeline.from_preset(preset, backend="reference", random_state=0).run(X[:600])
    assert np.asarray(result).shape == (600, 2)
    assert knn_accuracy(np.asarray(result), y[:600], k=15) >= MIN_ACCURACY


# ---------------------------------------------------------------------- Table 2 switches
#: switch -> (where its value lives in Pipeline.config: section, key), and its two values.
SWITCHES = {
    "init": (("init", "name"), ("spectral", "pca")),
    "pseudo_distance": (("similarity", "pseudo_distance"), (True, False)),
    "symmetrize": (("symmetrize", "name"), ("fuzzy_union", "mean")),
    "symmetric_attraction": (("optimizer", "symmetric_attraction"), (True, False)),
    "scalars": (("pipeline", "scalars"), ("fit", "one")),
    "loss": (("loss", "name"), ("kl", "frobenius")),
}


def current(config, switch):
    (section, key), _ = SWITCHES[switch]
    return config[section][key]


def swapped(config, switch):
    """The override that swaps ``switch`` away from its value in ``config``."""
    _, (first, second) = SWITCHES[switch]
    return {switch: second if current(config, switch) == first else first}


@pytest.mark.parametrize("switch", sorted(SWITCHES))
@pytest.mark.parametrize("preset", PRESETS)
def test_each_switch_is_one_override_on_every_preset(preset, switch, digits):
    X, _ = digits
    base = Pipeline.from_preset(preset, backend="reference", random_state=0, n_epochs=30)
    override = swapped(base.config, switch)
    if base.config["optimizer"]["name"] == "umap_sgd" and override.get("loss") == "frobenius":
        with pytest.raises(GidrValueError, match=r"loss used with optimizer 'umap_sgd' must be UMAP's cross-entropy \(a loss declaring edge_sampling_sgd"):
            base.replace(**override)
        return
    pipeline = base.replace(**override)
    assert current(pipeline.config, switch) == override[switch]
    Y = np.asarray(pipeline.run(X[:200]))
    assert Y.shape == (200, 2)
    assert np.all(np.isfinite(Y))


def test_umap_sgd_refuses_normalization_at_build_time():
    with pytest.raises(GidrValueError, match=r"'normalized' switch used with optimizer 'umap_sgd' must be False"):
        Pipeline.from_preset("umap", backend="reference", normalized=True)


def test_umap_sgd_refuses_barnes_hut_at_build_time():
    with pytest.raises(GidrValueError, match=r"repulsion used with optimizer 'umap_sgd' must be a per-edge sampler \(e.g. 'sampled'\). Got 'barnes_hut'"):
        Pipeline.from_preset("umap", backend="reference", repulsion="barnes_hut")


def test_tsne_refuses_unnormalized_at_build_time():
    with pytest.raises(GidrValueError, match=r"'normalized' switch used with optimizer 'tsne' must be True"):
        Pipeline.from_preset("tsne", backend="reference", normalized=False)


def test_loss_history_is_recorded_by_the_optimizer(digits):
    X, _ = digits
    seen = []
    result = Pipeline.from_preset("gdr-umap", backend="reference", random_state=0, n_epochs=20).run(
        X[:100], callback=lambda epoch, loss, Y: seen.append((epoch, loss, Y.shape)), callback_every=10)
    assert [(epoch, shape) for epoch, _, shape in seen] == [(10, (100, 2)), (20, (100, 2))]
    assert result.loss_history == [(epoch, loss) for epoch, loss, _ in seen]
