"""sgem-irstd: single-frame infrared small target detection."""

from __future__ import annotations

import logging

__version__ = "0.1.0"

from .models import create_model, list_models  # noqa: E402

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__", "create_model", "list_models"]
