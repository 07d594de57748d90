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
    with pytest.raises(GidrValueError, match=r"The run needs about 0\.1 GiB beyond its input \(300 points, 15 "
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
    assert base == 64 * 2**20 + 1000 * (100 * 15 + 80 * 2)
    # NN-descent's float32 working copy and a dtype conversion of the input are counted
    assert memory.estimate_bytes(1000, 50, 15, 2, copy_bytes_per_value=4) == base + 4 * 1000 * 50
    assert memory.estimate_bytes(1000, 50, 15, 2, converts_input=True) == base + 8 * 1000 * 50
    # linear in n and in k beyond the fixed part
    assert memory.estimate_bytes(2000, 50, 15, 2) - base == base - memory.FIXED_BYTES
    assert memory.estimate_bytes(1000, 50, 30, 2) - base == 1000 * 100 * 15


@pytest.mark.parametrize("preset, n_samples", [("gdr-umap", 60_000), ("tsne", 30_000)])
def test_the_model_bounds_the_traced_peak_of_a_whole_run(preset, n_samples):
    """Every array a run allocates (NumPy's and numba's, traced by tracemalloc) stays within the
    model, and above a third of it: the check neither lets a run through that cannot fit nor
    refuses one that fits by far. Measured when the model was set: gdr-umap at 60,000 x 50,
    107 MB traced against 167 MB; tsne (k = 90) at 30,000 x 50, 154 MB against 342 MB."""
    import tracemalloc

    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n_samples, n_features=50, centers=40, cluster_std=4.0, random_state=0)
    X = X.astype(np.float32)
    pipeline = gidr.Pipeline.from_preset(preset, random_state=0, n_epochs=2)
    pipeline.run(X[:2000])  # compiled (or loaded from the cache) before tracing
    tracemalloc.start()
    try:
        result = pipeline.run(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    k = result.config["resolved"]["n_neighbors"]
    estimate = memory.estimate_bytes(n_samples, 50, k, 2, copy_bytes_per_value=4)
    assert estimate / 3 < peak < estimate, (peak / 2**20, estimate / 2**20)


def test_available_memory_is_read_from_the_system():
    available = memory.available_bytes()
    assert available is None or available > 0


def test_ten_million_by_784_on_this_machine_is_refused_with_the_estimate(monkeypatch):
    """What a user with a 10M x 784 float64 array on a 24 GB machine gets: the estimate, not a kill."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 24 * 2**30)
    X = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(10_000_000, 784), strides=(0, 0))  # no memory
    # not C-contiguous, so the conversion's copy counts too: 15.5 + 29.2 (float32 search copy) + 58.4 GiB
    expected = memory.estimate_bytes(10_000_000, 784, 15, 2, converts_input=True, copy_bytes_per_value=4)
    assert round(expected / 2**30, 1) == 103.1
    with pytest.raises(GidrValueError, match=r"The run needs about 103\.1 GiB .* only 24\.0 GiB are available"):
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
