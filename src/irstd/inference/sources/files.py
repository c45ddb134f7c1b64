"""Frames on disk: image files, folders, glob patterns, multi-page TIFF stacks and videos, in natural order."""

from __future__ import annotations

import errno
import glob
import logging
import mimetypes
import os
import stat
from pathlib import Path
from typing import Generator, Iterable, Iterator

from natsort import natsorted, ns

from ...core.errors import DataError
from ...data.io import IMAGE_EXTENSIONS, Admit, iter_pages, load_image, read_header
from .frames import Frame, FrameSource, Want
from .video import is_video_file, read_video, require_av

__all__ = ["FileSource", "expand_inputs", "is_image_file", "natural_sorted", "skip_reason",
           "unique_stems"]

log = logging.getLogger(__name__)

_KINDS = {stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a character device",
          stat.S_ISBLK: "a block device"}


def is_image_file(path: Path) -> bool:
    """True for a file whose extension is one :func:`irstd.data.load_image` reads."""
    return path.name.lower().endswith(IMAGE_EXTENSIONS)


def natural_sorted(paths: Iterable[Path]) -> list[Path]:
    """Paths in natural order, numbers by value (``1.png, 2.png, 10.png``), folder by folder."""
    return natsorted(paths, alg=ns.PATH)


def skip_reason(path: Path, *, videos: bool) -> str | None:
    """Why a folder or glob entry ``path`` is not read as frames, or None when it is read.

    Never opens ``path`` (a FIFO would block): links are resolved with ``stat`` only. Plain files of other
    kinds (``notes.txt``) and plain subfolders give ``""``: not frames, and not worth a line.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        if os.path.islink(path):
            return f"dangling symbolic link (to {os.readlink(path)})"
        return exc.strerror or str(exc)
    looks_like_frame = is_image_file(path) or is_video_file(path)
    if stat.S_ISDIR(st.st_mode):
        return "a folder, not an image" if looks_like_frame else ""
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS.items() if test(st.st_mode)), "not a regular file")
        return f"{kind}, not an image" if looks_like_frame or kind != "not a regular file" else ""
    if is_image_file(path):
        return None
    if is_video_file(path):
        return None if videos else "a video inside a folder of frames is not read (name the video itself)"
    kind = mimetypes.guess_type(path.name)[0] or ""
    if kind.startswith("image/"):
        return f"unsupported image type {path.suffix.lower()} (read: {' '.join(IMAGE_EXTENSIONS)})"
    return ""


def _frames_among(paths: Iterable[Path], *, videos: bool) -> list[Path]:
    """The entries of a folder or glob that are frames, in natural order; each other entry that looks like
    a frame (or is a link, FIFO, device) is logged as one ``skipped <path>: <reason>`` warning."""
    keep = []
    for path in natural_sorted(paths):
        reason = skip_reason(path, videos=videos)
        if reason is None:
            keep.append(path)
        elif reason:
            log.warning("skipped %s: %s", path, reason)
    return keep


def _not_a_frame_file(spec: str) -> str | None:
    """Why an input named directly cannot be read (a dangling link, a loop, a FIFO…), or None."""
    reason = skip_reason(Path(spec), videos=True)
    if reason is None or not os.path.lexists(spec):
        return None
    return reason or "not an image or video file"


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given, each folder's images, each glob's images and videos, each in natural order.

    A folder contributes its image files (a folder is a frame sequence; a video beside the frames is not
    read); a glob pattern its image and video files. What a folder or glob holds that is not read and looks
    like a frame (a dangling link, a link loop, a FIFO, a folder named ``x.png``, a ``.gif``) is logged as
    ``skipped <path>: <reason>``, never opened. A name that is neither a file, a folder nor a pattern,
    or inputs that hold no frame at all, raise :class:`DataError` naming them.
    """
    inputs = [os.fsdecode(i) for i in inputs]
    files: list[Path] = []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            files += _frames_among(path.iterdir(), videos=False)
        elif path.is_file():
            files.append(path)
        elif any(c in spec for c in "*?["):
            files += _frames_among(map(Path, glob.glob(spec, recursive=True)), videos=True)
        elif (reason := _not_a_frame_file(spec)) is not None:
            raise DataError(f"{spec}: {reason}")
        else:
            raise DataError(f"input not found: {spec}")
    if not files:
        raise DataError(f"no images found in: {' '.join(inputs)}")
    return files


