"""False alarms of a model on target-free frames (``irstd evaluate --negatives``).

Each frame runs through the :class:`~irstd.inference.Predictor` at native resolution (the model's
stored normalisation, or the frame's own statistics for a model without one, as ``irstd detect``;
frames above ``tile`` pixels a side in overlapping tiles) and is counted by
:mod:`irstd.metrics.false_alarms`. With a threshold grid, the false targets per megapixel at every
threshold are kept too, for the Pd at a false-target level of the target sweep.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..core.files import atomic_write_text
from ..core.progress import progress_bar
from ..data import open_negatives
from ..inference import Predictor
from ..metrics import (NegativeRow, NegativeSummary, count_negative, summarize_by_group, summarize_negatives,
                       worst_frames)
from ..metrics.false_alarms import false_targets_per_mp
from ..visualize import draw_overlay

__all__ = ["FalseAlarmReport", "false_alarm_report"]

log = logging.getLogger(__name__)

_CELL = 256  #: longest side of one overlay in the worst-frames grid


@dataclass
class FalseAlarmReport:
    """False alarms on one negatives set at one threshold (and per threshold of a grid, when given)."""

    model: str
    data: str
    split: str
    threshold: float
    rows: list[NegativeRow]
    worst_k: int = 8
    thresholds: np.ndarray | None = None  #: (T,) the grid, when swept
    false_targets_grid: np.ndarray | None = None  #: (T,) false targets over all frames per threshold
    grid_image: Image.Image | None = field(default=None, repr=False)

    @property
    def total(self) -> NegativeSummary:
        return summarize_negatives(self.rows)

    @property
    def worst(self) -> list[NegativeRow]:
        return worst_frames(self.rows, self.worst_k)

    def false_targets_per_mp_grid(self) -> np.ndarray | None:
        """(T,) false targets per 10⁶ pixels at each grid threshold (None without a grid)."""
        if self.false_targets_grid is None:
            return None
        return false_targets_per_mp(self.false_targets_grid, self.total.n_pixels)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model, "data": self.data, "split": self.split, "threshold": self.threshold,
            "totals": self.total.as_dict(),
            "groups": {g: s.as_dict() for g, s in summarize_by_group(self.rows).items()},
            "worst": [r.as_dict() for r in self.worst],
            "frames": [r.as_dict() for r in self.rows],
        }
        if self.thresholds is not None:
            out["sweep"] = {"thresholds": self.thresholds.tolist(),
                            "false_targets": self.false_targets_grid.tolist(),  # type: ignore[union-attr]
                            "false_targets_per_mp": self.false_targets_per_mp_grid().tolist()}  # type: ignore[union-attr]
        return out

    def to_markdown(self) -> str:
        t = self.total
        head = "| | frames | Fa (1e-6) | false targets | per frame | per MP | frames with ≥ 1 |\n|---|---|---|---|---|---|---|"

        def line(name: str, s: NegativeSummary) -> str:
            return (f"| {name} | {s.n_frames} | {s.fa:.2f} | {s.false_targets} | {s.false_targets_per_frame:.3f} | "
                    f"{s.false_targets_per_mp:.3f} | {100 * s.frames_with_false_target:.1f} % |")

        lines = [f"Negatives: model `{self.model}`; frames `{self.data}` [{self.split}]; {t.n_frames} target-free "
                 f"frames, {t.n_pixels / 1e6:.3f} MP; threshold {self.threshold}.", "", head, line("all", t)]
        lines += [line(g, s) for g, s in summarize_by_group(self.rows).items()]
        lines += ["", "Worst frames (most false targets, then false-alarm pixels):", "",
                  "| frame | group | false targets | false-alarm pixels |", "|---|---|---|---|"]
        lines += [f"| {r.name} | {r.group} | {r.false_targets} | {r.fa_pixels} |" for r in self.worst]
        return "\n".join(lines) + "\n"

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write negatives.json, negatives.md, negatives.csv (per frame) and negatives_worst.png."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / n for n in ("negatives.json", "negatives.md", "negatives.csv")]
        atomic_write_text(paths[0], json.dumps(self.as_dict(), indent=2, default=_json_nan))
        atomic_write_text(paths[1], self.to_markdown())
        keys = list(NegativeRow.__dataclass_fields__)
        rows = [",".join(keys)] + [",".join(str(getattr(r, k)) for k in keys) for r in self.rows]
        atomic_write_text(paths[2], "\n".join(rows) + "\n")
        if self.grid_image is not None:
            paths.append(out_dir / "negatives_worst.png")
            self.grid_image.save(paths[-1])
        return paths


def _json_nan(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def false_alarm_report(
    model: torch.nn.Module,
    root: str | Path,
    *,
    split: str | None = "heldout",
    threshold: float = 0.5,
    thresholds: Sequence[float] | None = None,
    device: str = "auto",
    amp: str | None = None,
    precision: str = "fp32",
    tile: int | None = None,
    worst_k: int = 8,
    connectivity: int = 8,
    progress: bool = False,
) -> FalseAlarmReport:
    """Count false alarms of ``model`` on the frames of ``root`` (``split``: ``train``, ``heldout`` or None = all).

    ``thresholds``: also count the false targets at each of these probability thresholds (the target
    sweep's grid). The worst ``worst_k`` frames are drawn in a grid (:attr:`FalseAlarmReport.grid_image`).
    """
    negatives = open_negatives(root, split)
    predictor = Predictor(model, device=device, threshold=threshold, amp=amp, precision=precision, batch_size=1,
                          connectivity=connectivity, tile=tile)
    ts = None if thresholds is None else np.asarray(thresholds, dtype=float)  # (T,)
    grid = np.zeros(0 if ts is None else ts.size, dtype=np.int64)  # (T,) false targets summed over frames
    rows: list[NegativeRow] = []
    for i in progress_bar(range(len(negatives)), enabled=progress, desc="negatives", leave=False):
        frame = negatives[i]
        prob = predictor.probabilities([negatives.load(i)])[0]  # (H, W) float32
        rows.append(count_negative(frame.stem, prob, group=frame.group, threshold=threshold, connectivity=connectivity))
        if ts is not None:
            grid += [count_negative(frame.stem, prob, threshold=float(t), connectivity=connectivity).false_targets
                     for t in ts]
    # an ONNX runner names its model in the file's metadata
    name = getattr(model, "model_name", None) or getattr(model, "metadata", {}).get("model_name") or type(model).__name__
    report = FalseAlarmReport(name, str(root), split or "all", threshold, rows, worst_k,
                             ts, grid if ts is not None else None)
    report.grid_image = _worst_grid(negatives, predictor, report.worst)
    return report


def _worst_grid(negatives, predictor: Predictor, worst: list[NegativeRow]) -> Image.Image | None:
    """The worst frames side by side: stretched frame, prediction tinted red, false targets boxed, captioned."""
    if not worst:
        return None
    index = {f.stem: i for i, f in enumerate(negatives)}
    cells = []
    for r in worst:
        frame = negatives.load(index[r.name])
        pred = predictor.prediction(predictor.probabilities([frame])[0], frame=frame)
        img = draw_overlay(frame, pred.targets[:200], mask=pred.mask)  # boxes capped: a noisy map can hold thousands
        img.thumbnail((_CELL, _CELL))
        cell = Image.new("RGB", (_CELL, _CELL + 14), (0, 0, 0))
        cell.paste(img, (0, 14))
        ImageDraw.Draw(cell).text((2, 1), f"{r.name}: {r.false_targets} FT, {r.fa_pixels} px", fill=(255, 255, 255))
        cells.append(cell)
    cols = min(4, len(cells))
    rows = math.ceil(len(cells) / cols)
    sheet = Image.new("RGB", (cols * (_CELL + 4), rows * (_CELL + 18)), (40, 40, 40))
    for k, c in enumerate(cells):
        sheet.paste(c, ((k % cols) * (_CELL + 4), (k // cols) * (_CELL + 18)))
    return sheet
