"""The import rule of docs/architecture.md, read from the source: imports run down the layers only.

Every ``import``/``from … import`` of every module under ``src/irstd`` counts, including the late ones
inside functions. A module may import its own package and lower layers; a higher layer or a sibling
package of its own layer is a violation.
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


def test_every_part_has_a_layer() -> None:
    parts = {p.stem if p.is_file() else p.name for p in (SRC / "irstd").iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    for part in parts:
        _layer(part)


def test_imports_run_down_the_layers() -> None:
    bad = violations()
    assert not bad, "imports against docs/architecture.md:\n" + "\n".join(bad)


def test_the_checker_catches_an_upward_and_a_sibling_import(tmp_path: Path) -> None:
    """The rule test itself can fail: a fake tree with one upward and one sibling import."""
    global SRC
    fake = tmp_path / "src" / "irstd"
    for part, text in {
        "core/__init__.py": "",
        "core/device.py": "from ..engine import trainer\n",  # upward, at the top
        "data/__init__.py": "def f():\n    from ..metrics import x\n",  # sibling, late import
        "metrics/__init__.py": "from ..core import device\n",  # fine
        "engine/__init__.py": "",
        "engine/trainer.py": "import irstd.models\n",  # fine: downward
        "__init__.py": "",
    }.items():
        f = fake / part
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    saved, SRC = SRC, tmp_path / "src"
    try:
        bad = violations(fake)
    finally:
        SRC = saved
    assert len(bad) == 2
    assert any("core/device.py:1" in b and "irstd.engine" in b for b in bad)
    assert any("data/__init__.py:2" in b and "irstd.metrics" in b for b in bad)


@pytest.mark.parametrize("module", ["irstd.inference", "irstd.export", "irstd.bench", "irstd.engine", "irstd.cli.main"])
def test_each_layer_imports_alone(module: str) -> None:
    """Importing a layer on its own (a fresh interpreter) works: no cycle hides behind import order."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=120)
