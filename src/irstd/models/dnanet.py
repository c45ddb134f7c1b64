"""DNANet: Dense Nested Attention Network (Li et al., IEEE TIP 2022).

Reproduced (the authors' release, default configuration):

* building block: residual block with CBAM — two 3×3 conv-BN (ReLU between), channel
  attention (average- and max-pooled descriptors through a shared 1×1 MLP with ratio 16,
  sigmoid), spatial attention (channel mean and max, 7×7 conv, sigmoid), identity or 1×1
  conv-BN shortcut, ReLU;
* dense nested interaction module (DNIM): a UNet++-style grid of nodes ``X(i, j)`` at level i
  (widths 16, 32, 64, 128, 256 at H, H/2, …, H/16; ``num_blocks=(2, 2, 2, 2)`` blocks per node
  below level 0, one at level 0), where node ``X(i, j)`` takes every earlier node of its level,
  the up-sampled ``X(i+1, j-1)`` and — unlike UNet++ — the down-sampled ``X(i-1, j)``;
* channel-spatial attention fusion (CSAM output stage): the deepest node of every level is
  projected to 16 channels by a 1×1 conv, up-sampled to H and concatenated with ``X(0, 4)``,
  then one more block;
* deep supervision: 1×1 heads on ``X(0, 1)``, ``X(0, 2)``, ``X(0, 3)`` and on the fused map.

Outputs: the fused head's logits; in training mode also ``"aux"``, the three shallower heads'
logits at full resolution (the release trains on the mean of the four losses; the project's
loss averages ``aux`` with the main loss the same way).

Deviations: logits instead of sigmoids; convolutions followed by BatchNorm carry no bias
(redundant before BN; 4.4 k fewer parameters); bilinear resampling targets exact sizes with
``align_corners=True`` as in the release.

Counts (``irstd.core.profiling``, 1×1×256×256, eval mode, so without the auxiliary heads' MACs):
4.692 M params (+ the 4.4 k dropped biases = the published 4.697 M), 13.91 GMACs; published
4.70 M / 14.28 G (thop, which also charges BatchNorm and up-sampling arithmetic).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._registry import register_model
from .base import IRSTDModel
from .layers.attention import ChannelAttention, SpatialAttention
from .layers.conv import ConvBNAct, resize

__all__ = ["CBAMResBlock", "DNANet"]


class CBAMResBlock(nn.Module):
    """Residual block with channel then spatial attention on the residual branch."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(in_ch, out_ch), ConvBNAct(out_ch, out_ch, act=False))
        self.ca = ChannelAttention(out_ch)
        self.sa = SpatialAttention()
        self.shortcut = nn.Identity() if in_ch == out_ch else ConvBNAct(in_ch, out_ch, 1, act=False)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        out = self.ca(out) * out
        out = self.sa(out) * out
        return self.act(out + self.shortcut(x))


def _node(in_ch: int, out_ch: int, blocks: int = 1) -> nn.Sequential:
    return nn.Sequential(CBAMResBlock(in_ch, out_ch), *[CBAMResBlock(out_ch, out_ch) for _ in range(blocks - 1)])


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resampling with the release's ``align_corners=True``."""
    return resize(x, size, align_corners=True)


@register_model("dnanet", paper="Li et al., Dense Nested Attention Network, IEEE TIP 2022")
class DNANet(IRSTDModel):
    """Dense nested U-shaped grid of CBAM residual nodes with multi-level attention fusion.

    Defaults are the release's: widths 16-256, 2 blocks per node below level 0.
    """

    stride = 16
    extra_outputs = ("aux",)

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 1,
        num_blocks: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (16, 32, 64, 128, 256),
    ) -> None:
        super().__init__(in_chans, num_classes)
        nb, w = tuple(int(n) for n in num_blocks), tuple(int(c) for c in widths)
        if len(w) != 5 or len(nb) != 4:
            raise ValueError(f"DNANet needs 5 widths and 4 block counts, got widths={w}, num_blocks={nb}")
        self.widths = w
        depth = len(w)
        # nodes[i][j] is X(i, j); column j exists for levels i < depth - j
        self.nodes = nn.ModuleList()
        for i in range(depth):
            row = nn.ModuleList()
            blocks = 1 if i == 0 else nb[i - 1]
            for j in range(depth - i):
                if j == 0:
                    in_ch = in_chans if i == 0 else w[i - 1]
                else:
                    # j earlier nodes of this level, the up-sampled node below, the down-sampled node above
                    in_ch = j * w[i] + w[i + 1] + (w[i - 1] if i > 0 else 0)
                row.append(_node(in_ch, w[i], blocks))
            self.nodes.append(row)
        # CSAM fusion: deepest node of levels 4..1 → w[0] channels at full resolution, with X(0, 4)
        self.proj = nn.ModuleList(nn.Conv2d(w[i], w[0], 1) for i in range(depth - 1, 0, -1))
        self.fuse = _node(w[0] * depth, w[0])
        self.final = nn.Conv2d(w[0], num_classes, 1)
        self.aux_heads = nn.ModuleList(nn.Conv2d(w[0], num_classes, 1) for _ in range(depth - 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, object]:
        self.check_input(x)
        depth = len(self.widths)
        grid: list[list[torch.Tensor]] = [[] for _ in range(depth)]
        # column-by-column along anti-diagonals, as the release: X(k,0), then X(k-1,1), ..., X(0,k)
        for k in range(depth):
            inp = x if k == 0 else F.max_pool2d(grid[k - 1][0], 2)
            grid[k].append(self.nodes[k][0](inp))
            for j in range(1, k + 1):
                i = k - j
                size = grid[i][0].shape[-2:]
                parts = list(grid[i]) + [_resize(grid[i + 1][j - 1], size)]
                if i > 0:
                    parts.append(_resize(grid[i - 1][j], size))
                grid[i].append(self.nodes[i][j](torch.cat(parts, dim=1)))
        full = grid[0][0].shape[-2:]
        # deepest node of each level: X(4,0), X(3,1), X(2,2), X(1,3); plus X(0,4)
        deepest = [grid[i][depth - 1 - i] for i in range(depth - 1, 0, -1)]
        fused = [_resize(p(f), full) for p, f in zip(self.proj, deepest)] + [grid[0][depth - 1]]
        logits = self.final(self.fuse(torch.cat(fused, dim=1)))
        if not self.training:
            return logits
        aux = [head(grid[0][j]) for j, head in zip(range(1, depth - 1), self.aux_heads)]  # X(0,1..3), (B, 1, H, W)
        return {"logits": logits, "aux": aux}
