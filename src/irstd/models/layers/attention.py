"""Attention modules shared by the networks.

* ACM family (ACM's asymmetric fusion, ALCNet's BLAM, UIU-Net's IC-A): the point-wise ("bottom-up")
  and global ("top-down") attention MLPs of Dai et al.'s release, with
  :class:`PooledBatchNorm2d` after global pooling so that a batch of one trains;
* CBAM (Woo et al., ECCV 2018, as DNANet uses it): channel attention from average- and max-pooled
  descriptors, spatial attention from the channel mean and max (:func:`channel_mean_max`, which
  UIU-Net's bottom-up spatial attention reads too).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "PooledBatchNorm2d",
    "PointwiseAttention",
    "GlobalAttention",
    "ChannelAttention",
    "SpatialAttention",
    "channel_mean_max",
]


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


def _attention_mlp(channels: int, mid: int, norm: Callable[[int], nn.Module]) -> list[nn.Module]:
    """1×1 conv to ``mid``, norm, ReLU, 1×1 conv back to ``channels``, norm, sigmoid."""
    return [
        nn.Conv2d(channels, mid, 1),
        norm(mid),
        nn.ReLU(inplace=True),
        nn.Conv2d(mid, channels, 1),
        norm(channels),
        nn.Sigmoid(),
    ]


class PointwiseAttention(nn.Sequential):
    """Local ("bottom-up") attention: per-pixel weights in (0, 1), (B, C, H, W) → (B, C, H, W)."""

    def __init__(self, channels: int, mid: int) -> None:
        super().__init__(*_attention_mlp(channels, mid, nn.BatchNorm2d))


class GlobalAttention(nn.Sequential):
    """Global ("top-down") channel attention: average pooling, then the point-wise MLP, (B, C, H, W) → (B, C, 1, 1).

    The BatchNorms see one value per channel and image, hence :class:`PooledBatchNorm2d`.
    """

    def __init__(self, channels: int, mid: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), *_attention_mlp(channels, mid, PooledBatchNorm2d))


class ChannelAttention(nn.Module):
    """CBAM channel attention: sigmoid(MLP(avg-pool) + MLP(max-pool)), (B, C, H, W) → (B, C, 1, 1)."""

    def __init__(self, channels: int, ratio: int = 16) -> None:
        super().__init__()
        mid = max(channels // ratio, 1)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, mid, 1, bias=False), nn.ReLU(), nn.Conv2d(mid, channels, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        mx = self.mlp(F.adaptive_max_pool2d(x, 1))
        return torch.sigmoid(avg + mx)


def channel_mean_max(x: torch.Tensor) -> torch.Tensor:
    """The two spatial descriptors of CBAM: channel mean and channel max, (B, C, H, W) → (B, 2, H, W)."""
    return torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)


class SpatialAttention(nn.Module):
    """CBAM spatial attention: sigmoid(conv_k(channel_mean_max(x))), (B, C, H, W) → (B, 1, H, W)."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(channel_mean_max(x)))
