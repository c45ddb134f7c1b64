"""ALCNet: Attentional Local Contrast Networks (Dai, Wu, Zhou & Barnard, TGRS 2021).

Reproduced (structure of the authors' release, ``MPCMResNetFPN`` with ``pyramid_mode="Dec"``,
multi-scale local contrast and bottom-up local attention fusion):

* stem: input BN without affine parameters, 3×3 conv to ``2·channels[0]`` (16), BN, ReLU —
  full resolution;
* ResNet stages of ``layers=(4, 4, 4)`` basic blocks at widths 16 (H), 32 (H/2), 64 (H/4);
* multi-scale patch contrast (MPCM) on each stage output: the feature-map cyclic shift of the
  paper turns the classical local contrast measure into a parameter-free layer,
  ``PCM_d = min over 4 directions of (B_d − X)(B_{d+4} − X)`` with ``B_d`` the map cyclically
  shifted by ``s`` pixels in direction d, and ``MPCM = max(PCM_13, PCM_17)``;
* top-down pyramid: 1×1 conv-BN-ReLU of the deep contrast maps to 16 channels, bilinear
  up-sampling, and the bottom-up local attentional modulation (BLAM, the release's
  ``BottomUpLocal_FPNFuse``): one BN per input (the deep and the shallow map have their own
  statistics), a point-wise attention (1×1 conv to C, BN, ReLU, 1×1 conv, BN, sigmoid) computed
  from the *shallow* map weights the deep one, plus the shallow map as residual;
* FCN head (3×3 conv to 4, BN, ReLU, dropout, 1×1 conv) and bilinear up-sampling to the input.

Deviations: returns logits; the cyclic shift (:func:`cyclic_shift`, ``torch.roll`` as index
gathers) equals the release's slice-and-concatenate for shifts smaller than the map and stays
defined (modular) for larger shifts (deep maps of small inputs); up-sampling targets exact sizes.

Configurations and counts (``irstd.core.profiling``, 1×1×256×256):

* ``alcnet`` (``stem="full"``, the release): 0.372 M params, 3.59 GMACs. The seed's Table 1
  lists 0.37 M / 4.34 G for ALCNet: the parameter count identifies this network, but its MACs
  are 1.21× ours and no counting convention we know explains the gap (there are no transposed
  convolutions here; BatchNorm arithmetic adds < 0.1 G); see ``docs/baselines.md``.
* The widely quoted "standard" 0.427 M / 0.38 G (BasicIRSTD's table) belongs to a different
  network: BasicIRSTD's ``ALCNet`` is ACM's ASKC-ResNet-FPN (AsymBi fusion, transposed convs,
  deep stride-4 stem, no local contrast layer) with two unused stages excluded by thop. This file
  does not reproduce it. ``ALCNet(stem="deep")`` puts ALCNet on the ACM-family stride-4 stem
  (0.374 M, 0.25 GMACs), the cost regime of that table, for users who want a CPU-cheap ALCNet.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from ._registry import register_model
from .base import IRSTDModel
from .layers.attention import PointwiseAttention
from .layers.conv import ConvBNAct, upsample_like
from .layers.resunet import DeepStem, FCNHead, res_stage

__all__ = ["cyclic_shift", "patch_contrast", "multiscale_patch_contrast", "BLAM", "ALCNet"]


def cyclic_shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``torch.roll(x, (dy, dx), dims=(2, 3))`` as two index gathers, for any shift and map size.

    The indices ``(i - d) mod n`` are computed from the map's own size, so an exported ONNX graph
    stays right at every input size; ``torch.roll``'s export assumes ``|shift| < size`` and gives
    wrong values on maps smaller than the shift (a 16×16 map with shift 17).
    """
    h, w = x.shape[-2:]
    rows = torch.remainder(torch.arange(h, device=x.device) - dy, h)  # (H,) source row of each output row
    cols = torch.remainder(torch.arange(w, device=x.device) - dx, w)  # (W,)
    return x.index_select(2, rows).index_select(3, cols)


def patch_contrast(x: torch.Tensor, shift: int) -> torch.Tensor:
    """Parameter-free local contrast at distance ``shift``: (B, C, H, W) → (B, C, H, W).

    For the 8 neighbours at ±shift (rows, columns, diagonals) taken by cyclic shifts, multiply the
    differences of opposite neighbours to the centre and keep the minimum over the 4 directions:
    large only where the centre stands out from *both* sides in *every* direction.
    """
    # (dy, dx) of neighbour B_d; B_{d+4} is the opposite one
    directions = ((1, 1), (1, 0), (1, -1), (0, -1))
    out = None
    for dy, dx in directions:
        a = cyclic_shift(x, -dy * shift, -dx * shift) - x
        b = cyclic_shift(x, dy * shift, dx * shift) - x
        s = a * b
        out = s if out is None else torch.minimum(out, s)
    return out


