"""Registers the numba stages with gidr (priority 10: preferred by backend='auto')."""
from gidr.plugins import hookimpl


@hookimpl
def gidr_register_stages(registry):
    from gidr_numba import stages_forces, stages_graph, stages_optim

    for module in (stages_graph, stages_forces, stages_optim):
        for stage_class in module.STAGES:
            registry.add(stage_class)
