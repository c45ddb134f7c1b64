"""Every registered learned model survives the two ways it leaves the process: a checkpoint
(save → load rebuilds the same network from the file alone) and ONNX export (ONNX Runtime gives the
same logits), as timm runs one test over every model. Exclusions are listed with their reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from irstd.core.padding import padded_size
from irstd.models import create_model, list_models, load_model, main_logits, save_checkpoint

LEARNED = list_models(kind="learned")
NORM = (100.0, 30.0)

#: models whose ONNX export is not supported, with the reason (checked: the export really fails)
ONNX_EXCLUDED: dict[str, str] = {}


def _input(model: torch.nn.Module, size: int = 64) -> torch.Tensor:
    h, w = padded_size(size, size + 16, int(model.stride))
    return torch.randn(2, int(getattr(model, "in_chans", 1)), h, w, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", LEARNED)
def test_checkpoint_round_trip(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    with torch.no_grad():  # non-default BatchNorm statistics, so the buffers are checked too
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.9, 1.1)
    path = tmp_path / f"{name}.safetensors"
    save_checkpoint(path, model, normalization=NORM, config={"model": name}, epoch=3)
    loaded = load_model(path)
    assert loaded.model_name == name and loaded.normalization == NORM
    assert loaded.checkpoint_meta["epoch"] == 3 and not loaded.training
    ref_state, got_state = model.state_dict(), loaded.state_dict()
    assert ref_state.keys() == got_state.keys()
    for key in ref_state:
        assert torch.equal(ref_state[key], got_state[key]), key
    x = _input(model)
    with torch.no_grad():
        assert torch.equal(main_logits(model(x)), main_logits(loaded(x)))


@pytest.mark.parametrize("name", LEARNED)
def test_onnx_export_matches_torch(name: str, tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'sgem-irstd[export]')")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'sgem-irstd[export]')")
    from irstd.export import check_onnx_parity, export_onnx

    if name in ONNX_EXCLUDED:
        pytest.skip(ONNX_EXCLUDED[name])
    torch.manual_seed(0)
    model = create_model(name).eval()
    model.normalization = NORM
    path = export_onnx(model, tmp_path / f"{name}.onnx", example_size=(64, 64))
    result = check_onnx_parity(model, path, sizes=[(64, 64), (48, 80)], batch=1)
    assert result.passed, result.summary()
