"""Detection records written as they come: JSON Lines, one record per line, flushed after each.

An interrupted run keeps every finished frame; :class:`RecordWriter` with ``resume=True`` reads what a
previous run wrote (a torn last line, the frame being written when the run stopped, is cut off) and
reports the frames already done, so a re-run skips them: no duplicate, no loss. :func:`finish_detections`
builds the run's ``detections.json`` and ``detections.csv`` from the JSON Lines file.

File names of any encoding round-trip: names are ``str`` as :func:`os.fsdecode` gives them (bytes that
are not UTF-8 become lone surrogates), which ``json`` with ``ensure_ascii`` writes as ``\\udcXX`` escapes.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, DataError
from .schema import detections_document, write_detections

__all__ = ["JSONL_NAME", "RecordWriter", "check_resume", "read_records", "finish_detections"]

log = logging.getLogger(__name__)

#: the streaming output of a run, beside detections.json and detections.csv
JSONL_NAME = "detections.jsonl"


def _complete_length(path: Path) -> int:
    """Bytes of ``path`` up to and including its last newline (what a torn last line leaves intact)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        pos = end
        while pos > 0:
            step = min(65536, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                return pos - step + nl + 1
            pos -= step
        return 0


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file; an incomplete last line (a run stopped while writing it) is
    ignored; any other line that is not a JSON object raises :class:`DataError` naming the file and line."""
    path = Path(path)
    records = []
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            if number == len(lines):  # no newline after it: torn by an interruption
                log.info("%s: incomplete last line ignored", path)
                break
            raise DataError(f"{path}: line {number} is not a detection record ({exc})") from None
        records.append(rec)
    return records


class RecordWriter:
    """Append records to a JSON Lines file as they come, one line each, flushed.

    ``resume=False`` starts the file afresh; ``resume=True`` keeps its complete lines and lists their frame
    indices in :attr:`done` (frame index → file name) so the caller can skip those frames.
    """

    def __init__(self, path: str | Path, *, resume: bool = False) -> None:
        self.path = Path(path)
        self.done: dict[int, str] = {}
        if resume and self.path.is_file():
            keep = _complete_length(self.path)
            if keep < self.path.stat().st_size:
                log.info("%s: cutting an incomplete last line", self.path)
                with open(self.path, "r+b") as f:
                    f.truncate(keep)
            self.done = {int(r["frame"]): r.get("file", "") for r in read_records(self.path) if "frame" in r}
            self._f = open(self.path, "a", encoding="ascii")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "w", encoding="ascii")

    def write(self, record: dict[str, Any]) -> None:
        """One record as one line, flushed so that a killed run keeps it."""
        self._f.write(json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_resume(out: str | Path, **settings: Any) -> None:
    """Refuse to resume in ``out`` when its ``detections.json`` (written at the end of every run, interrupted
    ones too) was made with other ``settings`` (e.g. checkpoint, threshold, precision): one line saying which."""
    doc = Path(out) / "detections.json"
    if not doc.is_file():
        return
    try:
        before = json.loads(doc.read_text())
    except ValueError:
        return  # unreadable: the JSON Lines file is the record that counts
    changed = [f"{k} {before[k]!r} then, {v!r} now" for k, v in settings.items() if k in before and before[k] != v]
    if changed:
        raise ConfigError(f"{out}: cannot resume a run made with other settings ({'; '.join(changed)}); "
                          "use the same ones, or another --out")


def finish_detections(out: str | Path, *, checkpoint: str, threshold: float,
                      **extra: Any) -> tuple[Path, Path, list[dict[str, Any]]]:
    """Write ``detections.json`` and ``detections.csv`` in ``out`` from its ``detections.jsonl`` (records in
    frame order, one per frame); returns both paths and the records."""
    out = Path(out)
    by_frame: dict[int, dict[str, Any]] = {}
    loose = []
    for rec in read_records(out / JSONL_NAME):
        if "frame" in rec:
            by_frame.setdefault(int(rec["frame"]), rec)
        else:
            loose.append(rec)
    records = [by_frame[i] for i in sorted(by_frame)] + loose
    document = detections_document(records, checkpoint=checkpoint, threshold=threshold, **extra)
    json_path, csv_path = write_detections(out, document)
    return json_path, csv_path, records
