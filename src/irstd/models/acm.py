"""ACM: Asymmetric Contextual Modulation (Dai, Wu, Zhou & Barnard, WACV 2021): the release's two
networks, ASKC-ResUNet (``acm``) and ASKC-ResNet-FPN (``acm_fpn``).

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
that surplus (0.050 G) to our count gives 0.394 G.

``acm_fpn``: the release's ``ASKCResNetFPN`` (``tiny=False``) with ``layers=(4, 4, 4)`` and
``channels=(16, 32, 64, 128)``, the configuration whose size the seed's Table 1 row for ACM
(1.54 M / 1.31 G) matches. The same deep stem and residual stages at H/4 (32), H/8 (64), H/16
(128); no transposed convolutions: the H/16 map is bilinearly resized (``align_corners=True``, as
MXNet's ``BilinearResize2D``) to H/8 and fused with the H/8 stage, the result resized to H/4 and
fused with the H/4 stage, each by the *reducing* asymmetric fusion (:class:`AsymBiFusionReduce`: a
1×1 conv-BN-ReLU first brings the deep input to the shallow width); FCN head at H/4, resized to the
input. Counts: 1.545 M params, 1.32 GMACs (seed: 1.54 M / 1.31 G). Deviations as for ``acm``; the
stem's input BatchNorm keeps its two affine parameters (the release's has none). See
``docs/baselines.md``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from ._registry import register_model
from .base import IRSTDModel
from .layers.attention import GlobalAttention, PointwiseAttention
from .layers.conv import ConvBNAct, upsample_like
from .layers.resunet import DeepStem, FCNHead, ResUNetBackbone, res_stage

__all__ = ["AsymBiFusion", "AsymBiFusionReduce", "ACM", "ACMFPN"]


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


class AsymBiFusionReduce(AsymBiFusion):
    """:class:`AsymBiFusion` of a deep feature of another width: a 1×1 conv-BN-ReLU (with bias, as the
    release's ``feature_high``) first maps it to the shallow feature's ``channels``."""

    def __init__(self, deep_channels: int, channels: int, reduction: int = 4) -> None:
        super().__init__(channels, reduction)
        self.feature_high = ConvBNAct(deep_channels, channels, 1, bias=True)

    def forward(self, deep: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        return super().forward(self.feature_high(deep), shallow)  # (B, C, h, w)


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



@register_model(
    "acm_fpn",
    paper="Dai et al., Asymmetric Contextual Modulation, WACV 2021 (ASKC-ResNet-FPN, 4 blocks/stage, widths 16-128)",
)
class ACMFPN(IRSTDModel):
    """ASKC ResNet-FPN: ResNet encoder, bilinear top-down pyramid with reducing asymmetric fusions.

    Defaults are the configuration of the seed's ACM row: 4 blocks per stage, widths 16-32-64-128.
    """

    stride = 16

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 1,
        layers: Sequence[int] = (4, 4, 4),
        channels: Sequence[int] = (16, 32, 64, 128),
    ) -> None:
        super().__init__(in_chans, num_classes)
        layers, channels = tuple(int(n) for n in layers), tuple(int(c) for c in channels)
        if len(layers) != 3 or len(channels) != 4 or channels[1] != 2 * channels[0]:
            raise ValueError(
                f"ACMFPN needs 3 stage depths and 4 widths with channels[1] = 2*channels[0], "
                f"got layers={layers}, channels={channels}"
            )
        _, c1, c2, c3 = channels
        self.stem = DeepStem(in_chans, channels[0])  # (B, c1, H/4, W/4)
        self.layer1 = res_stage(c1, c1, layers[0])  # H/4
        self.layer2 = res_stage(c1, c2, layers[1], stride=2)  # H/8
        self.layer3 = res_stage(c2, c3, layers[2], stride=2)  # H/16
        self.fuse23 = AsymBiFusionReduce(c3, c2)
        self.fuse12 = AsymBiFusionReduce(c2, c1)
        self.head = FCNHead(c1, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        c1 = self.layer1(self.stem(x))  # (B, c1, H/4, W/4)
        c2 = self.layer2(c1)  # (B, c2, H/8, W/8)
        out = self.layer3(c2)  # (B, c3, H/16, W/16)
        out = self.fuse23(upsample_like(out, c2, align_corners=True), c2)  # (B, c2, H/8, W/8)
        out = self.fuse12(upsample_like(out, c1, align_corners=True), c1)  # (B, c1, H/4, W/4)
        return upsample_like(self.head(out), x, align_corners=True)  # (B, 1, H, W)
