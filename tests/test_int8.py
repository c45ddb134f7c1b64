"""Static int8 (ONNX Runtime QDQ): round trips, closeness to fp32 on a trained-like model, calibration guards,
the ``--precision int8`` paths and the one-line error without onnxruntime."""

from __future__ import annotations

import json

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("onnx", reason="onnx is not installed (pip install 'sgem-irstd[export]')")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'sgem-irstd[export]')")

from irstd.cli.main import main  # noqa: E402
from irstd.data.io import save_image, save_mask  # noqa: E402
from irstd.errors import ConfigError, DataError, IRSTDError  # noqa: E402
from irstd.export import OnnxRunner  # noqa: E402
from irstd.export.quantize import CalibrationSpec, calibration_frames, export_int8, quantize_onnx  # noqa: E402
from irstd.inference import Predictor  # noqa: E402
from irstd.models import create_model  # noqa: E402
from irstd.models.checkpoint import save_checkpoint  # noqa: E402

#: int8 vs fp32 on the same frames: |Δlogit| ≤ LOGIT_TOL · max|fp32 logit|, and ≥ MASK_AGREEMENT of pixels
#: on the same side of the 0.5 threshold (the tolerance of docs/int8.md)
LOGIT_TOL, MASK_AGREEMENT = 0.10, 0.99
NORM = (100.0, 20.0)
TINY = {"sgem_unet": {"widths": (4, 8, 16, 32, 64), "heads": 1}, "unet": {"widths": (4, 8, 16, 32, 64)}}


def _scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """An 8-bit-range frame (H, W): smooth background + noise + 1-3 small bright targets, and its mask."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = 90 + 20 * np.sin(xx / rng.uniform(8, 20)) * np.cos(yy / rng.uniform(8, 20)) + rng.normal(0, 4, (h, w))
    mask = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 4)):
        cy, cx, s = rng.integers(4, h - 4), rng.integers(4, w - 4), rng.uniform(0.8, 1.6)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
        img += 90 * blob
        mask |= blob > 0.3
    return np.clip(img, 0, 255).astype(np.float32), mask


@pytest.fixture
def scenes(tmp_path: Path) -> Path:
    """Plain layout: 8 training and 4 test frames of mixed sizes, with train.txt and test.txt."""
    root = tmp_path / "scenes"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(1)
    names = []
    for i in range(12):
        h, w = (64, 64) if i % 2 else (48, 80)
        img, mask = _scene(rng, h, w)
        save_image(root / "images" / f"s{i:02d}.png", img)
        save_mask(root / "masks" / f"s{i:02d}.png", mask)
        names.append(f"s{i:02d}")
    (root / "train.txt").write_text("\n".join(names[:8]))
    (root / "test.txt").write_text("\n".join(names[8:]))
    return root


def _trained(name: str, steps: int = 10) -> torch.nn.Module:
    """A tiny network after a few Adam steps on generated scenes: activations are shaped like a trained one's."""
    torch.manual_seed(0)
    model = create_model(name, **TINY[name])
    model.normalization = NORM
    rng = np.random.default_rng(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        pairs = [_scene(rng, 32, 32) for _ in range(2)]
        x = torch.from_numpy((np.stack([p[0] for p in pairs]) - NORM[0]) / NORM[1])[:, None]  # (2, 1, 32, 32)
        y = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.float32))[:, None]
        logits = model(x)
        logits = logits if torch.is_tensor(logits) else next(iter(logits.values()))
        loss = F.binary_cross_entropy_with_logits(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("name", ["sgem_unet", "unet"])
def test_int8_round_trip_close_to_fp32(name: str, scenes: Path, tmp_path: Path) -> None:
    model = _trained(name)
    path = export_int8(model, tmp_path / f"{name}.int8.onnx", CalibrationSpec(str(scenes), frames=4),
                       example_size=(64, 64))
    runner = OnnxRunner(path, threads=1)
    assert runner.precision == "int8" and runner.metadata["model_name"] == name
    assert runner.metadata["calibration"]["frames"] == 4 and runner.metadata["calibration"]["split"] == "train"
    assert "s08" not in path.read_bytes().decode("latin-1").split("irstd", 1)[-1]  # no test stem in the metadata
    rng = np.random.default_rng(5)
    for h, w in ((64, 64), (48, 80)):  # two input sizes through the dynamic axes
        frames = [_scene(rng, h, w)[0] for _ in range(2)]
        x = torch.from_numpy((np.stack(frames) - NORM[0]) / NORM[1])[:, None].float()
        with torch.inference_mode():
            ref = model(x)
            ref = ref if torch.is_tensor(ref) else next(iter(ref.values()))
        out = runner(x)
        assert out.shape == ref.shape
        assert float((out - ref).abs().max()) <= LOGIT_TOL * float(ref.abs().max())
        assert float(((out > 0) == (ref > 0)).float().mean()) >= MASK_AGREEMENT


def test_calibration_is_deterministic_padded_and_normalised(scenes: Path) -> None:
    spec = CalibrationSpec(str(scenes), frames=3)
    a, b = calibration_frames(spec, NORM, 32), calibration_frames(spec, NORM, 32)
    assert len(a) == 3 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(x.shape[:2] == (1, 1) and x.shape[2] % 32 == 0 and x.shape[3] % 32 == 0 for x in a)
    # (x − mean) / std of 8-bit frames around 90..255: well inside a few units, mostly negative to positive
    assert all(x.dtype == np.float32 and -10 < x.min() and x.max() < 10 for x in a)
    assert len(calibration_frames(CalibrationSpec(str(scenes), frames=100), NORM, 1)) == 8  # capped at the split


def test_calibration_refuses_the_test_split_and_test_stems(scenes: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="refuses the test split"):
        calibration_frames(CalibrationSpec(str(scenes), split="test"), NORM, 32)
    with pytest.raises(DataError, match="refuses the test split"):
        calibration_frames(CalibrationSpec(str(scenes), split_file=str(scenes / "test.txt")), NORM, 32)
    # a list that mixes in a stem of the dataset's test list (its layout's test split)
    mixed = tmp_path / "lists" / "calib.txt"
    mixed.parent.mkdir()
    mixed.write_text("s00\ns01\ns09\n")
    with pytest.raises(DataError, match=r"on this test list \(first: s09\)") as err:
        calibration_frames(CalibrationSpec(str(scenes), split_file=str(mixed), frames=3,
                                           exclude=(str(scenes / "test.txt"),)), NORM, 32)
    assert "\n" not in str(err.value)
    # the test.txt beside a split file counts as a known test list
    (mixed.parent / "test.txt").write_text("s01\n")
    with pytest.raises(DataError, match="first: s01"):
        calibration_frames(CalibrationSpec(str(scenes), split_file=str(mixed), frames=3), NORM, 32)


def test_calibration_refuses_an_empty_set(scenes: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DataError) as err:
        calibration_frames(CalibrationSpec(str(scenes), split_file=str(empty)), NORM, 32)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="calibration set is empty"):
        quantize_onnx(tmp_path / "x.onnx", tmp_path / "y.onnx", [])
    with pytest.raises(ConfigError, match="at least one frame"):
        calibration_frames(CalibrationSpec(str(scenes), frames=0), NORM, 32)


