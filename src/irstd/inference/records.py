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
from typing import Any, Sequence

from ..core.errors import ConfigError, DataError
from ..core.files import recover_file_set, remove_stale_temps
from .schema import SUMMARY_JOURNAL, SUMMARY_NAMES, detections_document, write_detections

__all__ = ["JSONL_NAME", "RecordWriter", "check_resume", "read_records", "finish_detections", "start_outputs"]

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
    """Append records to a JSON Lines file as they come, one line each, written straight to the file.

    ``resume=False`` starts the file afresh; ``resume=True`` keeps its complete lines and lists their frame
    indices in :attr:`done` (frame index → file name) so the caller can skip those frames. A write that
    fails (``OSError``: a full disk, a folder gone read-only) raises after cutting its partial line off, so
    the file always ends with a whole record and :attr:`kept` counts the records it holds.
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
            records = read_records(self.path)
            self.done = {int(r["frame"]): r.get("file", "") for r in records if "frame" in r}
            self.kept = len(records)
            self._f = open(self.path, "ab", buffering=0)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.kept = 0
            self._f = open(self.path, "wb", buffering=0)
        self._size = self._f.seek(0, os.SEEK_END)

    def write(self, record: dict[str, Any]) -> None:
        """One record as one line, in the file when this returns (no buffer), so that a killed run keeps it."""
        line = memoryview((json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii"))
        try:
            while line:  # an unbuffered write may take part of the line (a disk filling up)
                line = line[self._f.write(line):]
        except OSError:
            try:
                self._f.truncate(self._size)  # freeing needs no space: the file ends with a whole record
            except OSError:
                pass  # read_records ignores a torn last line anyway
            raise
        self._size = self._f.tell()
        self.kept += 1

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_outputs(out: str | Path, *, resume: bool, names: Sequence[str] = ()) -> None:
    """Make ``out`` ready for a run: finish a summary commit that was cut short, remove temporaries that
    a killed write left, and, for a fresh run (not ``resume``), remove the summary files of an earlier
    run (``detections.json``/``.csv`` and ``names``), which would otherwise stand beside the new records
    if this run cannot write its own (a full disk)."""
    out = Path(out)
    recover_file_set(out / SUMMARY_JOURNAL)
    remove_stale_temps(out, (*SUMMARY_NAMES, SUMMARY_JOURNAL, *names))
    if not resume:
        for name in (*SUMMARY_NAMES, *names):
            (out / name).unlink(missing_ok=True)


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
