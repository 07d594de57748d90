"""Registers the distributed neighbours stages (backend ``dask``) with gidr. Dask itself is
imported only when a stage computes."""
from gidr.plugins import hookimpl


@hookimpl
def gidr_register_stages(registry):
    from gidr_dask import stages
    from gidr_numba.plugin import serialize_launches

    for stage_class in stages.STAGES:
        registry.add(serialize_launches(stage_class, ("build_index",)))
