"""Convolution blocks and resampling shared by the networks (in the spirit of timm's ``layers``).

Every block here is an ``nn.Sequential`` (or holds one) whose children are indexed as they were
written, so a network's ``state_dict`` keys name the same tensors whichever network uses a block.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ConvBNAct", "DoubleConv", "UpConv", "ResidualBlock", "resample_matrix", "resize", "upsample_like"]


class ConvBNAct(nn.Sequential):
    """Conv2d → BatchNorm → ReLU; ``padding`` keeps the size for odd kernels.

    The conv has no bias by default (BatchNorm's shift makes it redundant); ``bias=True`` is for
    the releases that keep one (ACM's and UIU-Net's fusion convs), whose parameter counts we match.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        act: bool = True,
        bias: bool = False,
    ) -> None:
        padding = dilation * (kernel_size - 1) // 2
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=bias),
            nn.BatchNorm2d(out_ch),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class DoubleConv(nn.Sequential):
    """Two 3×3 conv-BN-ReLU: the U-Net stage, (B, in, H, W) → (B, out, H, W)."""

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int | None = None) -> None:
        mid = mid_ch or out_ch
        super().__init__(ConvBNAct(in_ch, mid), ConvBNAct(mid, out_ch))


class UpConv(nn.Sequential):
    """×``scale`` up-sampling followed by a 3×3 conv-BN-ReLU (the U-Net "up-conv").

    ``mode="nearest"`` is the U-Net's (and what :func:`irstd.rewrites.fold_upsample_conv` folds);
    ``mode="bilinear"`` (``align_corners=False``) is the ABC and EGPNet decoders'.
    (B, in, H, W) → (B, out, scale·H, scale·W).
    """

    def __init__(self, in_ch: int, out_ch: int, scale: int = 2, mode: str = "nearest") -> None:
        align = False if mode in ("bilinear", "bicubic") else None
        super().__init__(nn.Upsample(scale_factor=scale, mode=mode, align_corners=align), ConvBNAct(in_ch, out_ch))


class ResidualBlock(nn.Module):
    """Basic ResNet block (two 3×3 convs) with a 1×1 projection when the shape changes."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(in_ch, out_ch, 3, stride), ConvBNAct(out_ch, out_ch, act=False))
        self.shortcut = (
            nn.Identity() if stride == 1 and in_ch == out_ch else ConvBNAct(in_ch, out_ch, 1, stride, act=False)
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def resize(x: torch.Tensor, size: Sequence[int], mode: str = "bilinear", align_corners: bool = False) -> torch.Tensor:
    """Resample (B, C, h, w) to (B, C, *size); returns ``x`` itself when it already has that size.

    ``align_corners`` applies to the linear modes only (DNANet's and ISNet's releases use ``True``
    in places; everything else ``False``).
    """
    if not torch.jit.is_tracing():
        size = tuple(int(s) for s in size)
        if tuple(x.shape[-2:]) == size:
            return x
    # under an ONNX trace ``size`` stays the traced shape of the reference (no ints, no shortcut), so
    # the exported graph resizes to whatever size the input has; a same-size interpolation is exact
    kw = {"align_corners": align_corners} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(x, size=size, mode=mode, **kw)


def upsample_like(
    x: torch.Tensor, ref: torch.Tensor, mode: str = "bilinear", align_corners: bool = False
) -> torch.Tensor:
    """Resize ``x`` to ``ref``'s spatial size (see :func:`resize`)."""
    return resize(x, ref.shape[-2:], mode, align_corners)


def resample_matrix(n_out: int, n_in: int, like: torch.Tensor) -> torch.Tensor:
    """(n_out, n_in) matrix that resamples a length-``n_in`` axis to ``n_out`` by matrix product.

    Triangle (linear) filter of support ``max(n_in / n_out, 1)`` input samples, rows normalised to sum
    1 (PIL's antialiased bilinear): linear interpolation when up-sampling, an antialiased average when
    down-sampling, exactly the identity when ``n_out == n_in``. Built from ``arange`` so that an ONNX
    trace keeps ``n_out`` dynamic when it comes from a tensor's shape (no branch on the sizes).
    ``like`` gives the device and dtype.
    """
    dtype = like.dtype if like.is_floating_point() else torch.float32
    pos = torch.arange(n_out, device=like.device, dtype=dtype)  # (n_out,)
    count = torch.ones_like(pos).sum()  # n_out as a tensor: stays dynamic under tracing
    scale = n_in / count
    centres = (pos + 0.5) * scale  # output sample centres in input coordinates
    support = torch.clamp(scale, min=1.0)
    taps = torch.arange(n_in, device=like.device, dtype=dtype) + 0.5  # (n_in,) input sample centres
    weights = torch.relu(1.0 - (taps[None, :] - centres[:, None]).abs() / support)  # (n_out, n_in)
    return weights / weights.sum(dim=1, keepdim=True)
