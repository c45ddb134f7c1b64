"""Exact inference rewrites (irstd.inference.rewrites): each must keep the network's function."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from irstd.inference import ModelRunner, RunMode
from irstd.models import create_model
from irstd.core.profiling import count_macs
from irstd.inference.rewrites import NearestUpConv, cast_parameters, fold_upsample_conv, fuse_conv_bn

CPU = torch.device("cpu")


def _up_conv(c_in: int, c_out: int, bias: bool = True) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("size", [(1, 1), (5, 7), (8, 8)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_nearest_up_conv_equals_upsample_then_conv(bias: bool, size: tuple[int, int], channels_last: bool) -> None:
    torch.manual_seed(0)
    ref = _up_conv(3, 4, bias).double()
    fused = NearestUpConv(ref[1])
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want, got = ref(x), fused(x)
    assert got.shape == (2, 4, 2 * size[0], 2 * size[1])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)  # border pixels included
    if channels_last:
        assert got.is_contiguous(memory_format=torch.channels_last)


def test_fold_upsample_conv_on_unet_is_exact_and_cheaper() -> None:
    torch.manual_seed(0)
    model = create_model("unet", widths=(4, 8, 16)).eval()
    for m in model.modules():  # non-trivial BN statistics, folded first as the fast mode does
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 1, 20, 28)
    folded = fold_upsample_conv(fuse_conv_bn(copy.deepcopy(model)))
    assert sum(isinstance(m, NearestUpConv) for m in folded.modules()) == 2  # one per decoder level
    assert not any(isinstance(m, nn.Upsample) for m in folded.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-6)
    # the up-convs now cost 4 instead of 9 MACs per (input channel, output pixel), plus a 1-pixel border
    assert count_macs(folded, (1, 1, 64, 64)) < 0.9 * count_macs(model, (1, 1, 64, 64))


@pytest.mark.parametrize(
    "block",
    [
        nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(2, 2, 3, padding=1)),
        nn.Sequential(nn.Upsample(scale_factor=3, mode="nearest"), nn.Conv2d(2, 2, 3, padding=1)),
        nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2, 2, 3, padding=1, stride=2)),
        nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2, 2, 5, padding=2)),
        nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1)),
    ],
)
def test_fold_upsample_conv_leaves_other_patterns_alone(block: nn.Sequential) -> None:
    before = [type(m) for m in block.modules()]
    fold_upsample_conv(block)
    assert [type(m) for m in block.modules()] == before


def test_cast_parameters_changes_storage_not_results() -> None:
    torch.manual_seed(0)
    model = create_model("sgem_unet_t").eval()
    x = torch.randn(1, 1, 64, 64)
    base = RunMode("fast", torch.bfloat16, channels_last=True, fuse_bn=True, fold_upsample=True)
    plain = ModelRunner(model, CPU, base)
    cast = ModelRunner(model, CPU, RunMode(**{**base.__dict__, "cast_weights": True}))
    convs = [m for m in cast.model.modules() if type(m) in (nn.Conv2d, nn.Linear, NearestUpConv)]
    assert convs and all(m.weight.dtype == torch.bfloat16 for m in convs)
    # autocast would cast those same tensors to bf16 on every call: identical results
    torch.testing.assert_close(cast(x), plain(x), rtol=0, atol=0)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the caller's model is untouched


def test_cast_parameters_skips_other_layers() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Linear(2, 2))
    cast_parameters(model, torch.bfloat16)
    assert model[0].weight.dtype == model[2].weight.dtype == torch.bfloat16
    assert model[1].weight.dtype == torch.float32
