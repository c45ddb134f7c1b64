"""sgem-irstd: single-frame infrared small target detection."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .core.version import __version__

if TYPE_CHECKING:
    from .models import create_model, list_models

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__", "create_model", "list_models"]

#: names re-exported from irstd.models on first use, so that ``import irstd`` (and ``irstd --help``) loads no torch
_FROM_MODELS = ("create_model", "list_models")


def __getattr__(name: str) -> Any:
    if name in _FROM_MODELS:
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module 'irstd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_FROM_MODELS})
