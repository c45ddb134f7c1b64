"""Shared fixtures of the data tests: small datasets written in every layout, the real-data locator."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Statistics cache in a temp dir: tests never write to ~/.cache."""
    d = tmp_path_factory.mktemp("irstd_cache")
    monkeypatch.setenv("IRSTD_CACHE_DIR", str(d))
    return d


def _write_pair(image_dir: Path, mask_dir: Path, stem: str, size: tuple[int, int] = (24, 32), *,
                mask_suffix: str = "", ext: str = ".png", mask_size: tuple[int, int] | None = None,
                seed: int = 0) -> None:
    """A grey frame with one 3×3 bright target and its 0/255 mask; size = (H, W)."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = rng.integers(20, 60, size=(h, w), dtype=np.uint8)
    img[h // 2 - 1 : h // 2 + 2, w // 2 - 1 : w // 2 + 2] = 250
    mh, mw = mask_size or size
    mask = np.zeros((mh, mw), dtype=np.uint8)
    mask[mh // 2 - 1 : mh // 2 + 2, mw // 2 - 1 : mw // 2 + 2] = 255
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(image_dir / f"{stem}{ext}")
    Image.fromarray(mask).save(mask_dir / f"{stem}{mask_suffix}.png")


@pytest.fixture
def write_pair() -> Callable[..., None]:
    """``write_pair(image_dir, mask_dir, stem, size=(H, W), mask_suffix="", ext=".png", mask_size=None)``."""
    return _write_pair


def _write_list(path: Path, stems: list[str], newline: str = "\n", final_newline: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = newline.join(stems) + (newline if final_newline else "")
    path.write_bytes(text.encode())
    return path


@pytest.fixture
def write_list() -> Callable[..., Path]:
    """``write_list(path, stems, newline="\\n", final_newline=True)`` → path (bytes written exactly)."""
    return _write_list


STEMS = [f"img_{i}" for i in range(6)]
TRAIN, TEST = STEMS[:4], STEMS[4:]


@pytest.fixture
def layout_root(tmp_path: Path) -> Callable[[str], Path]:
    """``layout_root(name)`` builds a 6-frame dataset (4 train / 2 test) in the named layout."""

    def build(name: str) -> Path:
        root = tmp_path / name
        if name == "folders":
            for split, stems in (("trainval", TRAIN), ("test", TEST)):
                for s in stems:
                    _write_pair(root / split / "images", root / split / "masks", s)
            return root
        suffix = "_pixels0" if name == "sirst" else ""
        for i, s in enumerate(STEMS):
            # mixed extensions on purpose: bmp, jpg (lossy is fine for images) and tif
            ext = {0: ".bmp", 1: ".tif", 2: ".jpg"}.get(i, ".png")
            _write_pair(root / "images", root / "masks", s, mask_suffix=suffix, ext=ext, seed=i)
        if name == "sirst":  # as published: no final newline
            _write_list(root / "idx_427" / "trainval.txt", TRAIN, final_newline=False)
            _write_list(root / "idx_427" / "train.txt", TRAIN[:3], final_newline=False)
            _write_list(root / "idx_427" / "test.txt", TEST, final_newline=False)
        elif name == "dnanet":  # CRLF like the DNANet releases
            _write_list(root / "50_50" / "train.txt", TRAIN, "\r\n")
            _write_list(root / "50_50" / "test.txt", TEST, "\r\n")
        elif name == "basicirstd":
            _write_list(root / "img_idx" / "train_Toy.txt", TRAIN)
            _write_list(root / "img_idx" / "test_Toy.txt", TEST, "\r\n", final_newline=False)
        elif name == "plain":
            _write_list(root / "train.txt", TRAIN)
            _write_list(root / "test.txt", ["", *TEST, "  ", ""], "\r\n")  # blank lines
        return root

    return build


def datasets_dir() -> Path:
    """Shared datasets: ``$IRSTD_DATASETS`` or ``<repo>/../shared/datasets``."""
    env = os.environ.get("IRSTD_DATASETS")
    return Path(env) if env else REPO / ".." / "shared" / "datasets"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    return datasets_dir()


@pytest.fixture(scope="session")
def sirst_root(shared_datasets: Path) -> Path:
    root = shared_datasets / "SIRST"
    if not (root / "images").is_dir():
        pytest.skip(f"real SIRST data not found at {root.resolve()}: set IRSTD_DATASETS to the folder holding SIRST/")
    return root
