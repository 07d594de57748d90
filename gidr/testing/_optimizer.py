"""Checks of the optimizer stage."""
from __future__ import annotations

import math

import numpy as np

from gidr.types import Affinities, Monitor
from gidr.validation import GidrValueError
from gidr.testing._problems import _dataset, _fuzzy_affinities, _rejects, pipeline_settings


# ============================================================================ optimizer
def _check_default_n_epochs(cls, env) -> None:
    stage = env.build(cls)
    for n in (10, 5_000, 100_000):
        epochs = stage.default_n_epochs(n)
        assert isinstance(epochs, (int, np.integer)) and not isinstance(epochs, bool) and epochs >= 1, \
            f"{cls.describe()}: default_n_epochs({n}) must be a positive int, got {epochs!r}"


def _compatible_stages(optimizer, env, normalized: bool):
    """The first (loss, repulsion) of the optimizer's backend it accepts with ``normalized``."""
    settings = pipeline_settings(normalized=normalized)
    for loss_name in ("kl", "frobenius"):
        for repulsion_name in ("sampled", "exact", "barnes_hut"):
            loss = env.companion("loss", loss_name, optimizer.backend)
            repulsion = env.companion("repulsion", repulsion_name, optimizer.backend)
            if _rejects(loss, settings):
                continue
            try:
                optimizer.check_compatible(loss, repulsion, settings)
            except GidrValueError:
                continue
            return loss, repulsion
    return None


def _check_optimize(cls, env) -> None:
    optimizer = env.build(cls)
    n, n_epochs, checked = 30, 20, 0
    X = _dataset(n)
    for normalized in (False, True):
        pair = _compatible_stages(optimizer, env, normalized)
        if pair is None:
            continue
        loss, repulsion = pair
        P = _fuzzy_affinities(X, normalized)
        Y0 = np.random.default_rng(6).normal(size=(n, 2))
        Y0 *= 1e-4 / Y0[:, 0].std() if normalized else 10.0 / np.abs(Y0).max()
        ctx = env.ctx(n_samples=n, n_components=2, normalized=normalized, a=1.0, b=1.0, seed=3, n_epochs=n_epochs)
        owner = f"{cls.describe()} ({cls.backend}) with {loss.describe()}, {repulsion.describe()}, " \
                f"normalized={normalized}"
        Y0_before, P_before = Y0.copy(), P.copy()
        monitor = Monitor(every=5)
        Y = optimizer.optimize(Y0, Affinities(P, normalized), loss, repulsion, ctx, monitor)
        assert isinstance(Y, np.ndarray) and Y.shape == (n, 2), f"{owner}: must return an (n, 2) ndarray"
        assert np.all(np.isfinite(Y)), f"{owner}: non-finite embedding"
        assert np.array_equal(Y0, Y0_before) and not np.shares_memory(Y, Y0), f"{owner}: modified Y0 in place"
        assert abs(P - P_before).max() == 0, f"{owner}: modified P"
        assert [epoch for epoch, _ in monitor.history] == [5, 10, 15, 20], \
            f"{owner}: the monitor must record the loss every 5 epochs, got {monitor.history}"
        assert all(math.isfinite(value) for _, value in monitor.history), f"{owner}: non-finite loss reported"
        again = optimizer.optimize(Y0, Affinities(P, normalized), loss, repulsion, ctx, Monitor())
        assert np.array_equal(again, Y), f"{owner}: the same seed must give the same bits"
        checked += 1
    assert checked, f"{cls.describe()}: accepts no built-in (loss, repulsion) pair, normalized or not"
