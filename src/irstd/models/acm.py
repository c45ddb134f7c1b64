"""ACM: Asymmetric Contextual Modulation (Dai, Wu, Zhou & Barnard, WACV 2021), ASKC-ResUNet variant.

Reproduced: the ASKC ResUNet of the authors' release in its standard configuration, three
residual stages of ``layers=(3, 3, 3)`` basic blocks at widths ``channels=(8, 16, 32, 64)``:

* deep stem (input BN; 3×3 conv stride 2 to 8; 3×3 conv 8; 3×3 conv to 16; 3×3 max-pool
  stride 2) → H/4; stages at H/4 (16), H/8 (32), H/16 (64);
* decoder: 4×4 transposed conv stride 2, asymmetric bi-directional fusion with the encoder
  feature (ACM: a *global* top-down channel attention computed from the deep feature modulates
  the shallow one, a *local* point-wise bottom-up attention computed from the shallow feature
  modulates the deep one, ``2·xl·td(xh) + 2·xh·bu(xl)``, then 3×3 conv-BN-ReLU), then a stage of
  ``layers[i]`` residual blocks; twice, back to H/4 (stem to decoder:
  :class:`~irstd.models.layers.resunet.ResUNetBackbone`, shared with ISNet);
* FCN head (3×3 conv to 4, BN, ReLU, dropout 0.1, 1×1 conv) at H/4 and ×4 bilinear up-sampling.

Deviations: returns logits (the release applies a sigmoid in ``forward``); the BatchNorm after
global pooling falls back to running statistics for a batch of one (:class:`PooledBatchNorm2d`),
which PyTorch otherwise refuses; the ×4 up-sampling targets the input size exactly.

Counts (``irstd.core.profiling``, 1×1×256×256): 0.398 M params, 0.343 GMACs, against the standard
config's published 0.398 M / 0.40 G. That 0.40 "GFLOPs" comes from thop, which charges a stride-2
transposed convolution for every *output* pixel, i.e. 4× its true multiply-accumulates; adding
that surplus (0.050 G) to our count gives 0.394 G. The seed's Table 1 quotes 1.54 M / 1.31 G
without naming a configuration; the nearest standard one is twice the widths,
``channels=(16, 32, 64, 128)``: 1.59 M / 1.37 GMACs here (+3 % / +5 %). See ``docs/baselines.md``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from ._registry import register_model
from .base import IRSTDModel
from .layers.attention import GlobalAttention, PointwiseAttention
from .layers.conv import ConvBNAct, upsample_like
from .layers.resunet import FCNHead, ResUNetBackbone

__all__ = ["AsymBiFusion", "ACM"]


class AsymBiFusion(nn.Module):
    """Asymmetric bi-directional contextual modulation of a deep and a shallow feature of equal shape."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        mid = max(channels // reduction, 1)
        # top-down: global context of the deep feature → channel weights for the shallow one
        self.topdown = GlobalAttention(channels, mid)
        # bottom-up: point-wise (local) context of the shallow feature → weights for the deep one
        self.bottomup = PointwiseAttention(channels, mid)
        # the release keeps the conv bias before the BatchNorm; so do we, for its parameter count
        self.post = ConvBNAct(channels, channels, bias=True)

    def forward(self, deep: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        td = self.topdown(deep)  # (B, C, 1, 1)
        bu = self.bottomup(shallow)  # (B, C, H, W)
        return self.post(2 * shallow * td + 2 * deep * bu)


@register_model("acm", paper="Dai et al., Asymmetric Contextual Modulation, WACV 2021 (ASKC-ResUNet)")
class ACM(IRSTDModel):
    """ASKC ResUNet: ResNet encoder, transposed-conv decoder with asymmetric contextual modulation.

    Defaults are the standard configuration: 3 blocks per stage, widths 8-16-32-64.
    """

    stride = 16

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 1,
        layers: Sequence[int] = (3, 3, 3),
        channels: Sequence[int] = (8, 16, 32, 64),
    ) -> None:
        super().__init__(in_chans, num_classes)
        self.backbone = ResUNetBackbone(in_chans, channels, layers, AsymBiFusion)
        self.head = FCNHead(self.backbone.channels[1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        up1 = self.backbone(x)[-1]  # (B, 16, H/4, W/4)
        return upsample_like(self.head(up1), x)  # ×4 to (B, 1, H, W)

