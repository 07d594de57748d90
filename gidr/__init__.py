"""gidr: gradient-based dimensionality reduction.

t-SNE, UMAP and GDR as one pipeline of pluggable stages (Draganov et al., "GiDR-DUN").

>>> import gidr
>>> result = gidr.Pipeline.from_preset("gdr-umap").run(X)        # doctest: +SKIP
>>> Y = np.asarray(result)                                        # doctest: +SKIP
"""
from gidr.pipeline import Pipeline
from gidr.plot import plot  # the function: ``gidr.plot(result, labels=y)``
from gidr.plugins import hookimpl
from gidr.types import Affinities, Context, KNNGraph, Result
from gidr.validation import GidrValueError

__version__ = "0.1.0"

__all__ = ["Pipeline", "Result", "KNNGraph", "Affinities", "Context", "GidrValueError", "hookimpl",
           "presets", "stages", "plot", "UMAP", "TSNE", "GDR", "load", "tl", "__version__"]

#: Imported on first use (keeps ``import gidr`` fast and the optional extras optional).
_LAZY = {"UMAP": "gidr.estimators", "TSNE": "gidr.estimators", "GDR": "gidr.estimators", "load": "gidr.persist"}


def __getattr__(name):
    """Import the estimators, :func:`load` and the submodules on first use."""
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in ("datasets", "metrics", "estimators", "study", "testing", "tl", "persist", "html_map", "opentsne"):
        return importlib.import_module(f"gidr.{name}")
    raise AttributeError(f"module 'gidr' has no attribute {name!r}")


def presets() -> list[str]:
    """Names of the registered presets."""
    from gidr.plugins import get_presets

    return get_presets().names()


def stages() -> list[tuple[str, str, str]]:
    """Every registered stage as (kind, name, backend)."""
    from gidr.plugins import get_registry

    return [(c.kind, c.name, c.backend) for c in get_registry().entries()]
