"""Reading images, masks and split files.

Infrared frames arrive in every PIL mode (8-bit grey, RGB copies of a grey frame, palettes, 16-bit
and 32-bit integers, floats). :func:`load_image` turns all of them into one float32 channel in the
frame's *native* range (0..255 for 8-bit, 0..65535 for 16-bit) so that 14/16-bit dynamic range
survives until normalisation by the dataset's statistics.

Decoding is defensive: a header claiming more than :data:`MAX_PIXELS` pixels (a decompression bomb, or
simply a frame too large for memory) is refused before any pixel is decoded, and *every* decoder
failure (truncated data, corrupt chunks, odd modes, PIL's own bomb guard, running out of memory)
becomes a :class:`~irstd.core.errors.DataError` naming the file, so one bad file never ends a run.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..core.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "ImageHeader",
    "ImageTooLargeError",
    "UnsupportedImageError",
    "max_pixels",
    "load_image",
    "load_image_bytes",
    "iter_pages",
    "load_mask",
    "multi_page_reason",
    "read_header",
    "read_split_file",
    "save_image",
    "save_mask",
]

log = logging.getLogger(__name__)

#: file name endings recognised as images (lower case)
IMAGE_EXTENSIONS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")

#: default pixel limit per frame: 100 MP (e.g. 10 000 x 10 000) covers every infrared sensor and
#: mosaic in use, and decodes to 400 MB of float32; override with ``$IRSTD_MAX_PIXELS`` or ``max_pixels=``
MAX_PIXELS = 100_000_000

# ITU-R BT.601 luma weights: what PIL's convert("L") uses, but kept in float (no rounding to 8 bit)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# nominal bits per sample of each PIL mode, reported by `irstd data inspect`
_MODE_BITS = {"1": 1, "L": 8, "LA": 8, "P": 8, "PA": 8, "RGB": 8, "RGBA": 8, "RGBX": 8, "CMYK": 8,
              "YCbCr": 8, "I;16": 16, "I;16L": 16, "I;16B": 16, "I;16N": 16, "I": 32, "F": 32}


class UnsupportedImageError(DataError):
    """Bytes that are not an image in a format PIL reads."""


class ImageTooLargeError(DataError):
    """An image whose header announces more pixels than the limit in force."""


@dataclass(frozen=True)
class ImageHeader:
    """What the file header says, read without decoding pixels."""

    path: Path
    size: tuple[int, int]  # (height, width)
    mode: str
    frames: int

    @property
    def bits(self) -> int:
        """Nominal bits per sample of the PIL mode (8, 16, 32)."""
        return _MODE_BITS.get(self.mode, 8)


def max_pixels(limit: int | None = None) -> int:
    """The pixel limit in force: ``limit`` if given, else ``$IRSTD_MAX_PIXELS``, else :data:`MAX_PIXELS`."""
    if limit is None:
        env = os.environ.get("IRSTD_MAX_PIXELS")
        try:
            limit = int(float(env)) if env else MAX_PIXELS
        except ValueError:
            raise DataError(f"IRSTD_MAX_PIXELS={env!r} is not a number of pixels") from None
    if limit < 1:
        raise DataError(f"the pixel limit must be >= 1, got {limit}")
    return int(limit)


_pixel_limit = max_pixels  # for functions whose ``max_pixels`` argument hides the function


def _log_warnings(path: str | Path, caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        if not issubclass(w.category, Image.DecompressionBombWarning):
            log.debug("%s: %s", path, w.message)


def _open(path: str | Path, limit: int | None = None, data: bytes | None = None) -> Image.Image:
    """Open lazily (header only) with errors turned into :class:`DataError` naming the file.

    The header's size is checked against the pixel limit here, before any pixel is decoded.
    """
    if data is None:  # a file on disk; else ``path`` only names the in-memory ``data`` in messages
        path = Path(path)
        if not path.exists():
            raise DataError(f"{path}: file not found")
        if path.is_dir():
            raise DataError(f"{path}: is a directory, not an image")
    try:
        with warnings.catch_warnings(record=True) as caught:
            # our own limit below replaces PIL's bomb warning (its hard error is still caught); PIL's
            # complaints about corrupt metadata go to the debug log, not to the user's terminal
            warnings.simplefilter("always")
            im = Image.open(path if data is None else io.BytesIO(data))
        _log_warnings(path, caught)
    except UnidentifiedImageError as exc:
        raise UnsupportedImageError(f"{path}: not an image or an unsupported format") from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{path}: header claims too many pixels ({exc})") from exc
    except MemoryError:
        raise DataError(f"{path}: out of memory while reading the header") from None
    except Exception as exc:  # noqa: BLE001 — any decoder failure is a bad file, never a crash
        raise DataError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from exc
    h, w = im.height, im.width
    top = max_pixels(limit)
    if h * w > top:
        im.close()
        raise ImageTooLargeError(f"{path}: header claims {w}x{h} = {h * w:,} pixels, above the limit of {top:,} "
                        "(raise it with --max-pixels or IRSTD_MAX_PIXELS)")
    if h < 1 or w < 1:
        im.close()
        raise DataError(f"{path}: empty image ({w}x{h} pixels)")
    return im


def read_header(path: str | Path) -> ImageHeader:
    """Size, mode and page count from the header only: cheap enough to validate a whole dataset."""
    with _open(path) as im:
        return ImageHeader(Path(path), (im.height, im.width), im.mode, _page_count(path, im))


def _page_count(path: str | Path, im: Image.Image) -> int:
    """Pages of an opened image; a corrupt chain of pages is a :class:`DataError`, PIL's warnings go to the log."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frames = int(getattr(im, "n_frames", 1) or 1)
        _log_warnings(path, caught)
        return frames
    except Exception as exc:  # noqa: BLE001 — counting pages parses the file: a corrupt one may fail
        raise DataError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from exc


