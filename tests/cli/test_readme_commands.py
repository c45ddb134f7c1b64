"""The README's commands, run as a user types them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from irstd.cli.main import main

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["bash scripts/demo.sh", "bash scripts/test.sh"]


def test_readme_opens_with_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    first_block = text.split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in first_block.strip().splitlines()]
    assert lines == COMMANDS


def test_ci_runs_the_readme_test_command() -> None:
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()


def test_main_job_runs_as_typed() -> None:
    # the test command (scripts/test.sh) has already set up .venv, so this takes seconds
    out = subprocess.run(COMMANDS[0], shell=True, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    # the output the README shows must be what the command prints
    text = (REPO / "README.md").read_text()
    shown = text.split("## What the main job does", 1)[1].split("```\n", 2)[1]
    for line in shown.strip().splitlines():
        assert line in out.stdout, f"README shows {line!r}, the command printed:\n{out.stdout}"


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["models", "--help"]])
def test_help_exits_zero(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0


def test_unknown_model_is_one_line_no_traceback() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "irstd"), "demo", "--model", "nope"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "unknown model 'nope'" in out.stderr
    assert "Traceback" not in out.stderr
