"""What a finished track run is made into: the MOT-challenge CSV, a summary, and scores against point labels.

All of it is computed from the run's records (``tracks.jsonl``, :mod:`.tracking_run`), so an interrupted and
resumed run gives the same files as an unbroken one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.errors import DataError
from ..core.files import atomic_write_text
from ..tracking import FrameResult, confirm_offline
from .records import read_records
from .tracking_run import result_from_record

__all__ = ["TRACKS_NAME", "MOT_NAME", "EVAL_NAME", "TrackSummary", "read_track_run", "offline_results", "mot_lines",
           "write_mot", "summarize", "evaluate_track_run", "evaluation_table", "write_evaluation"]

#: the run's records, one JSON line per frame, written as frames finish
TRACKS_NAME = "tracks.jsonl"
#: the MOT-challenge CSV of a finished run (offline confirmation)
MOT_NAME = "tracks_mot.csv"
#: the scores of irstd evaluate-track
EVAL_NAME = "track_eval.json"


def read_track_run(path: str | Path) -> list[dict[str, Any]]:
    """The records of a track run: a run folder (its ``tracks.jsonl``) or the JSON Lines file itself; one
    record per frame, in frame order."""
    path = Path(path)
    if path.is_dir():
        path = path / TRACKS_NAME
    if not path.is_file():
        raise DataError(f"{path}: no such file (give a folder of irstd track, or its {TRACKS_NAME})")
    by_frame: dict[int, dict[str, Any]] = {}
    for rec in read_records(path):
        if "frame" not in rec:
            raise DataError(f"{path}: a record without 'frame' (not the output of irstd track)")
        by_frame.setdefault(int(rec["frame"]), rec)
    return [by_frame[i] for i in sorted(by_frame)]


def offline_results(records: Sequence[dict[str, Any]]) -> list[FrameResult]:
    """The offline answer (:func:`~irstd.tracking.confirm_offline`) of a run's records."""
    return confirm_offline([result_from_record(r) for r in records])


def mot_lines(records: Sequence[dict[str, Any]]) -> list[str]:
    """MOT-challenge rows ``frame,id,bb_left,bb_top,w,h,conf,-1,-1,-1`` of the offline confirmed targets:
    frames counted from 1 in source order; a detected target's box is its detection's (inclusive pixel
    box → left, top, width, height), a predicted one's a 3×3 box centred on it with conf -1."""
    lines = []
    for rec, res in zip(records, offline_results(records)):
        boxes = [t["bbox"] for t in rec.get("targets") or ()]
        for t in sorted(res.targets, key=lambda t: t.id):
            if t.predicted or t.detection < 0:
                left, top, w, h, conf = t.x - 1.5, t.y - 1.5, 3, 3, -1.0
            else:
                x0, y0, x1, y1 = boxes[t.detection]
                left, top, w, h, conf = x0, y0, x1 - x0 + 1, y1 - y0 + 1, t.score
            lines.append(f"{int(rec['frame']) + 1},{t.id},{left:.2f},{top:.2f},{w},{h},{conf:.4f},-1,-1,-1")
    return lines


def write_mot(path: str | Path, records: Sequence[dict[str, Any]]) -> Path:
    """Write :func:`mot_lines` of ``records`` to ``path`` (atomically)."""
    path = Path(path)
    lines = mot_lines(records)
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return path


