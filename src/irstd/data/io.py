"""Reading images, masks and split files.

Infrared frames arrive in every PIL mode (8-bit grey, RGB copies of a grey frame, palettes, 16-bit
and 32-bit integers, floats). :func:`load_image` turns all of them into one float32 channel in the
frame's *native* range (0..255 for 8-bit, 0..65535 for 16-bit) so that 14/16-bit dynamic range
survives until normalisation by the dataset's statistics. The result is a :class:`DepthFrame`: it carries
the bit depth its file *declares* (``frame.bit_depth``; :func:`declared_bit_depth`), which decides the
input range at inference, never the values (a dark 16-bit frame is still a 16-bit frame).

Decoding is defensive: a header claiming more than :data:`MAX_PIXELS` pixels (a decompression bomb, or
simply a frame too large for memory), or one that a caller's ``admit`` check refuses (the predictor's
memory budget: ``irstd.inference.memory_budget``), is refused before any pixel is decoded, and *every* decoder
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
from .native_log import reading, route_libtiff_messages

__all__ = [
    "Admit",
    "DepthFrame",
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "ImageHeader",
    "ImageTooLargeError",
    "InvalidMaskError",
    "MAX_MASK_LEVELS",
    "UnsupportedImageError",
    "check_mask_values",
    "declared_bit_depth",
    "max_pixels",
    "load_image",
    "load_image_bytes",
    "iter_pages",
    "load_mask",
    "lossy_container_reason",
    "multi_page_reason",
    "read_header",
    "read_header_bytes",
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


class DepthFrame(np.ndarray):
    """A float32 (H, W) frame read from a file, with ``bit_depth``: the bit depth its file declares.

    8 for 8-bit containers (grey, RGB, palette), 16 for 16-bit ones, or fewer when a 16-bit file
    declares its significant bits (PNG ``sBIT``, TIFF ``MaxSampleValue``); None for float and 32-bit
    frames, which declare no integer scale. Views and copies keep the declaration; arithmetic gives
    plain arrays (``frame * 257`` is no longer the file's data).
    """

    bit_depth: int | None

    def __array_finalize__(self, obj: object) -> None:
        self.bit_depth = getattr(obj, "bit_depth", None)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: object, out: tuple | None = None,
                        **kwargs: object) -> object:
        inputs = tuple(x.view(np.ndarray) if isinstance(x, DepthFrame) else x for x in inputs)
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, DepthFrame) else o for o in out)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __reduce__(self) -> tuple:
        fn, args, state = super().__reduce__()  # type: ignore[misc]
        return fn, args, (state, self.bit_depth)

    def __setstate__(self, state: tuple) -> None:
        if len(state) == 2 and isinstance(state[0], tuple):
            state, self.bit_depth = state
        super().__setstate__(state)  # type: ignore[misc]


def declared_bit_depth(frame: np.ndarray) -> int | None:
    """The bit depth a frame's container declares, or None when it declares none.

    A :class:`DepthFrame` (also seen through ``np.asarray`` views of it) gives its ``bit_depth``; a uint8 or
    uint16 array declares 8 or 16 by its dtype; any other array declares nothing.
    """
    if isinstance(frame, np.ndarray) and not isinstance(frame, DepthFrame):
        if frame.dtype == np.uint8:
            return 8
        if frame.dtype == np.uint16:
            return 16
    x: object = frame
    for _ in range(4):  # np.asarray(frame) is a plain view whose base is the DepthFrame (or a view of it)
        if isinstance(x, DepthFrame):
            return x.bit_depth
        x = getattr(x, "base", None)
        if not isinstance(x, np.ndarray):
            return None
    return None


def _png_significant_bits(raw: bytes | None, path: str | Path) -> int | None:
    """Significant bits of the colour samples from a PNG's ``sBIT`` chunk (read up to the first IDAT)."""
    try:
        if raw is None:
            with open(path, "rb") as f:
                raw = f.read(1 << 16)  # sBIT precedes the image data: the first 64 KB hold it
        pos, colour = 8, 0
        for _ in range(64):  # a hostile file cannot make this loop long
            if pos + 8 > len(raw):
                return None
            length, cid = int.from_bytes(raw[pos : pos + 4], "big"), raw[pos + 4 : pos + 8]
            body = raw[pos + 8 : pos + 8 + length]
            if cid == b"IHDR" and len(body) >= 10:
                colour = body[9]
            elif cid == b"sBIT":
                n = 3 if colour in (2, 3, 6) else 1  # RGB(A)/palette: three colour samples; grey: one
                bits = max(body[:n]) if len(body) >= n else 0
                return bits or None
            elif cid in (b"IDAT", b"IEND"):
                return None
            pos += 12 + length
    except (OSError, ValueError):
        return None
    return None


def _declared_bits(im: Image.Image, path: str | Path, data: bytes | None) -> int | None:
    """The bit depth ``im``'s container declares (see :class:`DepthFrame`), read before its pixels."""
    mode = im.mode
    if mode in ("F", "I") and not (mode == "I" and im.format == "PNG"):  # older Pillow: 16-bit PNG as "I"
        return None
    if not (mode.startswith("I;16") or mode == "I"):
        return 8
    significant: int | None = None
    if im.format == "PNG":
        significant = _png_significant_bits(data, path)
    elif im.format == "TIFF":
        top = getattr(im, "tag_v2", {}).get(281)  # MaxSampleValue
        top = top[0] if isinstance(top, tuple) and top else top
        if isinstance(top, int) and 0 < top < 65535:
            significant = int(top).bit_length()
    return significant if significant is not None and 1 <= significant < 16 else 16


class UnsupportedImageError(DataError):
    """Bytes that are not an image in a format PIL reads."""


class ImageTooLargeError(DataError):
    """An image whose header announces more pixels than the limit in force."""


class InvalidMaskError(DataError):
    """A mask file that reads fine but cannot be a label mask; ``kind`` names the defect
    (``lossy_mask``: JPEG or compression traces, ``mask_background``: background not 0)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


#: a label mask holds at most this many distinct values (0 and a few labels); more means lossy
#: compression or a soft/probability map, whose grey levels would all count as target
MAX_MASK_LEVELS = 16

# file formats and name endings of lossy containers: never a valid mask
_LOSSY_FORMATS = ("JPEG", "MPO")
_LOSSY_ENDINGS = (".jpg", ".jpeg")


@dataclass(frozen=True)
class ImageHeader:
    """What the file header says, read without decoding pixels."""

    path: Path
    size: tuple[int, int]  # (height, width)
    mode: str
    frames: int
    format: str = ""  # PIL's name of the container: PNG, JPEG, TIFF, BMP…

    @property
    def lossy(self) -> bool:
        """True for a JPEG container (or a ``.jpg``/``.jpeg`` name): pixels changed by compression."""
        return self.format in _LOSSY_FORMATS or self.path.name.lower().endswith(_LOSSY_ENDINGS)

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

#: a check of a header before decoding: ``admit(name, height, width, mode)`` raises a :class:`DataError`
#: naming ``name`` to refuse the file (e.g. a memory budget: a small file whose header claims 9000x9000)
Admit = Callable[[str, int, int, str], None]


def _log_warnings(path: str | Path, caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        if not issubclass(w.category, Image.DecompressionBombWarning):
            log.debug("%s: %s", path, w.message)


def _open(path: str | Path, limit: int | None = None, data: bytes | None = None, admit: Admit | None = None) -> Image.Image:
    """Open lazily (header only) with errors turned into :class:`DataError` naming the file.

    The header's size is checked against the pixel limit and ``admit`` here, before any pixel is decoded.
    """
    route_libtiff_messages()  # once: libtiff's own lines go to the debug log, not to fd 2
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
    if admit is not None:
        try:
            admit(str(path), h, w, im.mode)
        except DataError:
            im.close()
            raise
    return im


def read_header(path: str | Path) -> ImageHeader:
    """Size, mode and page count from the header only: cheap enough to validate a whole dataset."""
    with _open(path) as im:
        return ImageHeader(Path(path), (im.height, im.width), im.mode, _page_count(path, im), im.format or "")


def read_header_bytes(data: bytes, name: str = "<bytes>", *, max_pixels: int | None = None) -> ImageHeader:
    """:func:`read_header` of an image in memory (``name`` names it in messages); the size is checked
    against ``max_pixels`` as :func:`load_image_bytes` would, before any pixel is decoded."""
    with _open(name, max_pixels, data) as im:
        return ImageHeader(Path(name), (im.height, im.width), im.mode, _page_count(name, im), im.format or "")


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


def _decode(path: str | Path, limit: int | None = None, data: bytes | None = None,
            admit: Admit | None = None) -> Image.Image:
    """Open and fully decode one single-page image (a file, or ``data`` named ``path``), or raise :class:`DataError`."""
    im = _open(path, limit, data, admit)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if int(getattr(im, "n_frames", 1) or 1) > 1:
                raise DataError(f"{path}: {multi_page_reason(im.n_frames)}")
            with reading(path):
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


def load_image(path: str | Path, *, max_pixels: int | None = None, admit: Admit | None = None) -> DepthFrame:
    """One frame as float32 (H, W) in its native range (8-bit 0..255, 16-bit 0..65535, float as is),
    a :class:`DepthFrame` carrying the bit depth its file declares.

    Any PIL mode is accepted; colour is reduced to luminance, alpha is ignored. Raises
    :class:`DataError` naming the file for a missing, unreadable, truncated, multi-page or empty file,
    one whose header claims more than ``max_pixels`` (default :func:`max_pixels`;
    :class:`ImageTooLargeError`), a file that is no image (:class:`UnsupportedImageError`), one that
    ``admit`` (:data:`Admit`) refuses from its header, and any decoder error.
    """
    return _frame(path, _decode(path, max_pixels, admit=admit))


def load_image_bytes(data: bytes, name: str = "<bytes>", *, max_pixels: int | None = None,
                     admit: Admit | None = None) -> DepthFrame:
    """:func:`load_image` for an encoded image held in memory (an upload): same modes, same checks,
    same output; ``name`` stands for the file in error messages."""
    return _frame(name, _decode(name, max_pixels, data, admit), data)


def iter_pages(path: str | Path, *, want: Callable[[int], bool] | None = None,
               max_pixels: int | None = None, admit: Admit | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(page, frame) for each page of a multi-page image (a TIFF stack), each frame as :func:`load_image`
    gives one; pages ``want`` refuses are skipped without converting their pixels.

    A page that cannot be read raises :class:`DataError` naming the file and the page; the pages before
    it have been yielded. Only the current page is held in memory. ``admit`` checks each page's size
    before it is decoded.
    """
    im = _open(path, max_pixels)
    top = _pixel_limit(max_pixels)
    with im:
        n = _page_count(path, im)
        for page in range(n):
            if want is not None and not want(page):
                continue
            try:
                with warnings.catch_warnings(record=True) as caught, reading(path):
                    warnings.simplefilter("always")
                    im.seek(page)
                    if im.height * im.width > top:  # pages of one stack may differ in size
                        raise ImageTooLargeError(f"{path}: page {page} claims {im.width}x{im.height} pixels, "
                                                 f"above the limit of {top:,}")
                    if admit is not None:
                        admit(f"{path} page {page}", im.height, im.width, im.mode)
                    im.load()
                _log_warnings(path, caught)
            except DataError:
                raise
            except MemoryError:
                raise DataError(f"{path}: page {page}: out of memory while decoding") from None
            except Exception as exc:  # noqa: BLE001 — any decoder failure is a bad page, never a crash
                raise DataError(f"{path}: page {page}: cannot decode ({type(exc).__name__}: {exc})") from exc
            yield page, _frame(f"{path} page {page}", im, close=False)


def _frame(path: str | Path, im: Image.Image, data: bytes | None = None, close: bool = True) -> DepthFrame:
    """Decoded image → float32 (H, W) grey :class:`DepthFrame` with its declared bit depth, with the shape
    and finiteness checks."""
    bits = _declared_bits(im, path, data)
    arr = _pixels(path, im, close)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise DataError(f"{path}: unexpected pixel array of shape {arr.shape}")
    # the DepthFrame owns its memory (np.asarray views of it then find it as their .base); a grey array is
    # cast straight into it, without an intermediate float32 copy
    try:
        gray = arr if arr.ndim == 2 else _channels_to_gray(arr)
        out = DepthFrame(gray.shape, dtype=np.float32)
        out.view(np.ndarray)[...] = gray
    except MemoryError:
        raise DataError(f"{path}: out of memory while converting pixels") from None
    del gray, arr
    if not np.isfinite(out.view(np.ndarray)).all():
        raise DataError(f"{path}: contains NaN or infinite pixel values")
    if bits is not None and bits < 16 and float(out.max()) > 2**bits - 1:
        # values above the declared significant bits: PNG's own reading of sBIT (samples scaled up to
        # the full 16 bits), so the scale is the container's
        bits = 16
    out.bit_depth = bits
    return out


def load_mask(path: str | Path, *, max_pixels: int | None = None) -> np.ndarray:
    """A target mask as bool (H, W): 0 is background, any other colour is target (alpha ignored).

    Errors as :func:`load_image`, plus :class:`InvalidMaskError` for a mask that cannot be a label
    mask (:func:`check_mask_values`; a JPEG file): such a mask would give silently wrong metrics.
    """
    im = _decode(path, max_pixels)
    if im.format in _LOSSY_FORMATS or str(path).lower().endswith(_LOSSY_ENDINGS):
        im.close()
        raise InvalidMaskError(f"{path}: {lossy_container_reason()}", "lossy_mask")
    arr = _pixels(path, im)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise DataError(f"{path}: unexpected pixel array of shape {arr.shape}")
    if arr.ndim == 3:
        arr = arr[..., : 3 if arr.shape[2] >= 3 else 1].max(axis=2)  # drop alpha; non-zero in any colour
    check_mask_values(arr, path)
    return np.ascontiguousarray(arr != 0)  # NaN is non-zero: target


def lossy_container_reason() -> str:
    """The one wording of a mask stored in a lossy (JPEG) file."""
    return ("mask is a JPEG file: lossy compression turns target edges into grey levels that count as "
            "target; save masks losslessly (PNG)")


def _levels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, pixel count of each) of a (H, W) mask; bincount for 8/16-bit (fast)."""
    if values.dtype in (np.uint8, np.uint16, np.bool_):
        counts = np.bincount(values.ravel().astype(np.intp, copy=False))
        levels = np.flatnonzero(counts)
        return levels, counts[levels]
    levels, counts = np.unique(values, return_counts=True)
    return levels, counts


def check_mask_values(values: np.ndarray, path: str | Path = "<mask>") -> None:
    """Raise :class:`InvalidMaskError` unless ``values`` (H, W) can be a label mask.

    * the background (the most common value; targets are small) must be 0, else every pixel is target;
    * at most :data:`MAX_MASK_LEVELS` distinct values, else lossy compression or a soft map;
    * for masks whose top value is 64 or more (0..255-style), at most one grey level within 1/16 of
      the range from black or from the top: compression ringing leaves several (``{0, 1, 254, 255}``),
      label masks do not (``{0, 1, 128, 255}`` is legal).
    """
    levels, counts = _levels(values)
    top = levels[-1] if levels.size else 0
    background = levels[int(np.argmax(counts))]
    if background != 0:
        raise InvalidMaskError(
            f"{path}: mask background (its most common value) is {_num(background)}, not 0: every pixel "
            "would count as target; masks must mark background 0 and targets non-zero", "mask_background")
    if levels.size > MAX_MASK_LEVELS:
        raise InvalidMaskError(
            f"{path}: mask has {levels.size} distinct values (a label mask has at most {MAX_MASK_LEVELS}): "
            "lossy compression or a soft map; save a 0/255 mask losslessly (PNG)", "lossy_mask")
    if np.isfinite(top) and top >= 64:
        band = top / 16
        near = [v for v in levels if (0 < v <= band) or (top - band <= v < top)]
        if len(near) >= 2:
            shown = ", ".join(_num(v) for v in levels)
            raise InvalidMaskError(
                f"{path}: mask has grey levels next to black and white ({shown}): the trace of lossy "
                "compression; save a 0/255 mask losslessly (PNG)", "lossy_mask")


def _num(v: object) -> str:
    f = float(v)  # type: ignore[arg-type]
    return str(int(f)) if f.is_integer() else f"{f:g}"


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
