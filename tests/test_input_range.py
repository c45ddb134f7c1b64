"""Input-range policy: a 16-bit frame for an 8-bit model is brought into the training range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from irstd.data import open_synthetic, save_image
from irstd.data.io import load_image
from irstd.data.stats import compute_input_range, frame_bit_depth
from irstd.data.synthetic import generate_scene
from irstd.errors import ConfigError
from irstd.inference import Predictor
from irstd.inference.input_range import adapt_range
from irstd.models import create_model, load_model, save_checkpoint


@pytest.fixture(scope="module")
def eight_bit_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint saved with the normalisation and recorded range of 8-bit synthetic scenes."""
    data = open_synthetic("train", 8, seed=0, size=64)
    model = create_model("unet", widths=[4, 8, 16, 32, 64]).eval()
    path = tmp_path_factory.mktemp("ckpt") / "m.safetensors"
    save_checkpoint(path, model, normalization=data.normalization, input_range=compute_input_range(data))
    return path


def test_checkpoint_records_the_training_range(eight_bit_model: Path) -> None:
    rng = load_model(eight_bit_model).input_range
    assert rng["bit_depth"] == 8 and rng["full_scale"] == 255.0
    assert 0 <= rng["low"] < rng["high"] <= 255


def test_bit_depth_from_values() -> None:
    assert frame_bit_depth(np.array([0.0, 255.0])) == (8, 255.0)
    assert frame_bit_depth(np.array([0.0, 1000.0])) == (10, 1023.0)
    assert frame_bit_depth(np.array([0.0, 16383.0])) == (14, 16383.0)
    assert frame_bit_depth(np.array([0.1, 0.7])) == (0, 1.0)


class _LocalContrast(torch.nn.Module):
    """A stand-in for a trained detector: logits from the pixel's excess over its 9x9 mean, in the
    normalised units the model was fitted on (so a frame in the wrong range gives wrong detections)."""

    stride = 1

    def __init__(self, normalization: tuple[float, float], input_range: dict) -> None:
        super().__init__()
        self.normalization, self.input_range = normalization, input_range
        self.level = 30.0 / normalization[1]  # 30 grey levels above the surround, in normalised units

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, H, W) → logits (B, 1, H, W)
        excess = x - torch.nn.functional.avg_pool2d(x, 9, 1, 4, count_include_pad=False)
        return 40.0 * (excess - self.level) / self.level


def _targets(predictor: Predictor, frame: np.ndarray) -> list[tuple[float, float]]:
    return sorted((t.y, t.x) for t in predictor.predict(frame)[0].targets)


