"""The predictor's memory per frame: its estimated peak, the budget it must stay within, and the plan that
keeps a frame inside it (whole, in tiles that fit, or refused before its pixels are decoded).

A pixel limit alone does not bound memory: a network holds hundreds of bytes of activations per input pixel
(SGEM-UNet fp32: about 1,400), so a 16.7 MP frame that passes the 100 MP limit needs 24 GB. The estimate
is linear in the pixels, with factors measured on the CPU by ``benchmarks/memory_factors.py`` (peak RSS
growth of one ``Predictor.predict`` call, fresh process per size; results in
``benchmarks/results/memory-factors.md``) and rounded up; :data:`MARGIN` covers allocator fragmentation.

* whole frame: ``(FRAME + max(network, POST)) * pixels`` (the network factor is per padded input pixel);
* in tiles of side ``T``: ``(FRAME + POST) * pixels + network * T² * tiles_per_call``;
* decoding a file: :data:`DECODE_BYTES_PER_PIXEL` of its PIL mode (checked from the header, before decoding).

This module loads no torch (commands parse ``--max-memory`` with :func:`memory_size`). The service may use
:func:`estimate_peak_bytes` for its own per-request budget.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from ..core.errors import DataError

__all__ = [
    "BYTES_PER_PIXEL", "DECODE_BYTES_PER_PIXEL", "DEFAULT_CAP", "DEFAULT_FRACTION", "FRAME_BYTES_PER_PIXEL",
    "FrameTooLargeError", "MARGIN", "MemoryBudget", "POST_BYTES_PER_PIXEL", "TilePlan", "UNKNOWN_BYTES_PER_PIXEL",
    "available_memory", "bytes_per_pixel", "frame_bytes_per_pixel", "decode_bytes", "default_budget", "estimate_peak_bytes",
    "format_bytes", "memory_size", "parse_memory_size", "resolve_budget",
]

log = logging.getLogger(__name__)

#: peak RSS growth of the network per padded input pixel, whole frame, batch 1, by (registered model name,
#: run mode): the largest of 512², 1024² and 2048² over the two runs in benchmarks/results/memory-factors.md
#: (the same case differs by up to 30 % between runs: the allocator), rounded up.
#: The ``fast`` mode of a model without its own row uses the ``fp32`` row; int8 ONNX files use ``fp32`` too.
BYTES_PER_PIXEL: dict[tuple[str, str], float] = {
    ("sgem_unet", "fp32"): 1450, ("sgem_unet", "fast"): 620,
    ("sgem_unet_s", "fp32"): 660, ("sgem_unet_s", "fast"): 330,
    ("sgem_unet_t", "fp32"): 410, ("sgem_unet_t", "fast"): 170,
    ("unet", "fp32"): 1250, ("unet_t", "fp32"): 390,
    ("tophat", "fp32"): 40,
}
#: a model without a row (another network, an ONNX file without a model name): twice the largest row
UNKNOWN_BYTES_PER_PIXEL = 2 * max(BYTES_PER_PIXEL.values())
#: the decoded float32 frame, held while the predictor runs (the measured factors exclude it)
FRAME_BYTES_PER_PIXEL = 4
#: frame-sized arrays besides the network: the normalised copy, the stitched map, the probability map, the
#: mask and the target labelling (measured: 40 B/px in tiles of 256 with every pixel a target, the worst case)
POST_BYTES_PER_PIXEL = 40
#: peak of decoding one file into its float32 frame, per pixel, by PIL mode (measured at 4096², the
#: frame included); modes not listed take the largest
DECODE_BYTES_PER_PIXEL: dict[str, float] = {"1": 8, "L": 7, "LA": 10, "P": 15, "PA": 24, "RGB": 22, "RGBA": 24,
                                            "I;16": 8, "I;16L": 8, "I;16B": 8, "I;16N": 8, "I": 12, "F": 12}
#: every estimate is multiplied by this (allocator fragmentation, the spread between sizes)
MARGIN = 1.25
#: the default budget: this fraction of the memory available when the run starts …
DEFAULT_FRACTION = 0.5
#: … and at most this much: above it frames run in tiles of several megapixels, whose overlap costs
#: (T / (T - 256))² more compute (about 1.3× at T = 2048), a price worth a bounded process
DEFAULT_CAP = 3 * 2**30
#: tile overlap the budget's tiles use when none is given: a quarter of the tile, at most this
AUTO_OVERLAP = 128
#: the smallest tile the budget falls back to before refusing a frame
MIN_TILE = 64

_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 10**3, "KIB": 2**10, "M": 2**20, "MB": 10**6, "MIB": 2**20,
          "G": 2**30, "GB": 10**9, "GIB": 2**30, "T": 2**40, "TB": 10**12, "TIB": 2**40}


class FrameTooLargeError(DataError):
    """A frame whose estimated peak memory exceeds the budget even in the smallest tiles; ``need`` is the
    estimate in bytes."""

    def __init__(self, message: str, need: int = 0) -> None:
        super().__init__(message)
        self.need = need


def parse_memory_size(text: str) -> int:
    """``4G``, ``500M``, ``1.5GiB``, ``2048K`` or a number of bytes → bytes (K/M/G/T are powers of 1024; KB, MB,
    GB, TB powers of 1000). Raises ``ValueError`` with the one line to show."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).upper() if m else ""
    if not m or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a memory size: give a number with K, M, G or T (e.g. 4G, 500M)")
    size = int(float(m.group(1)) * _UNITS[unit])
    if size < 1:
        raise ValueError(f"{text!r} is not a memory size: give more than 0 bytes (e.g. 4G, 500M)")
    return size


