"""EGPNet (Li, Zhang, Yang, Yuan & Wang, "Edge-Guided Perceptual Network for Infrared Small Target
Detection", IEEE TGRS 2024, doi:10.1109/TGRS.2024.3471865).

**EGPNet-like.** No code or layer table of the paper is public; this is a reconstruction from the
paper's description of its three parts, with widths chosen to meet the published counts. It cannot be
faithful in its details, so tables call it "EGPNet-like" and its results are not the paper's:

* **MFPF encoder** (multiscale feature progressive fusion): five stages at H … H/16; each stage is a
  3×3 projection followed by four 3×3 branches of dilation 1, 2, 3, 4 over channel groups, fused
  *progressively* (branch i sees its group plus branch i−1's output, Res2Net style, so the receptive
  field grows branch by branch), a 1×1 fusion and a residual connection.
* **LTA** (local target amplifier) on every skip: the feature's local contrast (feature minus its
  5×5 local mean) passes a depthwise 3×3 conv-BN-ReLU and a 1×1 conv to a sigmoid gate ``g``; the skip
  becomes ``x·(1 + g)``, amplifying locally salient responses and leaving flat clutter unchanged.
* **EIRM** (edge-guided image refinement module) at full resolution: an edge branch reads the first
  encoder stage, the last decoder stage and the Sobel gradient magnitude of the input image, and
  predicts edge logits (supervised against the mask's edge map: the ``"edge"`` output); its
  features, gated by the edge probability, refine the decoder feature before the 1×1 head.

The decoder is U-Net style: bilinear ×2 up-sampling + 3×3 conv-BN-ReLU, concatenation with the
amplified skip, two 3×3 conv-BN-ReLU.

Widths: encoder (40, 64, 128, 200, 200), decoder mirrors them, edge branch 40 channels — chosen so that
the counts meet the seed's Table 1 (3.54 M, 19.55 GMACs): the paper's ratio of MACs to parameters
asks for a wide full-resolution stage and a narrow bottom.

Deviations: the whole structure is a reconstruction (see above): branch dilations, the LTA's contrast
window and gating, the Sobel cue and the EIRM's gating are our choices, not published details.
The edge output is returned in training mode only, as the model contract requires.

Measured at 1×1×256×256 with :mod:`irstd.core.profiling`: 3.54 M parameters, 19.58 GMACs.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._registry import register_model
from .base import IRSTDModel
from .layers.conv import ConvBNAct, DoubleConv, UpConv

__all__ = ["EGPNet", "MFPFBlock", "LocalTargetAmplifier", "EdgeGuidedRefinement", "sobel_magnitude"]


class MFPFBlock(nn.Module):
    """Multiscale feature progressive fusion: projection, four progressively fused dilated branches, residual."""

    def __init__(self, in_ch: int, out_ch: int, dilations: Sequence[int] = (1, 2, 3, 4)) -> None:
        super().__init__()
        if out_ch % len(dilations):
            raise ValueError(f"out_ch={out_ch} is not divisible by {len(dilations)} branches")
        self.group = out_ch // len(dilations)
        self.proj = ConvBNAct(in_ch, out_ch)
        self.branches = nn.ModuleList(ConvBNAct(self.group, self.group, dilation=d) for d in dilations)
        self.fuse = ConvBNAct(out_ch, out_ch, 1, act=False)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # (B, C, H, W)
        outs, prev = [], None
        for part, branch in zip(x.split(self.group, dim=1), self.branches):
            prev = branch(part if prev is None else part + prev)  # progressive: each branch sees the previous one
            outs.append(prev)
        return self.act(self.fuse(torch.cat(outs, dim=1)) + x)


class LocalTargetAmplifier(nn.Module):
    """Gate ``x·(1 + g)`` with ``g`` computed from the local contrast ``x − mean_5×5(x)``."""

    def __init__(self, channels: int, window: int = 5) -> None:
        super().__init__()
        self.window = window
        self.gate = nn.Sequential(ConvBNAct(channels, channels, 3, groups=channels), nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local_mean = F.avg_pool2d(x, self.window, stride=1, padding=self.window // 2, count_include_pad=False)
        return x * (1 + torch.sigmoid(self.gate(x - local_mean)))


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude of the channel mean of (B, C, H, W) by 3×3 Sobel filters → (B, 1, H, W)."""
    g = x.mean(dim=1, keepdim=True)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device, dtype=x.dtype)
    k = torch.stack([kx, kx.t()]).unsqueeze(1) / 8  # (2, 1, 3, 3)
    grad = F.conv2d(F.pad(g, (1, 1, 1, 1), mode="replicate"), k)  # (B, 2, H, W)
    return grad.pow(2).sum(dim=1, keepdim=True).add(1e-12).sqrt()