def multi_page_reason(frames: int) -> str:
    """The one wording of the multi-page defect (found from the header or when decoding)."""
    return f"multi-page file ({frames} pages); expected a single frame"


def _decode(path: str | Path, limit: int | None = None, data: bytes | None = None) -> Image.Image:
    """Open and fully decode one single-page image (a file, or ``data`` named ``path``), or raise :class:`DataError`."""
    im = _open(path, limit, data)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if int(getattr(im, "n_frames", 1) or 1) > 1:
                raise DataError(f"{path}: {multi_page_reason(im.n_frames)}")
            im.load()
        _log_warnings(path, caught)
        return im
    except DataError:
        im.close()
        raise
    except MemoryError:
        im.close()
        raise DataError(f"{path}: out of memory while decoding") from None
    except Exception as exc:  # noqa: BLE001 — any decoder failure is a bad file, never a crash
        im.close()
        what = "truncated file" if "truncat" in str(exc).lower() else "cannot decode pixels"
        raise DataError(f"{path}: {what} ({type(exc).__name__}: {exc})") from exc


def _pixels(path: str | Path, im: Image.Image, close: bool = True) -> np.ndarray:
    """:func:`_to_array` with conversion failures (odd modes, short buffers) as :class:`DataError`;
    ``im`` is closed after unless ``close`` is False (a stack read page by page)."""
    try:
        return _to_array(im)
    except MemoryError:
        raise DataError(f"{path}: out of memory while converting pixels") from None
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: cannot convert {im.mode} pixels ({type(exc).__name__}: {exc})") from exc
    finally:
        if close:
            im.close()


def _to_array(im: Image.Image) -> np.ndarray:
    """Pixels as an array: (H, W) or (H, W, C), dtype following the mode."""
    mode = im.mode
    if mode == "1":
        return np.asarray(im.convert("L"))
    if mode in ("P", "PA"):
        # palette indices mean nothing on their own: resolve them to colours
        return np.asarray(im.convert("RGBA" if "transparency" in im.info or mode == "PA" else "RGB"))
    if mode.startswith("I;16"):
        # uint16 in native byte order, whatever the file's order (I;16B is big-endian)
        return np.asarray(im).astype(np.uint16)
    if mode in ("L", "LA", "RGB", "RGBA", "I", "F"):
        return np.asarray(im)
    if mode == "YCbCr":
        return np.asarray(im)[..., 0]  # Y is the luminance
    return np.asarray(im.convert("RGB"))


def _channels_to_gray(arr: np.ndarray) -> np.ndarray:
    """(H, W[, C]) → float32 (H, W); alpha is dropped, RGB weighted as luminance."""
    if arr.ndim == 2:
        return arr.astype(np.float32, copy=False)
    c = arr.shape[2]
    if c in (1, 2):  # L or LA
        return arr[..., 0].astype(np.float32)
    rgb = arr[..., :3]
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return rgb[..., 0].astype(np.float32)  # grey stored as RGB: keep exact values
    return rgb.astype(np.float32) @ _LUMA


