"""Progress lines of the long stages (gidr.progress): the estimate, and the lines the NN-descent
iterations, the multilevel init, the epochs and a verbose estimator write."""
from __future__ import annotations

import logging
import re

import numpy as np
import pytest
from sklearn.datasets import load_digits

import gidr
from gidr import progress as progress_module
from gidr.progress import EpochProgress, StepProgress


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(progress_module.time, "perf_counter", fake)
    return fake


def test_estimate_leaves_out_the_first_step(clock):
    # the first step took 30 s (a JIT compilation), the next two 2 s each: 7 steps left at 2 s
    p = StepProgress("neighbors", "NN-descent iteration", 10, may_stop_early=True)
    clock.now += 30
    p.step_done(1)
    clock.now += 4
    assert p.seconds_left(3) == pytest.approx(14.0)
    assert p.line(3, "12 changes") == ("gidr neighbors: NN-descent iteration 3 of at most 10 (12 changes), "
                                       "34.0 s elapsed, at most 14.0 s left")


def test_estimate_after_one_step_is_its_time(clock):
    p = StepProgress("init", "multilevel spectral level", 4)
    clock.now += 3
    assert p.seconds_left(1) == pytest.approx(9.0)
    assert p.line(1).endswith("3.0 s elapsed, about 9.0 s left")
    clock.now += 1197  # 20 minutes in all
    assert p.line(2).endswith("20.0 min elapsed, about 20.0 min left")


def test_epoch_lines_every_tenth_and_at_the_end(clock, caplog):
    caplog.set_level(logging.INFO, logger="gidr")
    p = EpochProgress(25, start=clock.now)
    for epoch in range(25):
        clock.now += 1
        p.epoch_done(epoch)
    lines = [r.getMessage() for r in caplog.records]
    # every round(2.5) = 2 epochs, and the last
    assert [int(re.search(r"epoch (\d+) of 25", line).group(1)) for line in lines] == [*range(2, 25, 2), 25]
    assert lines[-1] == "gidr optimize: epoch 25 of 25, 25.0 s elapsed, about 0.0 s left"


def test_quiet_logger_formats_nothing(clock, caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="gidr")
    p = StepProgress("neighbors", "iteration", 3)
    monkeypatch.setattr(p, "line", lambda *a: pytest.fail("formatted a line nobody reads"))
    p.report(1)
    assert caplog.records == []


def test_pipeline_logs_epochs_and_nndescent_iterations(caplog):
    caplog.set_level(logging.INFO, logger="gidr")
    X = load_digits().data
    gidr.Pipeline.from_preset("gdr-umap", random_state=0, n_epochs=30, neighbors="nndescent",
                              backend="numba").run(X)
    lines = [r.getMessage() for r in caplog.records]
    iterations = [line for line in lines if line.startswith("gidr neighbors: NN-descent iteration")]
    assert iterations and re.match(r"gidr neighbors: NN-descent iteration 1 of at most \d+ \([\d,]+ changes; "
                                   r"stops at [\d,]+ or fewer\), [\d.]+ s elapsed, at most [\d.]+ s left",
                                   iterations[0])
    epochs = [line for line in lines if line.startswith("gidr optimize: epoch")]
    assert [int(line.split()[3]) for line in epochs] == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30]
    assert all(re.search(r"[\d.]+ s elapsed, about [\d.]+ s left$", line) for line in epochs)
    # the stage lines: one per stage, with its time and peak memory
    assert any(re.match(r"gidr optimize \(optimizer 'gdr', 1797 points\): [\d.]+ s", line) for line in lines)


def test_multilevel_init_logs_its_levels(caplog):
    pytest.importorskip("numba")
    from gidr_numba import spectral
    from tests.backends.test_numba_spectral_scale import umap_graph

    caplog.set_level(logging.INFO, logger="gidr")
    spectral.multilevel_eigenmap(spectral._symmetric_part(umap_graph(3000, 1)), 2, np.random.default_rng(0))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("gidr init: multilevel")]
    total = int(re.search(r"of (\d+)", lines[0]).group(1))
    assert total >= 2 and len(lines) == total
    assert "ARPACK on the coarsest" in lines[0] and "(3,000 points)" in lines[-1]


def test_verbose_estimator_prints_timestamped_stage_lines_once(capsys):
    X = load_digits().data[:300]
    gidr.UMAP(n_epochs=20, random_state=0, verbose=True).fit(X)
    err = capsys.readouterr().err
    assert re.search(r"\d\d:\d\d:\d\d gidr optimize: epoch 20 of 20", err)
    assert re.search(r"\d\d:\d\d:\d\d gidr neighbors \(neighbors '\w+', 300 points\)", err)
    assert logging.getLogger("gidr").handlers == []  # the handler is gone after the fit
    gidr.UMAP(n_epochs=20, random_state=0).fit(X)
    assert capsys.readouterr().err == ""


def test_verbose_adds_no_second_copy_when_info_is_already_on(caplog, capsys):
    caplog.set_level(logging.INFO, logger="gidr")
    gidr.UMAP(n_epochs=20, random_state=0, verbose=True).fit(load_digits().data[:300])
    assert "gidr optimize: epoch" not in capsys.readouterr().err
    assert sum(r.getMessage().startswith("gidr optimize: epoch 20 of 20") for r in caplog.records) == 1