class EdgeGuidedRefinement(nn.Module):
    """EIRM: edge logits from (shallow feature, decoder feature, image gradient) and an edge-gated refinement."""

    def __init__(self, enc_ch: int, dec_ch: int, edge_ch: int) -> None:
        super().__init__()
        self.edge_feat = nn.Sequential(ConvBNAct(enc_ch + dec_ch + 1, edge_ch), ConvBNAct(edge_ch, edge_ch))
        self.edge_head = nn.Conv2d(edge_ch, 1, 1)
        self.refine = ConvBNAct(dec_ch + edge_ch, dec_ch)
        self.out = ConvBNAct(dec_ch, dec_ch)

    def forward(self, enc: torch.Tensor, dec: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.edge_feat(torch.cat([enc, dec, sobel_magnitude(image)], dim=1))  # (B, E, H, W)
        edge = self.edge_head(e)  # (B, 1, H, W) edge logits
        refined = dec + self.refine(torch.cat([dec, e], dim=1)) * torch.sigmoid(edge)
        return self.out(refined), edge


@register_model(
    "egpnet", paper="EGPNet-like: rebuilt from Li et al., Edge-Guided Perceptual Network for IRSTD, TGRS 2024 (no public code)"
)
class EGPNet(IRSTDModel):
    """MFPF encoder, LTA-amplified skips, U-Net decoder and edge-guided refinement; ``"edge"`` in training."""

    stride = 16
    extra_outputs = ("edge",)

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 1,
        widths: Sequence[int] = (40, 64, 128, 200, 200),
        edge_ch: int = 40,
    ) -> None:
        super().__init__(in_chans, num_classes)
        w = tuple(int(c) for c in widths)
        if len(w) != 5:
            raise ValueError(f"EGPNet needs five widths, got {w}")
        self.widths = w
        self.encoder = nn.ModuleList([MFPFBlock(in_chans, w[0])])
        self.encoder.extend(nn.Sequential(nn.MaxPool2d(2), MFPFBlock(a, b)) for a, b in zip(w[:-1], w[1:]))
        self.amplifiers = nn.ModuleList(LocalTargetAmplifier(c) for c in w[:-1])
        self.ups = nn.ModuleList(UpConv(w[i + 1], w[i], mode="bilinear") for i in reversed(range(4)))
        self.decoder = nn.ModuleList(DoubleConv(2 * w[i], w[i]) for i in reversed(range(4)))
        self.eirm = EdgeGuidedRefinement(w[0], w[0], edge_ch)
        self.head = nn.Conv2d(w[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        self.check_input(x)
        feats = []
        f = x
        for stage in self.encoder:
            f = stage(f)
            feats.append(f)  # E1..E5 at H, H/2, H/4, H/8, H/16
        d = feats[-1]
        for up, dec, level in zip(self.ups, self.decoder, reversed(range(4))):
            skip = self.amplifiers[level](feats[level])
            d = dec(torch.cat([skip, up(d)], dim=1))
        refined, edge = self.eirm(feats[0], d, x)
        logits = self.head(refined)
        return {"logits": logits, "edge": edge} if self.training else logits
