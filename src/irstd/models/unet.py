"""Plain U-Net (Ronneberger et al., 2015), the network SGEM-UNet starts from.

Widths (32, 64, 128, 256, 512), two 3×3 conv-BN-ReLU per stage, four 2×2 max-pool
down-samplings, decoder steps of nearest ×2 up-sampling + 3×3 conv-BN-ReLU, concatenation with
the skip, then two 3×3 conv-BN-ReLU; a 1×1 head gives logits. 8.63 M params and 16.42 GMACs at
1×1×256×256.

Naming (as in the SGEM paper): encoder levels E1..E5 at H, H/2, H/4, H/8, H/16; decoder levels
D1..D4 at H/8, H/4, H/2, H. Decoder level j concatenates ``skip_j(E_{5-j}, D_{j-1})`` with the
up-sampled D_{j-1} (D0 = E5). The skip of a plain U-Net is the identity on the encoder feature;
subclasses replace individual skips (see :mod:`irstd.models.sgem_unet`), and may feed a level from
its skip alone (:meth:`UNet.concatenates`: no up-conv, and a decoder stage of the skip's width).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from ._registry import register_model
from .base import IRSTDModel
from .layers.conv import DoubleConv, UpConv

__all__ = ["UNet", "EncoderSkip"]


class EncoderSkip(nn.Module):
    """The plain U-Net skip: pass the encoder feature through unchanged (the deep one is unused)."""

    def forward(self, enc: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
        return enc


@register_model("unet_t", paper="Ronneberger et al., U-Net, MICCAI 2015; light variant (base width 8), the ablation twin of sgem_unet_t", widths=(8, 16, 32, 64, 128))
@register_model("unet_s", paper="Ronneberger et al., U-Net, MICCAI 2015; light variant (base width 16), the ablation twin of sgem_unet_s", widths=(16, 32, 64, 128, 256))
@register_model("unet", paper="Ronneberger et al., U-Net, MICCAI 2015 (base-32 variant)")
class UNet(IRSTDModel):
    """Plain base-32 U-Net whose forward is shared by its variants; variants override :meth:`build_skip`."""

    logit_layer = "head"  # forward returns self.head(deep): a 1×1 conv with a bias

    def __init__(
        self, in_chans: int = 1, num_classes: int = 1, widths: Sequence[int] = (32, 64, 128, 256, 512)
    ) -> None:
        super().__init__(in_chans, num_classes)
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2:
            raise ValueError(f"widths needs at least two levels, got {widths}")
        self.widths = widths
        self.stride = 2 ** (len(widths) - 1)
        self.encoder = nn.ModuleList([DoubleConv(in_chans, widths[0])])
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            self.encoder.append(nn.Sequential(nn.MaxPool2d(2), DoubleConv(c_in, c_out)))
        self.ups, self.skips, self.decoder = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        # decoder level j = 1..L-1 goes from width widths[-j] up to widths[-j-1]
        self.concat = tuple(self.concatenates(level) for level in range(1, len(widths)))
        for level, concat in zip(range(1, len(widths)), self.concat):
            deep_ch, enc_ch = widths[-level], widths[-level - 1]
            # a level fed by its skip alone has no up-conv (Identity keeps the list's indices)
            self.ups.append(UpConv(deep_ch, enc_ch) if concat else nn.Identity())
            self.skips.append(self.build_skip(level, enc_ch, deep_ch))
            self.decoder.append(DoubleConv(2 * enc_ch if concat else enc_ch, enc_ch))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def build_skip(self, level: int, enc_ch: int, deep_ch: int) -> nn.Module:
        """The module feeding decoder ``level`` from (encoder feature, previous decoder feature)."""
        return EncoderSkip()

    def concatenates(self, level: int) -> bool:
        """Whether decoder ``level`` concatenates its skip with the up-sampled deep feature (the U-Net's
        rule) or takes the skip's output alone (which must then carry the deep features itself)."""
        return True

    def concat_inputs(self) -> dict[str, tuple[int, int]]:
        """Weights whose input is a concatenation, with its parts' channels (up-sampled deep, skip):
        the first conv of each concatenating decoder stage (read by :mod:`irstd.models.widen`)."""
        return {
            f"decoder.{i}.0.0.weight": (self.widths[-i - 2], self.widths[-i - 2])
            for i, concat in enumerate(self.concat) if concat
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        feats = []
        for stage in self.encoder:
            x = stage(x)
            feats.append(x)  # E1 (B,32,H,W) … E5 (B,512,H/16,W/16)
        deep = feats.pop()
        for concat, up, skip, dec in zip(self.concat, self.ups, self.skips, self.decoder):
            enc = feats.pop()  # E4, E3, E2, E1
            skipped = skip(enc, deep)  # (B, C_enc, h, w)
            deep = dec(torch.cat([up(deep), skipped], dim=1) if concat else skipped)  # D1 … D4
        return self.head(deep)

