"""Layers shared by the second baseline zoo (ABC, EGPNet)."""

from __future__ import annotations

import torch.nn as nn

from .blocks import ConvBNAct

__all__ = ["BilinearUpConv"]


class BilinearUpConv(nn.Sequential):
    """Bilinear ×2 up-sampling, then a 3×3 conv-BN-ReLU: the decoders' up-convolution."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), ConvBNAct(in_ch, out_ch))
