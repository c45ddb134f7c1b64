"""Loading frames of every PIL mode, 16-bit round trips, masks, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from irstd.data import load_image, load_mask, read_header, save_image
from irstd.errors import DataError


def _ramp16(h: int = 20, w: int = 30) -> np.ndarray:
    """uint16 values up to ~59 900: far above 8 bits."""
    return (np.arange(h * w).reshape(h, w) * 100).astype(np.uint16)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_round_trip_keeps_range(tmp_path: Path, ext: str) -> None:
    a = _ramp16()
    p = tmp_path / f"f{ext}"
    Image.fromarray(a).save(p)
    x = load_image(p)
    assert x.dtype == np.float32 and x.shape == a.shape
    assert x.max() > 255
    np.testing.assert_array_equal(x, a.astype(np.float32))


def test_14bit_frame_through_save_image(tmp_path: Path) -> None:
    a = np.random.default_rng(0).integers(0, 2**14, size=(16, 16)).astype(np.float32)
    save_image(tmp_path / "f.png", a, bit_depth=16)
    np.testing.assert_array_equal(load_image(tmp_path / "f.png"), a)
    assert read_header(tmp_path / "f.png").bits == 16


def test_big_endian_16bit_tiff(tmp_path: Path) -> None:
    a = _ramp16()
    Image.frombytes("I;16B", (a.shape[1], a.shape[0]), a.astype(">u2").tobytes()).save(tmp_path / "b.tif")
    np.testing.assert_array_equal(load_image(tmp_path / "b.tif"), a.astype(np.float32))


def test_32bit_int_and_float_tiff(tmp_path: Path) -> None:
    a = _ramp16().astype(np.int32) * 3
    Image.fromarray(a).save(tmp_path / "i.tif")
    np.testing.assert_array_equal(load_image(tmp_path / "i.tif"), a.astype(np.float32))
    f = np.linspace(-1.5, 2.5, 600, dtype=np.float32).reshape(20, 30)
    Image.fromarray(f, mode="F").save(tmp_path / "f.tif")
    np.testing.assert_allclose(load_image(tmp_path / "f.tif"), f)


def test_grey_stored_as_colour_modes_gives_the_grey(tmp_path: Path) -> None:
    g = np.random.default_rng(1).integers(0, 256, size=(12, 14), dtype=np.uint8)
    L = Image.fromarray(g)
    for mode in ("RGB", "RGBA", "LA", "P"):
        p = tmp_path / f"{mode}.png"
        L.convert(mode).save(p)
        np.testing.assert_array_equal(load_image(p), g.astype(np.float32), err_msg=mode)


def test_colour_frame_reduces_to_luminance(tmp_path: Path) -> None:
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # pure red
    Image.fromarray(rgb).save(tmp_path / "c.png")
    x = load_image(tmp_path / "c.png")
    assert x.shape == (4, 4)
    np.testing.assert_allclose(x, 0.299 * 200, rtol=1e-5)


def test_mask_any_nonzero_is_target(tmp_path: Path) -> None:
    m = np.zeros((8, 8), dtype=np.uint8)
    m[1, 1], m[2, 2], m[3, 3] = 1, 128, 255
    Image.fromarray(m).save(tmp_path / "m.png")
    got = load_mask(tmp_path / "m.png")
    assert got.dtype == bool and got.sum() == 3 and got[1, 1]
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., 3] = 255  # opaque black everywhere: alpha must not count as target
    rgba[5, 6, 1] = 9
    Image.fromarray(rgba).save(tmp_path / "m_rgba.png")
    got = load_mask(tmp_path / "m_rgba.png")
    assert got.sum() == 1 and got[5, 6]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.png: file not found"):
        load_image(tmp_path / "nope.png")


def test_not_an_image(tmp_path: Path) -> None:
    p = tmp_path / "text.png"
    p.write_text("this is not a picture")
    with pytest.raises(DataError, match=r"text\.png: not an image"):
        load_image(p)
    with pytest.raises(DataError, match="not an image"):
        read_header(p)


def test_truncated_png(tmp_path: Path) -> None:
    p = tmp_path / "t.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(p)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    assert read_header(p).size == (64, 64)  # the header alone looks fine
    with pytest.raises(DataError, match=r"t\.png: truncated"):
        load_image(p)


def test_multi_page_tiff(tmp_path: Path) -> None:
    p = tmp_path / "pages.tif"
    pages = [Image.fromarray(np.full((8, 8), v, dtype=np.uint8)) for v in (1, 2)]
    pages[0].save(p, save_all=True, append_images=pages[1:])
    assert read_header(p).frames == 2
    with pytest.raises(DataError, match=r"pages\.tif: multi-page file \(2 pages\)"):
        load_image(p)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a directory"):
        load_mask(tmp_path)
