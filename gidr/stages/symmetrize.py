"""Contract of the symmetrize stage."""
from __future__ import annotations

from abc import abstractmethod

import scipy.sparse as sp

from gidr.stages.base import Stage
from gidr.types import Context


class Symmetrize(Stage):
    """Turn directed weights p_{j|i} into a symmetric P with zero diagonal."""

    kind = "symmetrize"

    @abstractmethod
    def compute(self, P_directed: sp.csr_matrix, ctx: Context) -> sp.csr_matrix:
        """Return symmetric CSR P with sorted indices and no explicit zeros."""
