"""Model registry: every network is built through :func:`create_model`.

A model file decorates its network class with :func:`register_model`; a variant of the same network
is one more decorator line on that class with other ``defaults`` (see ``sgem_unet_s``/``_t``), never
a factory function that restates the constructor's signature. The registry records the name and
the caller's keyword arguments on the built model (``model.model_name``, ``model.model_kwargs``)
so that checkpoints can rebuild it later.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable

import torch.nn as nn

from ..core.errors import UnknownModelError

__all__ = ["ModelEntry", "register_model", "create_model", "list_models", "get_model_entry", "is_model"]


@dataclass(frozen=True)
class ModelEntry:
    """One registered network: its factory and the facts the model table shows."""

    name: str
    factory: Callable[..., nn.Module]
    paper: str = ""
    kind: str = "learned"
    defaults: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str | None = None, *, paper: str = "", kind: str = "learned", **defaults: Any) -> Callable:
    """Decorator that registers a network class (any ``nn.Module`` factory works) under ``name``
    (default: the lower-cased class name); returns the class unchanged, so decorators stack.

    ``kind`` is ``"learned"`` (a trainable network) or ``"classical"`` (a fixed, training-free detector
    with the same logit interface).
    ``defaults`` are keyword arguments applied before the caller's, which lets one class serve
    several registered variants (e.g. a narrower width).
    """

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or factory.__name__.lower()
        if kind not in ("learned", "classical"):
            raise ValueError(f"kind must be 'learned' or 'classical', got {kind!r}")
        if key in _REGISTRY:
            raise ValueError(f"model name {key!r} is registered twice")
        _REGISTRY[key] = ModelEntry(key, factory, paper, kind, dict(defaults))
        return factory

    return decorator


def get_model_entry(name: str) -> ModelEntry:
    """Return the registry entry for ``name``; unknown names raise :class:`UnknownModelError` with suggestions."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown model {name!r}{hint} (known: {', '.join(sorted(_REGISTRY))})") from None


def is_model(name: str) -> bool:
    """True when ``name`` is a registered model."""
    return name in _REGISTRY


def list_models(pattern: str | None = None, kind: str | None = None) -> list[str]:
    """Sorted names of registered models, filtered by a shell-style ``pattern`` and/or ``kind``."""
    return [
        n
        for n in sorted(_REGISTRY)
        if (pattern is None or fnmatch.fnmatch(n, pattern)) and (kind is None or _REGISTRY[n].kind == kind)
    ]


def create_model(name: str, pretrained: bool | str = False, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``; every model takes ``in_chans=1, num_classes=1``.

    ``pretrained=True`` loads the model's default shipped weights, ``pretrained="sirst"`` the tag
    ``sirst``; ``name`` may carry the tag itself (``"sgem_unet.sirst"``, timm-style: without
    ``pretrained`` it only picks the architecture). Loaded models carry ``normalization`` and
    ``checkpoint_meta`` like :func:`~irstd.models.checkpoint.load_model` and are left in training
    mode, like every freshly built model.
    """
    base, name_tag = name, ""
    head, dot, tail = name.partition(".")
    if dot and is_model(head):  # "sgem_unet.sirst": the architecture, and the tag for pretrained=True
        base, name_tag = head, tail
    if pretrained:
        from ._pretrained import get_pretrained  # late: both modules import this one
        from .checkpoint import load_model

        tag = pretrained if isinstance(pretrained, str) else None
        if tag and name_tag and tag != name_tag:
            raise UnknownModelError(f"{name!r} names tag {name_tag!r} but pretrained={tag!r}: give one tag")
        row = get_pretrained(base, tag or name_tag or None)
        return load_model(row.name, "cpu", **kwargs).train()
    entry = get_model_entry(base)
    merged = {**entry.defaults, **kwargs}
    model = entry.factory(**merged)
    model.model_name = base
    model.model_kwargs = dict(kwargs)
    return model
