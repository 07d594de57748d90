"""Registers the numba stages with gidr (priority 10: preferred by backend='auto'), and the
numba kernels of the built-in losses (``kl``, ``frobenius``: the reference classes, whose
math is the same in every backend)."""
from gidr.plugins import hookimpl


@hookimpl
def gidr_register_stages(registry):
    from gidr_numba import stages_forces, stages_graph, stages_optim

    for module in (stages_graph, stages_forces, stages_optim):
        for stage_class in module.STAGES:
            registry.add(stage_class)


@hookimpl
def gidr_register_kernels(kernels):
    from gidr_numba.forces import builtin_loss_kernels
    from gidr_reference.stages_forces import KL, Frobenius

    for loss_class in (KL, Frobenius):
        kernels.add(loss_class, "numba", builtin_loss_kernels)