def test_predictor_int8_needs_an_int8_file(scenes: Path, tmp_path: Path) -> None:
    model = _trained("unet", steps=2)
    with pytest.raises(ConfigError, match="irstd export CKPT --int8"):
        Predictor(model, precision="int8")
    path = export_int8(model, tmp_path / "m.int8.onnx", CalibrationSpec(str(scenes), frames=2), example_size=(64, 64))
    pred = Predictor.from_onnx(path, precision="int8", threads=1)
    assert pred.label().startswith("onnx int8") and pred.normalization == NORM
    frame = _scene(np.random.default_rng(3), 50, 70)[0]
    assert pred.predict(frame)[0].prob.shape == (50, 70)


def _checkpoint(tmp_path: Path) -> Path:
    ckpt = tmp_path / "tiny.safetensors"
    save_checkpoint(ckpt, _trained("unet", steps=2), normalization=NORM)
    return ckpt


def test_cli_int8_export_detect_evaluate(scenes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRSTD_HOME", str(tmp_path / "home"))
    ckpt = _checkpoint(tmp_path)
    assert main(["export", str(ckpt), "--format", "onnx", "--int8", "--calib", str(scenes), "--calib-frames", "3",
                 "--check-sizes", "64"]) == 0
    out = capsys.readouterr().out
    assert "int8 QDQ" in out and "round trip OK" in out
    q = tmp_path / "tiny.int8.onnx"
    assert main(["detect", str(q), str(scenes / "images"), "--out", str(tmp_path / "det"), "--precision", "int8"]) == 0
    assert "12 frame(s)" in capsys.readouterr().out
    # a checkpoint with --precision int8: quantised once into the cache, then reused
    args = ["evaluate", str(ckpt), "--data", str(scenes), "--precision", "int8", "--calib", str(scenes),
            "--calib-frames", "3", "--out", str(tmp_path / "ev")]
    assert main(args) == 0
    assert "onnx int8" in capsys.readouterr().out
    cached = list((tmp_path / "home" / "int8").glob("*.int8.onnx"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    assert main(args) == 0 and cached[0].stat().st_mtime_ns == stamp
    # the int8 file also counts false alarms on target-free frames (the runner goes through the predictor)
    neg = tmp_path / "negatives"
    neg.mkdir()
    rng = np.random.default_rng(3)
    for i in range(2):
        save_image(neg / f"bg-{i}.png", rng.uniform(60, 90, (48, 64)).astype(np.float32))
    assert main(["evaluate", str(q), "--negatives", str(neg), "--negatives-split", "all", "--precision", "int8",
                 "--out", str(tmp_path / "neg")]) == 0
    report = json.loads((tmp_path / "neg" / "negatives.json").read_text())
    assert report["model"] == "unet" and [f["name"] for f in report["frames"]] == ["bg-0", "bg-1"]


def test_cli_int8_without_calib_or_onnxruntime_is_one_line(scenes: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = _checkpoint(tmp_path)
    assert main(["evaluate", str(ckpt), "--data", str(scenes), "--precision", "int8"]) == 2
    err = capsys.readouterr().err.strip()
    assert ": error: int8 needs calibration frames" in err and "--calib DATA" in err and "\n" not in err
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime → ImportError
    for argv in (["detect", str(ckpt), str(scenes / "images"), "--precision", "int8", "--calib", str(scenes)],
                 ["export", str(ckpt), "--int8", "--calib", str(scenes)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.endswith(": error: onnxruntime is not installed: pip install 'sgem-irstd[export]'") and "\n" not in err
    with pytest.raises(IRSTDError, match=r"pip install 'sgem-irstd\[export\]'"):
        Predictor(create_model("unet", **TINY["unet"]), precision="int8")


def test_bench_int8_mode_times_a_quantised_runner() -> None:
    from irstd.bench import Case, run_cases

    report = run_cases([Case("acm", "int8", 1, 32, 32)], device="cpu", runs=1, warmup=0, conv_rate=False)
    row = report["results"][0]
    assert row.get("error") is None, row["error"]
    assert row["median_ms"] > 0
    mode = report["models"]["acm"]["modes"]["int8"]
    assert mode["label"].startswith("onnx int8") and mode["calibration"]["frames"] > 0
