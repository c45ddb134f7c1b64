"""Broken datasets never give silently wrong metrics: masks that are no label mask, two masks for one
stem, empty splits and truncated frames are named (#36 item 7)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from irstd.data import inspect_dataset, load_mask, open_dataset
from irstd.data.io import MAX_MASK_LEVELS, InvalidMaskError, check_mask_values
from irstd.data.validate import check_items, collect_items
from irstd.data.layouts import detect_layout
from irstd.errors import DataError


def _target_mask(h: int = 24, w: int = 32, value: int = 255, background: int = 0) -> np.ndarray:
    m = np.full((h, w), background, np.uint8)
    m[h // 2 - 2 : h // 2 + 2, w // 2 - 2 : w // 2 + 2] = value
    return m


def _jpeg_roundtrip(arr: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf))


# ---- load_mask: the rule that separates label masks from broken ones ----------------------------

def test_background_not_zero_is_refused(tmp_path: Path) -> None:
    Image.fromarray(_target_mask(background=3)).save(tmp_path / "m.png")
    with pytest.raises(InvalidMaskError, match=r"m\.png: mask background .* is 3, not 0") as err:
        load_mask(tmp_path / "m.png")
    assert err.value.kind == "mask_background"


@pytest.mark.parametrize("quality", [50, 75, 95])
def test_mask_saved_through_jpeg_then_png_is_refused(tmp_path: Path, quality: int) -> None:
    rng = np.random.default_rng(quality)
    m = np.zeros((64, 64), np.uint8)
    for y, x in rng.integers(4, 60, (4, 2)):
        m[y - 2 : y + 2, x - 1 : x + 3] = 255
    Image.fromarray(_jpeg_roundtrip(m, quality)).save(tmp_path / "m.png")
    with pytest.raises(InvalidMaskError, match="lossy compression") as err:
        load_mask(tmp_path / "m.png")
    assert err.value.kind == "lossy_mask"


def test_jpeg_mask_file_is_refused(tmp_path: Path) -> None:
    Image.fromarray(_target_mask()).save(tmp_path / "m.jpg", quality=100)
    with pytest.raises(InvalidMaskError, match=r"m\.jpg: mask is a JPEG file"):
        load_mask(tmp_path / "m.jpg")


@pytest.mark.parametrize("levels", [(0, 255), (0, 1), (0, 1, 128, 255), tuple(range(MAX_MASK_LEVELS)),
                                    (0, 100, 200, 255)])
def test_label_masks_stay_legal(levels: tuple[int, ...]) -> None:
    m = np.zeros((40, 40), np.uint8)
    for i, v in enumerate(levels[1:]):  # instance ids, class labels, 0/1 and 0/255 masks
        m[i % 10 * 4, i // 10 * 4] = v
    check_mask_values(m)
    check_mask_values(m.astype(np.uint16) * 257)  # the same mask in 16 bit


def test_near_black_and_white_levels_are_compression_traces() -> None:
    m = _target_mask()
    m[0, 0], m[0, 1] = 1, 254  # {0, 1, 254, 255}: what a quality-100 JPEG leaves
    with pytest.raises(InvalidMaskError, match="next to black and white"):
        check_mask_values(m)
    soft = np.linspace(0, 1, 24 * 32, dtype=np.float32).reshape(24, 32) ** 8  # a probability map
    with pytest.raises(InvalidMaskError, match="distinct values"):
        check_mask_values(soft)


# ---- validation and loading ---------------------------------------------------------------------

@pytest.fixture
def defect_root(tmp_path: Path, write_pair, write_list) -> Path:
    """Plain layout: two good pairs, a mask with background 3, a JPEG mask, a JPEG'd mask saved as PNG
    and a stem with two masks (X.png and X_pixels0.png, the second empty)."""
    root = tmp_path / "d"
    img, msk = root / "images", root / "masks"
    for s in ("ok_0", "ok_1", "bg3", "jpgmask", "jpgpng", "twice"):
        write_pair(img, msk, s, size=(32, 32))
    Image.fromarray(_target_mask(32, 32, background=3)).save(msk / "bg3.png")
    (msk / "jpgmask.png").unlink()
    Image.fromarray(_target_mask(32, 32)).save(msk / "jpgmask.jpg", quality=75)
    Image.fromarray(_jpeg_roundtrip(_target_mask(32, 32), 75)).save(msk / "jpgpng.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(msk / "twice_pixels0.png")
    write_list(root / "test.txt", ["ok_0", "ok_1", "bg3", "jpgmask", "jpgpng", "twice"])
    write_list(root / "train.txt", ["ok_0", "ok_1"])
    return root


def test_two_masks_for_one_stem_are_a_problem(defect_root: Path) -> None:
    items, problems, _ = collect_items(detect_layout(defect_root).resolve("test"))
    dup = [p for p in problems if p.kind == "duplicate_mask"]
    assert len(dup) == 1 and "2 masks for twice: twice.png, twice_pixels0.png" in dup[0].reason
    assert "twice" not in {i.name for i in items}


def test_jpeg_mask_found_from_its_header(defect_root: Path) -> None:
    items, _, _ = collect_items(detect_layout(defect_root).resolve("test"))
    _, problems = check_items(items)  # headers only
    assert [(Path(p.path).name, p.kind) for p in problems] == [("jpgmask.jpg", "lossy_mask")]


def test_open_dataset_names_every_defect(defect_root: Path) -> None:
    with pytest.raises(DataError) as err:
        open_dataset(defect_root, "test", verify=True)
    msg = str(err.value)
    assert "4 problems (2 of 6 items usable)" in msg
    assert "bg3.png: mask background" in msg and "jpgmask.jpg: mask is a JPEG file" in msg
    assert "jpgpng.png: mask has" in msg and "twice_pixels0.png" in msg


def test_skip_invalid_skips_the_masks_only_pixels_show(defect_root: Path) -> None:
    ds = open_dataset(defect_root, "test", skip_invalid=True)
    assert sorted(ds.names) == ["ok_0", "ok_1"] and ds.skipped == 4
    assert sorted(p.kind for p in ds.problems) == ["duplicate_mask", "lossy_mask", "lossy_mask", "mask_background"]


def test_reading_a_bad_mask_without_verify_raises_not_scores(tmp_path: Path, write_pair, write_list) -> None:
    root = tmp_path / "d"
    write_pair(root / "images", root / "masks", "bg3")
    Image.fromarray(_target_mask(background=3)).save(root / "masks" / "bg3.png")
    ds = open_dataset(root, "all", normalization=(0, 1))  # headers look fine
    with pytest.raises(DataError, match=r"bg3\.png: mask background.*--skip-invalid"):
        ds[0]


def test_skip_invalid_skips_a_truncated_image(tmp_path: Path, write_pair) -> None:
    root = tmp_path / "d"
    for s in ("a", "b"):
        write_pair(root / "images", root / "masks", s, size=(64, 64))
    p = root / "images" / "b.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(p)
    p.write_bytes(p.read_bytes()[:300])
    ds = open_dataset(root, "all", normalization=(0, 1), skip_invalid=True)
    assert ds.names == ["a"] and ds.skipped == 1 and "truncated" in ds.problems[0].reason
    ds[0]  # the rest loads


def test_evaluate_skip_invalid_skips_a_truncated_image(tmp_path: Path, plain_dataset) -> None:
    from irstd.cli.main import main

    root, names = plain_dataset
    p = root / "images" / f"{names[1]}.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(p)
    p.write_bytes(p.read_bytes()[:300])
    out = tmp_path / "eval"
    assert main(["evaluate", "tophat", "--data", str(root), "--out", str(out), "--device", "cpu",
                 "--skip-invalid"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["metrics"]["n_images"] == 3 and report["n_skipped_invalid"] == 1


# ---- inspect --------------------------------------------------------------------------------------

def test_inspect_names_mask_defects(defect_root: Path) -> None:
    report = inspect_dataset(defect_root)
    kinds = sorted(p.kind for p in report.problems)
    assert kinds == ["duplicate_mask", "lossy_mask", "lossy_mask", "mask_background"]
    assert report.n_images == 6 and report.n_pairs == 2
    assert report.splits["test"] == (6, 2)


def test_inspect_empty_split_is_a_problem(tmp_path: Path, write_pair, write_list) -> None:
    from irstd.cli import data as data_cli
    import argparse

    root = tmp_path / "d"
    write_pair(root / "images", root / "masks", "a")
    write_list(root / "train.txt", ["a"])
    write_list(root / "test.txt", [])
    report = inspect_dataset(root)
    assert [(p.kind, "'test'" in p.reason) for p in report.problems] == [("empty_split", True)]
    args = argparse.Namespace(root=str(root), split_file=None, mask_dir=None, verify=False)
    assert data_cli.run_inspect(args) == 1
    empty = write_list(tmp_path / "none.txt", [])
    assert [p.kind for p in inspect_dataset(root, split_file=empty).problems] == ["empty_split"]
    (root / "images" / "a.png").unlink()
    (root / "masks" / "a.png").unlink()
    (root / "train.txt").unlink()
    (root / "test.txt").unlink()
    assert [p.kind for p in inspect_dataset(root).problems] == ["empty_split"]
