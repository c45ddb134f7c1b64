"""Small layers shared by the networks (in the spirit of timm's ``layers``)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ConvBNAct", "DoubleConv", "UpConv", "ResidualBlock", "upsample_like"]


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) → BatchNorm → ReLU; ``padding`` keeps the size for odd kernels."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        padding = dilation * (kernel_size - 1) // 2
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class DoubleConv(nn.Sequential):
    """Two 3×3 conv-BN-ReLU: the U-Net stage."""

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int | None = None) -> None:
        mid = mid_ch or out_ch
        super().__init__(ConvBNAct(in_ch, mid), ConvBNAct(mid, out_ch))


class UpConv(nn.Sequential):
    """×``scale`` nearest up-sampling followed by a 3×3 conv-BN-ReLU (the U-Net "up-conv")."""

    def __init__(self, in_ch: int, out_ch: int, scale: int = 2) -> None:
        super().__init__(nn.Upsample(scale_factor=scale, mode="nearest"), ConvBNAct(in_ch, out_ch))


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


def upsample_like(x: torch.Tensor, ref: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Resize ``x`` to ``ref``'s spatial size."""
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    kw = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(x, size=ref.shape[-2:], mode=mode, **kw)
