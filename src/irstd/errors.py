"""Public alias of :mod:`irstd.core.errors` (``from irstd.errors import IRSTDError``).

Library code imports :mod:`irstd.core.errors`; this module is for users.
"""

from .core.errors import CheckpointError, ConfigError, DataError, IRSTDError, UnknownModelError

__all__ = ["IRSTDError", "UnknownModelError", "DataError", "ConfigError", "CheckpointError"]
