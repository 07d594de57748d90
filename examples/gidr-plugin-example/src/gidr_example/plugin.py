"""The hook implementations gidr calls; named in the ``gidr.plugins`` entry-point group.

gidr finds this module through the entry point, registers it with its plugin manager and
calls the three functions below, handing each a registry to fill. Which implementation of a
stage is used is decided by the registry (by declared priority), never by plugin order.
"""
from gidr.plugins import hookimpl
from gidr_example.loss import HellingerLoss

#: GDR, UMAP-like (the paper's gdr-umap: one negative per edge) with the Hellinger loss.
GDR_HELLINGER = {
    "description": "GDR, UMAP-like, with the Hellinger loss sum (sqrt(p) - sqrt(w))^2 "
                   "(gidr-plugin-example).",
    "pipeline": {"normalized": False, "scalars": "one"},
    "neighbors": {"name": "auto"},
    "similarity": {"name": "umap", "n_neighbors": 15, "pseudo_distance": True},
    "symmetrize": {"name": "fuzzy_union"},
    "init": {"name": "spectral"},
    "loss": {"name": "hellinger"},
    "repulsion": {"name": "sampled", "n_negative": 1},
    "optimizer": {"name": "gdr", "symmetric_attraction": False},
}


@hookimpl
def gidr_register_stages(registry):
    registry.add(HellingerLoss)


def numba_kernels(loss, ctx):
    """The Hellinger loss's kernels for gidr's numba backend; None without numba."""
    try:
        from gidr_example import _numba_forces
        from gidr_numba.forces import LossKernels
    except ImportError:
        return None
    return LossKernels(_numba_forces.attraction, _numba_forces.repulsion, ())


@hookimpl
def gidr_register_kernels(kernels):
    kernels.add(HellingerLoss, "numba", numba_kernels)


@hookimpl
def gidr_register_presets(presets):
    presets.add("gdr-hellinger", GDR_HELLINGER)
