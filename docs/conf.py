"""Sphinx configuration of the skcluster documentation.

Build with ``docs/build.sh`` (``docs/build.sh -W`` turns warnings into errors).
Three things are generated here at build time, so that they follow the code:

* ``api/<module>.rst``: one page per public module, listing its ``__all__``;
* ``_generated/cli_<command>.txt``: the ``skcluster <command> --help`` text;
* ``_gallery_src/``: a copy of ``examples/*.py`` plus the gallery header, which
  sphinx-gallery turns into ``auto_examples/`` *without running them* (they
  train networks).
"""

import contextlib
import importlib
import inspect
import io
import os
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import skcluster  # noqa: E402

project = "skcluster"
author = "skcluster developers"
copyright = "skcluster developers"
release = skcluster.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "_gallery_src", "_includes", "gallery_header.rst", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
suppress_warnings = ["myst.header"]

# -- autodoc / autosummary / numpydoc -----------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False  # members are listed by the class template
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# -- HTML ---------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skcluster {release}"
html_static_path = ["_static"]
html_css_files = ["skcluster.css"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {page: [] for page in ("index", "install", "quickstart", "architecture", "citing")}
html_show_sourcelink = False

# -- sphinx-gallery -----------------------------------------------------------
GALLERY_SRC = DOCS / "_gallery_src"


def _copy_examples():
    """Copy ``examples/*.py`` next to the gallery header (examples/ has none of its own)."""
    if GALLERY_SRC.exists():
        shutil.rmtree(GALLERY_SRC)
    GALLERY_SRC.mkdir()
    shutil.copy(DOCS / "gallery_header.rst", GALLERY_SRC / "GALLERY_HEADER.rst")
    for path in sorted((ROOT / "examples").glob("*.py")):
        (GALLERY_SRC / path.name).write_text(_with_title(path.read_text()))


def _with_title(source):
    """Underline the first line of the module docstring, so the gallery page has a title.

    The examples' docstrings start with a one-line summary (plain text, as in any
    script); sphinx-gallery needs a reST section title. Only the copy is changed.
    """
    for quote in ('"""', "'''"):
        if source.lstrip().startswith(quote):
            start = source.index(quote) + 3
            end = source.index("\n", start)
            title = source[start:end].strip()
            following = source[end + 1:source.index("\n", end + 1)].strip()
            if title and not (following and set(following) <= set("=-~^*")):
                return source[:start] + title + "\n" + "=" * len(title) + source[end:]
            break
    return source


_copy_examples()

sphinx_gallery_conf = {
    "examples_dirs": str(GALLERY_SRC),
    "gallery_dirs": "auto_examples",
    # The examples train networks: show them, never run them during the build.
    "plot_gallery": "False",
    "filename_pattern": r"^$",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_signature": False,
    "min_reported_time": 10**9,
}

# -- API pages, generated from __all__ ---------------------------------------
# The modules of the public API, in the order of the reference page.
API_MODULES = [
    "skcluster",
    "skcluster.sample",
    "skcluster.io",
    "skcluster.datasets",
    "skcluster.preprocessing",
    "skcluster.nn",
    "skcluster.ensemble",
    "skcluster.models",
    "skcluster.baselines",
    "skcluster.metrics",
    "skcluster.calibration",
    "skcluster.priors",
    "skcluster.explain",
    "skcluster.persist",
    "skcluster.streaming",
    "skcluster.workflow",
    "skcluster.predict",
    "skcluster.plotting",
    "skcluster.exceptions",
    "skcluster.demo",
    "skcluster.benchmark",
]


def _public_names(mod):
    names = getattr(mod, "__all__", None)
    if names is None:  # a module without __all__: its own public functions and classes
        names = [n for n, o in vars(mod).items()
                 if not n.startswith("_") and (inspect.isclass(o) or inspect.isfunction(o))
                 and getattr(o, "__module__", "") == mod.__name__]
    return [n for n in names if n != "__version__"]


def _canonical_owner(modules):
    """Map id(class or function) -> the documented module that owns it.

    An object exported by several modules (``skcluster.DeepEnsembleRegressor`` is
    ``skcluster.ensemble.DeepEnsembleRegressor``) gets one page, in the documented
    module nearest to where it is defined; the others link to it.
    """
    owner = {}
    for mod in modules.values():
        for name in _public_names(mod):
            obj = getattr(mod, name, None)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            home = getattr(obj, "__module__", "") or ""
            best = owner.get(id(obj))
            score = len(mod.__name__) if (home == mod.__name__ or home.startswith(mod.__name__ + ".")) else -1
            if best is None or score > best[1]:
                owner[id(obj)] = (mod.__name__, score)
    return {k: v[0] for k, v in owner.items()}


def _first_line(obj):
    """First paragraph of a docstring, cross-reference roles made literal (no currentmodule here)."""
    doc = inspect.getdoc(obj) or ""
    text = doc.strip().split("\n\n")[0].replace("\n", " ")
    return re.sub(r":(?:py:)?\w+:`~?([^`]+)`", r"``\1``", text)


def _write_api_pages():
    out = DOCS / "api"
    def _data_home(mod, name):
        """``module.name`` of the module whose source assigns ``name`` (its ``#:``
        comment is the documentation; a re-export would show the value's type's
        docstring instead, e.g. numpy.dtype's)."""
        import pkgutil

        obj = getattr(mod, name)
        for info in pkgutil.walk_packages(getattr(mod, "__path__", []), mod.__name__ + "."):
            try:
                sub = importlib.import_module(info.name)
                src = inspect.getsource(sub)
            except Exception:  # noqa: BLE001 - a module we cannot read is simply not the home
                continue
            if getattr(sub, name, None) is obj and f"\n{name} = " in src:
                return f"{info.name}.{name}"
        return f"{mod.__name__}.{name}"

    for stale in (out, DOCS / "generated"):  # autosummary stubs too: objects move between modules
        if stale.exists():
            shutil.rmtree(stale)
    out.mkdir()
    modules = {name: importlib.import_module(name) for name in API_MODULES}
    owner = _canonical_owner(modules)
    for modname, mod in modules.items():
        lines = [f"``{modname}``", "=" * (len(modname) + 4), "",
                 f".. automodule:: {modname}", "   :no-members:", "", f".. currentmodule:: {modname}", ""]
        own, elsewhere, data = [], [], []
        for name in _public_names(mod):
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                home = owner.get(id(obj), modname)
                (own if home == modname else elsewhere).append((name, home))
            else:
                data.append(name)
        classes = [n for n, _ in own if inspect.isclass(getattr(mod, n))]
        functions = [n for n, _ in own if not inspect.isclass(getattr(mod, n))]
        for title, names, template in (("Classes", classes, "class.rst"),
                                       ("Functions", functions, "function.rst")):
            if names:
                lines += [title, "-" * len(title), "", ".. autosummary::",
                          "   :toctree: ../generated/", f"   :template: {template}", ""]
                lines += [f"   {n}" for n in names] + [""]
        if elsewhere:
            title = "Also available here"
            lines += [title, "-" * len(title), "",
                      "Exported by this module, documented where they live:", ""]
            for name, home in elsewhere:
                lines.append(f"* :obj:`{modname}.{name} <{home}.{name}>`")
            lines.append("")
        if data:
            title = "Constants"
            lines += [title, "-" * len(title), ""]
            for name in data:
                lines += [f".. autodata:: {_data_home(mod, name)}", "   :no-value:", ""]
        (out / f"{modname}.rst").write_text("\n".join(lines))

    index = ["API reference", "=============", "",
             "Generated from each module's ``__all__``; every class and function has one page,",
             "under the module where it is defined (``skcluster.DeepEnsembleRegressor`` is",
             "documented as :class:`skcluster.ensemble.DeepEnsembleRegressor`).", "",
             ".. list-table::", "   :widths: 30 70", ""]
    for modname, mod in modules.items():
        index += [f"   * - :doc:`{modname} <{modname}>`", f"     - {_first_line(mod)}"]
    index += ["", ".. toctree::", "   :hidden:", ""] + [f"   {m}" for m in API_MODULES] + [""]
    (out / "index.rst").write_text("\n".join(index))


_write_api_pages()


# -- command-line help, generated ---------------------------------------------
def _write_cli_help():
    from skcluster import cli

    out = DOCS / "_generated"
    out.mkdir(exist_ok=True)
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "92"
    try:
        for cmd in ("", "demo", "simulate", "train", "predict", "benchmark"):
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
                cli.main(([cmd] if cmd else []) + ["--help"])
            (out / f"cli_{cmd or 'main'}.txt").write_text(buf.getvalue())
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


_write_cli_help()


# -- the mock survey's parameter table, generated ----------------------------
def _write_parameter_table():
    from skcluster.datasets import parameter_table

    out = DOCS / "_generated"
    out.mkdir(exist_ok=True)
    (out / "mock_parameters.md").write_text(parameter_table() + "\n")


_write_parameter_table()