@dataclass(frozen=True)
class TrackSummary:
    """Counts of a run: frames, errors, targets per frame, tracks and the lengths of confirmed tracks."""

    frames: int
    errors: int
    raw_per_frame: float
    confirmed_per_frame: float  # online
    confirmed_offline_per_frame: float
    tracks: int  # every track started
    confirmed_tracks: int
    lengths: list[int]  # per confirmed track: frames from its first to its last detection, in id order

    def table(self) -> str:
        """A markdown table for people."""
        ln = self.lengths
        lengths = f"{min(ln)} / {int(np.median(ln))} / {max(ln)}" if ln else "–"
        rows = [("frames", f"{self.frames}" + (f" ({self.errors} unreadable)" if self.errors else "")),
                ("raw targets / frame", f"{self.raw_per_frame:.2f}"),
                ("confirmed targets / frame (online)", f"{self.confirmed_per_frame:.2f}"),
                ("confirmed targets / frame (offline)", f"{self.confirmed_offline_per_frame:.2f}"),
                ("tracks started", f"{self.tracks}"),
                ("confirmed tracks", f"{self.confirmed_tracks}"),
                ("confirmed track length, frames (min / median / max)", lengths)]
        return "\n".join(["| | |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows])


def summarize(records: Sequence[dict[str, Any]]) -> TrackSummary:
    """The :class:`TrackSummary` of a run's records."""
    n = max(len(records), 1)
    online = [result_from_record(r) for r in records]
    offline = confirm_offline(online)
    started = {int(i) for r in online for i in r.track_ids if i >= 0}
    confirmed = sorted({t.id for r in online for t in r.targets})
    span: dict[int, list[int]] = {}
    for r in online:
        for i in r.track_ids[r.track_ids >= 0]:
            span.setdefault(int(i), []).append(r.index)
    lengths = [max(span[i]) - min(span[i]) + 1 for i in confirmed if i in span]
    return TrackSummary(len(records), sum("error" in r for r in records),
                        sum(len(r.detections) for r in online) / n, sum(len(r.targets) for r in online) / n,
                        sum(len(r.targets) for r in offline) / n, len(started), len(confirmed), lengths)


def evaluate_track_run(records: Sequence[dict[str, Any]], points: np.ndarray, gate: float = 4.0) -> dict[str, Any]:
    """Scores of a run against one labelled point per frame (``points`` (F, 2) x, y, frames in source order):
    raw detections, confirmed online and confirmed offline side by side, each with Pd, false targets per
    frame and per megapixel, frames with a false target, and for confirmed targets MOTA, IDF1, ID switches;
    and per clip (a label jump starts one) the frames to the first raw / online / offline find."""
    from ..tracking.evaluation import clip_starts, evaluate_tracking, labels_with_clip_ids

    if len(points) != len(records):
        raise DataError(f"{len(points)} labels for {len(records)} frames: one label per frame is needed")
    shapes = [(int(r["height"]), int(r["width"])) for r in records if "height" in r]
    if not shapes:
        raise DataError("no frame of the run was read: nothing to score")
    shape = max(set(shapes), key=shapes.count)
    labels = labels_with_clip_ids(points)
    starts = clip_starts(points)
    online = [result_from_record(r) for r in records]
    on = evaluate_tracking(online, labels, shape, gate, starts)
    off = evaluate_tracking(confirm_offline(online), labels, shape, gate, starts)
    return {"frames": len(records), "frame_shape": list(shape), "gate": gate, "clip_starts": starts,
            "raw": vars(on.raw), "online": {**vars(on.confirmed), **on.mot},
            "offline": {**vars(off.confirmed), **off.mot},
            "delays": {"raw": on.raw_delays, "online": on.confirmed_delays, "offline": off.confirmed_delays}}


def evaluation_table(scores: dict[str, Any]) -> str:
    """The markdown table of :func:`evaluate_track_run`'s scores."""
    def cell(d: dict, k: str, fmt: str) -> str:
        return format(d[k], fmt) if k in d else "–"

    def delays(v: list) -> str:
        return ",".join("–" if d is None else str(d) for d in v)

    head = ("| | Pd % | false / frame | false / MPx / frame | frames with false % | MOTA % | IDF1 % | ID switches "
            "| delay per clip |\n|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name, key in (("raw detections", "raw"), ("confirmed (online)", "online"), ("confirmed (offline)", "offline")):
        d = scores[key]
        rows.append(f"| {name} | {d['pd']:.1f} | {d['false_per_frame']:.3f} | {d['false_per_mpx']:.3f} | "
                    f"{d['frames_with_false']:.1f} | {cell(d, 'mota', '.1f')} | {cell(d, 'idf1', '.1f')} | "
                    f"{cell(d, 'num_switches', '.0f')} | {delays(scores['delays'][key])} |")
    return head + "\n" + "\n".join(rows)


def write_evaluation(path: str | Path, scores: dict[str, Any]) -> Path:
    """Write the scores as JSON (atomically)."""
    path = Path(path)
    atomic_write_text(path, json.dumps(scores, indent=2))
    return path
