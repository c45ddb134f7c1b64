"""UIU-Net: U-Net in U-Net (Wu, Hong & Chanussot, IEEE TIP 2022).

Reproduced (the authors' release):

* outer U-Net of six stages whose every stage is itself a small U-Net, a residual U-block
  (RSU-L: an input 3×3 conv-BN-ReLU, an encoder of L−1 conv-BN-ReLU levels with 2×2 max-pooling
  between them, a dilation-2 bottom conv, a decoder of concatenation + conv-BN-ReLU with bilinear
  up-sampling, and a residual to the input conv); RSU-4F replaces pooling by dilations 1-2-4-8;
* encoder stages RSU-7(1→32→64), RSU-6(64→32→128), RSU-5(128→64→256), RSU-4(256→128→512),
  RSU-4F(512→256→512) ×2 (the 6th at H/32); decoder stages RSU-4F(1024→256→512),
  RSU-4(1024→128→256), RSU-5(512→64→128), RSU-6(256→32→64), RSU-7(128→16→64);
* interactive-cross attention (IC-A) before the decoder stages at H/16 … H/2: the deep input is
  projected by 1×1 conv-BN-ReLU; a global top-down channel attention of the deep feature weights
  the shallow one, a local bottom-up *spatial* attention (1×1 conv-BN-ReLU to C/4, channel mean
  and max, 3×3 conv, sigmoid) of the weighted shallow feature weights the deep one; both products
  (×2) go through the same 3×3 conv-BN-ReLU and are concatenated;
* resolution-maintenance deep supervision: a 3×3 side head on each decoder stage (and on the 6th
  encoder stage), up-sampled to H, and a 1×1 conv fusing the six side maps.

Outputs: the fused logits; in training mode also ``"aux"``, the six side logits at full
resolution. Training loss (``release_loss``, used by default): the sum of the BCE of all seven
maps, as the release (``loss_recipe="project"``: the mean of the base loss over the maps).

Deviations: logits instead of sigmoids; convolutions followed by BatchNorm carry no bias
(redundant before BN; 14.4 k fewer parameters); the BatchNorm after global pooling falls back to
running statistics for a batch of one; bilinear up-sampling with ``align_corners=False``
targets the exact skip size. Stride 32: H and W must be multiples of 32; training with batch 1
needs H, W ≥ 64 (BatchNorm needs more than one value per channel at H/32).

Counts (``irstd.core.profiling``, 1×1×256×256): 50.526 M params (+ the 14.4 k dropped biases = the
published 50.540 M), 54.22 GMACs; published 50.54 M / 54.50 G (thop, which also charges
BatchNorm and up-sampling arithmetic).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._registry import register_model
from .base import IRSTDModel
from .layers.attention import GlobalAttention, channel_mean_max
from .layers.conv import ConvBNAct, upsample_like

__all__ = ["RSU", "ICAFusion", "UIUNet"]


class RSU(nn.Module):
    """Residual U-block of ``height`` levels; ``dilated=True`` is RSU-4F (no pooling, dilations 1-2-4-8)."""

    def __init__(self, height: int, in_ch: int, mid_ch: int, out_ch: int, dilated: bool = False) -> None:
        super().__init__()
        if height < 2:
            raise ValueError(f"an RSU needs at least 2 levels, got {height}")
        self.dilated = dilated
        self.conv_in = ConvBNAct(in_ch, out_ch)
        # encoder levels 1..height-1, then the bottom conv (dilation 2, or 2^(height-1) for RSU-F)
        dil = [2**i for i in range(height - 1)] if dilated else [1] * (height - 1)
        self.enc = nn.ModuleList(ConvBNAct(out_ch if i == 0 else mid_ch, mid_ch, dilation=d) for i, d in enumerate(dil))
        self.bottom = ConvBNAct(mid_ch, mid_ch, dilation=2 ** (height - 1) if dilated else 2)
        # decoder levels height-1..1 (the last one returns to out_ch)
        self.dec = nn.ModuleList(
            ConvBNAct(2 * mid_ch, out_ch if i == 0 else mid_ch, dilation=d) for i, d in enumerate(dil)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hx_in = self.conv_in(x)  # (B, out, H, W)
        skips = []
        h = hx_in
        for i, conv in enumerate(self.enc):
            if i > 0 and not self.dilated:
                h = F.max_pool2d(h, 2, stride=2, ceil_mode=True)
            h = conv(h)
            skips.append(h)  # level i+1: (B, mid, H/2^i, W/2^i)
        h = self.bottom(h)
        for skip, conv in zip(reversed(skips), reversed(self.dec)):
            h = conv(torch.cat([upsample_like(h, skip), skip], dim=1))
        return h + hx_in


class ICAFusion(nn.Module):
    """Interactive-cross attention: (deep, shallow) → (post(2·shallow·td), post(2·deep·bu)), each (B, C, H, W)."""

    def __init__(self, deep_ch: int, channels: int, reduction: int = 4) -> None:
        super().__init__()
        mid = max(channels // reduction, 1)
        # the release keeps the biases of these convs before their BatchNorms (its parameter count does)
        self.proj_deep = ConvBNAct(deep_ch, channels, 1, bias=True)
        self.topdown = GlobalAttention(channels, mid)
        self.bottomup_reduce = ConvBNAct(channels, mid, 1, bias=True)
        self.bottomup_spatial = nn.Conv2d(2, 1, 3, padding=1, bias=False)
        self.post = ConvBNAct(channels, channels, bias=True)

    def forward(self, deep: torch.Tensor, shallow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        deep = self.proj_deep(deep)
        td = self.topdown(deep)  # (B, C, 1, 1)
        r = self.bottomup_reduce(shallow * td)  # (B, C/4, H, W)
        bu = torch.sigmoid(self.bottomup_spatial(channel_mean_max(r)))  # (B, 1, H, W)
        return self.post(2 * shallow * td), self.post(2 * deep * bu)


@register_model("uiunet", paper="Wu et al., UIU-Net: U-Net in U-Net, IEEE TIP 2022")
class UIUNet(IRSTDModel):
    """UIU-Net as released: U-Net of RSU stages, interactive-cross attention skips, six deeply supervised side heads."""

    stride = 32
    extra_outputs = ("aux",)
    release_loss = {"base": "bce", "aux_reduction": "sum"}  # the release sums 7 BCE terms

    def __init__(self, in_chans: int = 1, num_classes: int = 1) -> None:
        super().__init__(in_chans, num_classes)
        self.encoder = nn.ModuleList(
            [
                RSU(7, in_chans, 32, 64),  # H
                RSU(6, 64, 32, 128),  # H/2
                RSU(5, 128, 64, 256),  # H/4
                RSU(4, 256, 128, 512),  # H/8
                RSU(4, 512, 256, 512, dilated=True),  # H/16
                RSU(4, 512, 256, 512, dilated=True),  # H/32
            ]
        )
        # decoder stage k fuses the up-sampled deeper output with encoder stage k (k = 5..1, 1-based)
        self.fusions = nn.ModuleList(ICAFusion(c, c) for c in (512, 512, 256, 128))
        self.decoder = nn.ModuleList(
            [
                RSU(4, 1024, 256, 512, dilated=True),  # H/16
                RSU(4, 1024, 128, 256),  # H/8
                RSU(5, 512, 64, 128),  # H/4
                RSU(6, 256, 32, 64),  # H/2
                RSU(7, 128, 16, 64),  # H (plain concatenation, no IC-A)
            ]
        )
        # side heads on decoder H, H/2, H/4, H/8, H/16 and encoder stage 6 (H/32)
        self.sides = nn.ModuleList(nn.Conv2d(c, num_classes, 3, padding=1) for c in (64, 64, 128, 256, 512, 512))
        self.outconv = nn.Conv2d(6 * num_classes, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, object]:
        self.check_input(x)
        feats = []
        h = x
        for i, stage in enumerate(self.encoder):
            if i > 0:
                h = F.max_pool2d(h, 2, stride=2, ceil_mode=True)
            h = stage(h)
            feats.append(h)  # hx1 … hx6
        deep = feats.pop()  # hx6 (B, 512, H/32, W/32)
        dec_feats = [deep]
        for k, stage in enumerate(self.decoder):
            skip = feats.pop()  # hx5 … hx1
            up = upsample_like(deep, skip)
            if k < len(self.fusions):
                a, b = self.fusions[k](up, skip)
                deep = stage(torch.cat([a, b], dim=1))
            else:
                deep = stage(torch.cat([up, skip], dim=1))
            dec_feats.append(deep)  # hx5d … hx1d
        # side logits d1 (hx1d) … d6 (hx6), all at H×W
        sources = dec_feats[::-1]  # hx1d, hx2d, hx3d, hx4d, hx5d, hx6
        sides = [upsample_like(head(f), x) for head, f in zip(self.sides, sources)]
        logits = self.outconv(torch.cat(sides, dim=1))
        if not self.training:
            return logits
        return {"logits": logits, "aux": sides}
