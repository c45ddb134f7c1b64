"""open_negatives: the real background folder, generated folders, and the folders it refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from irstd.core.errors import DataError
from irstd.data import negatives_split, open_negatives, scene_group

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "SIRST-V2-background"


def _write_frames(folder: Path, stems: list[str], size: tuple[int, int] = (12, 16)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for stem in stems:
        Image.fromarray(rng.integers(0, 255, size=size, dtype=np.uint8)).save(folder / f"{stem}.png")


def test_scene_group() -> None:
    assert scene_group("TH_120") == "TH"
    assert scene_group("20210725-S2-7") == "20210725-S2"
    assert scene_group("other") == "other"
    assert scene_group("17") == "17"  # all digits: the whole stem


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/datasets/SIRST-V2-background is absent")
def test_real_folder_split_is_disjoint_and_covers_all() -> None:
    everything = open_negatives(REAL)
    assert len(everything) == 202
    assert list(everything.stems) == sorted(everything.stems)
    train, held = open_negatives(REAL, "train"), open_negatives(REAL, "heldout")
    assert set(train.stems).isdisjoint(held.stems)
    assert set(train.stems) | set(held.stems) == set(everything.stems)
    assert set(everything.groups) == set(negatives_split()["train"]) | set(negatives_split()["heldout"])
    frame = everything.load(0)
    assert frame.dtype == np.float32 and frame.ndim == 2


def test_generated_folder(tmp_path: Path) -> None:
    _write_frames(tmp_path / "bg" / "images", ["TH_2", "TH_1", "S4-3"])
    neg = open_negatives(tmp_path / "bg")
    assert neg.stems == ("S4-3", "TH_1", "TH_2")
    assert neg.groups == ("S4", "TH")
    assert [f.group for f in neg] == ["S4", "TH", "TH"]
    assert neg.load(1).shape == (12, 16)
    assert open_negatives(tmp_path / "bg", "heldout").stems == ("TH_1", "TH_2")  # TH is held out
    assert open_negatives(tmp_path / "bg", groups=["S4"]).stems == ("S4-3",)
    flat = tmp_path / "flat"
    _write_frames(flat, ["a_1"])
    assert open_negatives(flat).stems == ("a_1",)


@pytest.mark.parametrize("sub", ["masks", "Masks", "labels"])
def test_refuses_a_mask_folder(tmp_path: Path, sub: str) -> None:
    _write_frames(tmp_path / "images", ["TH_1"])
    (tmp_path / sub).mkdir()
    with pytest.raises(DataError, match="has no masks") as e:
        open_negatives(tmp_path)
    assert "\n" not in str(e.value) and sub in str(e.value)


def test_refuses_mask_suffixed_files(tmp_path: Path) -> None:
    _write_frames(tmp_path, ["TH_1", "TH_1_pixels0"])
    with pytest.raises(DataError, match="TH_1_pixels0.png: a negatives folder has no masks"):
        open_negatives(tmp_path)


def test_refuses_empty_and_missing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        open_negatives(tmp_path / "empty")
    with pytest.raises(DataError, match="no such folder"):
        open_negatives(tmp_path / "missing")


def test_refuses_bad_selection(tmp_path: Path) -> None:
    _write_frames(tmp_path, ["S4-1"])
    with pytest.raises(DataError, match="unknown negatives split"):
        open_negatives(tmp_path, "test")
    with pytest.raises(DataError, match="no frame left for split 'heldout'"):
        open_negatives(tmp_path, "heldout")
    with pytest.raises(DataError, match="no frame of scene group"):
        open_negatives(tmp_path, groups=["TH"])
