"""Registers the numba stages with gidr (priority 10: preferred by backend='auto')."""
from gidr.plugins import hookimpl


@hookimpl
def gidr_register_stages(registry):
    import importlib

    for module_name in ("gidr_numba.stages_graph", "gidr_numba.stages_forces", "gidr_numba.stages_optim"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # not written yet
        for stage_class in module.STAGES:
            registry.add(stage_class)
