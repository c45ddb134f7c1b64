"""Function-preserving widening (Net2Net's "wider" step): a trained narrow network initialises a wide
network of the same family that computes the same logits, as a warm start for fine-tuning.

The rule, per tensor dimension whose size grows from ``n`` to ``w`` (``w`` a multiple of ``n``):

* every channel dimension is *tiled*: wide channel ``c`` is narrow channel ``c mod n``, so each narrow
  feature map appears ``w / n`` times in the wide network;
* on the *input* dimension of a convolution or linear layer (dim 1 of its weight), the copies of one
  narrow input channel share its weight: each gets ``1 / r`` of it (``r = w / n``), so the sum over
  the copies, which all carry the same feature map, is the narrow layer's sum;
* a concatenation's channels are tiled per part (the model lists them: :meth:`concat_inputs`), so the
  wide ``[A×r | B×r]`` maps to the narrow ``[A | B]``;
* BatchNorm's weight, bias and running statistics, and every bias, are tiled like their channels
  (its ``num_batches_tracked`` is copied).

Channels grouped into attention heads stay exact when the head size is the same in both networks
(SGEM-UNet's 16 channels a head at every width): wide head ``h`` then holds the channels of narrow head
``h mod heads_narrow``, and per-head softmaxes and norms see the same numbers. :func:`widen_state_dict`
checks the result against the narrow network on a random input and refuses a mapping that is not exact.

Tiled copies get identical gradients and would stay copies for ever. ``split_noise`` breaks that tie
without changing the function: the copies' input weights become ``(1 + ε_k) / r`` with the ``ε_k`` of
one narrow weight summing to zero over its copies (normal, standard deviation ``split_noise``), so their
sum is still the narrow weight, while the layers that feed them now receive different gradients.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import torch
import torch.nn as nn

__all__ = ["WidenError", "is_tiling", "widen_state_dict", "widen_into", "concat_inputs"]

log = logging.getLogger(__name__)


class WidenError(ValueError):
    """The wide network's shapes are not a tiling of the narrow one's (or the widening is not exact)."""


def concat_inputs(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Weight names whose input channels are a concatenation, with the parts' channel counts, as the
    model declares them (``concat_inputs()``); none when it declares nothing."""
    declare = getattr(model, "concat_inputs", None)
    return dict(declare()) if callable(declare) else {}


def _mismatches(narrow: Mapping[str, torch.Tensor], wide: Mapping[str, torch.Tensor]) -> list[str]:
    """Names in one state dict only, then tensors whose wide shape is no multiple of the narrow one."""
    return sorted(set(narrow) ^ set(wide)) or [
        k for k in narrow
        if narrow[k].dim() != wide[k].dim() or any(w % n for n, w in zip(narrow[k].shape, wide[k].shape))
    ]


def is_tiling(narrow: Mapping[str, torch.Tensor], wide: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``wide``'s tensors are those of ``narrow`` with every dimension a multiple (same names)."""
    return not _mismatches(narrow, wide)


def _index(n: int, w: int, parts_n: Sequence[int] | None) -> torch.Tensor:
    """Narrow index of every wide position of one dimension: ``c mod n``, per concatenated part."""
    if not parts_n:
        return torch.arange(w) % n
    r = w // n
    pieces, start = [], 0
    for p in parts_n:  # wide part = narrow part × r, tiled on its own
        pieces.append(start + torch.arange(p * r) % p)
        start += p
    return torch.cat(pieces)


def _split(shape: torch.Size, idx: torch.Tensor, r: int, noise: float, gen: torch.Generator) -> torch.Tensor:
    """Share of each wide weight in its narrow one along dim 1: ``(1 + ε) / r``, ε summing to 0 over the
    copies of each narrow weight; (w_out, w_in, ...) like the weight."""
    if noise <= 0:
        return torch.full(shape, 1.0 / r)
    eps = torch.randn(shape, generator=gen) * noise
    n_in = int(idx.max()) + 1
    # mean of ε over the copies of each narrow input channel, subtracted so that the shares sum to 1
    sums = torch.zeros(shape[0], n_in, *shape[2:]).index_add_(1, idx, eps)
    eps = eps - sums.index_select(1, idx) / r
    return (1.0 + eps) / r


def widen_state_dict(
    narrow: nn.Module, wide: nn.Module, *, split_noise: float = 0.0, seed: int = 0, check: bool = True
) -> dict[str, torch.Tensor]:
    """A state dict for ``wide`` that makes it compute ``narrow``'s logits (module docstring).

    Both networks must have the same parameter names; each wide dimension a multiple of the narrow one.
    ``split_noise`` > 0 spreads the copies' input weights unevenly (same function, copies free to
    diverge in training). ``check``: run both on a random input and raise :class:`WidenError` when the
    logits differ by more than 1e-4 of their scale (a layer mapped wrong).
    """
    sd_n, sd_w = narrow.state_dict(), wide.state_dict()
    bad = _mismatches(sd_n, sd_w)
    if bad:
        raise WidenError(f"{type(wide).__name__} is not a tiling of {type(narrow).__name__} (first mismatch: {bad[0]})")
    parts = concat_inputs(narrow)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, t_n in sd_n.items():
        t_w = sd_w[key]
        if t_n.shape == t_w.shape:
            out[key] = t_n.clone().to(t_w.dtype)
            continue
        t = t_n.to(torch.float64)
        for dim, (n, w) in enumerate(zip(t_n.shape, t_w.shape)):
            if n == w:
                continue
            idx = _index(n, w, parts.get(key) if dim == 1 else None)
            t = t.index_select(dim, idx)
            if dim == 1 and t.dim() >= 2:  # an input dimension: the copies share the narrow weight
                t = t * _split(t.shape, idx, w // n, split_noise, gen).to(t.dtype)
        out[key] = t.to(t_w.dtype)
    if check:
        _check_same(narrow, wide, out)
    return out


def widen_into(narrow: nn.Module, wide: nn.Module, *, split_noise: float = 0.0, seed: int = 0) -> None:
    """Load :func:`widen_state_dict` into ``wide`` (checked) and log what was widened."""
    wide.load_state_dict(widen_state_dict(narrow, wide, split_noise=split_noise, seed=seed))
    n_params = sum(p.numel() for p in narrow.parameters())
    w_params = sum(p.numel() for p in wide.parameters())
    log.debug("widened %s (%.2f M params) into %s (%.2f M params), same logits, split noise %g",
             type(narrow).__name__, n_params / 1e6, type(wide).__name__, w_params / 1e6, split_noise)


@torch.no_grad()
def _check_same(narrow: nn.Module, wide: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Compare the logits of ``narrow`` and ``wide`` (loaded with ``state``) in eval mode, in float64."""
    import copy

    probe = copy.deepcopy(wide).to(torch.float64)
    probe.load_state_dict(state)
    ref = copy.deepcopy(narrow).to(torch.float64)
    probe.eval()
    ref.eval()
    stride = int(getattr(narrow, "stride", 16))
    x = torch.randn(1, int(getattr(narrow, "in_chans", 1)), 2 * stride, 2 * stride,
                    generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a, b = ref(x), probe(x)
    a, b = (a[0], b[0]) if isinstance(a, (tuple, list)) else (a, b)
    err = (a - b).abs().max().item()
    if err > 1e-4 * max(1.0, a.abs().max().item()):
        raise WidenError(f"widening {type(narrow).__name__} is not exact here: logits differ by {err:.3g}")
