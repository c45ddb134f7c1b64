"""The ``irstd`` console script: Ctrl-C while the command's modules still load ends with one line and
status 130, never a ``KeyboardInterrupt`` traceback (issue 36)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: what pip's generated ``irstd`` script does with ``[project.scripts]``'s ``module:function``, after a
#: finder that raises KeyboardInterrupt when ``irstd.cli.main`` is imported (a Ctrl-C during its imports)
_SHIM = r"""
import importlib.abc, sys
class CtrlC(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "irstd.cli.main":
            raise KeyboardInterrupt
        return None
sys.meta_path.insert(0, CtrlC())
module, _, func = sys.argv[1].partition(":")
target = getattr(__import__(module, fromlist=[func]), func)
sys.exit(target())
"""


def test_console_script_interrupted_while_importing() -> None:
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["irstd"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", _SHIM, target, "--help"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 130, (target, proc.stderr)
    assert proc.stderr.strip() == "irstd: interrupted", proc.stderr


def test_console_script_runs_the_command() -> None:
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["irstd"]
    module, _, func = target.partition(":")
    code = f"import sys; from {module} import {func} as f; sys.argv = ['irstd', '--version']; sys.exit(f())"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("irstd "), proc.stderr
