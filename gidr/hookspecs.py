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
