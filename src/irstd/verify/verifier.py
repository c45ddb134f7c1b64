"""The candidate verifier: patches around a frame's targets → one network call → keep or reject each.

``load_verifier()`` gives the shipped default (``verifier.sirst``); a name of :func:`shipped_verifiers` or
a ``.safetensors`` file written by :meth:`Verifier.save` gives another. A :class:`Verifier` satisfies
:class:`irstd.inference.verifier_protocol.TargetVerifier`, so ``Predictor(model, verifier=v)`` drops
the targets it rejects whatever the detector.
"""

from __future__ import annotations

import hashlib
import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..core.errors import CheckpointError, ConfigError
from ..core.files import atomic_write
from ..inference.targets import Target
from .defaults import DEFAULT_VERIFIER
from .net import VerifierNet
from .patches import PATCH_SIZE, extract_patches, normalise_patches

__all__ = ["DEFAULT_VERIFIER", "VERIFIER_TABLE", "Verifier", "load_verifier", "shipped_verifiers"]

log = logging.getLogger(__name__)

#: shipped verifiers: name → file (in ``irstd/weights/``), SHA-256, model card
VERIFIER_TABLE = Path(__file__).resolve().parents[1] / "weights" / "verifiers.json"
_META_KEY = "irstd_verifier"


class Verifier:
    """A :class:`VerifierNet` with its patch size and operating threshold.

    ``scores(frame, targets)`` is the probability that each target is one (all patches of the frame in one
    batch); ``keep`` compares it with ``threshold``. Runs on ``device`` (CPU by default: the network is tiny).
    """

    def __init__(self, net: VerifierNet, threshold: float = 0.5, *, patch_size: int = PATCH_SIZE,
                 device: str | torch.device = "cpu", name: str = "", card: dict[str, Any] | None = None) -> None:
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"verifier threshold must be in (0, 1), got {threshold}")
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.threshold = float(threshold)
        self.patch_size = int(patch_size)
        self.name = name
        self.card = dict(card or {})

    def __repr__(self) -> str:
        return f"Verifier({self.name or 'unnamed'}, threshold={self.threshold:g}, patch={self.patch_size})"

    @torch.inference_mode()
    def score_patches(self, patches: np.ndarray) -> np.ndarray:
        """(N,) float probabilities of raw (N, S, S) patches."""
        if not len(patches):
            return np.zeros(0, np.float32)
        x = torch.from_numpy(normalise_patches(patches))[:, None].to(self.device)  # (N, 1, S, S)
        return torch.sigmoid(self.net(x)).float().cpu().numpy()

    def scores(self, frame: np.ndarray, targets: Sequence[Target]) -> np.ndarray:
        """(N,) probability per target that it is one, from the raw (H, W) ``frame``."""
        return self.score_patches(extract_patches(frame, [(t.x, t.y) for t in targets], self.patch_size))

    def keep(self, frame: np.ndarray, targets: Sequence[Target]) -> np.ndarray:
        """(N,) bool: the targets scoring at least ``threshold``."""
        return self.scores(frame, targets) >= self.threshold

    def filter(self, frame: np.ndarray, targets: Sequence[Target]) -> list[Target]:
        """The kept targets, in order."""
        return [t for t, k in zip(targets, self.keep(frame, targets)) if k]

    def save(self, path: str | Path, card: dict[str, Any] | None = None) -> Path:
        """Write the weights (fp32 safetensors) with the width, patch size, threshold and ``card``."""
        meta = {"width": self.net.width, "patch_size": self.patch_size, "threshold": self.threshold,
                "card": card if card is not None else self.card}
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: save_file(state, tmp, metadata={_META_KEY: json.dumps(meta)}))
        return path


@lru_cache(maxsize=1)
def _table() -> dict[str, dict[str, Any]]:
    if not VERIFIER_TABLE.is_file():
        return {}
    try:
        return dict(json.loads(VERIFIER_TABLE.read_text())["verifiers"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{VERIFIER_TABLE}: unreadable verifier table ({exc})") from None


def shipped_verifiers() -> dict[str, dict[str, Any]]:
    """Name → table row (file, sha256, card) of the verifiers shipped in ``irstd/weights/``."""
    return dict(_table())


def load_verifier(spec: str | Path | None = None, device: str | torch.device = "cpu",
                  threshold: float | None = None) -> Verifier:
    """The verifier named ``spec`` (default :data:`DEFAULT_VERIFIER`) or stored in the file ``spec``;
    ``threshold`` overrides its stored one."""
    spec = DEFAULT_VERIFIER if spec is None or str(spec) in ("", "default") else spec
    row = _table().get(str(spec))
    if row is not None:
        path = VERIFIER_TABLE.parent / row["file"]
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        if digest != row["sha256"]:
            raise CheckpointError(f"{path}: missing or changed (SHA-256 does not match the verifier table)")
        name = str(spec)
    else:
        path = Path(spec)
        if not path.is_file():
            known = ", ".join(sorted(_table())) or "none"
            raise CheckpointError(f"{spec}: no such verifier file or shipped verifier (shipped: {known})")
        name = path.name
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})[_META_KEY])
            state = {k: f.get_tensor(k) for k in f.keys()}
        net = VerifierNet(int(meta["width"]))
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a verifier file ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    return Verifier(net, meta["threshold"] if threshold is None else threshold, patch_size=int(meta["patch_size"]),
                    device=device, name=name, card=meta.get("card"))
