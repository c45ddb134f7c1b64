"""The verifier's network: a small CNN from one normalised patch to one logit (target vs clutter)."""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["VerifierNet"]


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class VerifierNet(nn.Module):
    """(N, 1, S, S) normalised patches → (N,) logits; ``S`` a multiple of 8 (32 for the shipped one).

    Three stages of 3×3 convolutions with 2×2 max pooling (S → S/8), then a 4×4 adaptive average (the
    layout around the centre survives: a point and the end of a streak differ by where their neighbours
    are), a hidden layer and one logit. Width ``w``: 16 gives about 60 k parameters.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _block(1, w), _block(w, w), nn.MaxPool2d(2),
            _block(w, 2 * w), _block(2 * w, 2 * w), nn.MaxPool2d(2),
            _block(2 * w, 3 * w), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * w * 16, 4 * w), nn.ReLU(inplace=True),
                                  nn.Dropout(0.2), nn.Linear(4 * w, 1))
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))[:, 0]  # (N,) logits; the sigmoid is the verifier's
