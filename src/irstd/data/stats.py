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
from .io import declared_bit_depth, load_image
from .items import floor_std

__all__ = ["compute_normalization", "compute_input_range", "frame_bit_depth", "frame_range", "cache_dir",
           "RANGE_PERCENTILES"]

#: robust low/high of a frame: percentiles that ignore hot pixels and the few target pixels
RANGE_PERCENTILES = (0.5, 99.5)
#: bit depths recognised from a frame's largest value (0 = float frame in [0, 1])
_BIT_DEPTHS = (8, 10, 12, 14, 16)

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


def frame_bit_depth(frame: np.ndarray) -> tuple[int, float]:
    """(bit depth, full scale) a frame's values fit: the smallest of 8/10/12/14/16 bits holding its
    largest value; ``(0, 1.0)`` for a non-integer frame within [0, 1]; ``(32, max)`` above 16 bits."""
    x = np.asarray(frame)
    top = float(np.max(x)) if x.size else 0.0
    if top <= 1.0 and not np.array_equal(x, np.rint(x)):
        return 0, 1.0
    for bits in _BIT_DEPTHS:
        if top <= 2**bits - 1:
            return bits, float(2**bits - 1)
    return 32, top


def frame_range(frame: np.ndarray) -> tuple[float, float]:
    """Robust (low, high) of a frame: its :data:`RANGE_PERCENTILES`, high > low (float64 sums)."""
    lo, hi = np.percentile(np.asarray(frame, dtype=np.float64), RANGE_PERCENTILES)
    return float(lo), float(max(hi, lo + 1e-6))


def _range_frames(source: Any, max_frames: int) -> Iterable[tuple[str, np.ndarray]]:
    """Up to ``max_frames`` frames spread evenly over the set: generated scenes or image files."""
    if getattr(source, "generated", False):
        n = len(source)
        for i in sorted({int(j) for j in np.linspace(0, n - 1, min(n, max_frames))}):
            yield f"scene {i}", source.scene(i)[0]
        return
    paths = _image_paths(source)
    for i in sorted({int(j) for j in np.linspace(0, len(paths) - 1, min(len(paths), max_frames))}):
        try:
            yield str(paths[i]), load_image(paths[i])
        except DataError as exc:
            log.warning("input range: skipping %s", exc)


def compute_input_range(dataset_or_items: Any, *, max_frames: int = 64) -> dict[str, Any]:
    """The value range of a training set, recorded in its checkpoints for the predictor's input-range policy.

    Returns ``bit_depth`` and ``full_scale``: the widest bit depth the frames' files declare
    (:func:`~irstd.data.io.declared_bit_depth`; then ``declared`` is True), or, when some frame declares
    none (generated scenes), the widest guessed from values (:func:`frame_bit_depth`); and
    ``low``/``high``: the median over up to ``max_frames`` frames of each frame's robust range
    (:data:`RANGE_PERCENTILES`), in native units.
    """
    lows, highs, depth, full = [], [], -1, 0.0
    declared, all_declared = -1, True
    for _, frame in _range_frames(dataset_or_items, max_frames):
        lo, hi = frame_range(frame)
        lows.append(lo)
        highs.append(hi)
        bits, top = frame_bit_depth(frame)
        if top > full:
            depth, full = bits, top
        d = declared_bit_depth(frame)
        if d is None:
            all_declared = False
        else:
            declared = max(declared, d)
    if not lows:
        raise DataError("cannot measure the input range: no readable image")
    out: dict[str, Any] = {"bit_depth": depth, "full_scale": full}
    if all_declared and declared > 0:
        out = {"bit_depth": declared, "full_scale": float(2**declared - 1), "declared": True}
    return {**out, "low": float(np.median(lows)), "high": float(np.median(highs)),
            "percentiles": list(RANGE_PERCENTILES), "frames": len(lows)}
