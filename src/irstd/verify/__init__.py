"""Candidate verification: a small network that scores a patch around each detected target as target or
clutter, after any detector (docs/verify.md).

:class:`Verifier` (``load_verifier("verifier.sirst")``) is what :class:`irstd.inference.Predictor` takes as
``verifier=``; :mod:`.patches` cuts and normalises the patches; :mod:`.net` is the network;
:mod:`.mining` labels candidates for training and :mod:`.training` trains one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

if TYPE_CHECKING:
    from .net import VerifierNet
    from .patches import PATCH_SIZE, extract_patches, normalise_patches
    from .verifier import DEFAULT_VERIFIER, Verifier, load_verifier, shipped_verifiers

__all__ = ["DEFAULT_VERIFIER", "PATCH_SIZE", "Verifier", "VerifierNet", "extract_patches", "load_verifier",
           "normalise_patches", "shipped_verifiers"]

__getattr__, __dir__ = lazy_exports(__name__)
