"""Atomic writes give files the permissions a plain open() would."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from irstd.core.files import atomic_write, atomic_write_text, current_umask


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_umask_is_read_without_changing_it(umask_022) -> None:
    assert current_umask() == 0o022
    assert current_umask() == 0o022


def test_new_file_is_readable_by_others_under_umask_022(tmp_path: Path, umask_022) -> None:
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "{}")
    assert _mode(target) == 0o644  # -rw-r--r--, as open() gives


def test_new_file_follows_a_stricter_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "f.txt") == 0o600


def test_replaced_file_keeps_its_mode(tmp_path: Path, umask_022) -> None:
    target = tmp_path / "weights.safetensors"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and _mode(target) == 0o640


def test_writer_that_recreates_the_file_still_gets_the_mode(tmp_path: Path, umask_022) -> None:
    def recreate(tmp: str) -> None:  # as some savers do: unlink, then open with their own mode
        os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"data")
        os.close(fd)

    atomic_write(tmp_path / "model.onnx", recreate)
    assert _mode(tmp_path / "model.onnx") == 0o644
