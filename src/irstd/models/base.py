"""Common base for IRSTD networks.

Contract shared by every registered model:

* constructor accepts ``in_chans`` and ``num_classes`` (defaults 1 and 1);
* ``forward(x)`` takes ``x`` of shape (B, in_chans, H, W) with H and W multiples of
  ``model.stride`` and returns **logits** of shape (B, num_classes, H, W) in eval mode — never
  probabilities: the sigmoid lives in the loss and in the predictor;
* a model with extra training signals (deep supervision, an edge head) lists them in
  ``extra_outputs`` and, in *training mode only*, returns a dict ``{"logits": main, <name>: ...}``
  where each extra entry is a logit tensor or a list of logit tensors at the input's resolution.
  The loss combines them by name (``"aux"``: deep-supervision side outputs scored against the
  mask, ``"edge"``: edge logits scored against the mask's edge map), never by model name;
* a model whose authors train it with other loss settings than the project's declares them in
  ``release_loss`` (keyword arguments of :class:`irstd.losses.ModelLoss`, only the ones that
  differ); training uses them under ``loss_recipe="release"``, the default;
* a model whose main logits come straight out of one layer with a bias (a 1×1 head) names it in
  ``logit_layer``: :func:`fold_threshold` moves the decision threshold into that bias.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import math

import torch
import torch.nn as nn

__all__ = ["IRSTDModel", "fold_threshold", "logit_bias", "main_logits"]


class IRSTDModel(nn.Module):
    """Base class: holds the stride and the output contract; subclasses wire the parts."""

    #: H and W of the input must be multiples of this (callers pad with :func:`irstd.core.padding.pad_to_multiple`).
    stride: int = 16
    #: names of extra outputs returned in training mode, e.g. ("aux",) or ("edge",)
    extra_outputs: tuple[str, ...] = ()
    #: the authors' training loss, as :class:`irstd.losses.ModelLoss` arguments (empty: the project's)
    release_loss: ClassVar[Mapping[str, Any]] = {}
    #: attribute name of the layer whose output is the main logits, if one is (see :func:`fold_threshold`)
    logit_layer: ClassVar[str | None] = None

    def __init__(self, in_chans: int = 1, num_classes: int = 1) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.num_classes = num_classes

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear error for a wrong channel count or a size that is not a stride multiple."""
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (B, {self.in_chans}, H, W), got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        if h % self.stride or w % self.stride:
            raise ValueError(
                f"{type(self).__name__} needs H and W to be multiples of {self.stride}, got {h}x{w}; "
                "pad with irstd.core.padding.pad_to_multiple and crop back"
            )


def main_logits(output: torch.Tensor | dict[str, Any]) -> torch.Tensor:
    """The main logit map of a model's output, whether a tensor or a training-mode dict."""
    return output["logits"] if isinstance(output, dict) else output


def logit_bias(model: nn.Module) -> torch.Tensor:
    """The bias of ``model``'s ``logit_layer``: adding to it moves every main logit; ``ValueError`` if none."""
    name = getattr(model, "logit_layer", None)
    bias = getattr(getattr(model, name, None), "bias", None) if name else None
    if not isinstance(bias, torch.Tensor):
        raise ValueError(f"{type(model).__name__} names no logit layer with a bias (logit_layer), "
                         "so its threshold cannot be folded")
    return bias


def fold_threshold(model: nn.Module, threshold: float) -> float:
    """Make ``sigmoid(logits) > 0.5`` of ``model`` decide as ``sigmoid(logits) > threshold`` did; in place.

    Subtracts ``c = logit(threshold)`` from :func:`logit_bias`, so every main logit drops by ``c`` and
    every consumer of the default threshold (predictor, ``irstd evaluate``, export) gets the chosen
    operating point with no setting to carry. Returns ``c``. A model that declares no such layer raises
    ``ValueError``.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    bias = logit_bias(model)
    offset = math.log(threshold / (1.0 - threshold))
    with torch.no_grad():
        bias.sub_(offset)
    return offset
