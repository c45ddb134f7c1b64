"""Forward and gradient sweep over every learned baseline: strides, shapes, determinism, training outputs.

``FROM_RELEASE`` (ACM, ACM-FPN, ALCNet, DNANet, UIU-Net, ISNet) and ``FROM_PAPER`` (ABC, EGPNet, IAANet), as in
``test_published_counts.py``. The release group trains at batch 1 (which exercises the pooled
BatchNorm fallback) with one shared instance per model; the paper group trains through the
project's loss.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from irstd.losses import ModelLoss
from irstd.models import create_model, get_model_entry

FROM_RELEASE = ("acm", "acm_fpn", "alcnet", "dnanet", "uiunet", "isnet")
EXPECTED_EXTRAS = {"acm": (), "acm_fpn": (), "alcnet": (), "dnanet": ("aux",), "uiunet": ("aux",), "isnet": ("edge",)}
# DNANet: heads on X(0,1), X(0,2), X(0,3); UIU-Net: six side outputs; ISNet: one edge map
EXPECTED_MAPS = {"dnanet": 3, "uiunet": 6, "isnet": 1}
# a batch of two at a non-square size; smaller for the two networks that cost > 30 GMACs at 256²
SECOND_SHAPE = {"uiunet": (2, 1, 32, 64), "isnet": (2, 1, 48, 80)}
EXPECTED_STRIDE = {"acm": 16, "acm_fpn": 16, "alcnet": 4, "dnanet": 16, "uiunet": 32, "isnet": 16}

FROM_PAPER = ["abcnet", "egpnet", "iaanet"]
N_AUX = {"abcnet": 5, "iaanet": 2}


# ---------------------------------------------------------------- from the authors' releases


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    """One instance per model, shared by the shape, gradient and determinism tests."""
    torch.manual_seed(0)
    return {name: create_model(name) for name in FROM_RELEASE}


@pytest.mark.parametrize("name", FROM_RELEASE)
def test_eval_forward_shape_and_determinism(name: str, models: dict) -> None:
    model = models[name].eval()
    assert model.stride == EXPECTED_STRIDE[name]
    with torch.no_grad():
        x = torch.randn(1, 1, 64, 64)
        out = model(x)
        assert isinstance(out, torch.Tensor) and out.shape == x.shape
        assert torch.equal(out, model(x))  # eval mode is deterministic
        shape = SECOND_SHAPE.get(name, (2, 1, 96, 128))
        assert model(torch.randn(shape)).shape == shape


@pytest.mark.parametrize("name", FROM_RELEASE)
def test_rejects_size_off_stride(name: str, models: dict) -> None:
    model = models[name].eval()
    with pytest.raises(ValueError, match="multiples"):
        model(torch.zeros(1, 1, 64 + model.stride // 2, 64))


@pytest.mark.parametrize("name", FROM_RELEASE)
def test_training_extras_and_finite_gradients(name: str, models: dict) -> None:
    torch.manual_seed(0)
    model = models[name].train()
    model.zero_grad(set_to_none=True)
    assert model.extra_outputs == EXPECTED_EXTRAS[name]
    size = max(32, 2 * model.stride)  # smallest input whose deepest map keeps > 1 value for BatchNorm
    x = torch.randn(1, 1, size, size)  # batch 1 also exercises the pooled BatchNorm fallback
    out = model(x)
    if not model.extra_outputs:
        assert isinstance(out, torch.Tensor) and out.shape == x.shape
        loss = out.sigmoid().mean()
    else:
        assert set(out) == {"logits", *model.extra_outputs}
        assert out["logits"].shape == x.shape
        loss = out["logits"].sigmoid().mean()
        for key in model.extra_outputs:
            maps = out[key] if isinstance(out[key], list) else [out[key]]
            assert len(maps) == EXPECTED_MAPS[name] and all(m.shape == x.shape for m in maps), key
            loss = loss + sum(m.sigmoid().mean() for m in maps)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    missing = [n for n, g in grads.items() if g is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    assert all(torch.isfinite(g).all() for g in grads.values())
    model.zero_grad(set_to_none=True)


# ---------------------------------------------------------------- from the papers' descriptions


@pytest.mark.parametrize("name", FROM_PAPER)
def test_registered_as_learned_with_paper(name: str) -> None:
    entry = get_model_entry(name)
    assert entry.kind == "learned" and entry.paper


@pytest.mark.parametrize("name", FROM_PAPER)
@pytest.mark.parametrize("shape", [(1, 64, 64), (2, 48, 80)])
def test_eval_forward_shape(name: str, shape: tuple[int, int, int]) -> None:
    model = create_model(name).eval()
    assert model.stride == 16
    x = torch.randn(shape[0], 1, shape[1], shape[2])
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == x.shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", FROM_PAPER)
def test_size_not_multiple_of_stride_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="multiples of 16"):
        create_model(name).eval()(torch.randn(1, 1, 40, 64))


@pytest.mark.parametrize("name", FROM_PAPER)
def test_training_outputs_and_gradients(name: str) -> None:
    model = create_model(name).train()
    x = torch.randn(2, 1, 16, 32)
    mask = torch.zeros(2, 1, 16, 32)
    mask[:, :, 6:9, 20:23] = 1
    out = model(x)
    assert isinstance(out, dict) and set(out) == {"logits", *model.extra_outputs}
    assert out["logits"].shape == x.shape
    if "aux" in out:
        assert len(out["aux"]) == N_AUX[name]
        assert all(a.shape == x.shape for a in out["aux"])
    if "edge" in out:
        assert out["edge"].shape == x.shape
    loss = ModelLoss()(out, mask)
    assert torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_extra_outputs_declared() -> None:
    assert create_model("abcnet").extra_outputs == ("aux",)
    assert create_model("egpnet").extra_outputs == ("edge",)
    assert create_model("iaanet").extra_outputs == ("aux",)


@pytest.mark.parametrize("name", FROM_PAPER)
def test_eval_is_deterministic(name: str) -> None:
    model = create_model(name).eval()
    x = torch.randn(1, 1, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
