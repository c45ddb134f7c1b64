"""The dataset object and :func:`open_dataset`, the one entry point for folders on disk."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ..core.errors import DataError
from .io import load_image, load_mask
from .items import Sample, Transform, check_normalization, make_item
from .layouts import Layout, detect_layout, index_mask_override
from .stats import compute_normalization
from .validate import PairFiles, Problem, check_items, collect_items, format_problems, size_mismatch_reason

__all__ = ["IRSTDDataset", "open_dataset", "Transform"]

log = logging.getLogger(__name__)


class IRSTDDataset(Dataset):
    """Image/mask pairs on disk; each item is a :class:`~irstd.data.items.Sample` dict.

    ``{"image": float32 (1, H, W) = (x − mean) / std, "mask": float32 (1, H, W) in {0, 1},
    "name": stem, "path": image path}`` — then ``transform`` (joint, on that dict) if given.
    ``items`` lists the :class:`~irstd.data.validate.PairFiles` (image, mask, name) behind them.
    """

    generated = False

    def __init__(
        self,
        items: Sequence[PairFiles | tuple[Path, Path, str]],
        normalization: tuple[float, float],
        *,
        transform: Transform | None = None,
        layout: Layout | None = None,
        split: str = "",
        problems: Sequence[Problem] = (),
        skipped: int = 0,
        mask_overrides: Sequence[tuple[str, Path]] = (),
    ) -> None:
        self.items: list[PairFiles] = [PairFiles(Path(i), Path(m), str(s)) for i, m, s in items]
        self.normalization: tuple[float, float] = check_normalization(normalization)
        self.transform = transform
        self.layout = layout
        self.split = split
        self.problems: list[Problem] = list(problems)
        self.skipped = int(skipped)
        self.mask_overrides: list[tuple[str, Path]] = list(mask_overrides)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def names(self) -> list[str]:
        """Stems in item order."""
        return [pair.name for pair in self.items]

    def load_raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The un-normalised frame (float32 H×W, native range) and bool mask of one item."""
        pair = self.items[index]
        try:
            image, mask = load_image(pair.image), load_mask(pair.mask)
        except DataError as exc:  # a defect only the pixels show (open with skip_invalid to find them first)
            raise DataError(f"{exc} (open the dataset with skip_invalid=True / --skip-invalid to skip "
                            "such items)") from exc
        if image.shape != mask.shape:  # files changed since validation
            reason = size_mismatch_reason(pair.image.name, image.shape, mask.shape)
            raise DataError(f"{pair.mask}: {reason}")
        return image, mask

    def __getitem__(self, index: int) -> Sample:
        image, mask = self.load_raw(index)
        pair = self.items[index]
        item = make_item(image, mask, pair.name, pair.image, self.normalization)
        return self.transform(item) if self.transform is not None else item

    def __repr__(self) -> str:
        where = f"{self.layout.name} at {self.layout.root}" if self.layout else "items"
        return (f"IRSTDDataset({where}, split={self.split!r}, {len(self)} items, skipped={self.skipped}, "
                f"normalization=({self.normalization[0]:.4g}, {self.normalization[1]:.4g}))")


def _normalization_items(layout: Layout, split: str, split_file: Path | None, items: list[PairFiles],
                         mask_override: dict[str, Path] | None) -> tuple[list[PairFiles], str]:
    """Items whose images define the statistics: the training part that goes with the requested split."""
    if split_file is not None:
        for sibling in ("train.txt", "trainval.txt"):
            f = split_file.parent / sibling
            if f.is_file():
                if f.resolve() == split_file.resolve():
                    return items, str(f)
                specs = layout.resolve("all")
                train, _, _ = collect_items(specs, split_file=f, mask_override=mask_override)
                return train or items, str(f)
        return items, str(split_file)
    try:
        train_specs = layout.resolve("train")
    except DataError:
        return items, f"split {split!r} (no training split found)"
    if split != "all" and layout.resolve(split) == train_specs:
        return items, f"split {split!r}"
    train, _, _ = collect_items(train_specs, mask_override=mask_override)
    return train or items, f"training split {train_specs[0].name!r}"


def open_dataset(
    root: str | Path | None,
    split: str = "train",
    *,
    split_file: str | Path | None = None,
    mask_dir: str | Path | None = None,
    skip_invalid: bool = False,
    transform: Transform | None = None,
    normalization: tuple[float, float] | None = None,
    verify: bool = False,
) -> IRSTDDataset:
    """Open a dataset folder in any supported layout (see :mod:`irstd.data.layouts`).

    ``split``: ``train``/``trainval``/``test``/``val``/``all`` (mapped per layout) or an exact key such
    as ``idx_320/test``. ``split_file``: any list of stems over the folder's images (overrides
    ``split``). ``mask_dir``: corrected masks that replace the dataset's masks by stem (each use is
    logged). ``normalization``: (mean, std); by default computed from the training split and cached.
    Every problem found raises one :class:`DataError` listing them all, unless ``skip_invalid``, which
    skips them. Headers are checked always; ``verify`` (implied by ``skip_invalid``, so that what is skipped
    is known before the first item is read) decodes every image and mask too: truncated pixels, masks that
    are no label mask. Without it such a file raises :class:`DataError` when its item is read.
    ``root=None`` or ``"synthetic[:N]"`` opens the built-in synthetic dataset instead.
    """
    if root is None or (isinstance(root, str) and root.startswith("synthetic") and not Path(root).exists()):
        from .synthetic_dataset import open_synthetic

        count = root.split(":", 1)[1] if isinstance(root, str) and ":" in root else ""
        if count and not count.isdigit():
            raise DataError(f"{root}: expected 'synthetic' or 'synthetic:N' with N a number of frames")
        n = int(count) if count else None
        return open_synthetic(split, n=n, transform=transform, normalization=normalization)
    layout = detect_layout(root)
    sfile = Path(split_file).expanduser() if split_file is not None else None
    specs = layout.resolve("all") if sfile is not None else layout.resolve(split)
    override = index_mask_override(mask_dir)
    split_name = str(sfile) if sfile is not None else split
    listed_items, problems, used = collect_items(specs, split_file=sfile, mask_override=override)
    for stem, path in used:
        log.info("%s: using corrected mask %s", stem, path)
    items, bad = check_items(listed_items, verify=verify or skip_invalid)
    problems += bad
    listed = len(items) + len(problems)
    where = f"{layout.root} ({layout.name} layout, split {split_name!r})"
    if problems:
        if not skip_invalid:
            raise DataError(format_problems(where, problems, len(items), listed))
        log.warning("%s: skipping %d invalid item%s of %d:\n%s", where, len(problems),
                    "s" if len(problems) != 1 else "", listed, "\n".join(f"  - {p}" for p in problems))
    if not items:
        raise DataError(f"{where}: no usable image/mask pair")
    if normalization is None:
        norm_items, source = _normalization_items(layout, split, sfile, items, override)
        log.debug("normalisation statistics from %s", source)
        normalization = compute_normalization(norm_items)
    return IRSTDDataset(items, normalization, transform=transform, layout=layout, split=split_name,
                        problems=problems, skipped=len(problems) if skip_invalid else 0, mask_overrides=used)