def load_image(path: str | Path, *, max_pixels: int | None = None) -> np.ndarray:
    """One frame as float32 (H, W) in its native range (8-bit 0..255, 16-bit 0..65535, float as is).

    Any PIL mode is accepted; colour is reduced to luminance, alpha is ignored. Raises
    :class:`DataError` naming the file for a missing, unreadable, truncated, multi-page or empty file,
    one whose header claims more than ``max_pixels`` (default :func:`max_pixels`;
    :class:`ImageTooLargeError`), a file that is no image (:class:`UnsupportedImageError`), and any
    decoder error.
    """
    return _frame(path, _decode(path, max_pixels))


def load_image_bytes(data: bytes, name: str = "<bytes>", *, max_pixels: int | None = None) -> np.ndarray:
    """:func:`load_image` for an encoded image held in memory (an upload): same modes, same checks,
    same output; ``name`` stands for the file in error messages."""
    return _frame(name, _decode(name, max_pixels, data))


def iter_pages(path: str | Path, *, want: Callable[[int], bool] | None = None,
               max_pixels: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(page, frame) for each page of a multi-page image (a TIFF stack), each frame as :func:`load_image`
    gives one; pages ``want`` refuses are skipped without converting their pixels.

    A page that cannot be read raises :class:`DataError` naming the file and the page; the pages before
    it have been yielded. Only the current page is held in memory.
    """
    im = _open(path, max_pixels)
    top = _pixel_limit(max_pixels)
    with im:
        n = _page_count(path, im)
        for page in range(n):
            if want is not None and not want(page):
                continue
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    im.seek(page)
                    if im.height * im.width > top:  # pages of one stack may differ in size
                        raise ImageTooLargeError(f"{path}: page {page} claims {im.width}x{im.height} pixels, "
                                                 f"above the limit of {top:,}")
                    im.load()
                _log_warnings(path, caught)
            except DataError:
                raise
            except MemoryError:
                raise DataError(f"{path}: page {page}: out of memory while decoding") from None
            except Exception as exc:  # noqa: BLE001 — any decoder failure is a bad page, never a crash
                raise DataError(f"{path}: page {page}: cannot decode ({type(exc).__name__}: {exc})") from exc
            yield page, _frame(f"{path} page {page}", im, close=False)


def _frame(path: str | Path, im: Image.Image, close: bool = True) -> np.ndarray:
    """Decoded image → float32 (H, W) grey frame, with the shape and finiteness checks."""
    arr = _pixels(path, im, close)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise DataError(f"{path}: unexpected pixel array of shape {arr.shape}")
    arr = _channels_to_gray(arr)
    if not np.isfinite(arr).all():
        raise DataError(f"{path}: contains NaN or infinite pixel values")
    return np.ascontiguousarray(arr, dtype=np.float32)


def load_mask(path: str | Path, *, max_pixels: int | None = None) -> np.ndarray:
    """A target mask as bool (H, W): any non-zero colour is target (alpha ignored).

    Errors as :func:`load_image`; NaN counts as target (it is non-zero), so a float mask is never dropped.
    """
    arr = _pixels(path, _decode(path, max_pixels))
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise DataError(f"{path}: unexpected pixel array of shape {arr.shape}")
    if arr.ndim == 3:
        arr = arr[..., : 3 if arr.shape[2] >= 3 else 1]  # drop alpha
        return np.ascontiguousarray((arr != 0).any(axis=2))
    return np.ascontiguousarray(arr != 0)


def save_image(path: str | Path, image: np.ndarray, bit_depth: int = 8) -> None:
    """Write (H, W) values in native range as an 8- or 16-bit grey PNG/TIFF (rounded, clipped)."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    top = 255 if bit_depth == 8 else 65535
    arr = np.clip(np.rint(image), 0, top).astype(np.uint8 if bit_depth == 8 else np.uint16)
    Image.fromarray(arr).save(path)


def save_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write a bool (H, W) mask as an 8-bit PNG with 0 / 255."""
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path)


def read_split_file(path: str | Path) -> list[str]:
    """Stems listed in a split file, in order, without duplicates.

    Tolerates CRLF or CR line ends, blank lines, surrounding spaces, a missing final newline,
    ``#`` comments, and entries written as file names or paths (``images/X.png`` → ``X``).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: split file not found")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: split file is not UTF-8 text ({exc})") from exc
    stems: list[str] = []
    seen: set[str] = set()
    duplicates = 0
    for line in text.splitlines():  # handles \r\n, \r and \n
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        name = entry.replace("\\", "/").rsplit("/", 1)[-1]
        if name.lower().endswith(IMAGE_EXTENSIONS):
            name = name.rsplit(".", 1)[0]
        if name in seen:
            duplicates += 1
            continue
        seen.add(name)
        stems.append(name)
    if duplicates:
        log.warning("%s: %d duplicate entries ignored", path, duplicates)
    return stems
