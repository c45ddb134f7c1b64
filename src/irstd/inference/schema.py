"""The detection output schema shared by ``irstd detect``, the service and stream input.

JSON: ``{"schema": "irstd-detections/1", "checkpoint": ..., "threshold": ..., "frames": [record, ...]}``
where a record is ``{"file", "height", "width", "targets": [{"x", "y", "area", "bbox", "peak"}]}``
for a frame that was read (the service may add ``overlay`` and ``mask``, PNG ``data:`` URLs), or
``{"file", "error"}`` for one that was not. CSV: one row per target,
columns :data:`CSV_COLUMNS`.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..core.files import atomic_write, atomic_write_text
from .predictor import Prediction

__all__ = ["SCHEMA", "CSV_COLUMNS", "frame_record", "error_record", "detections_document", "csv_rows",
           "write_detections"]

SCHEMA = "irstd-detections/1"
CSV_COLUMNS = ("file", "target", "x", "y", "area", "x0", "y0", "x1", "y1", "peak")


def frame_record(name: str, prediction: Prediction, **extra: Any) -> dict[str, Any]:
    """The record of one frame that was run; ``extra`` adds optional fields (the service's
    ``overlay`` and ``mask``: PNG images as ``data:`` URLs)."""
    h, w = prediction.prob.shape
    return {"file": name, "height": int(h), "width": int(w), "targets": [t.as_dict() for t in prediction.targets],
            **extra}


def error_record(name: str, message: str) -> dict[str, Any]:
    """The record of a frame that could not be read or run."""
    return {"file": name, "error": message}


def detections_document(records: Sequence[dict[str, Any]], *, checkpoint: str, threshold: float,
                        **extra: Any) -> dict[str, Any]:
    """The whole JSON document for ``records``: ``checkpoint`` names the model as the user gave it;
    ``extra`` adds top-level fields (e.g. timing)."""
    return {"schema": SCHEMA, "checkpoint": checkpoint, "threshold": threshold, **extra, "frames": list(records)}


def csv_rows(records: Iterable[dict[str, Any]]) -> list[list[Any]]:
    """One CSV row per target of every record (frames with an error have none)."""
    rows = []
    for rec in records:
        for i, t in enumerate(rec.get("targets", ())):
            x0, y0, x1, y1 = t["bbox"]
            rows.append([rec["file"], i, f"{t['x']:.2f}", f"{t['y']:.2f}", t["area"], x0, y0, x1, y1, f"{t['peak']:.4f}"])
    return rows


def write_detections(out: str | Path, document: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``detections.json`` and ``detections.csv`` into folder ``out`` (atomically); returns both paths."""
    out = Path(out)
    json_path, csv_path = out / "detections.json", out / "detections.csv"
    atomic_write_text(json_path, json.dumps(document, indent=2))
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(document["frames"]))
    atomic_write(csv_path, lambda tmp: Path(tmp).write_text(buf.getvalue(), newline=""))
    return json_path, csv_path
