"""User-facing error types: the CLI prints their message on one line, without a traceback."""

from __future__ import annotations

__all__ = ["first_line", "IRSTDError", "UnknownModelError", "DataError", "ConfigError", "CheckpointError", "DistributedError"]


class IRSTDError(Exception):
    """Base class of errors caused by the user's input (files, options, names)."""


class UnknownModelError(IRSTDError, KeyError):
    """A model name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(IRSTDError):
    """A dataset, image or split file that cannot be used; the message names the file and the problem."""


class ConfigError(IRSTDError):
    """A bad option or configuration key."""


class CheckpointError(IRSTDError):
    """A checkpoint that cannot be read or rebuilt."""


class DistributedError(IRSTDError):
    """A process group that cannot start, or ranks that stopped answering (one failed or hung)."""


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first non-blank line of ``exc``'s message, at most ``limit`` characters; the exception's type
    name when the message is empty. Libraries (torch, ONNX, YAML) put pages of detail after that line,
    and a user error is one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text[:limit] if limit is not None else text
