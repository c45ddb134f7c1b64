"""ABC (Pan et al., "ABC: Attention with Bilinear Correlation for Infrared Small Target Detection",
ICME 2023, arXiv:2303.10321).

Reproduced: the U-shaped network of the paper. Encoder: a two-conv stage at full resolution, then
three *convolution linear fusion transformer* (CLFT) stages after 2×2 max-pooling (H/2, H/4, H/8),
then a *U-shaped convolution-dilated convolution* (UCDC) block at H/16. A CLFT is

    V   = Conv×3(X) + DConv(X)                      (3×3 convs; dilations 2, 4, 2 in DConv)
    Att = Softmax_rows(Conv1×1(q ⊗ k))              (bilinear attention module, BAM)
    Y   = γ·(Att @ V) + V + X                       (γ a learned scalar, initialised at 0)
    out = Conv3×3-BN-ReLU(Y) + Conv1×1-BN-ReLU(Y)   (the feed-forward part, changes the width)

where q and k are row descriptors: a 1×1 conv squeezes X to one channel, a linear layer maps the
flattened map (H·W values) to H values; ``q ⊗ k`` is their (H × H) outer product, a 1×1 conv spreads
it over the C channels and each row is soft-maxed, so ``Att @ V`` re-mixes the rows of every channel
of V. The UCDC block (conv, dilated convs at rates 2 and 4, dilated conv at rate 2 on their
concatenation, conv on the concatenation with the first conv) is the bottleneck and the first decoder
stage; the other decoder stages are up-convolutions (bilinear ×2, conv) + concatenation with the skip
+ two convs. Deep supervision: 3×3 side heads on D2..D5 and E5, bilinearly up-sampled, as in the
authors' description; a 1×1 head on the last decoder stage gives the main logits.

Widths: base 16 → (16, 32, 64, 128, 256). The paper does not print them; with base 16 the
parameter count meets the seed's Table 1 (9.09 M), most of it in the BAM linear layers of the H/2
stage (2 × 128²·128 weights), which is only possible if those layers are sized for a 256×256 input
— so the published count was taken with the reference grid ``ref_size = 256``.

Deviations:

* **Any input size.** The paper's BAM linear layers have H·W inputs fixed by the training size (and
  need H = W). Here each is sized for the reference grid (``ref_size``, default 256, so the feature
  side at stage s is ``ref_size / 2^s``); the one-channel query/key map is bilinearly resampled to
  that grid when the input differs, and the H_ref-long row descriptor is linearly resampled back to
  the actual height H. At the reference size both resamplings are the identity, so the network is
  the paper's there. Non-square inputs work: both descriptors follow the rows (H).
* Convolutions before BatchNorm have no bias (BatchNorm's shift makes it redundant): a few
  thousand parameters fewer than a biased version.
* Deep-supervision side outputs are computed in training mode only and returned as ``"aux"``;
  the evaluation forward is the main head alone.
* **Training loss** (``release_loss``, used by default): the sum of the SoftIoU of the six maps, as
  the release; the project's SoftIoU is taken per image and averaged, the release's pools the
  batch (see :func:`irstd.losses.soft_iou_loss`).
* **``ref_size`` stays 256 whatever the training crop.** The release sets its reference size
  (``ori_h``) to the training size, so its 512 px configurations have linear layers for 512² inputs
  (four times the H/2 stage's weights). Here ``ref_size`` is a model argument, not derived from the
  crop: the default is the 256 px configuration that the published count describes, and a 512 px
  run reproduces the release's 512 px network with ``model_kwargs: {ref_size: 512}``. A crop that
  differs from ``ref_size`` still trains (the resampling above), with the published parameter count.

Measured at 1×1×256×256 with :mod:`irstd.core.profiling`: 9.09 M parameters, 5.22 GMACs (seed's Table 1:
9.09 M, 5.31 G).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._registry import register_model
from .base import IRSTDModel
from .layers.conv import ConvBNAct, DoubleConv, UpConv, upsample_like

__all__ = ["ABCNet", "BilinearAttention", "CLFT", "UCDC"]


class BilinearAttention(nn.Module):
    """Bilinear attention module (BAM): a per-channel (H × H) row-mixing matrix from q ⊗ k.

    Args:
        channels: C of the feature map.
        ref_side: side of this feature map at the reference input size; the linear layers map the
            ``ref_side²`` values of the squeezed map to ``ref_side`` row weights.
    """

    def __init__(self, channels: int, ref_side: int) -> None:
        super().__init__()
        if ref_side < 1:
            raise ValueError(f"ref_side must be >= 1, got {ref_side}")
        self.ref_side = ref_side
        self.query_conv = nn.Conv2d(channels, 1, 1)
        self.key_conv = nn.Conv2d(channels, 1, 1)
        self.query_line = nn.Linear(ref_side * ref_side, ref_side)
        self.key_line = nn.Linear(ref_side * ref_side, ref_side)
        self.spread = nn.Conv2d(1, channels, 1)  # the paper's 1×1 conv over the correlation map

    def _row_descriptor(self, squeezed: torch.Tensor, line: nn.Linear, height: int) -> torch.Tensor:
        """(B, 1, H, W) one-channel map → (B, H) row weights through the reference-grid linear layer."""
        r = self.ref_side
        if squeezed.shape[-2:] != (r, r):
            squeezed = F.interpolate(squeezed, size=(r, r), mode="bilinear", align_corners=False)
        desc = line(squeezed.flatten(1))  # (B, r)
        if height != r:
            desc = F.interpolate(desc.unsqueeze(1), size=height, mode="linear", align_corners=False).squeeze(1)
        return desc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[-2]
        q = self._row_descriptor(self.query_conv(x), self.query_line, h)  # (B, H)
        k = self._row_descriptor(self.key_conv(x), self.key_line, h)  # (B, H)
        corr = torch.bmm(q.unsqueeze(2), k.unsqueeze(1))  # bilinear correlation q ⊗ k: (B, H, H)
        return torch.softmax(self.spread(corr.unsqueeze(1)), dim=-1)  # (B, C, H, H), rows sum to 1


class CLFT(nn.Module):
    """Convolution linear fusion transformer: conv/dilated-conv values, BAM attention, conv feed-forward."""

    def __init__(self, in_ch: int, out_ch: int, ref_side: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(*[ConvBNAct(in_ch, in_ch) for _ in range(3)])
        self.dconv = nn.Sequential(*[ConvBNAct(in_ch, in_ch, dilation=d) for d in (2, 4, 2)])
        self.attention = BilinearAttention(in_ch, ref_side)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.ffn_conv = ConvBNAct(in_ch, out_ch, 3)
        self.ffn_skip = ConvBNAct(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.conv(x) + self.dconv(x)  # (B, C, H, W)
        att = self.attention(x)  # (B, C, H, H)
        y = self.gamma * torch.matmul(att, v) + v + x
        return self.ffn_conv(y) + self.ffn_skip(y)


class UCDC(nn.Module):
    """U-shaped convolution–dilated convolution block (bottleneck and first decoder stage)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        half = out_ch // 2
        self.conv_in = ConvBNAct(in_ch, out_ch)
        self.dil_a = ConvBNAct(out_ch, half, dilation=2)
        self.dil_b = ConvBNAct(half, half, dilation=4)
        self.dil_c = ConvBNAct(2 * half, out_ch, dilation=2)
        self.conv_out = ConvBNAct(2 * out_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv_in(x)
        a = self.dil_a(x1)
        b = self.dil_b(a)
        c = self.dil_c(torch.cat([a, b], dim=1))
        return self.conv_out(torch.cat([x1, c], dim=1))


@register_model("abcnet", paper="Pan et al., ABC: Attention with Bilinear Correlation for IRSTD, ICME 2023")
class ABCNet(IRSTDModel):
    """ABC network; ``widths`` are the five encoder widths, ``ref_size`` the input side the BAM
    linear layers are sized for. Training mode adds five deep-supervision maps as ``"aux"``."""

    stride = 16
    extra_outputs = ("aux",)
    release_loss = {"base": "softiou", "aux_reduction": "sum"}  # the release sums its 6 SoftIoU terms

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 1,
        widths: Sequence[int] = (16, 32, 64, 128, 256),
        ref_size: int = 256,
    ) -> None:
        super().__init__(in_chans, num_classes)
        w = tuple(int(c) for c in widths)
        if len(w) != 5:
            raise ValueError(f"ABCNet needs five widths, got {w}")
        if ref_size % 16:
            raise ValueError(f"ref_size must be a multiple of 16, got {ref_size}")
        self.widths, self.ref_size = w, ref_size
        self.pool = nn.MaxPool2d(2)
        self.enc1 = DoubleConv(in_chans, w[0])
        self.enc2 = CLFT(w[0], w[1], ref_size // 2)
        self.enc3 = CLFT(w[1], w[2], ref_size // 4)
        self.enc4 = CLFT(w[2], w[3], ref_size // 8)
        self.enc5 = UCDC(w[3], w[4])
        self.up5, self.dec5 = UpConv(w[4], w[3], mode="bilinear"), UCDC(2 * w[3], w[3])
        self.up4, self.dec4 = UpConv(w[3], w[2], mode="bilinear"), DoubleConv(2 * w[2], w[2])
        self.up3, self.dec3 = UpConv(w[2], w[1], mode="bilinear"), DoubleConv(2 * w[1], w[1])
        self.up2, self.dec2 = UpConv(w[1], w[0], mode="bilinear"), DoubleConv(2 * w[0], w[0])
        self.head = nn.Conv2d(w[0], num_classes, 1)
        # deep supervision heads on D2, D3, D4, D5 and E5
        self.side_heads = nn.ModuleList(nn.Conv2d(c, num_classes, 3, padding=1) for c in (w[0], w[1], w[2], w[3], w[4]))

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor | list[torch.Tensor]]:
        self.check_input(x)
        e1 = self.enc1(x)  # (B, w0, H, W)
        e2 = self.enc2(self.pool(e1))  # (B, w1, H/2, W/2)
        e3 = self.enc3(self.pool(e2))  # (B, w2, H/4, W/4)
        e4 = self.enc4(self.pool(e3))  # (B, w3, H/8, W/8)
        e5 = self.enc5(self.pool(e4))  # (B, w4, H/16, W/16)
        d5 = self.dec5(torch.cat([e4, self.up5(e5)], dim=1))
        d4 = self.dec4(torch.cat([e3, self.up4(d5)], dim=1))
        d3 = self.dec3(torch.cat([e2, self.up3(d4)], dim=1))
        d2 = self.dec2(torch.cat([e1, self.up2(d3)], dim=1))
        logits = self.head(d2)
        if not self.training:
            return logits
        aux = [upsample_like(h(f), logits) for h, f in zip(self.side_heads, (d2, d3, d4, d5, e5))]
        return {"logits": logits, "aux": aux}
