"""ISNet: Shape Matters for Infrared Small Target Detection (Zhang et al., CVPR 2022).

Reproduced (the authors' release, ``layer_blocks=(4, 4, 4)``, ``channels=(8, 16, 32, 64)``):

* backbone as ACM's ResUNet (:class:`~irstd.models.layers.resunet.ResUNetBackbone`, shared with ACM):
  deep stride-4 stem, residual stages at H/4 (16), H/8 (32), H/16 (64), 4×4 transposed-conv
  decoder with residual stages back to H/4;
* TOAA (two-orientation attention aggregation) at both decoder fusions: the decoder and encoder
  features share a 1×1 → 1×1 (C → C/2 → C) pre-process; a 3×1 and a 1×3 *deformable*
  convolution of the decoder feature give sigmoid weights on the encoder feature, added to the
  decoder feature per orientation, and the two orientations are summed;
* TFD (Taylor finite difference) edge branch at full resolution and 64 channels: the image
  gradient magnitude (central differences) lifted by a 1×1 conv feeds three TFD blocks, each two
  residual blocks whose residual branches give the finite-difference terms
  (``3·Δu₀ + u₂ + gate(u₂)``) and a gated spatial 1×1 conv driven by a side output of the
  backbone (from H/16, H/8 and H/4 in turn: 1×1 conv to one channel, bilinear up-sampling); a
  1×1 conv gives the edge logits;
* the backbone's H/4 feature, bilinearly up-sampled to H, is re-weighted ``f·σ(edge) + f``;
  FCN head at full resolution.

Outputs: the segmentation logits; in training mode also ``"edge"``, the edge logits. Training loss
(``release_loss``, used by default): SoftIoU on the mask plus 10·BCE + SoftIoU on the edge logits
against the mask's gradient magnitude, as the release (``loss_recipe="project"``: 1·BCE against a
binary edge band).

Deviations: logits instead of sigmoids; the deformable convolutions are
:class:`~irstd.models.layers.deform.DeformConv2d` (pure PyTorch ``grid_sample``; DCNv1 offsets, no
modulation, as the release's ``DeformConvPack``) instead of the compiled DCNv2 extension; the
image gradient is taken on channel 0 (the release's one channel); modules that the release
defines but never calls in ``forward`` are left out.

Counts (``irstd.core.profiling``, 1×1×256×256): 0.986 M params, 31.12 GMACs (convolutions including
the three gated 1×1 convs, the deformable convolutions' weighted sums, transposed convolutions at
their true cost). The seed's 1.09 M also counts 0.104 M parameters of modules the release builds
but never calls (a second edge branch ``res1-3``/``d1-3``/``gate1-3``, ``head2``, ``SA``,
``SA_att``, ``cw``, ``conv2_1``, ``conv16``): 0.986 + 0.104 = 1.090. Its 30.63 G is thop's count,
which misses the gated convs (``F.conv2d`` inside a custom module, 0.81 G) and the deformable
convs, charges the two transposed convs 4× (+0.05 G) and adds BatchNorm arithmetic (≈ +0.3 G).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._registry import register_model
from .base import IRSTDModel
from .layers.conv import ConvBNAct, resize
from .layers.deform import DeformConv2d
from .layers.resunet import FCNHead, ResUNetBackbone

__all__ = ["TOAA", "TFDBlock", "GatedSpatialConv", "ISNet"]


class TOAA(nn.Module):
    """Two-orientation attention aggregation of a decoder and an encoder feature of equal shape."""

    def __init__(self, channels: int, kernel: int = 3) -> None:
        super().__init__()
        half = max(channels // 2, 1)
        self.preprocess = nn.Sequential(nn.Conv2d(channels, half, 1), nn.Conv2d(half, channels, 1))
        self.dcn_col = DeformConv2d(channels, channels, (kernel, 1), padding=(kernel // 2, 0))
        self.dcn_row = DeformConv2d(channels, channels, (1, kernel), padding=(0, kernel // 2))

    def forward(self, dec: torch.Tensor, enc: torch.Tensor) -> torch.Tensor:
        dec, enc = self.preprocess(dec), self.preprocess(enc)
        col = dec + torch.sigmoid(self.dcn_col(dec)) * enc  # vertical orientation
        row = dec + torch.sigmoid(self.dcn_row(dec)) * enc  # horizontal orientation
        return col + row


class GatedSpatialConv(nn.Module):
    """Gated 1×1 conv of features x by a one-channel map g.

    α = σ(BN(conv(ReLU(conv(BN([x, g])))))) of shape (B, 1, H, W); output conv(x·(1 + α)).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.BatchNorm2d(channels + 1),
            nn.Conv2d(channels + 1, channels + 1, 1),
            nn.ReLU(),
            nn.Conv2d(channels + 1, 1, 1),
            nn.BatchNorm2d(1),
            nn.Sigmoid(),
        )
        self.conv = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor, gating: torch.Tensor) -> torch.Tensor:
        alpha = self.gate(torch.cat([x, gating], dim=1))  # (B, 1, H, W)
        return self.conv(x * (alpha + 1))


