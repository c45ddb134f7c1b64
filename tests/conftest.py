"""Suite-wide settings: small thread count (CI has 2 cores) and a fixed seed per test."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture
def plain_dataset(tmp_path: Path) -> tuple[Path, list[str]]:
    """Plain layout with four 8-bit frames of different sizes, each with one bright 3x3 target."""
    from irstd.data.io import save_image, save_mask

    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    names = []
    for i, (h, w) in enumerate([(40, 52), (64, 64), (37, 70), (50, 33)]):
        img = rng.normal(100, 10, (h, w))
        mask = np.zeros((h, w), bool)
        y, x = rng.integers(5, h - 5), rng.integers(5, w - 5)
        mask[y - 1 : y + 2, x - 1 : x + 2] = True
        img[mask] += 80
        save_image(root / "images" / f"f{i}.png", np.clip(img, 0, 255))
        save_mask(root / "masks" / f"f{i}.png", mask)
        names.append(f"f{i}")
    (root / "test.txt").write_text("\n".join(names))
    (root / "train.txt").write_text("\n".join(names[:2]))
    return root, names
