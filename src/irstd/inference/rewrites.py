"""Exact rewrites of a trained network for inference (used by the fast mode, ``docs/speed.md``).

Each function works in place on a module that is not trained any more (the fast mode passes a copy)
and keeps the network's function: the outputs are equal up to floating-point rounding.

* :func:`fuse_conv_bn`: fold an eval-mode ``BatchNorm2d`` into the ``Conv2d`` before it.
* :func:`fold_upsample_conv`: ``nearest ×2 up-sampling → 3×3 conv`` becomes one 2×2 convolution on
  the coarse grid producing the four output phases (2.25× fewer multiply-accumulates, and the
  up-sampled tensor is never written).
* :func:`cast_parameters`: store convolution and linear weights in the autocast dtype once, instead of
  autocast casting them on every call (autocast's cast gives the same values).
"""

from __future__ import annotations

import logging

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fuse_conv_bn", "fold_upsample_conv", "NearestUpConv", "cast_parameters"]

log = logging.getLogger(__name__)


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every eval-mode ``BatchNorm2d`` that directly follows a ``Conv2d`` in an ``nn.Sequential``.

    Works in place on ``model`` (pass a copy to keep the original): the convolution gets the folded
    weight and bias, the BatchNorm becomes ``nn.Identity``. Only ``nn.Sequential`` pairs are folded,
    because there the order of the children is the order of execution; only exact ``BatchNorm2d``
    (subclasses may change ``forward``) with running statistics qualify. Returns ``model``.
    """
    n = 0
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = module._modules[first], module._modules[second]
            if (
                type(conv) is nn.Conv2d
                and type(bn) is nn.BatchNorm2d
                and bn.running_mean is not None
                and bn.num_features == conv.out_channels
                and not bn.training
                and not conv.training
            ):
                module._modules[first] = fuse_conv_bn_eval(conv, bn)
                module._modules[second] = nn.Identity()
                n += 1
    log.debug("folded %d BatchNorm layers into convolutions", n)
    return model


# Nearest ×2 up-sampling repeats coarse row i at fine rows 2i and 2i+1. A 3×3 kernel (rows k = 0, 1, 2
# at offsets -1, 0, +1) centred on fine row 2i+a therefore reads coarse rows
#   a = 0: i-1 (kernel row 0) and i (rows 1 + 2);   a = 1: i (rows 0 + 1) and i+1 (row 2).
# _PHASE_TAPS[a, t, k] = 1 when kernel row k lands on the t-th coarse row of phase a; the same holds
# for columns. Zero padding agrees on both grids: a fine row outside the image is a coarse row outside.
_PHASE_TAPS = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])


class NearestUpConv(nn.Module):
    """``Conv2d(3×3, padding 1)(Upsample(×2, nearest)(x))``, computed without up-sampling.

    Each output phase (a, b) (fine pixel (2i+a, 2j+b)) is a 2×2 convolution of the coarse input. All
    four are one convolution with 4·C_out outputs and padding 1, whose output position (i+a, j+b)
    holds phase (a, b) of coarse pixel (i, j); the phases are then interleaved into the fine grid.
    Cost: 4 instead of 9 multiply-accumulates per input channel and output pixel.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not _is_plain_conv3x3(conv):
            raise ValueError(f"NearestUpConv needs a 3×3, stride 1, padding 1, ungrouped Conv2d, got {conv}")
        w = conv.weight.detach()  # (O, I, 3, 3)
        taps = _PHASE_TAPS.to(w)
        # (a, b, O, I, 2, 2): phase (a, b)'s 2×2 kernel, summing the 3×3 taps that land on the same coarse pixel
        w4 = torch.einsum("ayk,bxl,oikl->aboiyx", taps, taps, w)
        self.out_channels = conv.out_channels
        self.weight = nn.Parameter(w4.reshape(4 * conv.out_channels, conv.in_channels, 2, 2).contiguous(),
                                   requires_grad=False)
        bias = conv.bias.detach() if conv.bias is not None else None
        self.bias = None if bias is None else nn.Parameter(bias.repeat(4), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        o = self.out_channels
        y = F.conv2d(x, self.weight, self.bias, padding=1)  # (B, 4·O, H+1, W+1), channels (a, b, o)
        y = y.unflatten(1, (2, 2, o))  # (B, 2, 2, O, H+1, W+1)
        fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        out = torch.empty((b, o, 2 * h, 2 * w), dtype=y.dtype, device=y.device, memory_format=fmt)
        fine = out.unflatten(3, (w, 2)).unflatten(2, (h, 2))  # (B, O, H, 2, W, 2): a view of out
        for a in (0, 1):
            for c in (0, 1):
                fine[:, :, :, a, :, c].copy_(y[:, a, c, :, a:a + h, c:c + w])
        return out


def _is_plain_conv3x3(conv: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
    )


def _is_nearest_x2(up: nn.Module) -> bool:
    if type(up) is not nn.Upsample or up.mode != "nearest" or up.size is not None:
        return False
    scale = up.scale_factor if isinstance(up.scale_factor, tuple) else (up.scale_factor, up.scale_factor)
    return all(float(s) == 2.0 for s in scale)


def _first_conv_slot(module: nn.Module) -> tuple[nn.Module, str] | None:
    """(parent, name) of the module that runs first inside ``module`` when it is a conv, looking
    through nested ``nn.Sequential`` first children; None otherwise."""
    parent, name = None, None
    while isinstance(module, nn.Sequential) and len(module):
        parent, name = module, next(iter(module._modules))
        module = module._modules[name]
    return (parent, name) if parent is not None and _is_plain_conv3x3(module) else None


def fold_upsample_conv(model: nn.Module) -> nn.Module:
    """Replace every ``nn.Upsample(×2, nearest)`` directly followed, in an ``nn.Sequential``, by a 3×3
    convolution (itself or as the first layer of a nested ``nn.Sequential``) with one
    :class:`NearestUpConv`. In place; returns ``model``."""
    n = 0
    for module in list(model.modules()):
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            up, nxt = module._modules[first], module._modules[second]
            if not _is_nearest_x2(up):
                continue
            if _is_plain_conv3x3(nxt):
                module._modules[second] = NearestUpConv(nxt)
            elif (slot := _first_conv_slot(nxt)) is not None:
                parent, name = slot
                parent._modules[name] = NearestUpConv(parent._modules[name])
            else:
                continue
            module._modules[first] = nn.Identity()
            n += 1
    log.debug("folded %d up-sampling + 3×3 convolution pairs", n)
    return model


def cast_parameters(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Store the weights and biases of every exact ``nn.Conv2d``, ``nn.Linear`` and
    :class:`NearestUpConv` in ``dtype``. Meant for a model run under autocast to ``dtype``, which
    would cast these same tensors to ``dtype`` on every call; other parameters (used by ops autocast
    runs in float32) keep their precision. In place; returns ``model``."""
    n = 0
    for module in model.modules():
        if type(module) in (nn.Conv2d, nn.Linear, NearestUpConv):
            for p in (module.weight, module.bias):
                if p is not None and p.is_floating_point():
                    p.data = p.data.to(dtype)
            n += 1
    log.debug("stored the parameters of %d layers in %s", n, dtype)
    return model
