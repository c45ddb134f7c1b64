"""Pad a batch to a model's stride and crop predictions back to the original size.

Metrics are computed at the image's original resolution, so every caller that feeds a network
pads with :func:`pad_to_multiple` and crops the logits with :func:`crop_to`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["pad_to_multiple", "crop_to", "padded_size"]


def padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """Smallest (H, W) ≥ the given size that are multiples of ``multiple``."""
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def pad_to_multiple(
    x: torch.Tensor, multiple: int, mode: str = "constant", value: float = 0.0
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (…, H, W) at the bottom and right up to multiples of ``multiple``.

    Returns the padded tensor and the original (H, W) for :func:`crop_to`. ``mode`` is any mode of
    ``torch.nn.functional.pad``; ``"reflect"`` falls back to ``"replicate"`` when the pad is larger
    than the image (reflection is undefined there).
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    h, w = x.shape[-2:]
    ph, pw = padded_size(h, w, multiple)
    pad_h, pad_w = ph - h, pw - w
    if pad_h == 0 and pad_w == 0:
        return x, (h, w)
    if mode == "reflect" and (pad_h >= h or pad_w >= w):
        mode = "replicate"
    pads = (0, pad_w, 0, pad_h)  # (left, right, top, bottom)
    if mode == "constant":
        return F.pad(x, pads, mode="constant", value=value), (h, w)
    # reflect/replicate need a batch-like leading dim: F.pad handles 3-D and 4-D inputs
    return F.pad(x, pads, mode=mode), (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop (…, H', W') back to the top-left ``size`` = (H, W) (inverse of :func:`pad_to_multiple`)."""
    h, w = size
    return x[..., :h, :w]
