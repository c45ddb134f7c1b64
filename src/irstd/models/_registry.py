"""Model registry, the lowest layer of :mod:`irstd.models`: names → network factories.

The infrastructure is layered as timm's: this module (registry, name/tag split, a bare build) ←
:mod:`.spec` (what a model argument names) ← :mod:`.pretrained` (shipped weights, URLs) ←
:mod:`.checkpoint` (the file format, :func:`load_model`) ← :mod:`._factory` (:func:`create_model`).
Each imports only those to its left.

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

__all__ = ["ModelEntry", "build_model", "get_model_entry", "is_model", "list_models", "register_model",
           "split_name_tag"]


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


def split_name_tag(name: str) -> tuple[str, str | None]:
    """``'sgem_unet.sirst'`` → ``('sgem_unet', 'sirst')``; a name without a dot → ``(name, None)``.

    The one place a ``model.tag`` name is split (timm's convention: the tag follows the first dot).
    """
    model, dot, tag = name.partition(".")
    return (model, tag) if dot else (name, None)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """A freshly initialised registered model ``name`` (no tag, no weights) that records its name and the
    caller's arguments (``model.model_name``, ``model.model_kwargs``) for checkpoints; see
    :func:`irstd.models.create_model` for the public entry point."""
    entry = get_model_entry(name)
    model = entry.factory(**{**entry.defaults, **kwargs})
    model.model_name = name
    model.model_kwargs = dict(kwargs)
    return model
