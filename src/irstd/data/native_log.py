"""libtiff's own messages (``ZIPDecode: Decoding error at scanline 0…``) to the debug log, not the terminal.

libtiff prints its warnings and errors straight to file descriptor 2 unless a handler is set; PIL sets
none, so a damaged TIFF wrote C-level lines past every logging setting (the file's error already reaches
the user as one :class:`~irstd.core.errors.DataError` line). :func:`route_libtiff_messages` installs
handlers, once, on the libtiff PIL loaded; they format the message and log it at debug level, naming
the file this thread is reading (:func:`reading`). libjpeg needs nothing: PIL silences its messages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

log = logging.getLogger("irstd.data.io")

__all__ = ["reading", "route_libtiff_messages"]

_state = threading.local()
_lock = threading.Lock()
_installed: list[object] = []  #: the callbacks and library, kept alive; non-empty once tried
# va_list passes as a pointer on these ABIs, so the message can be formatted with vsnprintf
_FORMATS = platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64")
_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)


@contextmanager
def reading(path: str | Path) -> Iterator[None]:
    """Name ``path`` in the libtiff messages this thread causes inside the block."""
    before = getattr(_state, "path", None)
    _state.path = str(path)
    try:
        yield
    finally:
        _state.path = before


def _libtiff() -> ctypes.CDLL | None:
    """The libtiff PIL's decoder uses (the one already mapped into this process), else the system's."""
    try:
        from PIL import _imaging  # noqa: F401 — maps the libtiff PIL was built with
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split()[-1] for line in maps if "libtiff" in line.rsplit("/", 1)[-1]}
    except (ImportError, OSError):
        paths = set()
    name = next(iter(sorted(paths)), None) or ctypes.util.find_library("tiff")
    if not name:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def _handler(level: int) -> object:
    libc = ctypes.CDLL(None)
    vsnprintf = libc.vsnprintf
    vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]

    def handle(module: bytes | None, fmt: bytes | None, args: int | None) -> None:
        try:
            if _FORMATS and fmt:
                buf = ctypes.create_string_buffer(1024)
                vsnprintf(buf, len(buf), fmt, args)
                text = buf.value.decode("utf-8", "replace")
            else:
                text = (fmt or b"").decode("utf-8", "replace")
            where = getattr(_state, "path", None) or "libtiff"
            log.log(level, "%s: libtiff %s: %s", where, (module or b"").decode("utf-8", "replace"), text)
        except Exception:  # noqa: BLE001 — a C callback must never raise
            pass

    return _HANDLER(handle)


def route_libtiff_messages() -> bool:
    """Send libtiff's warnings and errors to the debug log (once per process); False where no libtiff was found."""
    with _lock:
        if _installed:
            return len(_installed) > 1
        _installed.append(True)
        lib = _libtiff()
        if lib is None:
            return False
        try:
            warn, error = _handler(logging.DEBUG), _handler(logging.DEBUG)
            for setter, handler in ((lib.TIFFSetWarningHandler, warn), (lib.TIFFSetErrorHandler, error)):
                setter.restype = ctypes.c_void_p
                setter.argtypes = [_HANDLER]
                setter(handler)
        except (AttributeError, OSError):
            return False
        _installed.extend([lib, warn, error])
        return True
