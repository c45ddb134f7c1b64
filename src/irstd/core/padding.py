"""Pad a batch to a model's stride and crop predictions back to the original size.

Metrics are computed at the image's original resolution, so every caller that feeds a network
pads with :func:`pad_to_multiple` and crops the logits with :func:`crop_to`.

The pad is :data:`STRIDE_PAD_MODE`, one setting for every caller that feeds a network (predictor,
evaluation and validation loaders, hard-negative mining, int8 calibration). It stays ``constant`` (zero
= the training mean). That pad is the cause of the false targets along the bottom and right borders of
frames whose size is not a multiple of the stride (a flat band and a step edge the networks never see in
training); ``replicate`` and running unpadded crops remove them, but the shipped models use whole-frame
context and were selected on zero-padded validation frames, and either change costs them 0.7-2.5 test
IoU points and 14-33 % more false-alarm pixels (``benchmarks/clean_detections.py``, docs/clutter.md,
"Border artefacts"). A model re-trained and validated with another pad can switch it here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["STRIDE_PAD_MODE", "pad_to", "pad_to_multiple", "crop_to", "padded_size"]

#: how a network input is padded to the stride (every caller: predictor, evaluation, mining, calibration)
STRIDE_PAD_MODE = "constant"


def padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """Smallest (H, W) ≥ the given size that are multiples of ``multiple``."""
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def pad_to_multiple(
    x: torch.Tensor, multiple: int, mode: str = STRIDE_PAD_MODE, value: float = 0.0
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (…, H, W) at the bottom and right up to multiples of ``multiple``.

    Returns the padded tensor and the original (H, W) for :func:`crop_to`. ``mode``: see :func:`pad_to`.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    h, w = x.shape[-2:]
    return pad_to(x, padded_size(h, w, multiple), mode, value), (h, w)


def pad_to(x: torch.Tensor, size: tuple[int, int], mode: str = STRIDE_PAD_MODE, value: float = 0.0) -> torch.Tensor:
    """Pad (…, H, W) at the bottom and right to ``size`` = (H', W') ≥ (H, W).

    ``mode`` is any mode of ``torch.nn.functional.pad`` (default :data:`STRIDE_PAD_MODE`), for any number
    of leading dims; ``"reflect"`` falls back to ``"replicate"`` when the pad is larger than the image
    (reflection is undefined there); ``value`` fills a ``"constant"`` pad.
    """
    h, w = x.shape[-2:]
    ph, pw = size
    pad_h, pad_w = ph - h, pw - w
    if pad_h < 0 or pad_w < 0:
        raise ValueError(f"cannot pad ({h}, {w}) to the smaller size {tuple(size)}")
    if pad_h == 0 and pad_w == 0:
        return x
    if mode == "reflect" and (pad_h >= h or pad_w >= w):
        mode = "replicate"
    pads = (0, pad_w, 0, pad_h)  # (left, right, top, bottom)
    if mode == "constant":
        return F.pad(x, pads, mode="constant", value=value)
    # reflect/replicate pad the last two dims of 3-D input only: (…, H, W) → (N, H, W) and back
    lead = x.shape[:-2]
    return F.pad(x.reshape(-1, h, w), pads, mode=mode).reshape(*lead, ph, pw)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop (…, H', W') back to the top-left ``size`` = (H, W) (inverse of :func:`pad_to_multiple`)."""
    h, w = size
    return x[..., :h, :w]
