"""Abstract contracts, one per stage kind."""
from gidr.stages.base import KINDS, Stage
from gidr.stages.init import Init
from gidr.stages.loss import Loss
from gidr.stages.neighbors import Neighbors
from gidr.stages.optimizer import Optimizer
from gidr.stages.repulsion import Repulsion
from gidr.stages.similarity import Similarity
from gidr.stages.symmetrize import Symmetrize

BASES = {
    "neighbors": Neighbors,
    "similarity": Similarity,
    "symmetrize": Symmetrize,
    "init": Init,
    "loss": Loss,
    "repulsion": Repulsion,
    "optimizer": Optimizer,
}

__all__ = ["KINDS", "BASES", "Stage", "Neighbors", "Similarity", "Symmetrize", "Init", "Loss",
           "Repulsion", "Optimizer"]
