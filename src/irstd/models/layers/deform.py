"""Deformable convolution (Dai et al., ICCV 2017; modulated: Zhu et al., CVPR 2019) in pure PyTorch.

Output pixel p0 of a k_h×k_w deformable convolution reads the input at

    p = p0·stride − padding + p_n·dilation + Δp_n        (p_n: the n-th kernel tap)

with bilinear interpolation (taps of the 2×2 neighbourhood outside the image count as zero),
optionally multiplies each sample by a modulation scalar m_n ∈ [0, 1] (DCNv2), and sums
``weight[o, c, n] · sample[c, n]``. The sampling is one :func:`torch.nn.functional.grid_sample`
call for all taps; the weighted sum is one matrix product, so the shared MAC counter sees the
same multiply-accumulates as an ordinary convolution of that kernel. No compiled extension.

Offset layout (as torchvision's ``deform_conv2d``): ``offset[:, 2n]`` is Δy and
``offset[:, 2n + 1]`` is Δx of tap n, taps in row-major kernel order.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

__all__ = ["deform_conv2d", "DeformConv2d"]


def deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Deformable 2-D convolution.

    Args:
        x: input (B, C, H, W).
        offset: (B, 2·K, H_out, W_out) with K = k_h·k_w, (Δy, Δx) per tap.
        weight: (O, C, k_h, k_w).
        bias: (O,) or None.
        mask: optional modulation (B, K, H_out, W_out), applied as given (callers apply the sigmoid).

    Returns:
        (B, O, H_out, W_out).
    """
    b, c, h, w = x.shape
    o, c_w, kh, kw = weight.shape
    if c_w != c:
        raise ValueError(f"weight expects {c_w} input channels, input has {c}")
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    h_out = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    w_out = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    k = kh * kw
    if offset.shape != (b, 2 * k, h_out, w_out):
        raise ValueError(f"offset must have shape {(b, 2 * k, h_out, w_out)}, got {tuple(offset.shape)}")
    if mask is not None and mask.shape != (b, k, h_out, w_out):
        raise ValueError(f"mask must have shape {(b, k, h_out, w_out)}, got {tuple(mask.shape)}")
    dev, dt = x.device, x.dtype
    # regular grid p0 + p_n in input pixel coordinates: (1, K, H_out, W_out)
    tap_y = (torch.arange(kh, device=dev, dtype=dt) * dh).repeat_interleave(kw)
    tap_x = (torch.arange(kw, device=dev, dtype=dt) * dw).repeat(kh)
    base_y = (torch.arange(h_out, device=dev, dtype=dt) * sh - ph).view(1, 1, h_out, 1) + tap_y.view(1, k, 1, 1)
    base_x = (torch.arange(w_out, device=dev, dtype=dt) * sw - pw).view(1, 1, 1, w_out) + tap_x.view(1, k, 1, 1)
    off = offset.view(b, k, 2, h_out, w_out)
    py = base_y + off[:, :, 0]  # (B, K, H_out, W_out)
    px = base_x + off[:, :, 1]
    # pixel index → grid_sample's [-1, 1] with align_corners=False (pixel i at (2i+1)/size − 1)
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)  # (B, K, H_out, W_out, 2)
    grid = grid.view(b, k * h_out, w_out, 2)
    cols = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    cols = cols.view(b, c, k, h_out, w_out)  # sample[c, n] at every output pixel
    if mask is not None:
        cols = cols * mask.unsqueeze(1)
    # Σ_c Σ_n weight[o, c, n] · cols[c, n]: a (O × C·K) by (C·K × H_out·W_out) product per image
    out = torch.matmul(weight.reshape(o, c * k), cols.reshape(b, c * k, h_out * w_out))
    out = out.view(b, o, h_out, w_out)
    if bias is not None:
        out = out + bias.view(1, o, 1, 1)
    return out


class DeformConv2d(nn.Module):
    """Deformable convolution whose offsets (and, if ``modulated``, masks) come from a plain conv of the input.

    The offset conv has the same kernel, stride, padding and dilation, and starts at zero, so an
    untrained layer equals an ordinary convolution (as in the reference DCN "pack" layers).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        modulated: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        self.modulated = modulated
        k = self.kernel_size[0] * self.kernel_size[1]
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_ch)) if bias else None
        self.offset_conv = nn.Conv2d(
            in_ch, (3 if modulated else 2) * k, self.kernel_size, self.stride, self.padding, self.dilation, bias=True
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform weights like ``nn.Conv2d``; zero offsets (and masks of 0.5 when modulated)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            nn.init.uniform_(self.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        nn.init.zeros_(self.offset_conv.weight)
        nn.init.zeros_(self.offset_conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size[0] * self.kernel_size[1]
        out = self.offset_conv(x)  # (B, 2K or 3K, H_out, W_out)
        offset, mask = out[:, : 2 * k], (torch.sigmoid(out[:, 2 * k :]) if self.modulated else None)
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask)
