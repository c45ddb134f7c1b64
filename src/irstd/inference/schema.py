"""The detection output schema shared by ``irstd detect``, the service and every frame source.

JSON: ``{"schema": "irstd-detections/1", "checkpoint": ..., "threshold": ..., "frames": [record, ...]}``
where a record is ``{"file", "height", "width", "targets": [{"x", "y", "area", "bbox", "peak"}]}``
for a frame that was read (the service may add ``overlay`` and ``mask``, PNG ``data:`` URLs), or
``{"file", "error"}`` for one that was not. A record made from a frame source
(:mod:`irstd.inference.sources`: files, folders, globs, TIFF stacks, videos or a caller's iterable of
arrays, run by :func:`irstd.inference.pipeline.detect_frames`) also has ``frame`` (its index in source
order) and ``time`` (seconds, for video frames; else null) after ``file``, which names the file, or
``file#N`` for frame N of a video or page N of a stack. Such runs are written as they come as JSON Lines
(one record per line, :mod:`irstd.inference.records`). CSV: one row per target, columns :data:`CSV_COLUMNS`.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..core.files import FileSet
from .predictor import Prediction

__all__ = ["SCHEMA", "CSV_COLUMNS", "SUMMARY_NAMES", "SUMMARY_JOURNAL", "frame_record", "error_record",
           "detections_document", "csv_rows", "write_detections"]

SCHEMA = "irstd-detections/1"
CSV_COLUMNS = ("file", "target", "x", "y", "area", "x0", "y0", "x1", "y1", "peak")
#: the summary files of a run, always replaced together (:func:`write_detections`)
SUMMARY_NAMES = ("detections.json", "detections.csv")
#: the journal of their commit (:class:`~irstd.core.files.FileSet`), present only while one is cut short
SUMMARY_JOURNAL = ".detections.journal"


def _head(name: str, frame: int | None, time: float | None) -> dict[str, Any]:
    return {"file": name} if frame is None else {"file": name, "frame": int(frame), "time": time}


def frame_record(name: str, prediction: Prediction, *, frame: int | None = None, time: float | None = None,
                 **extra: Any) -> dict[str, Any]:
    """The record of one frame that was run; ``frame`` and ``time`` place a frame of a source; ``extra``
    adds optional fields (the service's ``overlay`` and ``mask``: PNG images as ``data:`` URLs)."""
    h, w = prediction.prob.shape
    return {**_head(name, frame, time), "height": int(h), "width": int(w),
            "targets": [t.as_dict() for t in prediction.targets], **extra}


def error_record(name: str, message: str, *, frame: int | None = None, time: float | None = None) -> dict[str, Any]:
    """The record of a frame that could not be read or run."""
    return {**_head(name, frame, time), "error": message}


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
    """Write ``detections.json`` and ``detections.csv`` into folder ``out`` as one set (both staged, then
    renamed together: a failure, e.g. a full disk, leaves the previous pair, never a new JSON beside an old
    CSV); returns both paths."""
    out = Path(out)
    json_path, csv_path = (out / n for n in SUMMARY_NAMES)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(document["frames"]))
    files = FileSet(out / SUMMARY_JOURNAL)
    try:
        files.stage(json_path, lambda tmp: Path(tmp).write_text(json.dumps(document, indent=2), encoding="ascii"))
        # names that are not valid UTF-8 (os.fsdecode keeps their bytes as surrogates) are written back as those bytes
        files.stage(csv_path, lambda tmp: Path(tmp).write_text(buf.getvalue(), newline="", encoding="utf-8",
                                                               errors="surrogateescape"))
        files.commit()
    except BaseException:
        files.discard()
        raise
    return json_path, csv_path
