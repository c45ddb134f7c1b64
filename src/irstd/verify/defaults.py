"""Torch-free facts of the verifier that command options show."""

from __future__ import annotations

__all__ = ["DEFAULT_VERIFIER"]

#: what ``--verify`` alone and ``load_verifier()`` load
DEFAULT_VERIFIER = "verifier.sirst"
