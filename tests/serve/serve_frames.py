"""Generated frames for the service tests, encoded as files in memory."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from irstd.data.synthetic import generate_scene


def encode(frame: np.ndarray, fmt: str = "PNG", bit_depth: int = 8) -> bytes:
    """A frame (native range) as an encoded 8- or 16-bit file in memory."""
    top, dtype = (255, np.uint8) if bit_depth == 8 else (65535, np.uint16)
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(frame), 0, top).astype(dtype)).save(buf, format=fmt)
    return buf.getvalue()


def scene(seed: int, size: int = 96, bit_depth: int = 8) -> tuple[np.ndarray, tuple[float, float]]:
    """A clutter-free frame with one bright target, and the target's centre (x, y)."""
    img, _, info = generate_scene(seed, size=(size, size), n_targets=1, area=(4, 16), scr=(15, 20),
                                  clutter=0, bit_depth=bit_depth)
    cy, cx = info["targets"][0]["center"]
    return img, (float(cx), float(cy))


def near(targets: list[dict], xy: tuple[float, float], tol: float = 3.0) -> bool:
    """Some target's centroid lies within ``tol`` pixels of ``xy``."""
    return any(abs(t["x"] - xy[0]) <= tol and abs(t["y"] - xy[1]) <= tol for t in targets)
