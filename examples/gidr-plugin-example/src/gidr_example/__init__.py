"""gidr-plugin-example: a worked third-party plugin for gidr.

It adds one loss, ``hellinger`` (unnormalized only), and one preset, ``gdr-hellinger``,
through the two hooks of :mod:`gidr.hookspecs`. Nothing in gidr changes: the package
ships the module :mod:`gidr_example.plugin` and names it in the ``gidr.plugins``
entry-point group of its ``pyproject.toml``.
"""
from gidr_example.loss import HellingerLoss

__version__ = "0.1.0"

__all__ = ["HellingerLoss", "__version__"]
