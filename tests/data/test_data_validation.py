"""Every defect is reported with its path and reason; skip_invalid continues; statistics are cached
outside the data folder and kept in native range."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from irstd.data import compute_normalization, open_dataset
from irstd.errors import DataError


@pytest.fixture
def broken_root(tmp_path: Path, write_pair, write_list) -> Path:
    """Plain layout: 3 good pairs, one missing mask, one unreadable image, one size mismatch, one
    listed stem without any file."""
    root = tmp_path / "broken"
    img, msk = root / "images", root / "masks"
    for s in ("ok_0", "ok_1", "ok_2", "no_mask", "garbled", "mismatch"):
        write_pair(img, msk, s, mask_size=(48, 64) if s == "mismatch" else None)
    (msk / "no_mask.png").unlink()
    (img / "garbled.png").write_bytes(b"\x89PNG not really")
    write_list(root / "test.txt", ["ok_0", "ok_1", "ok_2", "no_mask", "garbled", "mismatch", "ghost"])
    write_list(root / "train.txt", ["ok_0", "ok_1"])
    return root


def test_all_problems_listed_in_one_error(broken_root: Path) -> None:
    with pytest.raises(DataError) as err:
        open_dataset(broken_root, "test")
    msg = str(err.value)
    assert "4 problems (3 of 7 items usable)" in msg
    assert "no mask for no_mask" in msg
    assert "garbled.png: not an image" in msg
    assert "mismatch.png: size mismatch: mask is 64x48 (WxH) but image mismatch.png is 32x24" in msg
    assert "listed in" in msg and "ghost" in msg
    assert "skip_invalid=True" in msg and "--skip-invalid" in msg
    assert "--mask-dir DIR" in msg  # a mask that does not fit can be replaced (SIRST's Misc_111)


def test_mask_dir_is_named_only_for_mask_problems() -> None:
    from irstd.data.validate import Problem, format_problems

    unreadable = format_problems("D", [Problem("a.png", "not an image", "a", "unreadable")], 1, 2)
    assert "--mask-dir" not in unreadable and "--skip-invalid" in unreadable
    mismatch = format_problems("D", [Problem("m.png", "size mismatch", "m", "size_mismatch")], 1, 2)
    assert "mask_dir=DIR (CLI: --mask-dir DIR" in mismatch


def test_skip_invalid_keeps_the_rest(broken_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="irstd.data"):
        ds = open_dataset(broken_root, "test", skip_invalid=True)
    assert sorted(ds.names) == ["ok_0", "ok_1", "ok_2"]
    assert ds.skipped == 4
    assert sorted(p.kind for p in ds.problems) == ["missing_image", "missing_mask", "size_mismatch", "unreadable"]
    assert "skipping 4 invalid items of 7" in caplog.text
    for i in range(len(ds)):
        assert ds[i]["image"].shape == ds[i]["mask"].shape


def test_mask_dir_overrides_by_stem(broken_root: Path, tmp_path: Path, write_pair,
                                    caplog: pytest.LogCaptureFixture) -> None:
    fixed = tmp_path / "fixed"
    write_pair(tmp_path / "unused", fixed, "mismatch", mask_suffix="_pixels0")  # a right-size mask
    write_pair(tmp_path / "unused", fixed, "no_mask")
    with caplog.at_level(logging.INFO, logger="irstd.data"):
        ds = open_dataset(broken_root, "test", mask_dir=fixed, skip_invalid=True)
    assert {"mismatch", "no_mask"} <= set(ds.names)
    assert ds.skipped == 2  # garbled + ghost remain
    assert sorted(s for s, _ in ds.mask_overrides) == ["mismatch", "no_mask"]
    assert "using corrected mask" in caplog.text and "mismatch_pixels0.png" in caplog.text
    item = ds[ds.names.index("mismatch")]
    assert item["image"].shape == item["mask"].shape == (1, 24, 32)
    with pytest.raises(DataError, match="mask folder not found"):
        open_dataset(broken_root, "test", mask_dir=tmp_path / "nowhere")


def test_verify_finds_truncated_body(tmp_path: Path, write_pair, write_list) -> None:
    root = tmp_path / "d"
    for s in ("a", "b"):
        write_pair(root / "images", root / "masks", s, size=(64, 64))
    p = root / "images" / "b.png"
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noisy).save(p)
    p.write_bytes(p.read_bytes()[:300])
    assert len(open_dataset(root, "all", normalization=(0, 1))) == 2  # headers look fine
    with pytest.raises(DataError, match=r"b\.png: truncated"):
        open_dataset(root, "all", normalization=(0, 1), verify=True)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}


def test_normalization_from_train_split_cached_outside_data(tmp_path: Path, write_pair, write_list,
                                                            _cache_in_tmp: Path) -> None:
    root = tmp_path / "d16"
    rng = np.random.default_rng(0)
    frames = {}
    for s in ("t0", "t1", "e0"):
        write_pair(root / "images", root / "masks", s)
        frames[s] = rng.integers(1000, 40000, size=(24, 32)).astype(np.uint16)
        Image.fromarray(frames[s]).save(root / "images" / f"{s}.png")  # 16-bit frames
    write_list(root / "train.txt", ["t0", "t1"])
    write_list(root / "test.txt", ["e0"])
    before = _snapshot(root)
    test = open_dataset(root, "test")
    train_px = np.concatenate([frames["t0"].ravel(), frames["t1"].ravel()]).astype(np.float64)
    np.testing.assert_allclose(test.normalization, (train_px.mean(), train_px.std()), rtol=1e-6)
    assert test.normalization[1] > 255  # 16-bit spread, not divided by 255
    x = test[0]["image"].numpy()
    np.testing.assert_allclose(x[0], (frames["e0"] - train_px.mean()) / train_px.std(), rtol=1e-4, atol=1e-5)
    assert _snapshot(root) == before  # nothing written into the data folder
    cached = list(_cache_in_tmp.glob("norm-*.json"))
    assert len(cached) == 1
    # a second call reads the cache: make the cached value recognisable
    cached[0].write_text('{"mean": 1.5, "std": 2.5}')
    assert compute_normalization(open_dataset(root, "train", normalization=(0, 1))) == (1.5, 2.5)
    # touching a file changes the key
    os.utime(root / "images" / "t0.png", ns=(1, 1))
    assert compute_normalization(open_dataset(root, "train", normalization=(0, 1))) != (1.5, 2.5)


def test_normalization_given_is_used(layout_root) -> None:
    ds = open_dataset(layout_root("plain"), "test", normalization=(10.0, 2.0))
    raw, _ = ds.load_raw(0)
    np.testing.assert_allclose(ds[0]["image"][0].numpy(), (raw - 10.0) / 2.0)
    with pytest.raises(DataError, match="std must be > 0"):
        open_dataset(layout_root("plain"), "test", normalization=(0.0, 0.0))


def test_item_pixels_are_the_float32_formula(layout_root) -> None:
    """Bit-exact: ``(x − float32(mean)) / float32(std)`` on the float32 frame, mask as float32 {0, 1}."""
    mean, std = 123.456789012345, 7.654321098765
    ds = open_dataset(layout_root("plain"), "test", normalization=(mean, std))
    raw, mask = ds.load_raw(0)
    item = ds[0]
    assert item["image"].dtype == item["mask"].dtype == torch.float32
    np.testing.assert_array_equal(item["image"].numpy()[0], (raw - np.float32(mean)) / np.float32(std))
    np.testing.assert_array_equal(item["mask"].numpy()[0], mask.astype(np.float32))
    assert item["name"] == ds.names[0] and item["path"] == str(ds.items[0][0])
