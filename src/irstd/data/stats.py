"""Normalisation statistics (mean, std) of a set of frames, cached outside the dataset folder.

Statistics are pixel-weighted over every frame, in the frames' native range, so a 16-bit dataset is
normalised by its own spread rather than by 255. The cache lives in ``$IRSTD_CACHE_DIR`` (default
``~/.cache/irstd``) under a key hashed from the files' paths, modification times and sizes: editing a
file invalidates it, and nothing is ever written into the user's data folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import DataError
from ..core.files import atomic_write_text
from .io import load_image
from .items import floor_std

__all__ = ["compute_normalization", "cache_dir"]

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Folder of the statistics cache: ``$IRSTD_CACHE_DIR`` or ``~/.cache/irstd``."""
    env = os.environ.get("IRSTD_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "irstd"


def _image_paths(source: Any) -> list[Path]:
    """Image paths of a dataset (``.items``), a list of ``PairFiles`` / (image, mask, stem) tuples, or of paths."""
    items = getattr(source, "items", source)
    paths: list[Path] = []
    for it in items:
        paths.append(Path(it[0] if isinstance(it, (tuple, list)) else it))
    return paths


def _cache_key(paths: Sequence[Path]) -> str:
    h = hashlib.sha256(b"irstd-norm-v1\n")
    for p in sorted(paths):
        try:
            st = p.stat()
            h.update(f"{p.resolve()}\t{st.st_mtime_ns}\t{st.st_size}\n".encode())
        except OSError:
            h.update(f"{p}\tmissing\n".encode())
    return h.hexdigest()[:32]


def _read_cache(path: Path) -> tuple[float, float] | None:
    try:
        data = json.loads(path.read_text())
        return float(data["mean"]), float(data["std"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(path: Path, record: dict[str, Any]) -> None:
    try:
        atomic_write_text(path, json.dumps(record, indent=1))  # parallel workers never read a half-written file
    except OSError as exc:
        log.warning("could not write the statistics cache %s (%s); continuing without it", path, exc)


def _accumulate(paths: Iterable[Path]) -> tuple[float, float, int, int]:
    """Pixel-weighted mean and std (float64 sums); unreadable frames are skipped with a warning."""
    total = total_sq = 0.0
    count = used = 0
    for p in paths:
        try:
            x = load_image(p).astype(np.float64)
        except DataError as exc:
            log.warning("statistics: skipping %s", exc)
            continue
        # shift by the frame's own mean for a stable sum of squares on 16-bit data
        m = float(x.mean())
        total += m * x.size
        total_sq += float(((x - m) ** 2).sum()) + m * m * x.size
        count += x.size
        used += 1
    if count == 0:
        raise DataError("cannot compute normalisation statistics: no readable image")
    mean = total / count
    var = max(total_sq / count - mean * mean, 0.0)
    return mean, floor_std(float(np.sqrt(var))), used, count


def compute_normalization(dataset_or_items: Any, *, cache: bool = True) -> tuple[float, float]:
    """(mean, std) of the images of a dataset, a list of ``PairFiles`` (image, mask, stem) or of paths.

    A dataset that generates its frames (``SyntheticDataset``) returns its own ``normalization``.
    Results are cached in :func:`cache_dir` keyed by the files' paths, mtimes and sizes.
    """
    if getattr(dataset_or_items, "generated", False):
        return tuple(dataset_or_items.normalization)  # type: ignore[return-value]
    paths = _image_paths(dataset_or_items)
    if not paths:
        raise DataError("cannot compute normalisation statistics of an empty set of images")
    file = cache_dir() / f"norm-{_cache_key(paths)}.json"
    if cache and (hit := _read_cache(file)) is not None:
        log.debug("normalisation statistics from cache %s", file)
        return hit
    mean, std, used, pixels = _accumulate(paths)
    log.info("normalisation statistics over %d images: mean %.4g, std %.4g", used, mean, std)
    if cache:
        _write_cache(file, {"mean": mean, "std": std, "images": used, "pixels": pixels,
                            "first": str(paths[0]) if paths else ""})
    return mean, std
