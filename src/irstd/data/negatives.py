"""Target-free frames ("negatives"): real backgrounds where every pixel is background.

A negatives folder is opened explicitly with :func:`open_negatives`, never by :func:`open_dataset`: a
target dataset whose masks are missing must not turn into a set of "empty" frames silently, so a folder
that holds any mask is refused here, and a dataset without masks is refused there.

Frames are grouped by scene (:func:`scene_group`: the stem before its frame number, ``TH_120`` → ``TH``,
``20210725-S2-7`` → ``20210725-S2``). The fixed train / held-out split of the SIRST-V2 background groups
lives in ``negatives_split.json`` beside this file (one place; docs/clutter.md explains the choice): a
model is never trained on the held-out groups, and false alarms are reported on them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..core.errors import DataError
from .io import load_image
from .layouts import MASK_SUFFIXES, index_images

__all__ = ["NegativeFrame", "NegativeSet", "NEGATIVE_SPLITS", "open_negatives", "scene_group", "negatives_split"]

#: the split names :func:`open_negatives` takes (``None`` = every frame)
NEGATIVE_SPLITS = ("train", "heldout")
_MASK_DIRS = ("masks", "mask", "labels", "label", "gt", "annotations")
_FRAME_NUMBER = re.compile(r"^(?P<group>.*?)[-_ ]?\d+$")


def scene_group(stem: str) -> str:
    """The scene group of a frame: its stem without the trailing frame number (the whole stem if none)."""
    m = _FRAME_NUMBER.match(stem)
    return m.group("group") if m and m.group("group") else stem


@lru_cache(maxsize=1)
def negatives_split() -> dict[str, tuple[str, ...]]:
    """The committed split of the SIRST-V2 background scene groups: ``{"train": groups, "heldout": groups}``."""
    text = resources.files("irstd.data").joinpath("negatives_split.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    return {name: tuple(raw[name]) for name in NEGATIVE_SPLITS}


@dataclass(frozen=True)
class NegativeFrame:
    """One target-free frame: its stem, file and scene group."""

    stem: str
    path: Path
    group: str


class NegativeSet(Sequence[NegativeFrame]):
    """The frames of a negatives folder (sorted by stem); ``load(i)`` decodes frame ``i``.

    ``frames[i]`` is a :class:`NegativeFrame`; :meth:`load` gives float32 (H, W) in the file's native
    range, as :func:`irstd.data.load_image` does (normalisation is the caller's: the model's statistics).
    """

    def __init__(self, root: Path, frames: Sequence[NegativeFrame], split: str | None = None) -> None:
        self.root = root
        self.frames = tuple(frames)
        self.split = split

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> NegativeFrame:  # type: ignore[override]
        return self.frames[index]

    def __iter__(self) -> Iterator[NegativeFrame]:
        return iter(self.frames)

    @property
    def groups(self) -> tuple[str, ...]:
        """The scene groups present, sorted."""
        return tuple(sorted({f.group for f in self.frames}))

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(f.stem for f in self.frames)

    def load(self, index: int) -> np.ndarray:
        """Frame ``index`` as float32 (H, W), native range; a bad file raises :class:`DataError` naming it."""
        return load_image(self.frames[index].path)

    def __repr__(self) -> str:
        split = f", split={self.split!r}" if self.split else ""
        return f"NegativeSet({str(self.root)!r}, {len(self)} frames, {len(self.groups)} groups{split})"


def _image_folder(root: Path) -> Path:
    """``root/images`` when it exists (the release layout), else ``root`` itself."""
    sub = root / "images"
    return sub if sub.is_dir() else root


def _refuse_masks(root: Path, folder: Path, images: dict[str, Path]) -> None:
    """A folder with masks holds targets: it is a dataset, not negatives (one line, naming what was found)."""
    for base in sorted({root, folder}):
        for sub in sorted(base.iterdir()):
            if sub.is_dir() and sub.name.lower() in _MASK_DIRS:  # any case: "Masks" is a mask folder too
                raise DataError(f"{sub}: a negatives folder has no masks; this looks like a target "
                                "dataset (open it with open_dataset / --data)")
    for stem, path in images.items():
        if any(stem.endswith(suf) for suf in MASK_SUFFIXES):
            raise DataError(f"{path}: a negatives folder has no masks; this file looks like one "
                            "(open a target dataset with open_dataset / --data)")


def open_negatives(root: str | Path, split: str | None = None,
                   groups: Sequence[str] | None = None) -> NegativeSet:
    """Open a folder of target-free frames (``root`` or ``root/images``).

    Args:
        split: ``"train"`` or ``"heldout"`` keeps the scene groups the committed split gives that part
            (:func:`negatives_split`); ``None`` keeps every frame.
        groups: keep only these scene groups (after ``split``); a group with no frame is an error.

    Raises :class:`DataError` with one line for a missing or empty folder, a folder holding masks, an
    unknown split, or a selection that leaves no frame.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (negatives: a folder of target-free frames)")
    folder = _image_folder(root)
    images = index_images(folder)
    if not images:
        raise DataError(f"{folder}: no image files; a negatives folder needs target-free frames "
                        "(.png, .bmp, .jpg, .tif)")
    _refuse_masks(root, folder, images)
    frames = [NegativeFrame(stem, path, scene_group(stem)) for stem, path in sorted(images.items())]
    if split is not None:
        if split not in NEGATIVE_SPLITS:
            raise DataError(f"{root}: unknown negatives split {split!r}; choose one of {', '.join(NEGATIVE_SPLITS)}")
        keep = set(negatives_split()[split])
        frames = [f for f in frames if f.group in keep]
    if groups is not None:
        present = {f.group for f in frames}
        missing = sorted(set(groups) - present)
        if missing:
            raise DataError(f"{root}: no frame of scene group(s) {', '.join(missing)}"
                            f" (present: {', '.join(sorted(present)) or 'none'})")
        frames = [f for f in frames if f.group in set(groups)]
    if not frames:
        raise DataError(f"{root}: no frame left for split {split!r}: its groups are "
                        f"{', '.join(negatives_split()[split]) if split else '-'}")
    return NegativeSet(root, frames, split)
