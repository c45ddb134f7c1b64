"""ONNX export: dynamic shapes, parity with PyTorch through onnxruntime, the ONNX predictor backend, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'sgem-irstd[export]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'sgem-irstd[export]')")

from irstd.cli.main import main  # noqa: E402
from irstd.models.checkpoint import save_checkpoint  # noqa: E402
from irstd.errors import CheckpointError  # noqa: E402
from irstd.export import ATOL, RTOL, OnnxRunner, check_onnx_parity, export_onnx  # noqa: E402
from irstd.inference import Predictor  # noqa: E402
from irstd.models import create_model  # noqa: E402

#: two input sizes (H, W), the second non-square and unlike the traced one
SIZES = ((64, 64), (96, 160))


@pytest.mark.parametrize("name", ["sgem_unet", "unet"])
def test_onnx_round_trip_on_two_sizes(name: str, tmp_path: Path) -> None:
    model = create_model(name).eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx", example_size=(64, 64))
    dims = [d.dim_param or d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, "height", "width"]  # dynamic batch/height/width, fixed channels
    result = check_onnx_parity(model, path, sizes=SIZES, batch=2)
    assert result.shapes == [(2, 1, 64, 64), (2, 1, 96, 160)]
    # stated tolerance: |onnx − torch| ≤ 1e-4 + 1e-4·max|logit| (both fp32)
    assert (ATOL, RTOL) == (1e-4, 1e-4)
    assert result.passed, result.summary()
    assert 0 <= result.worst <= ATOL + RTOL * max(result.ref_max_abs)


def test_parity_check_fails_on_a_different_network(tmp_path: Path) -> None:
    model = create_model("unet").eval()
    path = export_onnx(model, tmp_path / "unet.onnx", example_size=(32, 32))
    other = create_model("unet").eval()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        other.head.bias.add_(1.0)  # shifts every logit by 1
    result = check_onnx_parity(other, path, sizes=((32, 32),), batch=1)
    assert not result.passed and result.worst == pytest.approx(1.0, abs=1e-3)


def test_predictor_onnx_backend_matches_torch(tmp_path: Path) -> None:
    model = create_model("sgem_unet").eval()
    model.normalization = (90.0, 25.0)
    path = export_onnx(model, tmp_path / "m.onnx", example_size=(32, 32))
    runner = OnnxRunner(path)
    assert runner.stride == model.stride and runner.normalization == (90.0, 25.0)
    rng = np.random.default_rng(0)
    frames = [rng.normal(90, 25, (40, 56)).astype(np.float32) for _ in range(2)]
    onnx_pred = Predictor.from_onnx(path, threshold=0.5)
    assert onnx_pred.normalization == (90.0, 25.0) and onnx_pred.backend == "onnx" and onnx_pred.mode is None
    ref = Predictor(model, device="cpu", precision="fp32").probabilities(frames)
    got = onnx_pred.predict(frames)
    for r, g in zip(ref, got):
        assert g.prob.shape == (40, 56)
        np.testing.assert_allclose(g.prob, r, atol=1e-5)


def test_unreadable_onnx_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="bad.onnx"):
        OnnxRunner(bad)
    with pytest.raises(CheckpointError, match="not found"):
        OnnxRunner(tmp_path / "missing.onnx")


def test_cli_export_with_parity_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "net.safetensors"
    save_checkpoint(ckpt, create_model("sgem_unet_t"), normalization=(100.0, 30.0))
    rc = main(["export", str(ckpt), "--format", "onnx", "--check-sizes", "64", "96x48"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "max abs logit difference" in out and "OK" in out
    onnx_path = ckpt.with_suffix(".onnx")
    report = json.loads(onnx_path.with_suffix(".parity.json").read_text())
    assert report["passed"] and report["shapes"] == [[2, 1, 64, 64], [2, 1, 48, 96]]
    meta = OnnxRunner(onnx_path).metadata
    assert meta["model_name"] == "sgem_unet_t" and meta["normalization"] == [100.0, 30.0]
    assert main(["export", str(tmp_path / "missing.safetensors")]) == 2
