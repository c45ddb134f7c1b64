"""The real SIRST v1 release (skipped with the reason when ../shared/datasets is absent)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from irstd.data import detect_layout, inspect_dataset, load_image, load_mask, open_dataset, read_split_file
from irstd.data.layouts import index_images
from irstd.errors import DataError


@pytest.fixture(scope="module")
def nuaa_50_50(shared_datasets: Path) -> Path:
    d = shared_datasets / "splits" / "NUAA-SIRST_50_50"
    if not (d / "test.txt").is_file():
        pytest.skip(f"NUAA-SIRST 50_50 split files not found at {d.resolve()}")
    return d


def test_sirst_layout_and_counts(sirst_root: Path) -> None:
    layout = detect_layout(sirst_root)
    assert layout.name == "sirst"
    assert len(index_images(sirst_root / "images")) == 427
    # idx_427 as published (no final newline): trainval / test
    trainval = read_split_file(layout.resolve("train")[0].list_file)
    test = read_split_file(layout.resolve("test")[0].list_file)
    assert (len(trainval), len(test)) == (341, 86)
    train = open_dataset(sirst_root, "train", normalization=(0, 1))
    assert len(train) == 341 and train.skipped == 0
    ds = open_dataset(sirst_root, "test", normalization=(0, 1), skip_invalid=True)
    assert len(ds) + ds.skipped == 86


def test_sirst_nuaa_split_and_misc_111(sirst_root: Path, nuaa_50_50: Path) -> None:
    start = time.perf_counter()
    train = open_dataset(sirst_root, split_file=nuaa_50_50 / "train.txt", normalization=(0, 1))
    assert len(train) == 213
    with pytest.raises(DataError) as err:
        open_dataset(sirst_root, split_file=nuaa_50_50 / "test.txt", normalization=(0, 1))
    msg = str(err.value)
    assert "1 problem (213 of 214 items usable)" in msg
    assert "Misc_111_pixels0.png: size mismatch" in msg and "--skip-invalid" in msg
    test = open_dataset(sirst_root, split_file=nuaa_50_50 / "test.txt", normalization=(0, 1), skip_invalid=True)
    assert len(test) == 213 and test.skipped == 1
    assert [p.stem for p in test.problems] == ["Misc_111"] and test.problems[0].kind == "size_mismatch"
    assert time.perf_counter() - start < 5.0  # headers only: no full decode during validation


def test_sirst_corrected_mask(sirst_root: Path, nuaa_50_50: Path, shared_datasets: Path) -> None:
    fixes = shared_datasets / "SIRST-corrections" / "masks"
    if not fixes.is_dir():
        pytest.skip(f"SIRST corrections not found at {fixes.resolve()}")
    test = open_dataset(sirst_root, split_file=nuaa_50_50 / "test.txt", normalization=(0, 1), mask_dir=fixes)
    assert len(test) == 214 and test.problems == []
    assert [s for s, _ in test.mask_overrides] == ["Misc_111"]
    item = test[test.names.index("Misc_111")]
    assert item["image"].shape == item["mask"].shape == (1, 220, 325)


def test_sirst_every_other_pair_loads_as_one_channel(sirst_root: Path) -> None:
    ds = open_dataset(sirst_root, "all", normalization=(0, 1), skip_invalid=True)
    assert len(ds) == 426 and ds.skipped == 1
    modes = set()
    for img_path, mask_path, stem in ds.items:
        image, mask = load_image(img_path), load_mask(mask_path)
        with Image.open(img_path) as im:
            modes.add(im.mode)
            assert image.shape == mask.shape == (im.height, im.width), stem
        assert mask.any(), stem
    assert {"RGB", "L"} <= modes  # mixed modes really were exercised
    item = ds[0]
    assert item["image"].shape[0] == 1 and item["mask"].shape == item["image"].shape


def test_sirst_inspect(sirst_root: Path) -> None:
    report = inspect_dataset(sirst_root)
    assert report.n_images == 427 and report.n_pairs == 426
    assert report.splits["idx_427/trainval"] == (341, 341)
    assert report.splits["idx_427/test"] == (86, 85)
    assert [p.stem for p in report.problems] == ["Misc_111"]
    assert report.n_targets >= 426  # every SIRST frame has at least one target
    text = report.format()
    assert "layout: sirst" in text and "Misc_111" in text and "train -> idx_427/trainval.txt" in text
