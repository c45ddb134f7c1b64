"""Layers shared by the ACM-family baselines (ACM, ALCNet, ISNet) and UIU-Net.

These networks descend from the same code base (Dai et al.'s ACM release): a "deep stem" that
reduces the input by 4, CIFAR-style ResNet stages, and an FCN head. UIU-Net and ACM both put a
BatchNorm after global average pooling, which :class:`PooledBatchNorm2d` makes safe for batch 1.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import ConvBNAct, ResidualBlock

__all__ = ["PooledBatchNorm2d", "DeepStem", "res_stage", "FCNHead"]


class PooledBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm for globally pooled (B, C, 1, 1) features.

    In training mode PyTorch refuses a batch of one such vector ("expected more than 1 value per
    channel"). With a single value per channel there are no batch statistics to take, so this layer
    then normalises with its running statistics (and leaves them unchanged); with two or more values
    it is an ordinary BatchNorm.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.numel() // x.shape[1] <= 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


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
