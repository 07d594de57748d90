"""Every pluggy hook gidr calls. Each hookspec's docstring is its contract.

A plugin is a module (or object) with functions decorated by :data:`gidr.hookimpl` whose
names match these; it is found through the ``gidr.plugins`` entry-point group.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("gidr")


@hookspec
def gidr_register_stages(registry):
    """Register stage classes.

    Call ``registry.add(StageClass)`` for each :class:`gidr.stages.Stage` subclass the
    plugin provides. A class is keyed by ``(kind, name, backend)``; when several backends
    provide the same ``(kind, name)``, ``backend="auto"`` picks the highest ``priority``
    (never the registration order). Registering the same key twice is an error.
    """


@hookspec
def gidr_register_presets(presets):
    """Register named presets.

    Call ``presets.add(name, config)`` with a mapping shaped like the preset TOML files
    (``{"pipeline": {...}, "similarity": {"name": ..., ...}, ...}``), or
    ``presets.add_file(path)`` for a TOML file whose stem is the name.
    """


@hookspec
def gidr_register_kernels(kernels):
    """Register backend kernels for stage classes.

    Call ``kernels.add(stage_class, backend, factory)``: ``factory(stage, ctx)`` returns
    what ``backend``'s code needs to run ``stage`` (for the numba backend and a loss, a
    :class:`gidr_numba.forces.LossKernels`: jitted force functions and the loss's own
    parameters), or None when it cannot serve that stage with these settings. Keys are
    ``(stage_class, backend)``, matched on the exact class: a subclass that changes the
    math registers its own kernels and is never handed its parent's. No core contract
    carries a backend-specific method; a backend asks with ``kernels.get(stage, backend)``
    (see :class:`gidr.registry.KernelRegistry`).
    """
