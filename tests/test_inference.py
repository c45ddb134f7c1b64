"""Predictor: fp32 reference path, fast mode (BN folding, channels-last, bf16), mode resolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from irstd.errors import ConfigError
from irstd.core.device import cpu_supports_bf16
from irstd.inference import ModelRunner, Predictor, RunMode, fuse_conv_bn, resolve_mode
from irstd.inference.predictor import pow2_chunks
from irstd.models import create_model
from irstd.models.sgem_unet import SGEM
from irstd.core.padding import pad_to_multiple

CPU = torch.device("cpu")
NORM = (100.0, 20.0)


def _frames(n: int = 3, shape: tuple[int, int] = (72, 88), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(NORM[0], NORM[1], shape).astype(np.float32) for _ in range(n)]


def test_fp32_path_is_the_plain_model() -> None:
    model = create_model("unet").eval()
    frame = _frames(1, (50, 70))[0]
    pred = Predictor(model, NORM, device="cpu", precision="fp32")
    x = torch.from_numpy((frame - NORM[0]) / NORM[1])[None, None]
    xp, (h, w) = pad_to_multiple(x, model.stride)
    with torch.no_grad():
        expected = torch.sigmoid(model(xp))[0, 0, :h, :w].numpy()
    got = pred.probabilities([frame])[0]
    assert got.shape == frame.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert pred.mode.precision == "fp32" and pred.amp_dtype is None


def test_pow2_chunks() -> None:
    assert pow2_chunks(13) == [8, 4, 1] and pow2_chunks(16) == [16] and pow2_chunks(0) == []
    for n in range(1, 65):
        chunks = pow2_chunks(n)
        assert sum(chunks) == n and chunks == sorted(set(chunks), reverse=True)
        assert all(k & (k - 1) == 0 for k in chunks)


def test_pow2_batches_run_power_of_two_chunks_with_the_same_answers() -> None:
    model = create_model("unet_t").eval()
    frames = _frames(13, (40, 48)) + _frames(1, (56, 48), seed=1)
    whole = Predictor(model, NORM, device="cpu", precision="fp32", batch_size=16)
    split = Predictor(model, NORM, device="cpu", precision="fp32", batch_size=16, pow2_batches=True)
    calls: list[int] = []
    runner = split.runner
    split.runner = lambda x: calls.append(x.shape[0]) or runner(x)
    got = split.probabilities(frames)
    assert calls == [8, 4, 1, 1]  # 13 frames of one size, then the other size alone
    for g, e in zip(got, whole.probabilities(frames)):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-5)


def test_fast_vs_fp32_on_random_weights() -> None:
    model = create_model("sgem_unet")
    frames = _frames(3) + _frames(1, (40, 56), seed=1)  # two frame sizes: two batches, padding
    ref = Predictor(model, NORM, device="cpu", precision="fp32").probabilities(frames)
    fast_pred = Predictor(model, NORM, device="cpu", precision="fast")
    fast = fast_pred.probabilities(frames)
    assert fast_pred.mode.channels_last and fast_pred.mode.fuse_bn
    all_ref = np.concatenate([p.ravel() for p in ref])
    # random weights give flat maps: threshold at the 90th percentile so that masks are not trivial
    t = float(np.quantile(all_ref, 0.9))
    for r, f, frame in zip(ref, fast, frames):
        assert f.shape == r.shape == frame.shape
        assert np.isfinite(f).all()
        assert np.abs(f - r).max() <= 0.1 * (all_ref.max() - all_ref.min())
    agree = np.mean(np.concatenate([((r > t) == (f > t)).ravel() for r, f in zip(ref, fast)]))
    assert agree >= 0.97, f"only {agree:.4f} of mask pixels agree"


def test_fast_mode_leaves_the_callers_model_alone() -> None:
    model = create_model("unet").train()
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    Predictor(model, NORM, device="cpu", precision="fast").predict(_frames(1, (32, 32))[0])
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == n_bn
    assert all(p.requires_grad for p in model.parameters())


def test_fuse_conv_bn_is_exact_in_fp32() -> None:
    model = create_model("sgem_unet_t").eval()
    # non-trivial running statistics, so that folding has something to fold
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    x = torch.randn(2, 1, 48, 64)
    with torch.no_grad():
        ref = model(x)
        fused = create_model("sgem_unet_t").eval()
        fused.load_state_dict(model.state_dict())
        assert fuse_conv_bn(fused) is fused
        out = fused(x)
    assert not any(type(m) is nn.BatchNorm2d for m in fused.modules())
    assert any(type(m) is nn.BatchNorm2d for m in model.modules())
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_runner_returns_float32_logits_in_both_modes() -> None:
    model = create_model("unet").eval()
    x = torch.randn(2, 1, 32, 48)
    for precision in ("fp32", "fast"):
        out = ModelRunner(model, CPU, resolve_mode(precision, CPU))(x)
        assert out.shape == (2, 1, 32, 48) and out.dtype == torch.float32


def test_mode_resolution() -> None:
    assert resolve_mode("fp32", CPU) == RunMode("fp32")
    assert resolve_mode("auto", CPU, amp="none").precision == "fp32"  # what amp-only callers ask for
    fast = resolve_mode("auto", CPU)
    assert fast.precision == "fast" and fast.channels_last and fast.fuse_bn and fast.fold_upsample
    assert fast.cast_weights == (fast.amp_dtype is not None)
    cuda = resolve_mode("fast", torch.device("cuda"), amp="bf16")  # resolving needs no GPU
    assert cuda.fuse_bn and not cuda.fold_upsample and not cuda.cast_weights  # CPU-measured rewrites only
    assert fast.amp_dtype == (torch.bfloat16 if cpu_supports_bf16() else None)
    assert resolve_mode("fast", CPU, amp="bf16").amp_dtype == torch.bfloat16
    assert resolve_mode("fast", CPU, amp="none").amp_dtype is None
    assert not resolve_mode("fast", CPU, cuda_graphs=True).cuda_graphs  # CUDA only
    with pytest.raises(ConfigError):
        resolve_mode("fp32", CPU, amp="bf16")
    with pytest.raises(ConfigError):
        resolve_mode("turbo", CPU)
    with pytest.raises(ConfigError):
        resolve_mode("fast", CPU, amp="fp16")


def test_predictor_defaults_and_legacy_amp() -> None:
    model = create_model("unet")
    # fp32 by default, as every command: the fast mode is asked for by precision or by a reduced amp dtype
    assert Predictor(model, NORM, device="cpu").mode.precision == "fp32"
    assert Predictor(model, NORM, device="cpu", precision="auto").mode.precision == "fast"
    assert Predictor(model, NORM, device="cpu", amp="bf16").mode.precision == "fast"
    legacy = Predictor(model, NORM, device="cpu", amp="none")  # the detect command's default
    assert legacy.mode.precision == "fp32"
    with pytest.raises(ConfigError):
        Predictor(model, NORM, device="cpu", batch_size=0)


@pytest.mark.parametrize("name", ["sgem_unet_s", "sgem_unet_t"])
def test_light_variants(name: str) -> None:
    model = create_model(name).eval()
    base = create_model("sgem_unet")
    sgem = next(m for m in model.modules() if isinstance(m, SGEM))
    enc_ch = sgem.conv_q[0].in_channels
    assert enc_ch == model.widths[2] and enc_ch // sgem.heads == 16  # 16 channels per head, as the base
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in base.parameters()) / 3
    pred = Predictor(model, NORM, device="cpu").predict(_frames(1, (40, 56))[0])[0]
    assert pred.prob.shape == pred.mask.shape == (40, 56)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fast_mode_with_graphs_matches_fp32() -> None:
    cuda = torch.device("cuda")
    model = create_model("sgem_unet")
    frames = _frames(2) + _frames(1, (40, 56), seed=1)
    ref = Predictor(model, NORM, device=cuda, precision="fp32").probabilities(frames)
    fast = Predictor(model, NORM, device=cuda, precision="fast", cuda_graphs=True)
    assert fast.mode.cudnn_benchmark and fast.mode.cuda_graphs and fast.mode.channels_last
    before = torch.backends.cudnn.benchmark
    first = fast.probabilities(frames)  # captures one graph per batch shape
    assert torch.backends.cudnn.benchmark == before  # switched on for the fast calls only
    again = fast.probabilities(frames)  # replays them
    graphs = fast._runner._graphs
    assert not graphs.failed and len(graphs.graphs) == 2
    all_ref = np.concatenate([p.ravel() for p in ref])
    for r, f, g in zip(ref, first, again):
        np.testing.assert_array_equal(f, g)
        assert np.abs(f - r).max() <= 0.1 * (all_ref.max() - all_ref.min())
