"""Parameter and MAC counts: the one place networks are counted.

MACs are counted with ``torch.utils.flop_counter`` (convolutions, matrix products) and reported as
FLOPs / 2, the convention IRSTD papers print as "GFLOPs" (thop's MACs). Counting on the meta device
traces shapes only (no arithmetic: a 400-GMAC model costs milliseconds); networks with data-dependent
steps (``.item()``, proposals) cannot be traced there and are counted on the CPU instead.
"""

from __future__ import annotations

import copy
import logging
from typing import Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from .padding import padded_size

__all__ = ["count_params", "count_macs", "count_macs_meta", "count_macs_at", "REFERENCE_PIXELS"]

log = logging.getLogger(__name__)

#: the size (256×256) at which a model that cannot be traced on the meta device is counted for real
REFERENCE_PIXELS = 256 * 256

#: what a meta-device trace raises when a model needs real values
_TRACE_ERRORS = (NotImplementedError, RuntimeError, TypeError, ValueError)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _input_like(model: nn.Module, input_size: Sequence[int], device: torch.device | str | None = None) -> torch.Tensor:
    """A zero input of ``input_size`` on the model's device (or ``device``), in its parameters' float dtype."""
    param = next(model.parameters(), None)
    dev = device if device is not None else (param.device if param is not None else torch.device("cpu"))
    dtype = param.dtype if param is not None and param.dtype.is_floating_point else torch.float32
    return torch.zeros(tuple(input_size), device=dev, dtype=dtype)


@torch.no_grad()
def count_macs(model: nn.Module, input_size: Sequence[int] = (1, 1, 256, 256)) -> int:
    """Multiply-accumulates of one eval-mode forward pass on a zero input of ``input_size``
    (B, C, H, W), on the model's own device (pass a meta-device model for a shapes-only count)."""
    was_training = model.training
    model.eval()
    try:
        x = _input_like(model, input_size)
        with FlopCounterMode(display=False) as counter:
            model(x)
        return counter.get_total_flops() // 2
    finally:
        model.train(was_training)


def count_macs_meta(model: nn.Module, input_size: Sequence[int]) -> int | None:
    """:func:`count_macs` on a meta-device copy of ``model`` (the model itself is untouched);
    None when the model cannot be traced on the meta device."""
    try:
        return count_macs(copy.deepcopy(model).to("meta"), input_size)
    except _TRACE_ERRORS as exc:
        log.debug("%s: meta-device MAC count failed (%s)", type(model).__name__, exc)
        return None


def count_macs_at(model: nn.Module, height: int, width: int, *, try_meta: bool = True) -> tuple[int, bool]:
    """(MACs of one H×W image, exact?) of ``model``, at any size.

    Traced on the meta device when the model allows it; otherwise counted for real on a CPU copy, at
    H×W itself when that is no larger than 256×256, else at 256×256 (rounded up to the stride) and
    scaled by the pixel count (``exact=False``). ``try_meta=False`` skips the meta-device attempt
    (the caller already knows the model cannot be traced there).
    """
    in_chans = int(getattr(model, "in_chans", 1))
    macs = count_macs_meta(model, (1, in_chans, height, width)) if try_meta else None
    if macs is not None:
        return macs, True
    real = copy.deepcopy(model).cpu()
    if height * width <= REFERENCE_PIXELS:
        return count_macs(real, (1, in_chans, height, width)), True
    h0, w0 = padded_size(256, 256, int(getattr(real, "stride", 1)))
    return round(count_macs(real, (1, in_chans, h0, w0)) * height * width / (h0 * w0)), False
