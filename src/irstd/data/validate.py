"""Pairing images with masks and checking the pairs from file headers only.

Every defect is collected as a :class:`Problem` (path + reason) instead of stopping at the first, so
the user sees the whole list once. Checks use the headers (PIL opens lazily), so validating a few
hundred pairs takes a fraction of a second; pixel-level defects (a truncated body) surface when the
frame is loaded, or with ``verify=True`` which decodes every file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..core.errors import DataError
from .io import (
    IMAGE_EXTENSIONS,
    load_image,
    load_mask,
    lossy_container_reason,
    multi_page_reason,
    read_header,
    read_split_file,
)
from .layouts import SplitSpec, index_images, mask_candidates

__all__ = ["Problem", "PairFiles", "collect_items", "check_items", "format_problems", "size_mismatch_reason"]

log = logging.getLogger(__name__)

# "<png|bmp|jpg|...>" for the missing-image message, from the one list of extensions
_EXTENSIONS_TEXT = "<" + "|".join(e.lstrip(".") for e in IMAGE_EXTENSIONS) + ">"


class PairFiles(NamedTuple):
    """The files of one dataset entry: image path, mask path and the stem that pairs them."""

    image: Path
    mask: Path
    name: str


@dataclass(frozen=True)
class Problem:
    """One defect: the file concerned, the stem, a kind and a human reason."""

    path: str
    reason: str
    stem: str = ""
    # missing_image | missing_mask | unreadable | size_mismatch | multi_page | duplicate_mask | lossy_mask
    # | mask_background | empty_split
    kind: str = "other"

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"

    @classmethod
    def from_error(cls, path: Path, exc: DataError, stem: str, kind: str = "unreadable") -> Problem:
        """The problem of a file whose reading raised ``exc`` (its ``"<path>: "`` prefix dropped); the
        error's own ``kind`` (:class:`~irstd.data.io.InvalidMaskError`) wins over ``kind``."""
        return cls(str(path), str(exc).removeprefix(f"{path}: "), stem, getattr(exc, "kind", kind))


def size_mismatch_reason(image_name: str, image_hw: tuple[int, int], mask_hw: tuple[int, int]) -> str:
    """The one wording of an image/mask size mismatch (sizes given as (H, W), written W×H)."""
    return (f"size mismatch: mask is {mask_hw[1]}x{mask_hw[0]} (WxH) but image {image_name} is "
            f"{image_hw[1]}x{image_hw[0]}")


def collect_items(
    specs: list[SplitSpec],
    *,
    split_file: Path | None = None,
    mask_override: dict[str, Path] | None = None,
) -> tuple[list[PairFiles], list[Problem], list[tuple[str, Path]]]:
    """Pair each listed stem with its image and mask.

    Returns the complete items, the problems of the others (missing image or mask, two masks for one
    stem), and the (stem, path) mask overrides that were used.
    """
    items: list[PairFiles] = []
    problems: list[Problem] = []
    overrides: list[tuple[str, Path]] = []
    candidates: dict[Path, dict[str, list[Path]]] = {}  # mask folder → stem → its mask files
    # a split_file is one list over every folder of the layout; layout lists go with their folder
    groups: list[tuple[Path | None, list[SplitSpec]]] = (
        [(split_file, specs)] if split_file is not None else [(s.list_file, [s]) for s in specs])
    for list_file, group in groups:
        images: dict[str, Path] = {}
        masks: dict[str, Path] = {}
        for spec in reversed(group):  # the first folder wins on a repeated stem
            images.update(index_images(spec.image_dir))
            found_here = candidates[spec.mask_dir] = mask_candidates(spec.mask_dir)
            masks.update({stem: paths[0] for stem, paths in found_here.items()})
        image_dirs = ", ".join(str(s.image_dir) for s in group)
        stems = read_split_file(list_file) if list_file is not None else sorted(images)
        for stem in stems:
            img = images.get(stem)
            if img is None:
                problems.append(Problem(str(group[0].image_dir / stem), f"listed in {list_file} but no image "
                                        f"named {stem}.{_EXTENSIONS_TEXT} in {image_dirs}", stem, "missing_image"))
                continue
            if mask_override and stem in mask_override:
                mask: Path | None = mask_override[stem]
                overrides.append((stem, mask_override[stem]))
            else:
                mask = masks.get(stem)
            if mask is None:
                mask_dir = next((s.mask_dir for s in group if s.image_dir == img.parent), group[0].mask_dir)
                problems.append(Problem(str(img), f"no mask for {stem} in {mask_dir}", stem, "missing_mask"))
                continue
            if mask.parent not in candidates:
                candidates[mask.parent] = mask_candidates(mask.parent)
            found = candidates[mask.parent].get(stem, [mask])
            if len(found) > 1:  # taking one would silently score against whichever sorts first
                problems.append(Problem(str(mask), f"{len(found)} masks for {stem}: "
                                        + ", ".join(p.name for p in found) + "; keep one", stem, "duplicate_mask"))
                continue
            items.append(PairFiles(img, mask, stem))
    return items, problems, overrides


def _check_pair(pair: PairFiles, verify: bool) -> Problem | None:
    img, mask, stem = pair
    try:
        hi = read_header(img)
    except DataError as exc:
        return Problem.from_error(img, exc, stem)
    try:
        hm = read_header(mask)
    except DataError as exc:
        return Problem.from_error(mask, exc, stem)
    for h in (hi, hm):
        if h.frames > 1:
            return Problem(str(h.path), multi_page_reason(h.frames), stem, "multi_page")
    if hm.lossy:
        return Problem(str(mask), lossy_container_reason(), stem, "lossy_mask")
    if hi.size != hm.size:
        return Problem(str(mask), size_mismatch_reason(img.name, hi.size, hm.size), stem, "size_mismatch")
    if verify:  # decode the pixels too: finds truncated bodies and mask values the header cannot show
        for p, fn in ((img, load_image), (mask, load_mask)):
            try:
                fn(p)
            except DataError as exc:
                return Problem.from_error(p, exc, stem)
    return None


def check_items(items: list[PairFiles], *, verify: bool = False) -> tuple[list[PairFiles], list[Problem]]:
    """Split items into usable ones and problems (unreadable, multi-page, image/mask size mismatch, JPEG
    mask; with ``verify`` also truncated pixels and masks that are no label mask)."""
    good: list[PairFiles] = []
    problems: list[Problem] = []
    for pair in items:
        pair = PairFiles(*pair)  # plain (image, mask, stem) tuples are accepted too
        p = _check_pair(pair, verify)
        if p is None:
            good.append(pair)
        else:
            problems.append(p)
    return good, problems


def format_problems(where: str, problems: list[Problem], usable: int, listed: int) -> str:
    """The error text listing every problem and how to continue without the invalid items."""
    n = len(problems)
    lines = [f"{where}: {n} problem{'s' if n != 1 else ''} ({usable} of {listed} items usable):"]
    lines += [f"  - {p}" for p in problems]
    # a mask that is missing or does not fit its frame can be replaced without touching the dataset
    masks = any(p.kind in ("missing_mask", "size_mismatch") for p in problems)
    fix = "Fix the files, give corrected masks with mask_dir=DIR (CLI: --mask-dir DIR; docs/data.md)," if masks else "Fix the files,"
    lines.append(f"{fix} or pass skip_invalid=True (CLI: --skip-invalid) to skip the {n} invalid "
                 f"item{'s' if n != 1 else ''} and continue.")
    return "\n".join(lines)
