"""SGEM-UNet (Deng & Yang, ACSS 2025): a U-Net whose encoder-3 → decoder-2 skip is replaced by the
semantic gap elimination module (SGEM).

The SGEM correlates the shallow encoder feature E3 (H/4) with the deep decoder feature D1 (H/8):

    Q      = Lin(Conv1×1(E3))                      (1)
    K      = Lin(Conv1×1(D1))                      (2)
    Matrix = Softmax(Conv1×1(Q ⊗ K))               (3)

and its output (the matrix applied to the features, restored by per-channel convolutions, plus a
residual carrying the deep features) feeds decoder level 2 in place of E3. The paper leaves the
shapes open, and its text admits two readings, both here (``docs/sgem.md`` sets them side by side):

* ``reading="channel"`` (:class:`SGEM`, registered ``sgem_unet``): a linear cross-attention over
  *channels* (a C×C correlation per head); any input size, cost linear in the pixel count;
* ``reading="bilinear"`` (:class:`BilinearSGEM`, registered ``sgem_unet_bilinear``): ABC's bilinear
  attention (Pan et al., ICME 2023, its ``Attention`` module has the same three equations): each
  input squeezed to one channel, its flattened map mapped by its own Linear layer to a vector, the
  two vectors' outer product a matrix, a 1×1 conv restoring C channels, the softmax last; the matrix
  re-mixes E3's rows.

Options of :class:`SGEMUNet`: ``residual`` (``"sum"``: E3 + attention + projected D1, the channel
reading's default; ``"abc"``: E3 + γ·attention with γ a learnable scalar starting at 0, ABC's and the
bilinear reading's default) and ``skip_mode`` (``"concat"``: the SGEM output replaces E3 in decoder
2's concatenation; ``"replace"``: decoder 2 takes the SGEM output alone, narrower by the up-conv and
half of its first conv's inputs).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._registry import register_model
from .layers.conv import ConvBNAct, resample_matrix
from .unet import UNet

__all__ = ["SGEM", "BilinearSGEM", "SGEMUNet", "READINGS", "RESIDUALS", "SKIP_MODES"]

READINGS = ("channel", "bilinear")
RESIDUALS = ("sum", "abc")
SKIP_MODES = ("concat", "replace")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


class SGEM(nn.Module):
    """Semantic gap elimination module.

    Args:
        enc_ch: channels of the shallow encoder feature (E3).
        deep_ch: channels of the deep decoder feature (D1), at half E3's resolution.
        heads: channel groups; each head correlates ``enc_ch // heads`` channels.
        residual: ``"sum"`` (E3 + attention + projected D1) or ``"abc"`` (E3 + γ·attention, γ from 0).
    """

    def __init__(self, enc_ch: int, deep_ch: int, heads: int = 8, residual: str = "sum") -> None:
        super().__init__()
        if enc_ch % heads:
            raise ValueError(f"enc_ch={enc_ch} is not divisible by heads={heads}")
        _check_choice("residual", residual, RESIDUALS)
        self.heads, self.residual = heads, residual
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
        if residual == "abc":
            self.gamma = nn.Parameter(torch.zeros(1))  # ABC's scale: the module starts as the identity

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
        # would otherwise average E3's channels away) and, for "sum", the deep features
        if self.residual == "abc":
            return enc + self.gamma * self.restore(out)
        return enc + self.restore(out) + k_feat


class BilinearSGEM(nn.Module):
    """SGEM read as ABC's bilinear attention: one-channel squeezes, Linear layers over the flattened
    maps, the vectors' outer product, a 1×1 conv to C channels, then the softmax; the resulting
    per-channel (r × r) matrix re-mixes E3's rows.

    The Linear layers are sized for a reference grid (E3's side ``ref_side`` at the reference input,
    D1's ``ref_side // 2``): as in ABC, where they follow the training size. Any other size is brought
    to that grid and back by :func:`~irstd.models.layers.conv.resample_matrix` products (the identity
    at the reference size, so there the module is exactly the three equations), which keeps the matrix
    r × r and the cost linear in the pixel count (ABC's H × H matrix grows with the square of H).

    Args:
        enc_ch: channels of E3; deep_ch: channels of D1 (at half E3's resolution).
        ref_side: E3's side at the reference input size (64 for 256×256 and E3 at H/4).
        residual: ``"abc"`` (E3 + γ·attention, γ a learnable scalar from 0, as ABC) or ``"sum"``
            (E3 + attention + D1 projected to E3's width by a 1×1 conv-BN-ReLU and up-sampled).
    """

    def __init__(self, enc_ch: int, deep_ch: int, ref_side: int = 64, residual: str = "abc") -> None:
        super().__init__()
        if ref_side < 2:
            raise ValueError(f"ref_side must be >= 2, got {ref_side}")
        _check_choice("residual", residual, RESIDUALS)
        self.ref_side, self.deep_side, self.residual = ref_side, ref_side // 2, residual
        r, rd = self.ref_side, self.deep_side
        self.query_conv = nn.Conv2d(enc_ch, 1, 1)  # Conv1×1 of eq. (1)
        self.key_conv = nn.Conv2d(deep_ch, 1, 1)  # Conv1×1 of eq. (2)
        # "different … linear layers": E3's map has r² values, D1's (r/2)²; both give r row weights
        self.query_line = nn.Linear(r * r, r)
        self.key_line = nn.Linear(rd * rd, r)
        self.spread = nn.Conv2d(1, enc_ch, 1)  # Conv1×1 of eq. (3): restores the C channels
        if residual == "abc":
            self.gamma = nn.Parameter(torch.zeros(1))
        else:
            self.deep_proj = ConvBNAct(deep_ch, enc_ch, kernel_size=1)

    @staticmethod
    def _on_grid(squeezed: torch.Tensor, side: int) -> torch.Tensor:
        """(B, 1, h, w) one-channel map → (B, side²) values on the reference grid."""
        h, w = squeezed.shape[-2:]
        rows, cols = resample_matrix(side, h, squeezed), resample_matrix(side, w, squeezed)  # (side, h), (side, w)
        return (rows @ squeezed[:, 0] @ cols.transpose(0, 1)).flatten(1)

    def forward(self, enc: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
        h, w = enc.shape[-2:]
        r = self.ref_side
        q = self.query_line(self._on_grid(self.query_conv(enc), r))  # eq. (1): (B, r)
        k = self.key_line(self._on_grid(self.key_conv(deep), self.deep_side))  # eq. (2): (B, r)
        corr = torch.bmm(q.unsqueeze(2), k.unsqueeze(1)).unsqueeze(1)  # Q ⊗ K: (B, 1, r, r)
        matrix = torch.softmax(self.spread(corr), dim=-1)  # eq. (3): (B, C, r, r), rows sum to 1
        # E3's rows to the reference grid, re-mixed by the matrix, back to E3's rows: (B, C, h, w)
        down, up = resample_matrix(r, h, enc), resample_matrix(h, r, enc)  # (r, h), (h, r)
        out = up @ (matrix @ (down @ enc))
        if self.residual == "abc":
            return enc + self.gamma * out
        return enc + out + F.interpolate(self.deep_proj(deep), size=(h, w), mode="nearest")


_PAPER = "Deng & Yang, High-Precision and Fast Inference for IRSTD through Semantic Gap Reduction, ACSS 2025"


# Light variants for CPU users: the same SGEMUNet at half and a quarter of the base width. The SGEM
# keeps the base model's 16 channels per head (E3 = 128 channels / 8 heads) rather than its head count,
# as narrow transformer variants keep the head dimension: a head's correlation stays a 16×16 matrix,
# and the head count must divide E3's width (widths[2]): 64 / 16 = 4 heads (S), 32 / 16 = 2 heads (T).
@register_model("sgem_unet_t", paper=f"{_PAPER}; light variant (base width 8)", widths=(8, 16, 32, 64, 128), heads=2)
@register_model("sgem_unet_s", paper=f"{_PAPER}; light variant (base width 16)", widths=(16, 32, 64, 128, 256), heads=4)
@register_model("sgem_unet", paper=_PAPER)
@register_model("sgem_unet_bilinear", paper=f"{_PAPER}; the SGEM read as ABC's bilinear attention", reading="bilinear")
class SGEMUNet(UNet):
    """U-Net with the SGEM in place of the skip at decoder level ``sgem_level`` (default 2: E3 → D2).

    Registered as ``sgem_unet`` (channel reading, base width 32), ``sgem_unet_s`` (16), ``sgem_unet_t``
    (8) and ``sgem_unet_bilinear`` (bilinear reading, base width 32).

    Args:
        reading: ``"channel"`` (:class:`SGEM`) or ``"bilinear"`` (:class:`BilinearSGEM`).
        heads: channel groups of the channel reading.
        residual: ``"sum"`` or ``"abc"``; default per reading (channel: ``"sum"``, bilinear: ``"abc"``).
        skip_mode: ``"concat"`` (decoder 2 concatenates the SGEM output with the up-sampled D1) or
            ``"replace"`` (decoder 2 takes the SGEM output alone).
        ref_size: input side the bilinear reading's Linear layers are sized for (ABC's training size).
    """

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 1,
        widths: Sequence[int] = (32, 64, 128, 256, 512),
        heads: int = 8,
        sgem_level: int = 2,
        reading: str = "channel",
        residual: str | None = None,
        skip_mode: str = "concat",
        ref_size: int = 256,
    ) -> None:
        if not 1 <= sgem_level < len(widths):
            raise ValueError(f"sgem_level must be in 1..{len(widths) - 1}, got {sgem_level}")
        _check_choice("reading", reading, READINGS)
        _check_choice("skip_mode", skip_mode, SKIP_MODES)
        residual = residual or ("abc" if reading == "bilinear" else "sum")
        _check_choice("residual", residual, RESIDUALS)
        enc_stride = 2 ** (len(widths) - 1 - sgem_level)  # the SGEM's encoder feature is at H / enc_stride
        if ref_size % (2 * enc_stride):
            raise ValueError(f"ref_size must be a multiple of {2 * enc_stride}, got {ref_size}")
        # read by build_skip and concatenates during UNet.__init__
        self.heads, self.sgem_level, self.reading = heads, sgem_level, reading
        self.residual, self.skip_mode, self.ref_size = residual, skip_mode, ref_size
        self._ref_side = ref_size // enc_stride
        super().__init__(in_chans, num_classes, widths)

    def build_skip(self, level: int, enc_ch: int, deep_ch: int) -> nn.Module:
        if level != self.sgem_level:
            return super().build_skip(level, enc_ch, deep_ch)
        if self.reading == "bilinear":
            return BilinearSGEM(enc_ch, deep_ch, ref_side=self._ref_side, residual=self.residual)
        return SGEM(enc_ch, deep_ch, heads=min(self.heads, enc_ch), residual=self.residual)

    def concatenates(self, level: int) -> bool:
        return level != self.sgem_level or self.skip_mode == "concat"
