"""Overlapping tiles: run a network on frames too large to hold its activations in memory.

A frame is cut into tiles of ``tile`` pixels (a multiple of the stride) that overlap by ``2 * overlap``.
Tile origins are multiples of ``tile - 2 * overlap`` (itself a multiple of the stride), so every tile
sees the pooling grid of the whole frame. Each tile contributes only its *core* (the tile less
``overlap`` pixels on every inner side); the cores partition the frame. With an overlap larger than the
network's effective receptive field the stitched map equals whole-frame inference; near seams it can
differ slightly (zero padding at a tile edge instead of real context), which ``tests/test_tiling.py``
measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.errors import ConfigError

__all__ = ["Tile", "check_tiling", "plan_tiles", "run_tiled"]


@dataclass(frozen=True)
class Tile:
    """One tile: the window it reads and the core it writes, both as (start, stop) per axis."""

    window: tuple[slice, slice]
    core: tuple[slice, slice]  # in frame coordinates
    inner: tuple[slice, slice]  # the core in tile coordinates


def check_tiling(tile: int, overlap: int, stride: int) -> None:
    """Reject a tile size and overlap that cannot give aligned, overlapping tiles."""
    if tile % stride or overlap % stride:
        raise ConfigError(f"tile ({tile}) and overlap ({overlap}) must be multiples of the model's stride ({stride})")
    if overlap < 0 or tile - 2 * overlap < stride:
        raise ConfigError(f"tile ({tile}) must exceed twice the overlap ({overlap}) by at least the stride ({stride})")


def _axis(n: int, tile: int, overlap: int) -> list[tuple[slice, slice, slice]]:
    """(window, core, core within window) along one axis of length ``n``."""
    if n <= tile:
        return [(slice(0, n), slice(0, n), slice(0, n))]
    step = tile - 2 * overlap
    out = []
    start = 0
    while True:
        stop = min(start + tile, n)
        last = stop == n
        c0 = 0 if start == 0 else start + overlap
        c1 = n if last else start + tile - overlap
        out.append((slice(start, stop), slice(c0, c1), slice(c0 - start, c1 - start)))
        if last:
            return out
        start += step


def plan_tiles(shape: tuple[int, int], tile: int, overlap: int) -> list[Tile]:
    """Tiles covering an (H, W) frame; their cores partition it."""
    rows, cols = _axis(shape[0], tile, overlap), _axis(shape[1], tile, overlap)
    return [Tile((ry, cx), (rcy, ccx), (iy, ix)) for ry, rcy, iy in rows for cx, ccx, ix in cols]


def run_tiled(x: np.ndarray, run: Callable[[list[np.ndarray]], list[np.ndarray]], tile: int, overlap: int,
              batch_size: int = 1) -> np.ndarray:
    """Stitch ``run`` (a list of (h, w) arrays → a list of same-size maps) over the tiles of ``x`` (H, W).

    Tiles are handed to ``run`` ``batch_size`` at a time (equal-size tiles batch together there).
    """
    out = np.empty(x.shape, dtype=np.float32)
    tiles = plan_tiles(x.shape, tile, overlap)
    for start in range(0, len(tiles), batch_size):
        chunk = tiles[start : start + batch_size]
        maps = run([x[t.window] for t in chunk])
        for t, m in zip(chunk, maps):
            out[t.core] = m[t.inner]
    return out
