"""Registers the numba stages with gidr (priority 10: preferred by backend='auto'), and the
numba kernels of the built-in losses (``kl``, ``frobenius``: the reference classes, whose
math is the same in every backend).

Every method of a numba stage that launches parallel kernels runs under
:func:`gidr_numba.parallel_launch_lock`: a no-op with the TBB (or OpenMP) threading layer, it
serializes launches across Python threads when the layer is ``workqueue``, which aborts the
process on concurrent launches.
"""
from gidr.plugins import hookimpl
from gidr_numba import serialized

#: The stage methods that may launch parallel kernels.
_LAUNCHING_METHODS = ("compute", "row_weights", "estimate", "optimize", "embed_new", "build_index")


def serialize_launches(stage_class, methods=_LAUNCHING_METHODS):
    """Wrap ``stage_class``'s kernel-launching ``methods`` in :func:`gidr_numba.parallel_launch_lock`."""
    for name in methods:
        method = getattr(stage_class, name, None)  # inherited ones too, set on this class only
        if callable(method):
            setattr(stage_class, name, serialized(method))
    return stage_class


@hookimpl
def gidr_register_stages(registry):
    from gidr_numba import query, stages_forces, stages_graph, stages_optim

    for index_class in (query.GraphSearch, stages_graph.PynndescentIndex):
        serialize_launches(index_class, ("query",))
    for module in (stages_graph, stages_forces, stages_optim):
        for stage_class in module.STAGES:
            registry.add(serialize_launches(stage_class))


@hookimpl
def gidr_register_kernels(kernels):
    from gidr_numba.forces import builtin_loss_kernels
    from gidr_reference.stages_forces import KL, Frobenius

    for loss_class in (KL, Frobenius):
        kernels.add(loss_class, "numba", builtin_loss_kernels)
