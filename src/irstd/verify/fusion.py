"""The verifier's score fused with the detector's own evidence for a candidate (round 3, an experiment).

A :class:`FusedVerifier` scores a target by a logistic combination of three numbers: the verifier's
logit, the logit of the detector's peak probability in the target and the log of its area. Fitted on
training-side candidates of one detector (``scripts/train_verifier.py fuse``), so it is tied to that
detector's probability scale: unlike the patch verifier it does not compose with every detector.
It satisfies the predictor's verifier protocol (``keep(frame, targets)``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..core.errors import CheckpointError
from ..inference.targets import Target
from .verifier import Verifier, load_verifier

__all__ = ["FusedVerifier", "fusion_features", "fit_fusion", "load_fused"]


def _logit(p: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), eps, 1.0 - eps)
    return np.log(p / (1.0 - p))


def fusion_features(verifier_scores: np.ndarray, peaks: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """(N, 3) features: verifier logit, detector peak logit, log area."""
    return np.stack([_logit(verifier_scores), _logit(peaks), np.log(np.maximum(np.asarray(areas, np.float64), 1.0))], 1)


def fit_fusion(features: np.ndarray, labels: np.ndarray, steps: int = 200) -> tuple[np.ndarray, float]:
    """Weights (3,) and bias of a class-balanced logistic regression (L-BFGS, a small L2 penalty)."""
    x = torch.from_numpy(np.asarray(features, np.float64))
    y = torch.from_numpy(np.asarray(labels, np.float64))
    mu, sd = x.mean(0), x.std(0).clamp_min(1e-6)
    xs = (x - mu) / sd
    pos = float(y.mean())
    wts = torch.where(y > 0, 0.5 / max(pos, 1e-6), 0.5 / max(1 - pos, 1e-6))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (wts * torch.nn.functional.binary_cross_entropy_with_logits(xs @ w + b, y, reduction="none")).mean()
        loss = loss + 1e-3 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w_raw = (w / sd).detach().numpy()  # back to unstandardised features
    return w_raw, float(b.detach() - (w.detach() * mu / sd).sum())


class FusedVerifier:
    """A :class:`Verifier` whose score also weighs the detector's peak probability and the target's area."""

    def __init__(self, verifier: Verifier, weights: Sequence[float], bias: float, threshold: float, name: str = "") -> None:
        self.verifier = verifier
        self.weights = np.asarray(weights, np.float64)
        self.bias = float(bias)
        self.threshold = float(threshold)
        self.name = name or f"{verifier.name}+detector score"

    def scores(self, frame: np.ndarray, targets: Sequence[Target]) -> np.ndarray:
        """(N,) fused probability per target."""
        if not len(targets):
            return np.zeros(0, np.float32)
        f = fusion_features(self.verifier.scores(frame, targets), [t.peak for t in targets], [t.area for t in targets])
        return (1.0 / (1.0 + np.exp(-(f @ self.weights + self.bias)))).astype(np.float32)

    def keep(self, frame: np.ndarray, targets: Sequence[Target]) -> np.ndarray:
        """(N,) bool: the targets whose fused score reaches ``threshold``."""
        return self.scores(frame, targets) >= self.threshold

    def save(self, path: str | Path, card: dict[str, Any]) -> None:
        """A JSON file: the verifier file, weights, bias, threshold and ``card``."""
        Path(path).write_text(json.dumps({"verifier": card["verifier"], "weights": self.weights.tolist(),
                                          "bias": self.bias, "threshold": self.threshold, **card}, indent=1) + "\n")


def load_fused(path: str | Path) -> FusedVerifier:
    """The fused verifier written by :meth:`FusedVerifier.save`."""
    try:
        d = json.loads(Path(path).read_text())
        return FusedVerifier(load_verifier(d["verifier"]), d["weights"], d["bias"], d["threshold"], Path(path).name)
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: not a fused verifier file ({exc})") from None
