"""The layering of docs/architecture.md, checked against the package's real imports.

Every module of ``skcluster`` is parsed (``ast``, nothing is imported) and
each of its imports, at module level and inside functions alike, becomes an
arrow from its unit (a subpackage such as ``io``, or a top-level module such
as ``cli``) to the imported one. The layers are read from the ``layers``
block of docs/architecture.md (the text block starting ``# layers``), so the page and the test cannot drift: an
arrow may point to the same or a lower layer only (except the upward ones
the page lists under ``allowed``), every unit must be placed in a layer,
and no import circle may exist between units or between the modules of one
unit.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "skcluster"
DOC = ROOT / "docs" / "architecture.md"


def _modules():
    """{dotted module name: path} of every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _unit(module):
    """The unit of a module: ``skcluster.io.catalog`` -> ``io``; the package itself -> ``skcluster``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "skcluster"


def _resolve(name):
    """The package module a dotted name refers to (the longest existing prefix), or None."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in MODULES:
            return ".".join(parts)
        parts.pop()
    return None


def _imports(module, path):
    """[(imported module, line, at module level)] of one module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    top = set(map(id, tree.body))
    # imports inside ``if TYPE_CHECKING`` or try blocks at module level count as module level
    for node in tree.body:
        for child in ast.walk(node):
            if isinstance(node, (ast.If, ast.Try)):
                top.add(id(child))
    out = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # "from . import persist" names a module; "from .io import read_table" a name in one
            names = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in MODULES else stem for a in node.names]
        for name in names:
            if name.split(".")[0] != "skcluster":
                continue
            target = _resolve(name)
            if target is not None and target != module:
                out.append((target, node.lineno, id(node) in top))
    return out


def _layers():
    """{unit: layer number} and the allowed upward arrows {(from unit, to unit)}, from the page."""
    text = DOC.read_text()
    block = re.search(r"```text\n# layers[^\n]*\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no ```text block starting '# layers'"
    layers, allowed = {}, set()
    for line in block.group(1).splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"(\d+):\s*(.+)", line)
        if m:
            for unit in m.group(2).split(","):
                layers[unit.strip()] = int(m.group(1))
            continue
        m = re.fullmatch(r"allowed:\s*(\S+)\s*->\s*(\S+)", line)
        assert m, f"cannot read the line {line!r} of the layers block"
        allowed.add((m.group(1), m.group(2)))
    return layers, allowed


def _arrows():
    """[(from module, to module, line, at module level)] between modules of the package."""
    return [(m, t, line, top) for m, path in MODULES.items() for t, line, top in _imports(m, path)]


def _cycle(graph):
    """One cycle of ``graph`` ({node: set of nodes}) as a list, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return None


def test_every_unit_is_placed_in_a_layer():
    layers, _ = _layers()
    units = {_unit(m) for m in MODULES} - {"skcluster"}
    assert sorted(units - set(layers)) == [], "units missing from the layers of docs/architecture.md"
    assert sorted(set(layers) - units - {"_text"}) == [], "layers name units that do not exist"


def test_imports_point_down_the_layers():
    layers, allowed = _layers()
    layers = {**layers, "skcluster": 0}  # the package itself: __version__ and lazy names only
    upward = sorted({f"{m}:{line} imports {t} ({_unit(m)} layer {layers.get(_unit(m))} -> {_unit(t)} layer "
                     f"{layers.get(_unit(t))})"
                     for m, t, line, _ in _arrows()
                     if _unit(m) != _unit(t) and (_unit(m), _unit(t)) not in allowed
                     and layers.get(_unit(t), 99) > layers.get(_unit(m), -1)})
    assert upward == []


def test_the_allowed_upward_imports_are_inside_functions():
    _, allowed = _layers()
    at_import = sorted(f"{m}:{line} imports {t}" for m, t, line, top in _arrows()
                       if (_unit(m), _unit(t)) in allowed and top)
    assert at_import == []


def test_no_import_circles_between_units():
    _, allowed = _layers()
    graph = {}
    for m, t, _, _ in _arrows():
        a, b = _unit(m), _unit(t)
        if a != b and (a, b) not in allowed and "skcluster" not in (a, b):
            graph.setdefault(a, set()).add(b)
    assert _cycle(graph) is None


def test_no_import_circles_between_the_modules_of_a_unit():
    graph = {}
    for m, t, _, _ in _arrows():
        # a package's __init__ gathers its modules; arrows out of it are not the modules' own
        if _unit(m) == _unit(t) != "skcluster" and MODULES[m].name != "__init__.py":
            graph.setdefault(m, set()).add(t)
    assert _cycle(graph) is None


@pytest.mark.parametrize("graph, circle", [({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
                                           ({"a": {"b", "c"}, "b": {"c"}}, False)])
def test_the_circle_finder_finds_circles(graph, circle):
    assert (_cycle(graph) is not None) == circle
