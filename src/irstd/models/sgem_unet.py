"""SGEM-UNet (Deng & Yang, ACSS 2025): a U-Net whose encoder-3 → decoder-2 skip is replaced by the
semantic gap elimination module (SGEM).

The SGEM correlates the shallow encoder feature E3 (H/4) with the deep decoder feature D1 (H/8):

    Q      = Lin(Conv1×1(E3))                      (1)
    K      = Lin(Conv1×1(D1))                      (2)
    Matrix = Softmax(Conv1×1(Q ⊗ K))               (3)

and its output (the matrix applied to the features, restored by per-channel convolutions, plus a
residual carrying the deep features) feeds decoder level 2 in place of E3. The paper leaves the
shapes open; this implementation is a linear cross-attention over *channels* (a C×C correlation per
head), so it works for any input size and costs time linear in the pixel count. Every choice is
argued in ``docs/sgem.md``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._registry import register_model
from .layers.conv import ConvBNAct
from .unet import UNet

__all__ = ["SGEM", "SGEMUNet"]


class SGEM(nn.Module):
    """Semantic gap elimination module.

    Args:
        enc_ch: channels of the shallow encoder feature (E3).
        deep_ch: channels of the deep decoder feature (D1), at half E3's resolution.
        heads: channel groups; each head correlates ``enc_ch // heads`` channels.
    """

    def __init__(self, enc_ch: int, deep_ch: int, heads: int = 8) -> None:
        super().__init__()
        if enc_ch % heads:
            raise ValueError(f"enc_ch={enc_ch} is not divisible by heads={heads}")
        self.heads = heads
        # initial convolutional layers of eqs. (1) and (2): both branches to the skip's width
        self.conv_q = ConvBNAct(enc_ch, enc_ch, kernel_size=1)
        self.conv_k = ConvBNAct(deep_ch, enc_ch, kernel_size=1)
        # linear layers of eqs. (1) and (2): act on the channel vector of every token
        self.lin_q = nn.Linear(enc_ch, enc_ch)
        self.lin_k = nn.Linear(enc_ch, enc_ch)
        # Conv1×1 of eq. (3): mixes the heads' correlation maps (and learns their temperature)
        self.conv_matrix = nn.Conv2d(heads, heads, kernel_size=1)
        # per-channel (depthwise) convolution restoring the 3-D feature after the matrix product
        self.restore = ConvBNAct(enc_ch, enc_ch, kernel_size=3, groups=enc_ch, act=False)

    def forward(self, enc: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
        b, c, h, w = enc.shape
        q_feat = self.conv_q(enc)  # (B, C, H4, W4)
        # bring D1 to E3's grid so that both sides index the same pixels
        k_feat = F.interpolate(self.conv_k(deep), size=(h, w), mode="nearest")  # (B, C, H4, W4)
        # tokens: (B, N, C) with N = H4·W4
        q = self.lin_q(q_feat.flatten(2).transpose(1, 2))  # eq. (1)
        k = self.lin_k(k_feat.flatten(2).transpose(1, 2))  # eq. (2)
        # (B, heads, d, N); unit norm over the N pixels keeps Q⊗K bounded at any image size
        q = F.normalize(q.transpose(1, 2).reshape(b, self.heads, c // self.heads, h * w), dim=-1)
        k = F.normalize(k.transpose(1, 2).reshape(b, self.heads, c // self.heads, h * w), dim=-1)
        corr = q @ k.transpose(-2, -1)  # Q ⊗ K: (B, heads, d, d), cost O(N·d·C)
        matrix = torch.softmax(self.conv_matrix(corr), dim=-1)  # eq. (3): rows in [0, 1], summing to 1
        # matrix multiplication on the shallow feature's channels: (B, heads, d, N)
        v = q_feat.reshape(b, self.heads, c // self.heads, h * w)
        out = (matrix @ v).reshape(b, c, h, w)
        # per-channel convolutions restore the spatial feature; residual connections carry E3 itself (so
        # the module starts as the plain U-Net skip: at initialisation the softmax is near uniform and
        # would otherwise average E3's channels away) and the deep features
        return enc + self.restore(out) + k_feat


_PAPER = "Deng & Yang, High-Precision and Fast Inference for IRSTD through Semantic Gap Reduction, ACSS 2025"


# Light variants for CPU users: the same SGEMUNet at half and a quarter of the base width. The SGEM
# keeps the base model's 16 channels per head (E3 = 128 channels / 8 heads) rather than its head count,
# as narrow transformer variants keep the head dimension: a head's correlation stays a 16×16 matrix,
# and the head count must divide E3's width (widths[2]): 64 / 16 = 4 heads (S), 32 / 16 = 2 heads (T).
@register_model("sgem_unet_t", paper=f"{_PAPER}; light variant (base width 8)", widths=(8, 16, 32, 64, 128), heads=2)
@register_model("sgem_unet_s", paper=f"{_PAPER}; light variant (base width 16)", widths=(16, 32, 64, 128, 256), heads=4)
@register_model("sgem_unet", paper=_PAPER)
class SGEMUNet(UNet):
    """U-Net with the SGEM in place of the skip at decoder level ``sgem_level`` (default 2: E3 → D2).

    Registered as ``sgem_unet`` (base width 32), ``sgem_unet_s`` (16) and ``sgem_unet_t`` (8).
    """

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 1,
        widths: Sequence[int] = (32, 64, 128, 256, 512),
        heads: int = 8,
        sgem_level: int = 2,
    ) -> None:
        if not 1 <= sgem_level < len(widths):
            raise ValueError(f"sgem_level must be in 1..{len(widths) - 1}, got {sgem_level}")
        self.heads, self.sgem_level = heads, sgem_level  # read by build_skip during UNet.__init__
        super().__init__(in_chans, num_classes, widths)

    def build_skip(self, level: int, enc_ch: int, deep_ch: int) -> nn.Module:
        if level == self.sgem_level:
            return SGEM(enc_ch, deep_ch, heads=min(self.heads, enc_ch))
        return super().build_skip(level, enc_ch, deep_ch)
