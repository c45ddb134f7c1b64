"""Recognising the folder layouts IRSTD datasets are published in.

Layouts (``Layout.name``):

* ``sirst`` — SIRST release: ``images/X.png``, ``masks/X_pixels0.png``, splits in ``idx_427/`` or
  ``idx_320/`` (``trainval.txt``, ``test.txt``, ``train.txt``, ``val.txt``, ``trainvaltest.txt``);
* ``dnanet`` — ``images/``, ``masks/``, ``50_50/train.txt|test.txt`` (NUDT-SIRST, NUAA-SIRST);
* ``basicirstd`` — ``images/``, ``masks/``, ``img_idx/train_<NAME>.txt|test_<NAME>.txt``;
* ``plain`` — ``images/``, ``masks/`` and ``train.txt``/``test.txt``/``trainval.txt``/``val.txt`` at the
  root (or no split file at all: only the ``all`` split); IRSTD-1k's ``IRSTD1k_Img/`` and
  ``IRSTD1k_Label/`` count as images/ and masks/;
* ``folders`` — ``trainval/images``, ``trainval/masks``, ``test/images``, ``test/masks`` (also
  ``train/`` and ``val/``).

Generic split names are mapped per layout by :meth:`Layout.resolve`: ``train`` is the part a model is
fitted on (``trainval.txt`` in the SIRST release, ``train.txt`` in the DNANet layout), ``test`` the held
out part, ``all`` every image in the folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import DataError
from .io import IMAGE_EXTENSIONS

__all__ = ["Layout", "SplitSpec", "detect_layout", "index_images", "index_masks", "index_mask_override",
           "mask_candidates", "MASK_SUFFIXES"]

#: suffixes a mask file name may add to its image's stem (``X_pixels0.png`` in SIRST)
MASK_SUFFIXES = ("_pixels0", "_mask", "_gt", "_label", "_Mask")

_SPLIT_NAMES = ("train", "trainval", "test", "val", "trainvaltest")
_FOLDER_SPLITS = ("trainval", "train", "val", "test")
_IMAGE_DIRS = ("images", "Images", "image", "imgs", "img")
_MASK_DIRS = ("masks", "Masks", "mask", "labels", "label")
# generic split name → file stems to try, in order
_ALIASES_DEFAULT = {"train": ("train", "trainval"), "trainval": ("trainval", "train"), "test": ("test",),
                    "val": ("val",)}
# the SIRST release fits on trainval (train.txt + val.txt) and reports on test
_ALIASES_SIRST = {"train": ("trainval",), "trainval": ("trainval",), "test": ("test",), "val": ("val",)}


@dataclass(frozen=True)
class SplitSpec:
    """Where one split's items come from: a list file over a folder pair, or every image of the pair."""

    name: str
    image_dir: Path
    mask_dir: Path
    list_file: Path | None = None  # None: every image in image_dir


@dataclass(frozen=True)
class Layout:
    """A recognised dataset layout: its name, root and the splits it offers."""

    name: str
    root: Path
    splits: dict[str, list[SplitSpec]] = field(default_factory=dict)
    aliases: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(_ALIASES_DEFAULT))
    #: (image_dir, mask_dir) pairs holding the frames; from the splits when empty
    dirs: tuple[tuple[Path, Path], ...] = ()

    def __str__(self) -> str:
        return self.name

    def image_dirs(self) -> list[tuple[Path, Path]]:
        """Every distinct (image_dir, mask_dir) pair of the layout."""
        pairs: list[tuple[Path, Path]] = list(self.dirs)
        for specs in self.splits.values():
            for s in specs:
                if (s.image_dir, s.mask_dir) not in pairs:
                    pairs.append((s.image_dir, s.mask_dir))
        return pairs

    def resolve(self, split: str) -> list[SplitSpec]:
        """The sources of a split given by generic name (train/trainval/test/val/all) or exact key.

        Exact keys reach every list, e.g. ``idx_427/train`` (SIRST's train.txt) or ``idx_320/test``.
        """
        if split == "all":
            return [SplitSpec("all", i, m) for i, m in self.image_dirs()]
        # generic names first: in the SIRST release "train" means trainval.txt, not train.txt
        for candidate in self.aliases.get(split, ()):
            if candidate in self.splits:
                return self.splits[candidate]
        if split in self.splits:
            return self.splits[split]
        raise DataError(
            f"{self.root}: split {split!r} not found in the {self.name} layout; available: "
            + ", ".join(["all", *self.splits])
            + " (or pass split_file= / --split-file with a list of stems)"
        )


def _subdir(root: Path, names: tuple[str, ...]) -> Path | None:
    """The first of ``names`` that is a folder of ``root``, else a folder named ``<prefix>_<name>``
    (IRSTD-1k ships ``IRSTD1k_Img`` and ``IRSTD1k_Label``)."""
    for n in names:
        if (root / n).is_dir():
            return root / n
    endings = tuple(f"_{n.lower()}" for n in names)
    for d in sorted(root.iterdir()):
        if d.is_dir() and d.name.lower().endswith(endings):
            return d
    return None


def _txt(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.glob("*.txt")) if p.is_file()}


