"""Deformable convolution (irstd.models.layers.deform) against a direct loop over the DCN sampling rule."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from irstd.models.layers.deform import DeformConv2d, deform_conv2d


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
