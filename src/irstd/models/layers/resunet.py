"""The ResUNet of Dai et al.'s ACM release and its parts, shared by ACM, ALCNet and ISNet.

These networks descend from the same code base: a "deep stem" that reduces the input by 4,
CIFAR-style ResNet stages, the ResUNet that ACM and ISNet build from them (:class:`ResUNetBackbone`;
the two differ only in the decoder fusion), and an FCN head. ALCNet reuses the stem, the stages and
the head around its own local-contrast pyramid. The attention MLPs of their fusions live in
:mod:`irstd.models.layers.attention`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from .conv import ConvBNAct, ResidualBlock

__all__ = ["DeepStem", "res_stage", "FCNHead", "ResUNetBackbone"]


class DeepStem(nn.Sequential):
    """Input BN, 3×3 conv stride 2, two 3×3 convs, 3×3 max-pool stride 2: (B, in, H, W) → (B, 2w, H/4, W/4)."""

    def __init__(self, in_ch: int, width: int) -> None:
        super().__init__(
            nn.BatchNorm2d(in_ch),  # normalises the raw frame, as in the ACM release
            ConvBNAct(in_ch, width, 3, stride=2),
            ConvBNAct(width, width),
            ConvBNAct(width, 2 * width),
            nn.MaxPool2d(3, stride=2, padding=1),
        )


def res_stage(in_ch: int, out_ch: int, blocks: int, stride: int = 1) -> nn.Sequential:
    """``blocks`` basic residual blocks; the first changes width and applies ``stride``."""
    if blocks < 1:
        raise ValueError(f"a stage needs at least one block, got {blocks}")
    layers = [ResidualBlock(in_ch, out_ch, stride)]
    layers += [ResidualBlock(out_ch, out_ch) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class FCNHead(nn.Sequential):
    """3×3 conv to ``in_ch // 4`` channels, BN, ReLU, dropout 0.1, 1×1 conv to ``out_ch`` logits."""

    def __init__(self, in_ch: int, out_ch: int, dropout: float = 0.1) -> None:
        inter = max(in_ch // 4, 1)
        super().__init__(ConvBNAct(in_ch, inter, 3), nn.Dropout(dropout), nn.Conv2d(inter, out_ch, 1))


class ResUNetBackbone(nn.Module):
    """ACM's ResUNet: deep stem, residual stages at H/4, H/8, H/16, and a two-step decoder back to H/4.

    Each decoder step is a 4×4 transposed conv (stride 2), a fusion with the encoder feature of that
    level, ``fusion(C)(decoder, encoder) → (B, C, h, w)``, and a residual stage of the encoder's depth.

    Args:
        in_chans: input channels.
        channels: four widths ``(c0, c1, c2, c3)``; the stem gives ``c1 = 2·c0`` at H/4.
        layers: residual blocks of the three stages (the decoder stages reuse the first two).
        fusion: builds the fusion module for a width (ACM's asymmetric fusion, ISNet's TOAA).

    ``forward`` returns ``(c3, up2, up1)``: the H/16 encoder feature and the H/8 and H/4 decoder
    features, coarse to fine.
    """

    def __init__(
        self,
        in_chans: int,
        channels: Sequence[int],
        layers: Sequence[int],
        fusion: Callable[[int], nn.Module],
    ) -> None:
        super().__init__()
        layers, channels = tuple(int(n) for n in layers), tuple(int(c) for c in channels)
        if len(layers) != 3 or len(channels) != 4:
            raise ValueError(f"the ResUNet needs 3 stage depths and 4 widths, got layers={layers}, channels={channels}")
        c0, c1, c2, c3 = channels
        if c1 != 2 * c0:
            raise ValueError(f"the stem doubles its width: channels[1] must be 2*channels[0], got {channels}")
        self.channels = channels
        self.stem = DeepStem(in_chans, c0)  # → (B, c1, H/4, W/4)
        self.layer1 = res_stage(c1, c1, layers[0])  # H/4
        self.layer2 = res_stage(c1, c2, layers[1], stride=2)  # H/8
        self.layer3 = res_stage(c2, c3, layers[2], stride=2)  # H/16
        self.deconv2 = nn.ConvTranspose2d(c3, c2, 4, stride=2, padding=1)
        self.fuse2 = fusion(c2)
        self.uplayer2 = res_stage(c2, c2, layers[1])
        self.deconv1 = nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1)
        self.fuse1 = fusion(c1)
        self.uplayer1 = res_stage(c1, c1, layers[0])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c1 = self.layer1(self.stem(x))  # (B, c1, H/4, W/4)
        c2 = self.layer2(c1)  # (B, c2, H/8, W/8)
        c3 = self.layer3(c2)  # (B, c3, H/16, W/16)
        up2 = self.uplayer2(self.fuse2(self.deconv2(c3), c2))  # (B, c2, H/8, W/8)
        up1 = self.uplayer1(self.fuse1(self.deconv1(up2), c1))  # (B, c1, H/4, W/4)
        return c3, up2, up1
