"""Input handling shared by the accumulators: batches, lists and single images -> (H, W) pairs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..core.errors import ConfigError, DataError

__all__ = ["ArrayLike", "check_inputs", "paired", "probabilities"]

ArrayLike = Any  # torch.Tensor | np.ndarray | list of them


def _to_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    return torch.as_tensor(np.asarray(x))


def _squeeze_image(t: torch.Tensor, what: str, index: int) -> torch.Tensor:
    while t.ndim > 2 and t.shape[0] == 1:  # (1, H, W) or (1, 1, H, W) -> (H, W)
        t = t[0]
    if t.ndim != 2:
        raise DataError(f"{what} #{index}: expected shape (H, W) or (1, H, W), got {tuple(t.shape)}")
    return t


def _split_images(x: ArrayLike, what: str) -> list[torch.Tensor]:
    """A batch (B,1,H,W) / (B,H,W), a single (H,W) image, or a list of images -> list of (H, W)."""
    if isinstance(x, (list, tuple)):
        return [_squeeze_image(_to_tensor(item), what, i) for i, item in enumerate(x)]
    t = _to_tensor(x)
    if t.ndim == 4:
        if t.shape[1] != 1:
            raise DataError(f"{what}: expected one channel, got shape {tuple(t.shape)}")
        t = t[:, 0]
    if t.ndim == 2:
        return [t]
    if t.ndim != 3:
        raise DataError(f"{what}: expected (B, 1, H, W), (B, H, W), (H, W) or a list of images, got {tuple(t.shape)}")
    return list(t.unbind(0))


def paired(preds: ArrayLike, masks: ArrayLike) -> list[tuple[torch.Tensor, np.ndarray]]:
    """(prediction (H, W) tensor, mask (H, W) bool array) per image; DataError on a mismatch."""
    p_list, m_list = _split_images(preds, "predictions"), _split_images(masks, "masks")
    if len(p_list) != len(m_list):
        raise DataError(f"got {len(p_list)} predictions but {len(m_list)} masks")
    out = []
    for i, (p, m) in enumerate(zip(p_list, m_list)):
        if p.shape != m.shape:
            raise DataError(f"image #{i}: prediction of shape {tuple(p.shape)} does not match mask {tuple(m.shape)}")
        out.append((p, (m != 0).cpu().numpy()))
    return out


def check_inputs(inputs: str) -> None:
    """ConfigError unless ``inputs`` is ``"logits"`` or ``"probs"``."""
    if inputs not in ("logits", "probs"):
        raise ConfigError(f"inputs must be 'logits' or 'probs', got {inputs!r}")


def probabilities(p: torch.Tensor, inputs: str) -> torch.Tensor:
    """Probabilities of a prediction given as logits (sigmoid) or as probabilities (as is)."""
    if not p.is_floating_point():
        p = p.float()
    return torch.sigmoid(p) if inputs == "logits" else p
