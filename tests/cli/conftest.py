"""Fixtures of the ``irstd track`` tests: one generated sequence, written as a frame folder or a video."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from irstd.data.synthetic_sequence import generate_sequence

TRACK_FRAMES = 24  # frames of the ``frames`` fixture (a cut before frame 16)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """24 generated 8-bit frames (moving targets, clutter, a pan, a cut at frame 16)."""
    seq = generate_sequence(n_frames=TRACK_FRAMES, cut_at=16, seed=1)
    return [np.clip(f, 0, 255).astype(np.uint8) for f in seq.frames]


@pytest.fixture
def folder(tmp_path: Path, frames, request) -> Path:
    """``frames`` as ``1.png``, ``2.png``, … in ``tmp_path/seq``; a test module's ``FOLDER_FRAMES`` keeps only
    that many first frames."""
    d = tmp_path / "seq"
    d.mkdir()
    for i, f in enumerate(frames[:getattr(request.module, "FOLDER_FRAMES", None)], 1):
        Image.fromarray(f).save(d / f"{i}.png")
    return d


@pytest.fixture
def make_video() -> Callable[..., Path]:
    """``make_video(path, frames, rate=25)``: the frames as a lossless FFV1 video (the test skips there
    without PyAV)."""

    def write(path: Path, frames, rate: int = 25) -> Path:
        av = pytest.importorskip("av")
        with av.open(str(path), "w") as c:
            s = c.add_stream("ffv1", rate=rate)
            s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "gray"
            for f in frames:
                for p in s.encode(av.VideoFrame.from_ndarray(f, format="gray")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        return path

    return write
