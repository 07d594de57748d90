"""Contract of the optimizer stage."""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from gidr.stages.base import Stage
from gidr.types import Context, Monitor


class Optimizer(Stage):
    """The epoch loop that applies attractive and repulsive forces."""

    kind = "optimizer"

    def check_compatible(self, loss, repulsion, settings: Mapping[str, Any]) -> None:
        """Raise GidrValueError when this optimizer cannot run with these stages.

        ``settings`` holds the pipeline's validated switches (``normalized``,
        ``n_components``, ...). Called when the pipeline is built.
        """

    @abstractmethod
    def default_n_epochs(self, n_samples: int) -> int:
        """Epochs to run when the pipeline's ``n_epochs`` is None."""

    @abstractmethod
    def optimize(
        self,
        Y: np.ndarray,
        P: sp.csr_matrix,
        loss,
        repulsion,
        ctx: Context,
        monitor: Monitor,
    ) -> np.ndarray:
        """Return the optimized embedding; never modify ``Y`` in place."""