class _DiffBlock(nn.Module):
    """Residual block that also returns its residual branch: (relu(x + f(x)), relu(f(x)))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(channels, channels), ConvBNAct(channels, channels, act=False))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        delta = self.body(x)
        return F.relu(x + delta), F.relu(delta)


class TFDBlock(nn.Module):
    """Taylor finite difference block: u₃ = 3·Δu₀ + u₂ + gate(u₂, side)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.res1 = _DiffBlock(channels)
        self.res2 = _DiffBlock(channels)
        self.gate = GatedSpatialConv(channels)

    def forward(self, u0: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        u1, du0 = self.res1(u0)
        _, u2 = self.res2(u1)
        return 3 * du0 + u2 + self.gate(u2, side)


@register_model("isnet", paper="Zhang et al., ISNet: Shape Matters for IRSTD, CVPR 2022")
class ISNet(IRSTDModel):
    """ACM-style ResUNet with TOAA fusions and a full-resolution TFD edge branch that re-weights the features.

    Defaults are the release's: 4 blocks per stage, widths 8-16-32-64, 64-channel edge branch.
    """

    stride = 16
    extra_outputs = ("edge",)
    # the release: SoftIoU on the mask, 10·BCE + SoftIoU on the edge map against the gradient
    # magnitude of the mask (its Get_gradient_nopadding), see irstd.losses.mask_gradient_edges
    release_loss = {"base": "softiou", "edge_weight": 10.0, "edge_iou_weight": 1.0, "edge_target": "gradient"}

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 1,
        layer_blocks: Sequence[int] = (4, 4, 4),
        channels: Sequence[int] = (8, 16, 32, 64),
        edge_channels: int = 64,
    ) -> None:
        super().__init__(in_chans, num_classes)
        self.backbone = ResUNetBackbone(in_chans, channels, layer_blocks, TOAA)
        _, c1, c2, c3 = self.backbone.channels
        # edge branch: side maps from H/16, H/8, H/4 gate three TFD blocks on the image gradient
        self.sides = nn.ModuleList(nn.Conv2d(c, 1, 1) for c in (c3, c2, c1))
        self.grad_lift = nn.Conv2d(1, edge_channels, 1)
        self.tfd = nn.ModuleList(TFDBlock(edge_channels) for _ in range(3))
        self.edge_head = nn.Conv2d(edge_channels, 1, 1, bias=False)
        self.head = FCNHead(c1, num_classes)
        # central-difference kernels of the gradient magnitude, (2, 1, 3, 3): vertical, horizontal
        grad = torch.zeros(2, 1, 3, 3)
        grad[0, 0, 0, 1], grad[0, 0, 2, 1] = -1.0, 1.0
        grad[1, 0, 1, 0], grad[1, 0, 1, 2] = -1.0, 1.0
        self.register_buffer("grad_kernel", grad, persistent=False)

    def image_gradient(self, x: torch.Tensor) -> torch.Tensor:
        """Gradient magnitude of channel 0: sqrt(∂y² + ∂x² + 1e-6), (B, 1, H, W)."""
        d = F.conv2d(x[:, :1], self.grad_kernel, padding=1)
        return torch.sqrt(d.pow(2).sum(dim=1, keepdim=True) + 1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        self.check_input(x)
        size = x.shape[-2:]
        # (B, 64, H/16, W/16), (B, 32, H/8, W/8), (B, 16, H/4, W/4)
        c3, up2, up1 = self.backbone(x)
        # edge branch at full resolution
        u = self.grad_lift(self.image_gradient(x))  # (B, 64, H, W)
        for tfd, side, feat in zip(self.tfd, self.sides, (c3, up2, up1)):
            s = resize(side(feat), size, align_corners=True)  # (B, 1, H, W), as the release
            u = tfd(u, s)
        edge = self.edge_head(u)  # (B, 1, H, W) logits
        f = resize(up1, size)  # (B, 16, H, W)
        logits = self.head(f * torch.sigmoid(edge) + f)
        if not self.training:
            return logits
        return {"logits": logits, "edge": edge}
