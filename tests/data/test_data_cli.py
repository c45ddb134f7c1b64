"""``irstd data synth`` and ``irstd data inspect``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from irstd.cli import data as data_cli
from irstd.errors import IRSTDError


def main(argv: list[str]) -> int:
    """``irstd`` with only the ``data`` command (the other commands are tested on their own)."""
    parser = argparse.ArgumentParser(prog="irstd")
    data_cli.add_arguments(parser.add_subparsers(dest="command", required=True).add_parser("data"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except IRSTDError as exc:  # as irstd.cli.main does: one line, exit 2
        print(f"irstd {args.command}: error: {exc}", file=sys.stderr)
        return 2


def test_synth_then_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synth"
    assert main(["data", "synth", str(out), "--n", "5", "--area", "4,30", "--targets", "2"]) == 0
    assert "wrote 4 train + 1 test frames" in capsys.readouterr().out
    assert len(list((out / "images").glob("*.png"))) == 5
    assert (out / "train.txt").read_text().split() == [f"train_{i:05d}" for i in range(4)]
    assert main(["data", "inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "layout: plain" in text and "images: 5 (5 with a usable mask)" in text
    assert "targets: 10 in 5 images" in text  # exactly 2 per frame
    assert "problems: 0" in text
    assert main(["data", "synth", str(out), "--n", "2"]) == 2  # not empty: one-line error
    assert "not empty" in capsys.readouterr().err


def test_inspect_lists_problems_and_exits_1(tmp_path: Path, write_pair, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "d"
    write_pair(root / "images", root / "masks", "good")
    write_pair(root / "images", root / "masks", "bad", mask_size=(10, 10))
    assert main(["data", "inspect", str(root)]) == 1
    text = capsys.readouterr().out
    assert "problems: 1" in text and "bad.png: size mismatch" in text


def test_inspect_missing_folder_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "inspect", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "dataset folder not found" in err


def test_inspect_reports_bit_depth_and_targets(tmp_path: Path, write_pair) -> None:
    import numpy as np
    from PIL import Image

    from irstd.data import inspect_dataset

    root = tmp_path / "d14"
    for s in ("a", "b"):
        write_pair(root / "images", root / "masks", s)
        Image.fromarray(np.full((24, 32), 2**13 + 5, dtype=np.uint16)).save(root / "images" / f"{s}.png")
    rep = inspect_dataset(root)
    assert rep.modes == {"I;16": 2} and rep.effective_bits == {14: 2}
    assert rep.n_targets == 2 and rep.target_areas == [9, 9]
    assert ("5-9", 2) in rep.area_histogram()
    assert "14-bit (2)" in rep.format()