def memory_size(text: str) -> int | str | None:
    """An argparse type: :func:`parse_memory_size`, ``auto`` (kept: :func:`default_budget` when the run
    starts) or ``none``/``off`` (no budget: None)."""
    import argparse

    if text.strip().lower() == "auto":
        return "auto"
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        return parse_memory_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def format_bytes(n: float) -> str:
    """``3.2 GiB``, ``480 MiB``: sizes in messages."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def available_memory() -> int | None:
    """Memory the system can give without swapping: psutil's ``available`` if installed, else
    ``MemAvailable`` of ``/proc/meminfo``; None where neither is known."""
    try:
        import psutil  # optional

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_budget(available: int | None = None) -> int:
    """:data:`DEFAULT_FRACTION` of the available memory, at most :data:`DEFAULT_CAP` (the cap where the
    available memory is unknown)."""
    available = available_memory() if available is None else available
    if available is None:
        return DEFAULT_CAP
    return int(min(DEFAULT_CAP, available * DEFAULT_FRACTION))


def resolve_budget(max_memory: int | str | None) -> int | None:
    """A budget argument as bytes: None stays None (no budget), ``"auto"`` is :func:`default_budget`, a
    string is parsed (:func:`parse_memory_size`), a number is bytes."""
    if max_memory is None:
        return None
    if isinstance(max_memory, str):
        if max_memory == "auto":
            return default_budget()
        try:
            return parse_memory_size(max_memory)
        except ValueError as exc:
            raise DataError(str(exc)) from None
    if max_memory < 1:
        raise DataError(f"a memory budget must be > 0 bytes, got {max_memory}")
    return int(max_memory)


def bytes_per_pixel(model: str | None, precision: str = "fp32") -> float:
    """The network factor of :data:`BYTES_PER_PIXEL` for a registered model name and run mode
    (:data:`UNKNOWN_BYTES_PER_PIXEL` for a model without a row)."""
    if model is None:
        return UNKNOWN_BYTES_PER_PIXEL
    name = model.split(":", 1)[0]
    for key in ((name, precision), (name, "fp32")):
        if key in BYTES_PER_PIXEL:
            return BYTES_PER_PIXEL[key]
    return UNKNOWN_BYTES_PER_PIXEL


def _padded(n: int, stride: int) -> int:
    return -(-n // stride) * stride


def estimate_peak_bytes(height: int, width: int, *, model: str | None = None, precision: str = "fp32",
                        batch: int = 1, stride: int = 32, tile: int | None = None, tiles_per_call: int = 1,
                        network_bytes_per_pixel: float | None = None) -> int:
    """The predictor's estimated peak memory in bytes for ``batch`` frames of (height, width), the decoded
    frames included, :data:`MARGIN` applied.

    ``model`` is a registered name (``sgem_unet_t``; a ``name.tag`` or ``name:args`` is cut to it),
    ``precision`` the run mode (``fp32``, ``fast``); ``network_bytes_per_pixel`` overrides their factor.
    With ``tile``, the frame runs in tiles of that side, ``tiles_per_call`` at a time (``batch`` is then 1).
    """
    bpp = network_bytes_per_pixel if network_bytes_per_pixel is not None else bytes_per_pixel(model, precision)
    pixels = height * width
    if tile is not None and max(height, width) > tile:
        side = min(tile, _padded(max(height, width), stride))
        need = (FRAME_BYTES_PER_PIXEL + POST_BYTES_PER_PIXEL) * pixels + bpp * side * side * tiles_per_call
    else:
        padded = _padded(height, stride) * _padded(width, stride)
        need = batch * (FRAME_BYTES_PER_PIXEL * pixels + max(bpp * padded, POST_BYTES_PER_PIXEL * pixels))
    return int(math.ceil(need * MARGIN))


def frame_bytes_per_pixel(model: str | None, precision: str = "fp32") -> float:
    """Estimated peak bytes per pixel of one whole frame (the frame, the network, what follows it; :data:`MARGIN`
    applied): the per-pixel form of :func:`estimate_peak_bytes`, for a budget that counts pixels before it
    knows shapes (the service charges requests with it)."""
    return MARGIN * (FRAME_BYTES_PER_PIXEL + max(bytes_per_pixel(model, precision), POST_BYTES_PER_PIXEL))


def decode_bytes(height: int, width: int, mode: str) -> int:
    """Estimated peak of decoding a file of that size and PIL mode into its float32 frame (:data:`MARGIN` applied)."""
    bpp = DECODE_BYTES_PER_PIXEL.get(mode, max(DECODE_BYTES_PER_PIXEL.values()))
    return int(math.ceil(bpp * height * width * MARGIN))


@dataclass(frozen=True)
class TilePlan:
    """How one frame runs within the budget: whole (``tile`` None; ``per_call`` frames of its shape per
    network call) or in tiles of ``tile`` with ``overlap``, ``per_call`` tiles per call; ``need``: the estimate."""

    tile: int | None
    overlap: int
    per_call: int
    need: int


class MemoryBudget:
    """A predictor's budget: ``limit`` bytes for one frame's peak (decoding, network, post-processing),
    with the network factor ``network_bytes_per_pixel`` and the model's ``stride``; ``what`` names the
    model and run mode in messages."""

    def __init__(self, limit: int, network_bytes_per_pixel: float, stride: int = 1, what: str = "the model") -> None:
        self.limit = int(limit)
        self.bpp = float(network_bytes_per_pixel)
        self.stride = max(1, int(stride))
        self.what = what

    def __repr__(self) -> str:
        return f"MemoryBudget({format_bytes(self.limit)}, {self.bpp:g} B/px, stride {self.stride})"

    def estimate(self, height: int, width: int, *, batch: int = 1, tile: int | None = None, tiles_per_call: int = 1) -> int:
        """:func:`estimate_peak_bytes` with this budget's factor and stride."""
        return estimate_peak_bytes(height, width, batch=batch, stride=self.stride, tile=tile,
                                   tiles_per_call=tiles_per_call, network_bytes_per_pixel=self.bpp)

    def _overlap(self, tile: int, overlap: int | None) -> int:
        if overlap is not None:
            return overlap
        return min(tile // 4, AUTO_OVERLAP) // self.stride * self.stride

    def _min_tile(self, overlap: int | None) -> int:
        """The smallest tile that still has a core (a multiple of the stride, at least :data:`MIN_TILE`)."""
        side = _padded(max(MIN_TILE, self.stride), self.stride)
        while side - 2 * self._overlap(side, overlap) < self.stride:
            side += self.stride
        return side

    def plan(self, height: int, width: int, *, batch: int = 1, tile: int | None = None,
             overlap: int | None = None) -> TilePlan:
        """Whole if the frame fits (``tile``, the caller's own tile side, is kept when it fits), else the largest
        tile that fits; :class:`FrameTooLargeError` when even the smallest tile does not."""
        user_tiled = tile is not None and max(height, width) > tile
        if not user_tiled:
            need = self.estimate(height, width)
            if need <= self.limit:
                return TilePlan(None, 0, max(1, min(batch, self.limit // max(need, 1))), need)
        fixed = self.estimate(height, width, tile=1, tiles_per_call=0)  # frame-sized arrays alone
        room = self.limit - fixed
        per_tile = self.bpp * MARGIN  # bytes per tile pixel
        side = int(math.sqrt(max(room, 0) / per_tile)) // self.stride * self.stride if per_tile else 1 << 30
        if tile is not None:
            side = min(side, tile)
        side = min(side, _padded(max(height, width), self.stride))
        smallest = self._min_tile(overlap)
        if tile is not None:  # a caller's own tile below MIN_TILE is its choice (tiling checked it has a core)
            smallest = min(smallest, tile)
        if side < smallest:
            need = self.estimate(height, width, tile=smallest)
            raise FrameTooLargeError(
                f"{width}x{height} pixels need about {format_bytes(need)} of memory with {self.what} even in tiles of "
                f"{smallest}, above the memory budget of {format_bytes(self.limit)} (raise it with --max-memory)", need)
        ov = self._overlap(side, overlap)
        while side - 2 * ov < self.stride:  # a caller's overlap too large for the shrunken tile
            ov = max(0, ov - self.stride)
        per_call = max(1, min(batch, int(room // (per_tile * side * side))))
        return TilePlan(side, ov, per_call, self.estimate(height, width, tile=side, tiles_per_call=per_call))

    def check_header(self, name: str, height: int, width: int, mode: str) -> None:
        """Refuse a file from its header alone: decoding it, or running it in the smallest tiles, would
        exceed the budget (:class:`FrameTooLargeError` naming the file)."""
        decode = decode_bytes(height, width, mode)
        try:
            need = max(decode, self.plan(height, width).need)
        except FrameTooLargeError as exc:
            need = max(decode, exc.need)
        if need > self.limit:
            raise FrameTooLargeError(
                f"{name}: header claims {width}x{height} pixels, which need about {format_bytes(need)} of memory "
                f"(decoding, then {self.what} in tiles), above the memory budget of {format_bytes(self.limit)}; "
                "refused before decoding (raise it with --max-memory)", need)
