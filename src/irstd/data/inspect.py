"""``irstd data inspect``: what a dataset folder holds and everything wrong with it."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.components import connected_components
from ..core.errors import DataError
from .io import load_image, load_mask, read_header, read_split_file
from .layouts import Layout, detect_layout, index_images, index_mask_override
from .validate import Problem, check_items, collect_items

__all__ = ["InspectReport", "inspect_dataset", "AREA_BINS"]

#: upper bounds (inclusive) of the target-area histogram bins, in pixels
AREA_BINS = (1, 4, 9, 20, 50, 80, 200, math.inf)


@dataclass
class InspectReport:
    """Facts about a dataset: layout, splits, sizes, bit depths, targets, problems."""

    root: Path
    layout: Layout
    n_images: int = 0
    n_pairs: int = 0
    splits: dict[str, tuple[int, int]] = field(default_factory=dict)  # name → (listed, usable)
    sizes: Counter = field(default_factory=Counter)  # (h, w) → count
    modes: Counter = field(default_factory=Counter)  # PIL mode → count
    effective_bits: Counter = field(default_factory=Counter)  # bits actually used by >8-bit frames
    n_targets: int = 0
    empty_masks: int = 0
    target_areas: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    overrides: list[tuple[str, Path]] = field(default_factory=list)
    generic: dict[str, str] = field(default_factory=dict)  # train/test/val → split it maps to

    def area_histogram(self) -> list[tuple[str, int]]:
        """(bin label, count) of target areas over :data:`AREA_BINS`."""
        counts = Counter(next(i for i, hi in enumerate(AREA_BINS) if a <= hi) for a in self.target_areas)
        out, lo = [], 1
        for i, hi in enumerate(AREA_BINS):
            label = f"{lo}" if hi == lo else (f">{lo - 1}" if math.isinf(hi) else f"{lo}-{int(hi)}")
            out.append((label, counts.get(i, 0)))
            lo = int(hi) + 1 if not math.isinf(hi) else lo
        return out

    def format(self) -> str:
        """Human-readable report (the CLI prints it)."""
        lines = [f"dataset: {self.root}", f"layout: {self.layout.name}",
                 f"images: {self.n_images} ({self.n_pairs} with a usable mask)"]
        lines.append("splits:" if self.splits else "splits: none (only 'all')")
        for name, (listed, usable) in self.splits.items():
            lines.append(f"  {name:<22} {listed:>6} listed  {usable:>6} usable")
        if self.generic:
            lines.append("  split names: " + ", ".join(f"{g} -> {n}" for g, n in self.generic.items()))
        if self.sizes:
            hs = [h for h, _ in self.sizes.elements()]
            ws = [w for _, w in self.sizes.elements()]
            top = ", ".join(f"{w}x{h} ({c})" for (h, w), c in self.sizes.most_common(5))
            lines.append(f"image sizes (WxH): {len(self.sizes)} distinct, width {min(ws)}-{max(ws)}, "
                         f"height {min(hs)}-{max(hs)}; most common: {top}")
        if self.modes:
            lines.append("pixel formats: " + ", ".join(f"{m} ({c})" for m, c in self.modes.most_common()))
        if self.effective_bits:
            lines.append("bits used by >8-bit frames: "
                         + ", ".join(f"{b}-bit ({c})" for b, c in sorted(self.effective_bits.items())))
        lines.append(f"targets: {self.n_targets} in {self.n_pairs - self.empty_masks} images "
                     f"({self.empty_masks} masks without target; 8-connected components)")
        if self.target_areas:
            a = np.asarray(self.target_areas)
            lines.append(f"target area (px): min {a.min()}, median {int(np.median(a))}, max {a.max()}")
            lines.append("  " + "  ".join(f"{label}: {c}" for label, c in self.area_histogram()))
        for stem, path in self.overrides:
            lines.append(f"mask override: {stem} <- {path}")
        lines.append(f"problems: {len(self.problems)}")
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def _effective_bits(path: Path) -> int:
    top = float(load_image(path).max())
    return max(1, int(math.ceil(math.log2(top + 1)))) if top > 0 else 1


def inspect_dataset(root: str | Path, *, split_file: str | Path | None = None,
                    mask_dir: str | Path | None = None, verify: bool = False) -> InspectReport:
    """Scan a dataset folder: every image of the layout (or of ``split_file``), all split lists, all
    masks (decoded to count targets) and every problem found. Never raises for per-file defects."""
    layout = detect_layout(root)
    report = InspectReport(Path(root), layout)
    override = index_mask_override(mask_dir)
    sfile = Path(split_file) if split_file is not None else None
    items, problems, report.overrides = collect_items(layout.resolve("all"), split_file=sfile,
                                                      mask_override=override)
    report.n_images = len(items) + sum(p.kind in ("missing_mask", "duplicate_mask") for p in problems)
    good, bad = check_items(items, verify=verify)
    report.problems = problems + bad
    usable: set[str] = set()
    for img, mask, stem in good:
        try:
            mask_on = load_mask(mask)
        except DataError as exc:  # unreadable, or no label mask (lossy, background not 0)
            report.problems.append(Problem.from_error(mask, exc, stem))
            continue
        usable.add(stem)
        header = read_header(img)
        report.sizes[header.size] += 1
        report.modes[header.mode] += 1
        if header.bits > 8:
            report.effective_bits[_effective_bits(img)] += 1
        cc = connected_components(mask_on, 8)  # 8-connected, as the target-level metrics count
        report.n_targets += cc.n
        report.empty_masks += cc.n == 0
        report.target_areas += cc.areas.tolist()
    report.n_pairs = len(usable)
    if sfile is not None:
        lists = {str(sfile): sfile}
    else:  # one row per list file, under its longest (most explicit) name
        by_file: dict[Path, str] = {}
        for name, specs in layout.splits.items():
            f = specs[0].list_file
            if f is not None and len(name) > len(by_file.get(f, "")):
                by_file[f] = name
        lists = {name: f for f, name in by_file.items()}
        for generic in ("train", "test", "val"):
            try:
                spec = layout.resolve(generic)[0]
                f = spec.list_file
                report.generic[generic] = str(f.relative_to(layout.root)) if f is not None else f"{spec.name}/"
            except DataError:
                pass
    for name, f in lists.items():
        stems = read_split_file(f)
        report.splits[name] = (len(stems), sum(s in usable for s in stems))
    if sfile is None:
        for name, specs in layout.splits.items():
            if specs[0].list_file is None:  # folder split
                stems = set(index_images(specs[0].image_dir))
                report.splits[name] = (len(stems), len(stems & usable))
    # an empty split evaluates or trains on nothing: a defect, not a dataset with "problems: 0"
    for name, (listed, _) in report.splits.items():
        if listed == 0:
            where = lists.get(name) or next((s[0].image_dir for n, s in layout.splits.items() if n == name), root)
            report.problems.append(Problem(str(where), f"split {name!r} lists no image", "", "empty_split"))
    if report.n_images == 0 and not report.splits:
        dirs = ", ".join(str(i) for i, _ in layout.image_dirs()) or str(root)
        report.problems.append(Problem(dirs, "no image found", "", "empty_split"))
    return report
