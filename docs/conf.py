"""Sphinx configuration for gidr's documentation."""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "gidr"
author = "the gidr developers"
copyright = "2026, the gidr developers"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
]
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "undoc-members": False}
exclude_patterns = ["_build", "study/*.md"]
html_theme = "alabaster"
html_static_path = []
doctest_global_setup = """
import numpy as np
import gidr
"""
nitpicky = False
suppress_warnings = ["autodoc.import_object"]
