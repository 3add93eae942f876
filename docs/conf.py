"""Sphinx configuration for the ray-anyio documentation."""

from __future__ import annotations

import importlib.metadata

project = "ray-anyio"
author = "the ray-anyio developers"
project_copyright = "2026, the ray-anyio developers"
release = importlib.metadata.version("ray-anyio")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "examples"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# The docstrings are Google style ("Args:", "Raises:"); the signatures carry
# the types.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"

html_theme = "furo"
html_title = "ray-anyio"
html_static_path = ["_static"]