def unique_stems(files: Iterable[Path]) -> dict[Path, str]:
    """A file-name stem per file for what is written per frame: the file's stem where no other file has it
    (``f.png`` → ``f``), else its path relative to the files' common folder with ``__`` for each separator
    (``a/f.png``, ``b/f.png`` → ``a__f``, ``b__f``; ``f.png``, ``f.tif`` → ``f_png``, ``f_tif``)."""
    files = list(dict.fromkeys(files))
    counts: dict[str, int] = {}
    for f in files:
        counts[f.stem] = counts.get(f.stem, 0) + 1
    clashing = [f for f in files if counts[f.stem] > 1]
    stems = {f: f.stem for f in files if counts[f.stem] == 1}
    if clashing:
        absolute = [f.absolute() for f in clashing]
        root = Path(os.path.commonpath([str(a.parent) for a in absolute]))
        rel = [a.relative_to(root) for a in absolute]
        names = ["__".join(r.with_suffix("").parts) for r in rel]
        if len(set(names)) < len(names):  # same folder and stem, other extension: keep the extension
            names = ["__".join(r.parts).replace(".", "_") for r in rel]
        taken = set(stems.values())
        for f, name in zip(clashing, names):
            while name in taken:  # a lone file already has this stem
                name += "_"
            stems[f] = name
            taken.add(name)
    return stems


class FileSource(FrameSource):
    """The frames of a list of files: an image is one frame, a multi-page TIFF one per page, a video one
    per decoded frame. A file that cannot be read costs one error frame; the next file goes on."""

    def __init__(self, files: Iterable[str | os.PathLike], *, max_pixels: int | None = None,
                 admit: Admit | None = None) -> None:
        self.files = [Path(os.fsdecode(f)) for f in files]
        self.max_pixels = max_pixels
        self.admit = admit  # a header check before decoding (a predictor's memory budget: Predictor.admit)
        self.stems = unique_stems(self.files)  # overlays of a/f.png and b/f.png must not overwrite each other
        if any(is_video_file(f) for f in self.files):
            require_av()  # one clear line before any work, not one per video

    def frames(self, want: Want = None) -> Iterator[Frame]:
        for frame in self._frames(want):
            path = frame.path
            if path is not None and self.stems.get(path, path.stem) != path.stem and frame.stem.startswith(path.stem):
                frame.stem = self.stems[path] + frame.stem[len(path.stem):]  # the file's unique stem, same suffix
            yield frame

    def _frames(self, want: Want) -> Iterator[Frame]:
        index = 0
        for path in self.files:
            if is_video_file(path):
                index = yield from read_video(path, index, want)
            elif path.name.lower().endswith((".tif", ".tiff")) and self._pages(path) > 1:
                index = yield from self._stack(path, index, want)
            else:
                if want is None or want(index):
                    yield self._image(path, index)
                index += 1

    def _image(self, path: Path, index: int) -> Frame:
        try:
            return Frame(index, str(path), load_image(path, max_pixels=self.max_pixels, admit=self.admit), path=path)
        except DataError as exc:
            return Frame(index, str(path), None, path=path, error=str(exc))

    def _pages(self, path: Path) -> int:
        """Pages of a TIFF, from its header (1 for an unreadable one: it becomes one error frame)."""
        try:
            return read_header(path).frames
        except DataError:
            return 1

    def _stack(self, path: Path, start: int, want: Want) -> Generator[Frame, None, int]:
        """The pages of a TIFF stack numbered from ``start``; returns the index after the stack. A page that
        cannot be read yields one error frame and ends the stack (the pages before it are kept)."""
        asked = [0]  # the page iter_pages looked at last: the one that failed, if one does

        def wanted(page: int) -> bool:
            asked[0] = page
            return want is None or want(start + page)

        n = self._pages(path)
        try:
            for page, image in iter_pages(path, want=wanted, max_pixels=self.max_pixels, admit=self.admit):
                yield Frame(start + page, f"{path}#{page}", image, path=path, stem=f"{path.stem}_{page:04d}")
        except DataError as exc:
            page = asked[0]
            if want is None or want(start + page):
                yield Frame(start + page, f"{path}#{page}", None, path=path, stem=f"{path.stem}_{page:04d}",
                            error=str(exc))
            return start + page + 1
        return start + n
