"""The import rule of docs/architecture.md, read from the source: imports run down the layers only.

Every ``import``/``from … import`` of every module under ``src/irstd`` counts, including the late ones
inside functions. A module may import its own package and lower layers; a higher layer or a sibling
package of its own layer is a violation. Inside one package the files' imports must not close a circle
either (a late import that hides one still counts).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: top-level part of the package → layer (docs/architecture.md)
LAYERS = {
    "core": 0,
    "models": 1,
    "data": 2, "metrics": 2, "losses": 2, "visualize": 2, "tracking": 2,
    "inference": 3,
    "verify": 3.5,  # between inference and engine: imports inference and below only
    "engine": 4,
    "export": 5,
    "bench": 6,
    "apps": 7, "serve": 7, "experiments": 7,
    "cli": 8,
}
#: the root package and the public alias of core.errors: for users, never imported by the library
TOP = 9
PUBLIC_ALIASES = {"errors", "__main__"}  # __main__: ``python -m irstd`` runs the CLI


def _part(module: str) -> str:
    """``irstd.engine.trainer`` → ``engine``; the root package → ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(part: str) -> int:
    if part in LAYERS:
        return LAYERS[part]
    if part in PUBLIC_ALIASES or part == "":
        return TOP
    raise AssertionError(f"irstd.{part} is in no layer of docs/architecture.md: add it to the table and to LAYERS")


def _module_name(path: Path) -> tuple[str, str]:
    """(module, package it resolves relative imports against) of a source file."""
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every irstd import in ``path``; ``from . import x`` yields ``pkg.x``."""
    _, package = _module_name(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "irstd"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "irstd":
                continue
            if node.module is None:  # from . import a, b: each name is a module or a package attribute
                found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, target))
    return found


def violations(root: Path = SRC / "irstd") -> list[str]:
    """Every import that breaks the rule, as ``file:line: a (Ln) imports b (Lm)``."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        module, _ = _module_name(path)
        part = _part(module)
        own = _layer(part)
        for line, target in imports_of(path):
            tpart = _part(target)
            if tpart == part:
                continue  # within its own package
            other = _layer(tpart) if (tpart in LAYERS or tpart in PUBLIC_ALIASES or tpart == "") else None
            if other is None:  # e.g. `from .. import something` that is not a part: the root package
                other = TOP
            if other > own or (other == own):
                rel = path.relative_to(SRC)
                bad.append(f"{rel}:{line}: irstd.{part or '(root)'} (L{own}) imports {target} (L{other})")
    return bad


def import_graph(root: Path = SRC / "irstd") -> dict[str, dict[str, int]]:
    """module → {imported module of the same package: first line}, for every module under ``root``.

    ``from pkg import name`` points at ``pkg.name`` when that is a module, else at ``pkg`` (its ``__init__``).
    Imports of another top-level package are the layer rule's business and are left out.
    """
    paths = sorted(root.rglob("*.py"))
    modules = {_module_name(p)[0] for p in paths}
    graph: dict[str, dict[str, int]] = {}
    for path in paths:
        module, _ = _module_name(path)
        edges = graph.setdefault(module, {})
        for line, target in imports_of(path):
            while target not in modules and "." in target:  # an attribute of a module: the module
                target = target.rsplit(".", 1)[0]
            if target in modules and target != module and _part(target) == _part(module):
                edges.setdefault(target, line)
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted; sorted by first name."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def describe_circle(group: list[str], graph: dict[str, dict[str, int]]) -> str:
    """The imports inside the group, each as ``a imports b (line n)``, joined by ``; ``."""
    members = set(group)
    return "; ".join(f"{a} imports {b} (line {line})" for a in group for b, line in sorted(graph[a].items())
                     if b in members)


def circle_report(root: Path = SRC / "irstd") -> list[str]:
    """Every circle of imports inside a package under ``root``, described."""
    graph = import_graph(root)
    return [describe_circle(g, graph) for g in circles(graph)]


def test_every_part_has_a_layer() -> None:
    parts = {p.stem if p.is_file() else p.name for p in (SRC / "irstd").iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    for part in parts:
        _layer(part)


def test_imports_run_down_the_layers() -> None:
    bad = violations()
    assert not bad, "imports against docs/architecture.md:\n" + "\n".join(bad)


def _in_fake_tree(tmp_path: Path, files: dict[str, str], check):
    """``check(root)`` on a fake ``src/irstd`` tree of ``files`` (path → text), with SRC pointing at it."""
    global SRC
    fake = tmp_path / "src" / "irstd"
    for part, text in files.items():
        f = fake / part
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    saved, SRC = SRC, tmp_path / "src"
    try:
        return check(fake)
    finally:
        SRC = saved


def test_the_checker_catches_an_upward_and_a_sibling_import(tmp_path: Path) -> None:
    """The rule test itself can fail: a fake tree with one upward and one sibling import."""
    bad = _in_fake_tree(tmp_path, {
        "core/__init__.py": "",
        "core/device.py": "from ..engine import trainer\n",  # upward, at the top
        "data/__init__.py": "def f():\n    from ..metrics import x\n",  # sibling, late import
        "metrics/__init__.py": "from ..core import device\n",  # fine
        "engine/__init__.py": "",
        "engine/trainer.py": "import irstd.models\n",  # fine: downward
        "__init__.py": "",
    }, violations)
    assert len(bad) == 2
    assert any("core/device.py:1" in b and "irstd.engine" in b for b in bad)
    assert any("data/__init__.py:2" in b and "irstd.metrics" in b for b in bad)


def test_no_circle_of_imports_inside_a_package() -> None:
    bad = circle_report()
    assert not bad, "circles of imports inside a package (break them; late imports count):\n" + "\n".join(bad)


def test_the_checker_catches_a_circle_inside_a_package(tmp_path: Path) -> None:
    """A fake tree with a three-file circle closed by a late import, one circle through the package's
    ``__init__``, and a chain that is no circle: the checker names both circles and nothing else."""
    graph, bad = _in_fake_tree(tmp_path, {
        "__init__.py": "",
        "models/__init__.py": "from .registry import build\n",
        "models/registry.py": "from .spec import parse\n",
        "models/spec.py": "from . import loader\n",
        "models/loader.py": "def load():\n    from .registry import build\n",  # late import closes it
        "models/net.py": "from .registry import build\nfrom ..core import errors\n",  # a chain: fine
        "engine/__init__.py": "from .trainer import fit\n",
        "engine/trainer.py": "from irstd.engine import evaluate\n",  # back to its own __init__
        "core/__init__.py": "",
        "core/errors.py": "",
    }, lambda root: (import_graph(root), circle_report(root)))
    assert circles(graph) == [["irstd.engine", "irstd.engine.trainer"],
                              ["irstd.models.loader", "irstd.models.registry", "irstd.models.spec"]]
    assert len(bad) == 2 and "irstd.models.loader imports irstd.models.registry (line 2)" in bad[1]
    assert "irstd.models.spec imports irstd.models.loader (line 1)" in bad[1]
    assert "irstd.engine.trainer imports irstd.engine (line 1)" in bad[0]


@pytest.mark.parametrize("module", ["irstd.inference", "irstd.export", "irstd.bench", "irstd.engine", "irstd.cli.main"])
def test_each_layer_imports_alone(module: str) -> None:
    """Importing a layer on its own (a fresh interpreter) works: no cycle hides behind import order."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=120)
