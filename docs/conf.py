"""Sphinx configuration of squeezex's documentation (``make docs``).

Sphinx, because the libraries squeezex sits beside document themselves with it (PyTorch,
torchvision, Captum, torchcam, Quantus): autodoc reads the docstrings they and squeezex
write in the same reStructuredText-in-Google-style form, and MyST-NB renders the pages
(Markdown, as the README is) and the notebooks.

The notebooks are not executed here: ``make docs`` (and ``make test``) runs them once under
nbval, which saves each executed copy in ``build/notebooks`` (``notebooks/conftest.py``),
and this configuration copies those into ``docs/notebooks/`` to render them with their
outputs. A notebook without an executed copy stops the build with the command to make one.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import squeezex  # noqa: E402

project = "squeezex"
author = "the squeezex authors"
copyright = "2026, the squeezex authors"
release = version = squeezex.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "README.md"]
html_theme = "furo"
html_title = f"squeezex {release}"
html_static_path = ["_static"]
templates_path = ["_templates"]
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# the notebooks come executed (see the module's doc); a widget's saved view needs its state,
# which an nbval run does not record, so the static PNG every squeezex widget carries wins
nb_execution_mode = "off"
nb_mime_priority_overrides = [
    ("html", "image/png", 5),
    ("html", "application/vnd.jupyter.widget-view+json", 50),
]
nb_merge_streams = True

autosummary_generate = True
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
suppress_warnings = ["myst.header"]


def _copy_executed_notebooks() -> None:
    source = ROOT / "notebooks"
    # relative to the repository (Sphinx reads this file from inside docs/)
    executed = ROOT / os.environ.get("SQUEEZEX_EXECUTED_NOTEBOOKS", "build/notebooks")
    target = DOCS / "notebooks"
    target.mkdir(exist_ok=True)
    missing = []
    for notebook in sorted(source.glob("[0-9][0-9]_*.ipynb")):
        copy = executed / notebook.name
        if not copy.is_file() or copy.stat().st_mtime < notebook.stat().st_mtime:
            missing.append(notebook.name)
            continue
        shutil.copyfile(copy, target / notebook.name)
    if missing:
        raise RuntimeError(
            f"no executed copy (or one older than the notebook) in {executed} of: "
            f"{', '.join(missing)}; run `make docs` (it executes them first) or "
            "`SQUEEZEX_EXECUTED_NOTEBOOKS=build/notebooks pytest notebooks --nbval-lax`"
        )
    shutil.copyfile(source / "README.md", target / "index.md")


_copy_executed_notebooks()
