"""Where ``irstd serve`` takes its API key from: a file or the environment keep it out of ``ps``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from irstd.cli.serve import API_KEY_ENV, add_arguments, resolve_api_key
from irstd.errors import ConfigError


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["tophat", *argv])


def test_key_from_a_file_the_environment_or_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    key_file = tmp_path / "key"
    key_file.write_text("s3cret-from-file\n")
    key_file.chmod(0o600)
    assert resolve_api_key(_args("--api-key-file", str(key_file))) == "s3cret-from-file"
    assert resolve_api_key(_args()) is None
    monkeypatch.setenv(API_KEY_ENV, "from-env")
    assert resolve_api_key(_args()) == "from-env"
    assert resolve_api_key(_args("--api-key-file", str(key_file))) == "s3cret-from-file"  # the file wins
    assert resolve_api_key(_args("--api-key", "on-the-line")) == "on-the-line"  # still works


def test_bad_key_files_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        resolve_api_key(_args("--api-key-file", str(empty)))
    with pytest.raises(ConfigError, match=r"missing.*cannot read it"):
        resolve_api_key(_args("--api-key-file", str(tmp_path / "missing")))
    with pytest.raises(SystemExit):  # one or the other
        _args("--api-key", "a", "--api-key-file", str(empty))
    assert "not allowed with" in capsys.readouterr().err


def test_help_says_the_command_line_key_shows_in_ps(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        _args("--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "--api-key-file" in text and "ps" in text and API_KEY_ENV in text
