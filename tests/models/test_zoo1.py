"""Model-specific facts of baseline zoo I: ACM, ALCNet, DNANet, UIU-Net, ISNet, and the deformable conv."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from irstd.models import create_model
from irstd.models._published import published_for, reference_for
from irstd.models.alcnet import multiscale_patch_contrast, patch_contrast
from irstd.models.layers.deform import DeformConv2d, deform_conv2d
from irstd.profiling import count_macs, count_params

ZOO = ("acm", "alcnet", "dnanet", "uiunet", "isnet")
TOLERANCE = 0.10
# alcnet: the seed's 4.34 GMACs is 1.22x what the released ALCNet (whose 0.37 M params it matches)
# measures; no counting convention we know explains it (docs/baselines.md), so only a guard here.
MAC_TOLERANCE = {"alcnet": 0.20}
EXPECTED_EXTRAS = {"acm": (), "alcnet": (), "dnanet": ("aux",), "uiunet": ("aux",), "isnet": ("edge",)}
# DNANet: heads on X(0,1), X(0,2), X(0,3); UIU-Net: six side outputs; ISNet: one edge map
EXPECTED_MAPS = {"dnanet": 3, "uiunet": 6, "isnet": 1}
# a batch of two at a non-square size; smaller for the two networks that cost > 30 GMACs at 256²
SECOND_SHAPE = {"uiunet": (2, 1, 32, 64), "isnet": (2, 1, 48, 80)}
EXPECTED_STRIDE = {"acm": 16, "alcnet": 4, "dnanet": 16, "uiunet": 32, "isnet": 16}


def transposed_conv_surplus(model: nn.Module, shape: tuple[int, ...]) -> int:
    """MACs that thop adds on top of the true count: it charges a transposed conv per *output* pixel."""
    surplus = 0

    def hook(m: nn.ConvTranspose2d, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal surplus
        x = inputs[0]
        per_pixel = m.in_channels * m.out_channels // m.groups * math.prod(m.kernel_size)
        true = x.shape[0] * x.shape[2] * x.shape[3] * per_pixel
        surplus += (m.stride[0] * m.stride[1] - 1) * true

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ConvTranspose2d)]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(shape, device=next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return surplus


@pytest.fixture(scope="module")
def counts() -> dict[str, tuple[float, float, float]]:
    """name → (params M, GMACs, GMACs in thop's convention), each counted once at 1×1×256×256."""
    out = {}
    shape = (1, 1, 256, 256)
    for name in ZOO:
        model = create_model(name)
        params = count_params(model)
        model = model.to("meta")  # shapes only: the counter needs no arithmetic
        macs = count_macs(model, shape)
        out[name] = (params / 1e6, macs / 1e9, (macs + transposed_conv_surplus(model, shape)) / 1e9)
    return out


def _close(measured: float, published: float, tol: float) -> bool:
    return abs(measured / published - 1) <= tol


@pytest.mark.parametrize("name", ZOO)
def test_counts_match_published(name: str, counts: dict) -> None:
    ref = reference_for(name)
    assert ref is not None and ref.params_m and ref.gmacs
    params, _, thop_macs = counts[name]
    assert _close(params, ref.params_m, TOLERANCE), f"{name}: {params:.3f} M vs published {ref.params_m} M"
    tol = MAC_TOLERANCE.get(name, TOLERANCE)
    assert _close(thop_macs, ref.gmacs, tol), f"{name}: {thop_macs:.3f} G vs published {ref.gmacs} G"


def test_acm_transposed_convs_explain_the_standard_gmacs(counts: dict) -> None:
    # without thop's transposed-conv convention ACM would sit 14 % under the published 0.40 G
    published = reference_for("acm").gmacs
    _, macs, thop_macs = counts["acm"]
    assert not _close(macs, published, TOLERANCE) and _close(thop_macs, published, 0.02)


def test_acm_double_width_lands_on_the_seeds_figures() -> None:
    # the seed names no configuration for its 1.54 M / 1.31 G; twice the standard widths matches
    seed = next(p for p in published_for("acm") if not p.matches_default)
    model = create_model("acm", channels=(16, 32, 64, 128))
    assert _close(count_params(model) / 1e6, seed.params_m, TOLERANCE)
    assert _close(count_macs(model.to("meta")) / 1e9, seed.gmacs, TOLERANCE)


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    """One instance per model, shared by the shape, gradient and determinism tests."""
    torch.manual_seed(0)
    return {name: create_model(name) for name in ZOO}


@pytest.mark.parametrize("name", ZOO)
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


@pytest.mark.parametrize("name", ZOO)
def test_rejects_size_off_stride(name: str, models: dict) -> None:
    model = models[name].eval()
    with pytest.raises(ValueError, match="multiples"):
        model(torch.zeros(1, 1, 64 + model.stride // 2, 64))


@pytest.mark.parametrize("name", ZOO)
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


def test_isnet_edge_gates_the_segmentation() -> None:
    torch.manual_seed(0)
    model = create_model("isnet").eval()
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        base = model(x)
        model.edge_head.weight.mul_(-50)  # another edge map must change the segmentation
        assert not torch.allclose(base, model(x))


def test_patch_contrast_responds_to_an_isolated_point_only() -> None:
    x = torch.zeros(1, 1, 40, 40)
    x[0, 0, 20, 20] = 2.0
    pcm = patch_contrast(x, 13)
    assert pcm[0, 0, 20, 20] == pytest.approx(4.0)  # (0 − 2)·(0 − 2) in every direction
    assert pcm.flatten().topk(2).values[1] <= 0  # nowhere else positive
    assert torch.count_nonzero(multiscale_patch_contrast(torch.full((1, 2, 30, 30), 3.0))) == 0


# ---------------------------------------------------------------- deformable convolution


def _bilinear(img: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """Sample (C, H, W) at (y, x); taps of the 2×2 neighbourhood outside the image are zero."""
    _, h, w = img.shape
    val = torch.zeros(img.shape[0], dtype=img.dtype)
    y0, x0 = math.floor(y), math.floor(x)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                val += wy * wx * img[:, yy, xx]
    return val


def _deform_reference(x, offset, weight, bias, stride, padding, dilation, mask=None) -> torch.Tensor:
    """Direct loop: out[b,o,p0] = Σ_n Σ_c w[o,c,n] · m_n · x[b,c](p0·s − pad + p_n·d + Δp_n) + bias[o]."""
    b, _, h, w = x.shape
    o, _, kh, kw = weight.shape
    h_out = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    w_out = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = torch.zeros(b, o, h_out, w_out, dtype=x.dtype)
    for bi in range(b):
        for oy in range(h_out):
            for ox in range(w_out):
                acc = bias.clone() if bias is not None else torch.zeros(o, dtype=x.dtype)
                for n in range(kh * kw):
                    ky, kx = divmod(n, kw)
                    py = oy * stride[0] - padding[0] + ky * dilation[0] + float(offset[bi, 2 * n, oy, ox])
                    px = ox * stride[1] - padding[1] + kx * dilation[1] + float(offset[bi, 2 * n + 1, oy, ox])
                    sample = _bilinear(x[bi], py, px)
                    if mask is not None:
                        sample = sample * mask[bi, n, oy, ox]
                    acc += weight[:, :, ky, kx] @ sample
                out[bi, :, oy, ox] = acc
    return out


@pytest.mark.parametrize(
    "kernel, stride, padding, dilation, modulated",
    [
        ((3, 3), (1, 1), (1, 1), (1, 1), False),
        ((3, 1), (1, 1), (1, 0), (1, 1), False),  # TOAA's column kernel
        ((1, 3), (1, 1), (0, 1), (1, 1), True),  # row kernel, modulated (DCNv2)
        ((3, 3), (2, 1), (2, 1), (2, 1), True),
    ],
)
def test_deform_conv_matches_loop_reference(kernel, stride, padding, dilation, modulated) -> None:
    g = torch.Generator().manual_seed(7)
    b, c, o, h, w = 2, 3, 4, 5, 6
    x = torch.randn(b, c, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(o, c, *kernel, generator=g, dtype=torch.float64)
    bias = torch.randn(o, generator=g, dtype=torch.float64)
    k = kernel[0] * kernel[1]
    h_out = (h + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    w_out = (w + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    # non-integer offsets up to ±3.5 px: many samples land partly or wholly outside the 5×6 map
    offset = (torch.rand(b, 2 * k, h_out, w_out, generator=g, dtype=torch.float64) - 0.5) * 7
    offset[0, 0, 0, 0], offset[0, 1, 0, 0] = -0.6, -0.3  # half-outside corner: partial taps
    offset[1, 0, -1, -1] = 25.3  # far outside: zero
    mask = torch.rand(b, k, h_out, w_out, generator=g, dtype=torch.float64) if modulated else None
    expected = _deform_reference(x, offset, weight, bias, stride, padding, dilation, mask)
    got = deform_conv2d(x.float(), offset.float(), weight.float(), bias.float(), stride, padding, dilation,
                        None if mask is None else mask.float())
    assert got.shape == expected.shape
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=0)


def test_deform_conv_zero_offsets_equal_plain_conv_and_pass_gradients() -> None:
    torch.manual_seed(0)
    layer = DeformConv2d(3, 5, (1, 3), padding=(0, 1))
    x = torch.randn(2, 3, 7, 9, requires_grad=True)
    out = layer(x)  # offsets start at zero
    torch.testing.assert_close(out, F.conv2d(x, layer.weight, layer.bias, padding=(0, 1)), atol=1e-5, rtol=0)
    out.square().sum().backward()
    assert layer.offset_conv.weight.grad is not None and layer.offset_conv.weight.grad.abs().sum() > 0
    assert torch.isfinite(x.grad).all()


def test_deform_conv_rejects_wrong_offset_shape() -> None:
    with pytest.raises(ValueError, match="offset"):
        deform_conv2d(torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, 4), torch.zeros(2, 2, 3, 3), padding=1)


# ---------------------------------------------------------------- irstd models --table


def test_models_table_shows_measured_published_and_ratio(capsys: pytest.CaptureFixture) -> None:
    from irstd.cli.models import run_table

    assert run_table("acm") == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "|" in ln and "params" not in ln]
    first, second = lines  # the standard configuration, then the seed's other configuration
    measured, published = first.split("|")
    assert measured.split()[:2] == ["acm", "0.398"]
    pub_params, pub_macs, ratio_p, ratio_m = published.split()[:4]
    assert (pub_params, pub_macs, ratio_p) == ("0.398", "0.40", "1.00") and float(ratio_m) < 0.9
    assert second.split("|")[1].split()[:4] == ["1.540", "1.31", "-", "-"]  # no ratio across configs
