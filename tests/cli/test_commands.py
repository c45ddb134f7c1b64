"""Every command's --help, and user errors as one line without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from irstd.cli.main import build_parser, main

IRSTD = str(Path(sys.executable).parent / "irstd")


def _commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)


def test_expected_commands_exist() -> None:
    assert {"demo", "train", "evaluate", "detect", "models", "data"} <= set(_commands())


@pytest.mark.parametrize("command", _commands())
def test_help(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: irstd " + command in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["train", "--model", "nope", "--epochs", "1"], "unknown model 'nope'"),
        (["train", "--data", "/nonexistent/data", "--epochs", "1"], "/nonexistent/data"),
        (["train", "--set", "learning_rat=1"], "did you mean 'lr'"),
        (["evaluate", "/nonexistent/model.safetensors"], "not found"),
        (["evaluate", "unet"], "trainable model"),
        (["detect", "tophat_nope", "x.png"], "tophat_nope"),
        (["train", "--epochs", "zero"], "invalid int value"),
        (["operating-point", "sgem_unet_t.synth", "--max-fa", "50", "--split", "test"], "test split is refused"),
        (["operating-point", "tophat", "--max-fa", "50"], "not found"),
    ],
)
def test_user_errors_are_one_line(argv: list[str], needle: str, tmp_path: Path) -> None:
    out = subprocess.run([IRSTD, *argv], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode != 0
    err = out.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert needle in err
