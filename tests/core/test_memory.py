"""The memory estimate before a run (gidr.memory): a run that cannot fit stops at once."""
import numpy as np
import pytest

import gidr
from gidr import memory
from gidr.validation import GidrValueError


@pytest.fixture
def digits_small():
    from sklearn.datasets import load_digits

    return load_digits().data[:300]


def test_a_run_that_cannot_fit_stops_before_it_starts(monkeypatch, digits_small):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    pipeline = gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=5)
    with pytest.raises(GidrValueError, match=r"The run needs about 0\.0 GiB beyond its input \(300 points, 15 "
                                             r"neighbours, 64 features\), but only 0\.0 GiB are available\. Ways out"):
        pipeline.run(digits_small)


def test_the_check_can_be_switched_off(monkeypatch, digits_small):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    monkeypatch.setenv("GIDR_MEMORY_CHECK", "0")
    Y = np.asarray(gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=5).run(digits_small))
    assert Y.shape == (300, 2)


def test_an_unknown_amount_of_memory_does_not_block(monkeypatch, digits_small):
    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    assert np.asarray(gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=5).run(digits_small)).shape == (300, 2)


def test_estimate_terms():
    base = memory.estimate_bytes(1000, 50, 15, 2)
    assert base == 1000 * (100 * 15 + 400 + 80 * 2)
    # NN-descent's float32 working copy and a dtype conversion of the input are counted
    assert memory.estimate_bytes(1000, 50, 15, 2, copy_bytes_per_value=4) == base + 4 * 1000 * 50
    assert memory.estimate_bytes(1000, 50, 15, 2, converts_input=True) == base + 8 * 1000 * 50
    # linear in n and in k
    assert memory.estimate_bytes(2000, 50, 15, 2) == 2 * base
    assert memory.estimate_bytes(1000, 50, 30, 2) - base == 1000 * 100 * 15


def test_the_model_is_within_a_factor_of_the_measured_peaks():
    """Measured peaks beyond data and interpreter (module docstring): 1M x 50 gdr-umap 1.45 kB per
    point; Fashion-MNIST 70k tsne (k = 90) 16 kB per point with compiled code included. The
    model stays within a factor 2.5 of both, so it neither refuses runs that fit by far nor
    misses runs that cannot."""
    per_point_umap = memory.estimate_bytes(1_000_000, 50, 15, 2) / 1_000_000
    per_point_tsne = memory.estimate_bytes(70_000, 784, 90, 2) / 70_000
    assert 1450 / 2.5 < per_point_umap < 1450 * 2.5
    assert 16_000 / 2.5 < per_point_tsne < 16_000 * 2.5


def test_available_memory_is_read_from_the_system():
    available = memory.available_bytes()
    assert available is None or available > 0


def test_ten_million_by_784_on_this_machine_is_refused_with_the_estimate(monkeypatch):
    """What a user with a 10M x 784 float64 array on a 24 GB machine gets: the estimate, not a kill."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 24 * 2**30)
    X = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(10_000_000, 784), strides=(0, 0))  # no memory
    # not C-contiguous, so the conversion's copy counts too: 20.6 + 31.4 (float32 search copy) + 62.7 GB
    expected = memory.estimate_bytes(10_000_000, 784, 15, 2, converts_input=True, copy_bytes_per_value=4)
    assert round(expected / 2**30, 1) == 106.8
    with pytest.raises(GidrValueError, match=r"The run needs about 106\.8 GiB .* only 24\.0 GiB are available"):
        memory.check_memory(X, 10_000_000, 15, 2, copy_bytes_per_value=4)


def test_each_stage_logs_its_seconds_and_the_peak_memory(caplog):
    import logging

    from gidr.memory import peak_resident_bytes

    X = np.random.default_rng(0).normal(size=(300, 5))
    with caplog.at_level(logging.INFO, logger="gidr"):
        result = gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=20).run(X)
    order = ["neighbors", "similarity", "symmetrize", "init", "optimize"]
    peaks = result.config["resolved"]["peak_memory_bytes"]
    assert list(peaks) == order == list(result.timings)
    values = [peaks[kind] for kind in order]
    assert all(isinstance(v, int) and v > 0 for v in values)
    assert values == sorted(values) and values[-1] <= peak_resident_bytes()  # a high-water mark
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("gidr ") and "GiB" in r.getMessage()]
    assert [line.split()[1] for line in lines] == order
    assert "300 points" in lines[0] and "peak memory" in lines[0]
