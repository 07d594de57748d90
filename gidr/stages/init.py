"""Contract of the init stage."""
from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from gidr.stages.base import Stage
from gidr.types import Context


class Init(Stage):
    """Starting positions of the embedding."""

    kind = "init"
    #: Whether the stage reads the data matrix ``X`` (a PCA init does). For distributed input the
    #: neighbors stage then hands it a reduction computed on the workers
    #: (:meth:`gidr.stages.Neighbors.init_data`) instead of None.
    needs_data: ClassVar[bool] = False

    @abstractmethod
    def compute(self, X: np.ndarray | None, P: sp.csr_matrix, ctx: Context) -> np.ndarray:
        """Return Y0 of shape (n_samples, n_components), float64, all finite.

        ``X`` may be None when the pipeline started from a precomputed graph.
        Randomness comes from ``ctx.rng("init")``.
        """