def multiscale_patch_contrast(x: torch.Tensor, shifts: Sequence[int] = (13, 17)) -> torch.Tensor:
    """MPCM: element-wise maximum of :func:`patch_contrast` over ``shifts``."""
    out = patch_contrast(x, shifts[0])
    for s in shifts[1:]:
        out = torch.maximum(out, patch_contrast(x, s))
    return out


class BLAM(nn.Module):
    """Bottom-up local attentional modulation: ``bu(BN₂(shallow)) · BN₁(deep) + BN₂(shallow)``.

    As the release's ``BottomUpLocal_FPNFuse``: each input has its own BatchNorm and the attention's
    inner width is C. The two inputs' variances differ by orders of magnitude (an up-sampled
    projected contrast map against a raw one), so one shared set of running statistics would
    mis-normalise both in eval mode.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn_deep = nn.BatchNorm2d(channels)  # the release's bn1 (its input x)
        self.bn_shallow = nn.BatchNorm2d(channels)  # bn2 (its input residual)
        self.bottomup = PointwiseAttention(channels, channels)

    def forward(self, deep: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        deep, shallow = self.bn_deep(deep), self.bn_shallow(shallow)  # (B, C, H, W) each
        return self.bottomup(shallow) * deep + shallow


@register_model("alcnet", paper="Dai et al., Attentional Local Contrast Networks, TGRS 2021")
class ALCNet(IRSTDModel):
    """ResNet backbone + multi-scale local contrast + bottom-up attentional pyramid fusion.

    Defaults are the release: full-resolution stem, 4 blocks per stage, widths 16-32-64, MPCM shifts 13/17.
    """

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 1,
        layers: Sequence[int] = (4, 4, 4),
        channels: Sequence[int] = (8, 16, 32, 64),
        shifts: Sequence[int] = (13, 17),
        stem: str = "full",
    ) -> None:
        super().__init__(in_chans, num_classes)
        layers, channels = tuple(int(n) for n in layers), tuple(int(c) for c in channels)
        if len(layers) != 3 or len(channels) != 4:
            raise ValueError(f"ALCNet needs 3 stage depths and 4 widths, got layers={layers}, channels={channels}")
        if not shifts:
            raise ValueError("ALCNet needs at least one contrast shift")
        c0, c1, c2, c3 = channels
        self.shifts = tuple(int(s) for s in shifts)
        if stem == "full":
            # BN without affine parameters normalises the raw frame; one conv keeps full resolution
            self.stem = nn.Sequential(nn.BatchNorm2d(in_chans, affine=False), ConvBNAct(in_chans, 2 * c0))
            self.stride = 4
        elif stem == "deep":
            self.stem = DeepStem(in_chans, c0)  # H/4
            self.stride = 16
        else:
            raise ValueError(f"stem must be 'full' or 'deep', got {stem!r}")
        self.layer1 = res_stage(2 * c0, c1, layers[0])
        self.layer2 = res_stage(c1, c2, layers[1], stride=2)
        self.layer3 = res_stage(c2, c3, layers[2], stride=2)
        self.dec_c3 = ConvBNAct(c3, c1, 1)
        self.dec_c2 = ConvBNAct(c2, c1, 1)
        self.fuse23 = BLAM(c1)
        self.fuse12 = BLAM(c1)
        self.head = FCNHead(c1, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        c1 = self.layer1(self.stem(x))  # (B, 16, H', W'), H' = H (full stem) or H/4 (deep stem)
        c2 = self.layer2(c1)  # (B, 32, H'/2, W'/2)
        c3 = self.layer3(c2)  # (B, 64, H'/4, W'/4)
        p3 = self.dec_c3(multiscale_patch_contrast(c3, self.shifts))  # (B, 16, H'/4, W'/4)
        p2 = self.dec_c2(multiscale_patch_contrast(c2, self.shifts))  # (B, 16, H'/2, W'/2)
        p23 = self.fuse23(upsample_like(p3, p2), p2)
        p1 = multiscale_patch_contrast(c1, self.shifts)  # (B, 16, H', W')
        out = self.fuse12(upsample_like(p23, p1), p1)
        return upsample_like(self.head(out), x)
