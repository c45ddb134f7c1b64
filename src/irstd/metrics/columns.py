"""How each metric of a :class:`~irstd.metrics.SegResult` is shown: its title, unit and scale.

The one table read by the result's markdown row, the sweep tables (:mod:`irstd.experiments`) and
the trainer's epoch log line. Ratios are stored as fractions and shown in percent; ``fa`` is stored
in units of 1e-6 and shown as is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["MetricColumn", "METRIC_COLUMNS"]


@dataclass(frozen=True)
class MetricColumn:
    """One metric as a table shows it."""

    key: str  #: the field of SegResult (and its ``as_dict`` key)
    title: str  #: short name, e.g. ``IoU``
    unit: str  #: ``%`` or ``1e-6``
    scale: float  #: stored value × scale = shown value

    @property
    def header(self) -> str:
        """Column header with the unit, e.g. ``IoU (%)``."""
        return f"{self.title} ({self.unit})"

    def cell(self, value: float, digits: int = 2) -> str:
        """The shown value (``n/a`` when undefined)."""
        return "n/a" if math.isnan(value) else f"{value * self.scale:.{digits}f}"

    def short(self, value: float, digits: int = 2) -> str:
        """Title and value for a log line, e.g. ``IoU 69.41`` or ``Fa 12.30e-6``."""
        return f"{self.title} {self.cell(value, digits)}" + ("e-6" if self.unit == "1e-6" else "")


#: every metric of a SegResult table, in column order, by key
METRIC_COLUMNS: dict[str, MetricColumn] = {c.key: c for c in (
    MetricColumn("iou", "IoU", "%", 100.0),
    MetricColumn("niou", "nIoU", "%", 100.0),
    MetricColumn("precision", "P", "%", 100.0),
    MetricColumn("recall", "R", "%", 100.0),
    MetricColumn("f1", "F1", "%", 100.0),
    MetricColumn("pd", "Pd", "%", 100.0),
    MetricColumn("fa", "Fa", "1e-6", 1.0),
    MetricColumn("target_precision", "tP", "%", 100.0),
    MetricColumn("target_f1", "tF1", "%", 100.0),
)}