def detect_layout(root: str | Path) -> Layout:
    """Recognise the layout of a dataset folder by inspecting it (see the module docstring)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root}: dataset folder not found")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (pass a dataset folder, or split_file= for a list of stems)")
    img_dir, mask_dir = _subdir(root, _IMAGE_DIRS), _subdir(root, _MASK_DIRS)
    if img_dir is None:
        return _detect_folders(root)
    if mask_dir is None:
        raise DataError(f"{root}: has {img_dir.name}/ but no masks/ folder")

    pair = ((img_dir, mask_dir),)

    def spec(name: str, f: Path) -> list[SplitSpec]:
        return [SplitSpec(name, img_dir, mask_dir, f)]

    # SIRST release: idx_<N>/ folders; the 427-image index is the default
    idx_dirs = sorted((d for d in root.iterdir() if d.is_dir() and re.fullmatch(r"idx_\d+", d.name)),
                      key=lambda d: (d.name != "idx_427", d.name))
    if idx_dirs:
        splits: dict[str, list[SplitSpec]] = {}
        for k, d in enumerate(idx_dirs):
            for stem, f in _txt(d).items():
                if k == 0:
                    splits[stem] = spec(stem, f)
                splits[f"{d.name}/{stem}"] = spec(f"{d.name}/{stem}", f)
        return Layout("sirst", root, splits, dict(_ALIASES_SIRST), pair)
    # DNANet: <a>_<b>/train.txt|test.txt, 50_50 preferred
    ratio_dirs = sorted((d for d in root.iterdir() if d.is_dir() and re.fullmatch(r"\d+_\d+", d.name)
                         and _txt(d)), key=lambda d: (d.name != "50_50", d.name))
    if ratio_dirs:
        splits = {}
        for k, d in enumerate(ratio_dirs):
            for stem, f in _txt(d).items():
                if k == 0:
                    splits[stem] = spec(stem, f)
                splits[f"{d.name}/{stem}"] = spec(f"{d.name}/{stem}", f)
        return Layout("dnanet", root, splits, dirs=pair)
    # BasicIRSTD: img_idx/train_<NAME>.txt, test_<NAME>.txt
    if (root / "img_idx").is_dir():
        files = _txt(root / "img_idx")
        splits = {}
        names = sorted({s.split("_", 1)[1] for s in files if "_" in s and s.split("_", 1)[0] in _SPLIT_NAMES})
        for stem, f in files.items():
            kind, _, dname = stem.partition("_")
            if kind in _SPLIT_NAMES and dname:
                splits[stem] = spec(stem, f)
                # the generic names map to the dataset named like the folder, else the first one
                preferred = root.name if root.name in names else names[0]
                if dname == preferred:
                    splits[kind] = spec(kind, f)
            elif stem in _SPLIT_NAMES:
                splits[stem] = spec(stem, f)
        if splits:
            return Layout("basicirstd", root, splits, dirs=pair)
    # plain: split lists at the root, or none (only "all")
    splits = {stem: spec(stem, f) for stem, f in _txt(root).items() if stem in _SPLIT_NAMES}
    return Layout("plain", root, splits, dirs=pair)


def _detect_folders(root: Path) -> Layout:
    splits: dict[str, list[SplitSpec]] = {}
    for name in _FOLDER_SPLITS:
        d = root / name
        i, m = (_subdir(d, _IMAGE_DIRS), _subdir(d, _MASK_DIRS)) if d.is_dir() else (None, None)
        if i is not None and m is not None:
            splits[name] = [SplitSpec(name, i, m)]
    if not splits:
        found = ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())[:12]) or "nothing"
        raise DataError(
            f"{root}: no dataset layout recognised (expected images/ and masks/ folders, or "
            f"trainval/ and test/ folders each holding images/ and masks/); found: {found}"
        )
    return Layout("folders", root, splits)


def _scan(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as it:
        return sorted((e for e in it if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)),
                      key=lambda e: e.name)


def index_images(folder: str | Path) -> dict[str, Path]:
    """stem → image path for every image file of a folder (png preferred when a stem repeats)."""
    folder = Path(folder)
    out: dict[str, Path] = {}
    for e in _scan(folder):
        stem = e.name.rsplit(".", 1)[0]
        if stem not in out or e.name.lower().endswith(".png"):
            out[stem] = folder / e.name
    return out


def mask_candidates(folder: str | Path) -> dict[str, list[Path]]:
    """stem → every mask file of a folder that answers to it, the preferred one first.

    A stem answers to ``<stem>.<ext>`` (png first) and to ``<stem><suffix>.<ext>`` (``_pixels0``,
    ``_mask``…; after the exact names). More than one candidate is a duplicate: which one is the
    truth is the user's call, so :func:`irstd.data.validate.collect_items` reports it.
    """
    folder = Path(folder)
    out: dict[str, list[Path]] = {}
    suffixed: dict[str, list[Path]] = {}
    for e in _scan(folder):
        stem = e.name.rsplit(".", 1)[0]
        p = folder / e.name
        exact = out.setdefault(stem, [])
        if e.name.lower().endswith(".png"):
            exact.insert(0, p)
        else:
            exact.append(p)
        for suf in MASK_SUFFIXES:
            if stem.endswith(suf) and len(stem) > len(suf):
                suffixed.setdefault(stem[: -len(suf)], []).append(p)
    for stem, paths in suffixed.items():
        out.setdefault(stem, []).extend(paths)  # an exact name wins over a suffixed one
    return out


def index_masks(folder: str | Path) -> dict[str, Path]:
    """stem → mask path; ``<stem><suffix>`` (``_pixels0``, ``_mask``…) also answers to ``<stem>``.

    The preferred of :func:`mask_candidates` (an exact name wins over a suffixed one, png over others).
    """
    return {stem: paths[0] for stem, paths in mask_candidates(folder).items()}


def index_mask_override(mask_dir: str | Path | None) -> dict[str, Path] | None:
    """stem → mask of a folder of corrected masks (``--mask-dir``); None when none is given.

    Raises :class:`DataError` when the folder does not exist: a mistyped path must not silently fall
    back to the dataset's own masks.
    """
    if mask_dir is None:
        return None
    folder = Path(mask_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: mask folder not found")
    return index_masks(folder)