@pytest.fixture(scope="module")
def stand_in() -> _LocalContrast:
    data = open_synthetic("train", 8, seed=0, size=64)
    return _LocalContrast(data.normalization, compute_input_range(data))


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_same_scene_8_and_16_bit_give_the_same_detections(tmp_path: Path, stand_in: _LocalContrast, seed: int) -> None:
    """The 8-bit frame written again on the 16-bit scale (x 257, as a 16-bit camera output of the same
    data): under ``auto`` exactly the same detections; under ``native`` wrong ones."""
    scene8 = generate_scene(seed, size=(96, 128))[0]
    save_image(tmp_path / "s8.png", scene8, bit_depth=8)
    f8 = load_image(tmp_path / "s8.png")
    save_image(tmp_path / "s16.png", f8 * 257.0, bit_depth=16)
    f16 = load_image(tmp_path / "s16.png")
    assert f16.max() > 255

    auto = Predictor(stand_in, device="cpu")
    ref = _targets(auto, f8)
    assert ref, "the reference frame must have detections for the comparison to mean anything"
    assert _targets(auto, f16) == ref
    assert auto.range_actions == {"native": 1, "scaled": 1}

    native = Predictor(stand_in, device="cpu", input_range="native")
    assert _targets(native, f16) != ref  # 16-bit units through 8-bit statistics
    assert native.range_actions["mismatch"] == 1


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_generator_16_bit_rendering_matches_8_bit(tmp_path: Path, stand_in: _LocalContrast, seed: int) -> None:
    """The generator's own 16-bit rendering (finer quantisation): detections agree up to pixels that
    8-bit rounding moves across the threshold."""
    save_image(tmp_path / "s8.png", generate_scene(seed, size=(96, 128))[0], bit_depth=8)
    save_image(tmp_path / "s16.png", generate_scene(seed, size=(96, 128), bit_depth=16)[0], bit_depth=16)
    auto = Predictor(stand_in, device="cpu")
    ref = np.array(_targets(auto, load_image(tmp_path / "s8.png")))
    got = np.array(_targets(auto, load_image(tmp_path / "s16.png")))
    assert len(ref) and abs(len(got) - len(ref)) <= max(1, len(ref) // 10)
    nearest = np.sqrt(((ref[:, None] - got[None]) ** 2).sum(-1)).min(axis=1)
    assert (nearest <= 1.0).mean() >= 0.9


def test_narrow_raw_frame_is_stretched(eight_bit_model: Path) -> None:
    """A 14-bit sensor frame using a narrow band (7000..7400) is stretched, not scaled to near-black."""
    scene8 = generate_scene(5, size=(96, 128))[0]
    raw = 7000.0 + np.rint(scene8 * 1.5)
    train = load_model(eight_bit_model).input_range
    out, action = adapt_range(raw.astype(np.float32), train, "auto")
    assert action == "stretched"
    lo, hi = np.percentile(out, [0.5, 99.5])
    assert abs(lo - train["low"]) < 1 and abs(hi - train["high"]) < 1


def test_policy_is_checked(eight_bit_model: Path) -> None:
    with pytest.raises(ConfigError, match="input range policy"):
        Predictor.from_checkpoint(eight_bit_model, device="cpu", input_range="percentile")


# ---- the declared bit depth decides, not the values (#36 item 4) ----------------------------------

def _sbit_png(path: Path, values: np.ndarray, significant: int) -> None:
    """A 16-bit PNG declaring ``significant`` bits per sample (sBIT chunk), values written raw."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add(b"sBIT", bytes([significant]))
    Image.fromarray(np.clip(np.rint(values), 0, 65535).astype(np.uint16)).save(path, pnginfo=info)


def _encodings(tmp_path: Path, scene8: np.ndarray) -> dict[str, np.ndarray]:
    """One scene as an 8-bit PNG, 12 bits in a 16-bit PNG (sBIT) and TIFF (MaxSampleValue), and x257 16-bit."""
    from PIL import Image

    save_image(tmp_path / "s8.png", scene8, bit_depth=8)
    f8 = load_image(tmp_path / "s8.png")
    v12 = np.rint(np.asarray(f8, dtype=np.float64) * 4095 / 255)
    _sbit_png(tmp_path / "s12.png", v12, 12)
    Image.fromarray(v12.astype(np.uint16)).save(tmp_path / "s12.tif", tiffinfo={281: 4095})
    save_image(tmp_path / "s16.png", np.asarray(f8, dtype=np.float64) * 257.0, bit_depth=16)
    return {name: load_image(tmp_path / f"s{name}") for name in ("8.png", "12.png", "12.tif", "16.png")}


@pytest.mark.parametrize("brightness", [1.0, 0.2])
def test_same_scene_in_any_container_gives_the_same_frame(tmp_path: Path, stand_in: _LocalContrast,
                                                           brightness: float) -> None:
    """8-bit, 12-bit (16-bit container declaring 12 bits) and x257 16-bit encodings of one scene: the
    same adapted frame and the same detections under auto, also for a dark scene (max < 64: its 16-bit
    version is below 16384 and was taken for 14-bit)."""
    scene8 = generate_scene(3, size=(96, 128))[0] * brightness
    frames = _encodings(tmp_path, scene8)
    assert [f.bit_depth for f in frames.values()] == [8, 12, 12, 16]
    train = stand_in.input_range
    ref, action = adapt_range(frames["8.png"], train, "auto")
    assert action == "native"
    for name, frame in frames.items():
        out, _ = adapt_range(frame, train, "auto")
        tol = 0.5 * 255 / 4095 + 1e-3 if name.startswith("12") else 1e-3  # 12-bit rounding of the scene
        assert np.abs(out - ref).max() <= tol, name
    auto = Predictor(stand_in, device="cpu")
    expected = _targets(auto, frames["8.png"])
    if brightness == 1.0:
        assert expected
    for name in ("12.png", "12.tif", "16.png"):
        assert _targets(auto, frames[name]) == expected, name


def test_dark_16_bit_frame_is_not_rescaled_as_14_bit(tmp_path: Path, eight_bit_model: Path) -> None:
    """A 16-bit frame using only values below 16384 is scaled by 255/65535 (its container), not 255/16383."""
    dark = np.full((32, 32), 4000.0)
    dark[10:13, 10:13] = 12000.0
    save_image(tmp_path / "d.png", dark, bit_depth=16)
    frame = load_image(tmp_path / "d.png")
    train = load_model(eight_bit_model).input_range
    out, action = adapt_range(frame, train, "auto")
    assert action == "scaled" and out.max() == pytest.approx(12000 * 255 / 65535, rel=1e-5)
    assert adapt_range(frame, train, "scale")[0].max() == pytest.approx(out.max())
    # the same values handed over as a plain float array declare nothing: the old guess from values
    guessed, _ = adapt_range(np.asarray(dark, dtype=np.float32), train, "scale")
    assert guessed.max() == pytest.approx(12000 * 255 / 16383, rel=1e-5)
    assert adapt_range(dark.astype(np.uint16), train, "scale")[0].max() == pytest.approx(out.max())  # dtype declares


def test_declared_depth_travels_with_views_not_arithmetic(tmp_path: Path) -> None:
    import pickle

    from irstd.data.io import DepthFrame, declared_bit_depth

    save_image(tmp_path / "a.png", np.full((8, 8), 10.0), bit_depth=16)
    f = load_image(tmp_path / "a.png")
    assert isinstance(f, DepthFrame) and f.dtype == np.float32 and f.bit_depth == 16
    assert declared_bit_depth(np.asarray(np.asarray(f), dtype=np.float32)) == 16  # what the predictor does
    assert declared_bit_depth(f[2:5]) == 16 and declared_bit_depth(f.copy()) == 16
    assert declared_bit_depth(f * 2) is None and type(f * 2) is np.ndarray
    assert pickle.loads(pickle.dumps(f)).bit_depth == 16
    sbit = tmp_path / "wrong.png"
    _sbit_png(sbit, np.full((8, 8), 60000.0), 12)  # values above 12 bits: samples scaled as PNG says
    assert load_image(sbit).bit_depth == 16


def test_training_range_records_the_declared_depth(tmp_path: Path) -> None:
    """Training frames of 14-bit content in 16-bit files record 16 bits (declared), and such a record
    keeps 16-bit test frames as they are."""
    paths = []
    for i in range(3):
        save_image(tmp_path / f"t{i}.png", generate_scene(i, size=(32, 32))[0] * 60.0, bit_depth=16)
        paths.append(tmp_path / f"t{i}.png")
    rng = compute_input_range(paths)
    assert rng["declared"] and rng["bit_depth"] == 16 and rng["full_scale"] == 65535.0
    frame = load_image(paths[0])
    assert frame.max() < 16384 and adapt_range(frame, rng, "auto")[1] == "native"
    legacy = {**rng, "bit_depth": 14, "full_scale": 16383.0, "declared": False}  # guessed from values before
    assert adapt_range(frame, legacy, "auto")[1] == "native"
