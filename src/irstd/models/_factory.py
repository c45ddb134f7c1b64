"""The factory: :func:`create_model`, the one public way to build a network, fresh or with shipped weights.

It sits on top of the model infrastructure (registry ← spec ← pretrained ← checkpoint ← factory, see
:mod:`._registry`), so it imports the loaders at the top: no module below imports this one.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from ..core.errors import UnknownModelError
from ._registry import build_model, is_model, split_name_tag
from .checkpoint import load_model
from .pretrained import get_pretrained

__all__ = ["create_model"]


def create_model(name: str, pretrained: bool | str = False, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``; every model takes ``in_chans=1, num_classes=1``.

    ``pretrained=True`` loads the model's default shipped weights, ``pretrained="sirst"`` the tag
    ``sirst``; ``name`` may carry the tag itself (``"sgem_unet.sirst"``, timm-style: without
    ``pretrained`` it only picks the architecture). Loaded models carry ``normalization`` and
    ``checkpoint_meta`` like :func:`~irstd.models.checkpoint.load_model` and are left in training
    mode, like every freshly built model.
    """
    base, name_tag = split_name_tag(name)
    if name_tag is not None and not is_model(base):  # "foo.bar" with no model "foo": report the whole name
        base, name_tag = name, None
    if pretrained:
        tag = pretrained if isinstance(pretrained, str) else None
        if tag and name_tag and tag != name_tag:
            raise UnknownModelError(f"{name!r} names tag {name_tag!r} but pretrained={tag!r}: give one tag")
        row = get_pretrained(base, tag or name_tag or None)
        return load_model(row.name, "cpu", **kwargs).train()
    return build_model(base, **kwargs)
