"""Progress lines for the long stages: elapsed time and an estimate of the time left.

The stages that run for minutes at a million points report their steps through the ``gidr``
logger at INFO level, one line per step, as umap-learn's ``verbose`` does::

    gidr neighbors: NN-descent iteration 3 of at most 10 (41,230 changes; stops at 7,000 or fewer), 8.1 s elapsed, at most 19 s left
    gidr init: multilevel spectral level 4 of 9 (120,331 points), 2.0 s elapsed, about 1.9 s left
    gidr optimize: epoch 60 of 300, 12.0 s elapsed, about 48 s left

With ``verbose=True`` the estimators show these lines (and the epoch bar) on stderr; with
``logging.basicConfig(level=logging.INFO)`` any caller does. The estimate is the mean time of
the steps after the first (which may include a JIT compilation) times the steps left ("at
most" where the stage may stop early). Nothing is
formatted unless the logger is enabled for INFO, so a quiet run pays one check per step.
"""
from __future__ import annotations

import logging
import time

logger = logging.getLogger("gidr")

#: The epoch loop reports every this fraction of its epochs (and at the last).
EPOCH_REPORT_FRACTION = 0.1


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 600 else f"{value / 60:.1f} min"


class StepProgress:
    """Reports ``step`` of ``total`` steps of one stage, with elapsed time and time left.

    Parameters
    ----------
    stage : str
        The stage's kind, as the stage log lines name it (``"neighbors"``, ``"init"``, ...).
    what : str
        The steps' name (``"NN-descent iteration"``, ``"epoch"``).
    total : int
        The number of steps, or the most there can be (``may_stop_early``).
    may_stop_early : bool
        The stage can stop before ``total`` (an iteration that converges): the estimate is an
        upper bound, said as "at most".
    """

    def __init__(self, stage: str, what: str, total: int, *, may_stop_early: bool = False) -> None:
        self.stage, self.what, self.total, self.may_stop_early = stage, what, int(total), may_stop_early
        self.start = time.perf_counter()
        self.first_step_done: float | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def step_done(self, step: int) -> None:
        """Note that ``step`` (1-based) steps are done. The first step's end is kept: the time
        left is estimated from the steps after it, which a JIT compilation does not slow."""
        if step == 1:
            self.first_step_done = time.perf_counter()

    def seconds_left(self, step: int) -> float:
        """The mean time of the steps so far (of those after the first, when there are any)
        times the steps left."""
        now = time.perf_counter()
        if step > 1 and self.first_step_done is not None:
            per_step = (now - self.first_step_done) / (step - 1)
        else:
            per_step = (now - self.start) / max(step, 1)
        return per_step * max(self.total - step, 0)

    def line(self, step: int, detail: str = "") -> str:
        """The progress line after ``step`` (1-based) steps."""
        elapsed = self.elapsed()
        left = self.seconds_left(step)
        bound = "of at most" if self.may_stop_early else "of"
        detail = f" ({detail})" if detail else ""
        estimate = ("at most " if self.may_stop_early else "about ") + f"{_seconds(left)} left"
        return (f"gidr {self.stage}: {self.what} {step} {bound} {self.total}{detail}, "
                f"{_seconds(elapsed)} elapsed, {estimate}")

    def report(self, step: int, detail: str = "") -> None:
        """Log :meth:`line` at INFO (nothing is formatted when the logger is quieter)."""
        self.step_done(step)
        if logger.isEnabledFor(logging.INFO):
            logger.info(self.line(step, detail))


class EpochProgress(StepProgress):
    """The optimizer's epochs: a line every :data:`EPOCH_REPORT_FRACTION` of them and at the
    last, called once per epoch by :class:`gidr.types.Monitor`."""

    def __init__(self, total: int, start: float | None = None) -> None:
        super().__init__("optimize", "epoch", total)
        if start is not None:
            self.start = start
        self.every = max(1, int(round(total * EPOCH_REPORT_FRACTION)))

    def epoch_done(self, epoch: int) -> None:
        """After epoch ``epoch`` (0-based) of the run."""
        step = epoch + 1
        self.step_done(step)
        if step % self.every == 0 or step == self.total:
            self.report(step)
