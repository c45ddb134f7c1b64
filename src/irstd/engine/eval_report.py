"""The report of one evaluation (:class:`EvalReport`): its metrics, tables and files."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.files import atomic_write_text
from ..metrics import SegResult, SweepResult, pd_at
from ..visualize import plot_sweep
from .false_alarm_report import FalseAlarmReport

__all__ = ["EvalReport", "FA_LEVELS", "FALSE_TARGETS_PER_MP_LEVEL"]

#: false-alarm levels an operator sets a threshold by: pixel Fa (in 1e-6) and false targets per MP on negatives
FA_LEVELS = (1.0, 10.0)
FALSE_TARGETS_PER_MP_LEVEL = 0.1


@dataclass
class EvalReport:
    """Metrics of one evaluation, with what was evaluated and on what."""

    result: SegResult | None  #: None when only negatives were scored
    model: str
    data: str
    split: str
    n_skipped: int
    threshold: float
    per_image: list[dict[str, Any]] = field(default_factory=list)
    sweep: SweepResult | None = None
    precision: str = "fp32 eager"  #: how the network ran (the run mode's label)
    pixel_ap: float = math.nan  #: exact pixel average precision (with a sweep)
    pixel_roc_auc: float = math.nan  #: exact pixel ROC AUC (with a sweep)
    negatives: FalseAlarmReport | None = None

    def operating_points(self) -> dict[str, dict[str, float]]:
        """Pd at the fixed false-alarm levels (best Pd among grid thresholds within the level) and its threshold."""
        if self.sweep is None:
            return {}
        sw = self.sweep
        out = {}
        for level in FA_LEVELS:
            pd, t = sw.pd_at_fa(level)
            out[f"fa<={level:g}e-6"] = {"pd": pd, "threshold": t}
        ft = self.negatives.false_targets_per_mp_grid() if self.negatives is not None else None
        if ft is not None:
            pd, t = pd_at(FALSE_TARGETS_PER_MP_LEVEL, sw.pd, ft, sw.thresholds)
            out[f"false_targets_per_mp<={FALSE_TARGETS_PER_MP_LEVEL:g}"] = {"pd": pd, "threshold": t}
        return out

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model, "data": self.data, "split": self.split, "threshold": self.threshold,
            "precision": self.precision, "n_skipped_invalid": self.n_skipped,
            "metrics": self.result.as_dict() if self.result is not None else None,
        }
        if self.sweep is not None:
            out["sweep"] = {
                "thresholds": self.sweep.thresholds.tolist(), "pd": self.sweep.pd.tolist(),
                "fa": self.sweep.fa.tolist(), "precision": self.sweep.precision.tolist(),
                "recall": self.sweep.recall.tolist(), "fpr": self.sweep.fpr.tolist(),
                "pixel_ap": self.pixel_ap, "pixel_roc_auc": self.pixel_roc_auc,
                "pd_at": self.operating_points(),
            }
        if self.negatives is not None:
            out["negatives"] = {k: v for k, v in self.negatives.as_dict().items() if k != "frames"}
        return out

    def to_markdown(self) -> str:
        lines = []
        if self.result is not None:
            lines += [
                f"Model: `{self.model}`; data: `{self.data}` [{self.split}]; {self.result.n_images} images, "
                f"{self.n_skipped} skipped as invalid; threshold {self.threshold}; run {self.precision}.",
                "",
                self.result.to_markdown(),
            ]
        if self.sweep is not None:
            lines += ["", f"Pixel AP {self.pixel_ap:.4f}, pixel ROC AUC {self.pixel_roc_auc:.4f} (exact, every score).",
                      "", "Pd at a false-alarm level (best Pd among the sweep's thresholds within it):", "",
                      "| level | Pd (%) | threshold |", "|---|---|---|"]
            lines += [f"| {k} | {100 * v['pd']:.2f} | {v['threshold']:.6g} |" for k, v in self.operating_points().items()]
        if self.negatives is not None:
            lines += ["", self.negatives.to_markdown().rstrip("\n")]
        return "\n".join(lines) + "\n"

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write metrics.json, metrics.md and per_image.csv (sweep.png with a sweep, negatives.* with negatives)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = [out_dir / "metrics.json", out_dir / "metrics.md", out_dir / "per_image.csv"]
        atomic_write_text(written[0], json.dumps(self.as_dict(), indent=2, default=_json_default))
        atomic_write_text(written[1], self.to_markdown())
        if self.per_image:
            keys = list(self.per_image[0])
            rows = [",".join(keys)] + [",".join(str(r[k]) for k in keys) for r in self.per_image]
            atomic_write_text(written[2], "\n".join(rows) + "\n")
        if self.sweep is not None:
            sw = self.sweep
            plot_sweep(sw.fa, sw.pd, sw.recall, sw.precision, out_dir / "sweep.png", title=self.model, ap=self.pixel_ap)
            written.append(out_dir / "sweep.png")
        if self.negatives is not None:
            written += self.negatives.save(out_dir)
        return written


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x)}")


