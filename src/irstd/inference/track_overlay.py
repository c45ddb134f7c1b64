"""The overlay of a track run, written frame by frame: a video for a video input, else PNG files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ConfigError
from ..visualize import draw_tracks, upscale_factor
from .sources import Frame, is_video_file, video_rate

__all__ = ["DEFAULT_FPS", "TrackOverlayWriter"]

#: the overlay video's frame rate when neither the caller nor the source video gives one
DEFAULT_FPS = 25


class TrackOverlayWriter:
    """Overlay frames of a track run as they come (raw boxes red, confirmed green with ids, yellow trails):
    ``OUT/tracks_overlay.mp4`` through PyAV when the source is one video, else PNGs in ``OUT/overlay/``;
    small frames are upscaled to at least 256 px on the short side. The video plays at ``fps`` when given,
    else at the source video's own rate (exact, e.g. 30000/1001), else at :data:`DEFAULT_FPS`."""

    TRAIL = 12  # frames of trail per confirmed track

    def __init__(self, out: Path, source: Any, fps: float | Fraction | None = None) -> None:
        files = getattr(source, "files", [])
        self.video = len(files) == 1 and is_video_file(files[0])
        self.out = out
        self.fps: Fraction | None = None
        if self.video:
            given = Fraction(fps).limit_denominator(1001) if fps else None
            self.fps = given or video_rate(files[0]) or Fraction(DEFAULT_FPS)
        self.trails: dict[int, list[tuple[float, float]]] = {}
        self._container = self._stream = None
        if not self.video:
            (out / "overlay").mkdir(exist_ok=True)

    def remember(self, rec: dict) -> None:
        """Keep the trails of a frame that was done before (a resumed run)."""
        for c in rec.get("confirmed", ()):
            self.trails.setdefault(c["id"], []).append((c["x"], c["y"]))
            self.trails[c["id"]] = self.trails[c["id"]][-self.TRAIL:]
        live = {c["id"] for c in rec.get("confirmed", ())}
        self.trails = {k: v for k, v in self.trails.items() if k in live}

    def add(self, frame: Frame, rec: dict) -> None:
        """Draw one finished frame with its track record."""
        if frame.image is None:
            return
        self.remember(rec)
        boxes = [tuple(t["bbox"]) for t in rec.get("targets") or ()]
        confirmed = []
        ids = rec.get("tracks") or []
        for c in rec.get("confirmed", ()):
            k = None if c["predicted"] else next((i for i, t in enumerate(ids) if t == c["id"]), None)
            confirmed.append((c["id"], c["x"], c["y"], boxes[k] if k is not None else None))
        h, w = frame.image.shape[:2]
        scale = upscale_factor((h, w))  # small frames upscaled to ≥ 256 px on the short side
        image = draw_tracks(frame.image, boxes, confirmed, self.trails, scale)
        if not self.video:
            image.save(self.out / "overlay" / f"{frame.stem}_tracks.png")
            return
        if self._container is None:
            self._open(image.width, image.height, rec["frame"])
        import av

        arr = np.asarray(image)
        arr = np.pad(arr, ((0, arr.shape[0] % 2), (0, arr.shape[1] % 2), (0, 0)))
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
            self._container.mux(packet)

    def _open(self, width: int, height: int, first: int) -> None:
        import av  # the optional extra "video"

        name = "tracks_overlay" + (f"_from_{first + 1}" if first else "")
        for codec, ext in (("libx264", ".mp4"), ("mpeg4", ".mp4"), ("ffv1", ".mkv")):
            try:
                av.codec.Codec(codec, "w")
            except Exception:  # noqa: BLE001 — an encoder this PyAV build lacks: the next one
                continue
            self.path = self.out / (name + ext)
            self._container = av.open(str(self.path), "w")
            self._stream = self._container.add_stream(codec, rate=self.fps)
            self._stream.width, self._stream.height = width + width % 2, height + height % 2
            self._stream.pix_fmt = "yuv420p"
            return
        raise ConfigError("this PyAV build can write none of libx264, mpeg4, ffv1: no overlay video")

    def close(self) -> None:
        """Flush and close the video (PNG files are complete as written)."""
        if self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
