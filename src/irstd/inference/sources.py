"""Frame sources: the image files named by files, folders and glob patterns, in a stable order."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Iterable

from ..core.errors import DataError
from ..data.io import IMAGE_EXTENSIONS

__all__ = ["expand_inputs", "is_image_file"]


def is_image_file(path: Path) -> bool:
    """True for a file whose extension is one :func:`irstd.data.load_image` reads."""
    return path.name.lower().endswith(IMAGE_EXTENSIONS)


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, each folder's images (sorted), each glob's image matches (sorted).

    A name that is neither a file, a folder nor a pattern, or inputs that hold no image at all,
    raise :class:`DataError` naming them.
    """
    inputs = [str(i) for i in inputs]
    files: list[Path] = []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p))
        elif path.is_file():
            files.append(path)
        elif any(c in spec for c in "*?["):
            files += sorted(p for p in map(Path, glob.glob(spec, recursive=True)) if p.is_file() and is_image_file(p))
        else:
            raise DataError(f"input not found: {spec}")
    if not files:
        raise DataError(f"no images found in: {' '.join(inputs)}")
    return files
