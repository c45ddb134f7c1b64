"""IAANet (Wang, Du, Liu & Cao, "Interior Attention-Aware Network for Infrared Small Target
Detection", IEEE TGRS 2022, doi:10.1109/TGRS.2022.3163410).

Reproduced, as the paper describes its two stages:

1. **Coarse region proposal.** A ResNet-18 trunk cut after ``layer3`` (stride 16, 256 channels; the
   stem takes one channel) with a 1×1 objectness head scores every 16×16 cell of the frame.
2. **Semantic features.** A full-resolution conv stack (3×3 conv-BN-ReLU widths 64, 128, 256, 512,
   512, 512, then a 1×1 conv to ``d_model``) gives every pixel a ``d_model``-dim "word".
3. **Transformer over the target regions.** The words of the pixels inside the proposed regions,
   plus a 2-D sine position embedding added to queries and keys (DETR style), form one sequence per
   image; a post-norm transformer encoder (``num_layers`` layers, ``heads`` heads, feed-forward
   ``ffn_dim``, dropout 0.1) lets every region pixel attend to every other region pixel of its
   image, and a 3-layer MLP turns each output token into a target logit.

Widths: ``d_model = 512`` (the authors' default hidden size), 4 heads, feed-forward 1024, and **2**
encoder layers: with these the parameter count meets the seed's Table 1 (14.05 M); the authors'
4-layer default would give 18.2 M.

What cannot be faithful, in short: the release starts its trunk from an **ImageNet-pretrained
ResNet-18**, predicts **only inside regressed boxes** kept after NMS, and trains with **random
negative boxes**; here the trunk trains from scratch (the project ships no pretrained weights and
its inputs have one channel), proposals are fixed windows around scored cells, and a whole-frame
coarse map covers everything outside them. Results of ``iaanet`` are those of an IAANet-style
network under this project's protocol, not a reproduction of the paper's numbers.

Deviations (each needed for the project's model contract or for a well-defined output):

* **No pretraining.** The trunk is randomly initialised and trains with the rest of the network;
  the release loads ImageNet ResNet-18 weights.

* **Whole-frame output (semantic-context fusion).** The paper predicts only inside the proposed
  boxes (everything else is background). Here a *coarse map* gives a logit for every pixel: a 1×1
  head on the semantic features plus the objectness logit of the pixel's cell (bilinearly
  up-sampled), i.e. pixel semantics fused with the region-level context. The output is the
  transformer's logit inside the proposed regions and the coarse logit elsewhere. With zero
  proposals the output is the coarse map, so metrics apply unchanged to every frame.
* **Proposals are cells, not regressed boxes.** The paper's detector regresses (x, y, w, h) per cell
  with a YOLO loss on boxes derived from the masks; our loss only sees masks, so the head predicts
  objectness only and a proposal is a fixed ``region_size`` window (default 24 px: the 16-px cell
  plus a 4-px margin) centred on a selected cell. Evaluation selects the cells whose objectness
  probability exceeds ``conf_thres`` (0.2), at most ``max_regions`` (5), and falls back to the
  ``fallback_topk`` (5) best cells when none does — the paper's fall-back; ``fallback_topk = 0``
  gives frames with no proposal at all. Training always takes the ``max_regions`` best cells
  (deterministic hard negatives instead of the paper's random negative boxes).
* **Training signals.** In training mode the output dict carries ``"aux"``: the coarse map and the
  objectness map (bilinearly up-sampled from stride 16), both scored against the mask by the loss,
  which trains the proposal head and the coarse head over the whole frame.
* The objectness head starts at probability 0.01 (bias −4.6, weights std 0.01), the usual detection
  prior, so an untrained model proposes by the fall-back rule only.
* No "fast" inference mode (the paper's option to compute semantic features on crops only): the
  coarse map needs them on the whole frame.

Measured at 1×1×256×256 with :mod:`irstd.core.profiling`: 14.04 M parameters, 439.8 GMACs (seed's Table 1:
14.05 M, 436.79 G); 428 G of it is the full-resolution semantic stack and 1.7 G the proposal trunk, the
rest depends on how many pixels the proposals cover (at most ``max_regions · region_size²`` = 2 880
tokens, which would give ≈ 460 G).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._registry import register_model
from .base import IRSTDModel
from .layers.conv import ConvBNAct, ResidualBlock, upsample_like

__all__ = ["IAANet", "RegionProposal", "SemanticStack", "RegionTransformerLayer", "sine_position_embedding"]


class RegionProposal(nn.Module):
    """ResNet-18 trunk to ``layer3`` (stride 16) with a 1×1 objectness head: (B, C, H, W) → (B, 1, H/16, W/16)."""

    def __init__(self, in_chans: int = 1, prior: float = 0.01) -> None:
        super().__init__()
        self.stem = nn.Sequential(ConvBNAct(in_chans, 64, 7, stride=2), nn.MaxPool2d(3, stride=2, padding=1))
        self.layers = nn.Sequential(
            ResidualBlock(64, 64), ResidualBlock(64, 64),  # layer1, H/4
            ResidualBlock(64, 128, stride=2), ResidualBlock(128, 128),  # layer2, H/8
            ResidualBlock(128, 256, stride=2), ResidualBlock(256, 256),  # layer3, H/16
        )
        self.objectness = nn.Conv2d(256, 1, 1)
        nn.init.normal_(self.objectness.weight, std=0.01)
        nn.init.constant_(self.objectness.bias, -math.log((1 - prior) / prior))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.objectness(self.layers(self.stem(x)))


class SemanticStack(nn.Sequential):
    """Full-resolution semantic feature extractor: (B, C, H, W) → (B, d_model, H, W)."""

    def __init__(self, in_chans: int, d_model: int, widths: tuple[int, ...] = (64, 128, 256, 512, 512, 512)) -> None:
        layers: list[nn.Module] = []
        c = in_chans
        for w in widths:
            layers.append(ConvBNAct(c, w))
            c = w
        layers.append(nn.Conv2d(c, d_model, 1, bias=False))
        super().__init__(*layers)


def sine_position_embedding(rows: torch.Tensor, cols: torch.Tensor, height: int, width: int, dim: int) -> torch.Tensor:
    """2-D sine embedding of pixel coordinates, (N,) rows and cols → (N, dim), DETR's normalised form.

    Each axis gets ``dim / 2`` features: sin/cos pairs of ``2π·(coord + 1)/size`` divided by
    ``10000^(2j/(dim/2))``; the first half encodes the row, the second the column.
    """
    half = dim // 2
    freqs = 10000.0 ** (2 * torch.arange(half // 2, device=rows.device, dtype=torch.float32) / half)  # (half/2,)

    def axis(coord: torch.Tensor, size: int) -> torch.Tensor:
        ang = (coord.float() + 1) / size * 2 * math.pi  # (N,)
        ang = ang[:, None] / freqs  # (N, half/2)
        return torch.stack([ang.sin(), ang.cos()], dim=-1).flatten(1)  # (N, half)

    return torch.cat([axis(rows, height), axis(cols, width)], dim=1)


class RegionTransformerLayer(nn.Module):
    """Post-norm transformer encoder layer; the position embedding is added to queries and keys only."""

    def __init__(self, d_model: int, heads: int, ffn_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
        self.heads, self.dropout = heads, dropout
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(d_model, d_model) for _ in range(3))
        self.out_proj = nn.Linear(d_model, d_model)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, ffn_dim), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(ffn_dim, d_model)
        )
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, d = t.shape
        return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)  # (B, heads, N, d_head)

    def forward(self, src: torch.Tensor, pos: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
        """src, pos: (B, N, D); key_valid: (B, N) bool, False on padding (every row has a True)."""
        qk = src + pos
        q, k, v = self._split(self.q_proj(qk)), self._split(self.k_proj(qk)), self._split(self.v_proj(src))
        mask = key_valid[:, None, None, :]  # (B, 1, 1, N): every query sees its image's tokens only
        drop = self.dropout if self.training else 0.0
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)  # (B, heads, N, d_head)
        att = att.transpose(1, 2).flatten(2)  # (B, N, D)
        src = self.norm1(src + self.drop1(self.out_proj(att)))
        return self.norm2(src + self.drop2(self.ffn(src)))


@register_model(
    "iaanet",
    paper="Wang et al., Interior Attention-Aware Network for Infrared Small Target Detection, TGRS 2022",
)
class IAANet(IRSTDModel):
    """Coarse region proposal + transformer over the proposed regions, fused with a coarse whole-frame map."""

    stride = 16
    extra_outputs = ("aux",)

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 1,
        d_model: int = 512,
        heads: int = 4,
        num_layers: int = 2,
        ffn_dim: int = 1024,
        region_size: int = 24,
        max_regions: int = 5,
        conf_thres: float = 0.2,
        fallback_topk: int = 5,
    ) -> None:
        super().__init__(in_chans, num_classes)
        if num_classes != 1:
            raise ValueError("IAANet predicts one target class (num_classes=1)")
        if region_size < self.stride or (region_size - self.stride) % 2:
            raise ValueError(
                f"region_size must be >= {self.stride} and differ from it by an even number, got {region_size}"
            )
        if max_regions < 1 or fallback_topk < 0:
            raise ValueError(f"need max_regions >= 1 and fallback_topk >= 0, got {max_regions}, {fallback_topk}")
        self.d_model, self.region_size = d_model, region_size
        self.max_regions, self.conf_thres, self.fallback_topk = max_regions, conf_thres, fallback_topk
        self.proposal = RegionProposal(in_chans)
        self.semantic = SemanticStack(in_chans, d_model)
        self.coarse_head = nn.Conv2d(d_model, 1, 1)
        self.layers = nn.ModuleList(RegionTransformerLayer(d_model, heads, ffn_dim) for _ in range(num_layers))
        self.mlp = nn.Sequential(  # 3-layer MLP: token → target logit
            nn.Linear(d_model, d_model),
            nn.ReLU(inplace=True),
            nn.Linear(d_model, d_model),
            nn.ReLU(inplace=True),
            nn.Linear(d_model, 1),
        )

    # ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def select_regions(self, objectness: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Proposed-region pixel mask (B, H, W) bool from stride-16 objectness logits (B, 1, h, w)."""
        b = objectness.shape[0]
        scores = objectness.flatten(1)  # (B, cells)
        n_cells = scores.shape[1]
        order = scores.argsort(dim=1, descending=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(n_cells, device=scores.device).expand(b, -1))  # rank of every cell
        if self.training:
            chosen = rank < self.max_regions
        else:
            chosen = (rank < self.max_regions) & (scores.sigmoid() > self.conf_thres)
            none = ~chosen.any(dim=1, keepdim=True)  # (B, 1): images with no confident cell
            chosen = chosen | (none & (rank < self.fallback_topk))
        cells = chosen.view_as(objectness).float()  # (B, 1, h, w)
        pixels = F.interpolate(cells, size=size, mode="nearest")  # every selected cell, at full resolution
        margin = (self.region_size - self.stride) // 2
        if margin:
            pixels = F.max_pool2d(pixels, 2 * margin + 1, stride=1, padding=margin)  # cell ⊕ margin window
        return pixels[:, 0] > 0

    def _refine(self, feat: torch.Tensor, coarse: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """Transformer logits at the region pixels, coarse logits elsewhere: (B, 1, H, W)."""
        b, d, h, w = feat.shape
        flat_feat, flat_coarse = feat.flatten(2), coarse.flatten(1)  # (B, D, HW), (B, HW)
        idx = [regions[i].flatten().nonzero().squeeze(1) for i in range(b)]  # region pixel indices per image
        active = [i for i in range(b) if idx[i].numel()]
        if not active:
            return coarse
        n_max = max(idx[i].numel() for i in active)
        tokens = feat.new_zeros(len(active), n_max, d)
        pos = feat.new_zeros(len(active), n_max, d)
        valid = torch.zeros(len(active), n_max, dtype=torch.bool, device=feat.device)
        for j, i in enumerate(active):
            n = idx[i].numel()
            tokens[j, :n] = flat_feat[i][:, idx[i]].t()
            pos[j, :n] = sine_position_embedding(idx[i] // w, idx[i] % w, h, w, d)
            valid[j, :n] = True
        for layer in self.layers:
            tokens = layer(tokens, pos, valid)
        token_logits = self.mlp(tokens)[..., 0]  # (A, N)
        out = list(flat_coarse.unbind(0))
        for j, i in enumerate(active):
            out[i] = out[i].index_put((idx[i],), token_logits[j, : idx[i].numel()])
        return torch.stack(out).view(b, 1, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor | list[torch.Tensor]]:
        self.check_input(x)
        parts = self.forward_parts(x)
        if not self.training:
            return parts["logits"]
        aux = [parts["coarse"], upsample_like(parts["objectness"], parts["logits"])]
        return {"logits": parts["logits"], "aux": aux}

    def forward_parts(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """All intermediate maps: ``logits`` (B,1,H,W), ``coarse`` (B,1,H,W), ``objectness`` (B,1,H/16,W/16),
        ``regions`` (B,H,W) bool."""
        objectness = self.proposal(x)  # (B, 1, H/16, W/16)
        feat = self.semantic(x)  # (B, D, H, W)
        # coarse whole-frame map: pixel semantics plus the region-level objectness as a prior
        coarse = self.coarse_head(feat) + upsample_like(objectness, x)
        regions = self.select_regions(objectness.detach(), tuple(x.shape[-2:]))
        logits = self._refine(feat, coarse, regions)
        return {"logits": logits, "coarse": coarse, "objectness": objectness, "regions": regions}
