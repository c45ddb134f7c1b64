"""The one normalisation, the per-frame fallback, the sample dict and the pair-of-files tuple."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from irstd.data import MIN_STD, PairFiles, frame_normalization, make_item, normalize
from irstd.data.items import check_normalization, floor_std
from irstd.errors import DataError


def test_normalize_is_float32_with_float32_statistics() -> None:
    frame = np.random.default_rng(0).integers(0, 65535, size=(7, 9)).astype(np.uint16)
    mean, std = 31000.123456789, 18000.987654321
    out = normalize(frame, (mean, std))
    assert out.dtype == np.float32 and out.shape == (7, 9)
    # the statistics are rounded to float32 before the arithmetic (as training always did)
    np.testing.assert_array_equal(out, (frame.astype(np.float32) - np.float32(mean)) / np.float32(std))


def test_std_floor_is_shared() -> None:
    flat = np.full((4, 5), 3.0, dtype=np.float32)
    assert frame_normalization(flat) == (3.0, MIN_STD)
    assert floor_std(0.0) == MIN_STD and floor_std(2.5) == 2.5
    np.testing.assert_array_equal(normalize(flat, frame_normalization(flat)), np.zeros((4, 5), np.float32))


def test_frame_normalization_sums_in_float32() -> None:
    frame = np.random.default_rng(1).random((16, 16))  # float64 in: taken as float32
    x = frame.astype(np.float32)
    assert frame_normalization(frame) == (float(x.mean()), float(x.std()))


def test_check_normalization() -> None:
    assert check_normalization((np.float32(1.5), 2)) == (1.5, 2.0)
    for bad in ((0.0, 0.0), (0.0, -1.0), (0.0, float("nan"))):
        with pytest.raises(DataError, match="std must be > 0"):
            check_normalization(bad)


def test_make_item_shapes_and_types() -> None:
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    mask = image > 8
    item = make_item(image, mask, "a", Path("/x/a.png"), (2.0, 4.0))
    assert item["image"].shape == item["mask"].shape == (1, 3, 4)
    assert item["image"].dtype == item["mask"].dtype == torch.float32
    np.testing.assert_array_equal(item["image"][0].numpy(), (image - 2.0) / 4.0)
    assert item["mask"].sum() == 3 and item["name"] == "a" and item["path"] == "/x/a.png"


def test_pair_files_unpacks_like_the_old_tuple() -> None:
    pair = PairFiles(Path("i.png"), Path("m.png"), "i")
    img, mask, stem = pair
    assert (img, mask, stem) == (pair.image, pair.mask, pair.name) == tuple(pair)
