"""Overlays of inputs that share a name get their own files; small frames are drawn enlarged, with scores
(issue 37, item 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from irstd.inference.sources import open_source
from irstd.inference.sources.files import unique_stems
from irstd.inference.targets import Target
from irstd.visualize import draw_overlay, upscale_factor


def test_unique_stems() -> None:
    assert unique_stems([Path("f.png")]) == {Path("f.png"): "f"}  # a single input keeps today's name
    assert unique_stems([Path("a/f.png"), Path("b/f.png"), Path("c/g.png")]) == {
        Path("a/f.png"): "a__f", Path("b/f.png"): "b__f", Path("c/g.png"): "g"}
    assert unique_stems([Path("x/a/f.png"), Path("x/b/c/f.png")]) == {
        Path("x/a/f.png"): "a__f", Path("x/b/c/f.png"): "b__c__f"}
    assert len(set(unique_stems([Path("f.png"), Path("f.tif")]).values())) == 2


def test_frames_of_same_named_files_get_distinct_stems(tmp_path: Path) -> None:
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / d / "f.png")
    stems = [f.stem for f in open_source([str(tmp_path / "a" / "f.png"), str(tmp_path / "b" / "f.png")]).frames()]
    assert stems == ["a__f", "b__f"]


def test_small_frames_are_upscaled_with_scores() -> None:
    assert upscale_factor((200, 300)) == 2 and upscale_factor((512, 640)) == 1 and upscale_factor((64, 64)) == 4
    frame = np.zeros((100, 120), np.float32)
    t = Target(x=50, y=40, area=4, bbox=(49, 39, 50, 40), peak=0.87)
    plain = np.asarray(draw_overlay(frame, [t], scale=3))
    scored = np.asarray(draw_overlay(frame, [t], scale=3, scores=True))
    assert plain.shape == (300, 360, 3)
    assert (scored != plain).any()  # the score label


def test_detect_writes_two_overlays_for_two_same_named_inputs(tmp_path: Path) -> None:
    from irstd.cli.main import main

    rng = np.random.default_rng(0)
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        img = (rng.random((60, 80)) * 40).astype(np.uint8)
        img[30, 40] = 255
        Image.fromarray(img).save(tmp_path / d / "f.png")
    out = tmp_path / "out"
    rc = main(["detect", "tophat", str(tmp_path / "a" / "f.png"), str(tmp_path / "b" / "f.png"), "--overlay",
               "--out", str(out)])
    assert rc == 0
    overlays = sorted(p.name for p in out.glob("*_overlay.png"))
    assert overlays == ["a__f_overlay.png", "b__f_overlay.png"]
    assert min(Image.open(out / overlays[0]).size) >= 256
