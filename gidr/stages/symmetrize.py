"""Contract of the symmetrize stage."""
from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import scipy.sparse as sp

from gidr.stages.base import Stage
from gidr.types import Context


class Symmetrize(Stage):
    """Turn directed weights p_{j|i} into a symmetric P with zero diagonal."""

    kind = "symmetrize"
    #: Whether :meth:`compute` returns a symmetric P (``none`` keeps the directed weights).
    symmetric: ClassVar[bool] = True

    @abstractmethod
    def compute(self, P_directed: sp.csr_matrix, ctx: Context) -> sp.csr_matrix:
        """Return CSR P with zero diagonal, sorted indices and no explicit zeros, symmetric when
        :attr:`symmetric` is declared."""
