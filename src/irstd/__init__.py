"""sgem-irstd: single-frame infrared small target detection."""

from __future__ import annotations

import logging

from .core.version import __version__
from .models import create_model, list_models

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__", "create_model", "list_models"]
