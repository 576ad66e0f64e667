"""Sphinx configuration of the crlhf documentation site.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (needs ``pip install -e
".[docs]"``). Nothing is fetched from the network, neither at build nor when a page is viewed:
notebooks render their committed, nbval-checked outputs (never re-executed), MathJax 3 is
served from ``_static/mathjax`` (the ``sphinx-mathjax-offline`` package ships it), the theme
loads no external fonts or icons, and ipywidgets' embed scripts (a CDN) are never added.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # autodoc imports the checkout, installed or not

import crlhf  # noqa: E402

project = "crlhf"
author = "the crlhf authors"
copyright = "the crlhf authors"
release = version = crlhf.__version__

extensions = [
    "myst_nb",                 # Markdown pages and notebooks (MyST parser included)
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx-mathjax-offline",  # copies MathJax 3.2.2 into _static/mathjax and points mathjax_path at it
]

# docs/notebooks is a symlink to the repository's notebooks/: every committed notebook is a
# tutorial page (the toctree globs notebooks/*.ipynb), rendered from its stored outputs.
nb_execution_mode = "off"
nb_ipywidgets_js = {}          # the default loads require.js and the widget manager from CDNs
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

smartquotes_action = "qe"      # curly quotes, but "--db" stays two hyphens (no en dashes)
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# API reference: autosummary writes one page per module of crlhf and widgets into docs/api/
# (generated, git-ignored, emptied here first so that a removed module leaves no stale page).
shutil.rmtree(Path(__file__).parent / "api", ignore_errors=True)
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_class_signature = "separated"
autodoc_preserve_defaults = True
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
napoleon_preprocess_types = True
# Optional heavy packages (torch for crlhf.ppo, ipywidgets for widgets/) are mocked only when
# they are not installed, so a docs-only environment still builds the whole reference.
autodoc_mock_imports = [m for m in ("torch", "transformers", "trl", "datasets", "ipywidgets",
                                    "anywidget", "traitlets", "voila")
                        if importlib.util.find_spec(m) is None]

html_theme = "pydata_sphinx_theme"
html_title = f"crlhf {release}"
html_sidebars = {page: [] for page in ("index", "getting-started", "method", "benchmarks")}
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
html_static_path = ["_static"]
html_css_files = ["crlhf.css"]
html_context = {"default_mode": "auto"}  # unset, the theme logs a console error on a first visit


# The kit's docstrings list arguments as ``name : what it is`` lines (the type comes from the
# hints), in a numpy "Parameters" section or as a bare block in a class or function docstring. Napoleon
# would read the text after the colon as a type, and docutils reads a bare block as broken
# indentation. Before napoleon runs, each such entry becomes ``name`` + an indented
# description, a bare block gets a "Parameters" header, and text after a bare block a "Notes" one.
_ENTRY = re.compile(r"^(\*{0,2}[A-Za-z_]\w*(?:, \*{0,2}[A-Za-z_]\w*)*) : (.*)$")
_FIELD_SECTIONS = {"Parameters", "Other Parameters", "Attributes", "Keyword Arguments"}


def _kit_fields_to_numpy(app, what, name, obj, options, lines: list[str]) -> None:
    if what not in ("class", "exception", "function", "method"):
        return   # only callables take parameters
    out: list[str] = []
    section: str | None = None   # the numpy section we are in
    generated = False            # ... a "Parameters" header added here
    for i, line in enumerate(lines):
        top = bool(line) and not line[0].isspace()
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if top and len(nxt) >= 3 and set(nxt) == {"-"}:          # a numpy section header
            section, generated = line.strip(), False
        elif (m := _ENTRY.match(line)) and (section is None or section in _FIELD_SECTIONS):
            if section is None:
                if out and out[-1].strip():
                    out.append("")
                out += ["Parameters", "----------"]
                section, generated = "Parameters", True
            out += [m.group(1), "    " + m.group(2)]
            continue
        elif top and generated:   # text after the entries: numpy ends a section with a header
            if out[-1].strip():
                out.append("")
            out += ["Notes", "-----"]
            section, generated = "Notes", False
        out.append(line)
    lines[:] = out


def _commands_as_literal(app, what, name, obj, options, lines: list[str]) -> None:
    """An indented ``crlhf ...`` usage block (the command modules' docstrings) is shown as code,
    not as a quotation."""
    out: list[str] = []
    for line in lines:
        starts_block = line[:1].isspace() and line.strip().startswith("crlhf ") and (not out or not out[-1].strip())
        before = next((x for x in reversed(out) if x.strip()), "")
        if starts_block and not before.rstrip().endswith("::"):
            out += [".. code-block:: text", ""]
        out.append(line)
    lines[:] = out


def setup(app):
    app.connect("autodoc-process-docstring", _kit_fields_to_numpy, priority=400)
    app.connect("autodoc-process-docstring", _commands_as_literal, priority=400)
