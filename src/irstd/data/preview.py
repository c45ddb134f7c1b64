"""A picture of synthetic samples: frames with their targets outlined (the README's sample grid)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from .synthetic_dataset import open_synthetic

__all__ = ["sample_grid", "save_sample_grid"]

_TARGET = np.array([255, 40, 40], dtype=np.uint8)  # red ring: target
_CLUTTER = np.array([40, 190, 255], dtype=np.uint8)  # blue ring: clutter, not a target


def _ring(mask: np.ndarray, gap: int) -> np.ndarray:
    """One-pixel outline ``gap`` pixels outside a mask, so the target itself stays visible."""
    outer = ndimage.binary_dilation(mask, iterations=gap + 1)
    return outer & ~ndimage.binary_dilation(mask, iterations=gap)


def sample_grid(n: int = 8, cols: int = 4, seed: int = 0, tile: int = 256, show_clutter: bool = True,
                margin: int = 4) -> np.ndarray:
    """RGB uint8 (rows·tile, cols·tile, 3) grid of training frames of the synthetic dataset.

    Each frame is contrast-stretched (1st–99.8th percentile) and its targets ringed in red; clutter
    (bright non-targets) is ringed in blue when ``show_clutter``.
    """
    ds = open_synthetic("train", n=n, seed=seed, normalization=(0.0, 1.0), size=tile)
    rows = -(-n // cols)
    grid = np.full((rows * tile + (rows - 1) * margin, cols * tile + (cols - 1) * margin, 3), 255, np.uint8)
    for i in range(n):
        image, mask, info = ds.scene(i)
        lo, hi = np.percentile(image, (1.0, 99.8))
        grey = np.clip((image - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
        rgb = np.repeat(grey[..., None], 3, axis=2)
        if show_clutter:
            rgb[_ring(info["clutter_mask"], 2)] = _CLUTTER
        rgb[_ring(mask, 3)] = _TARGET
        r, c = divmod(i, cols)
        y, x = r * (tile + margin), c * (tile + margin)
        grid[y : y + tile, x : x + tile] = rgb
    return grid


def save_sample_grid(path: str | Path, colors: int | None = 40, **kw) -> Path:
    """Write :func:`sample_grid` as an optimised PNG; returns the path.

    ``colors``: palette size (sensor noise compresses badly; 40 greys and colours keep a 4×2 grid of
    256-px tiles under 300 KB); None keeps full RGB.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(sample_grid(**kw))
    if colors is not None:  # fixed palette: evenly spaced greys plus the two ring colours
        greys = np.linspace(0, 255, max(colors - 2, 2)).round().astype(np.uint8)
        pal = np.concatenate([np.repeat(greys[:, None], 3, axis=1), _TARGET[None], _CLUTTER[None]])
        pal_im = Image.new("P", (1, 1))
        pal_im.putpalette(pal.ravel().tolist() + [0] * (768 - pal.size))
        im = im.quantize(palette=pal_im, dither=Image.Dither.NONE)
    im.save(path, optimize=True)
    return path
