"""Package ``__init__``s that load their public names on first use (PEP 562).

A package lists its public names once, as imports under ``if TYPE_CHECKING:`` (type checkers and IDEs
read them), and ends with ``__getattr__, __dir__ = lazy_exports(__name__)``. ``from irstd.data import
open_dataset`` then imports ``irstd.data.dataset`` at that moment, not when ``irstd.data`` (or one of its
light modules, e.g. ``irstd.data.io``) is imported: a command's ``--help`` loads no torch.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path
from typing import Any, Callable

__all__ = ["lazy_exports"]


def _type_checking_imports(path: Path) -> dict[str, tuple[str, str]]:
    """``{public name: (relative module, name in it)}`` of the ``from … import …`` lines under
    ``if TYPE_CHECKING:`` in the file at ``path``."""
    table: dict[str, tuple[str, str]] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    source = "." * stmt.level + (stmt.module or "")
                    for alias in stmt.names:
                        table[alias.asname or alias.name] = (source, alias.name)
    return table


def lazy_exports(package: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of package ``package`` (its ``__name__``), built from the
    imports of its ``if TYPE_CHECKING:`` block; a loaded name is kept in the package's namespace."""
    module = sys.modules[package]
    table = _type_checking_imports(Path(module.__file__ or ""))

    def __getattr__(name: str) -> Any:
        try:
            source, original = table[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(source, package), original)
        setattr(module, name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(module), *table})

    return __getattr__, __dir__
