"""``irstd evaluate-track``: score a finished ``irstd track`` run against point labels (one per frame): raw
detections, confirmed online and confirmed offline side by side, with track metrics and confirmation delays."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import ranged


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``irstd evaluate-track`` on ``p``; sets ``func``."""
    p.description = ("Score a track run against point labels: per-frame Pd, false targets per frame and per "
                     "megapixel and frames with a false target, for the raw detections and for the confirmed "
                     "targets online and offline; MOTA, IDF1 and ID switches (motmetrics); frames from each clip's "
                     "start (a label jump > 20 px) to the first find. Prints a markdown table, writes "
                     "track_eval.json beside the records.")
    p.add_argument("run", metavar="RUN_DIR_OR_TRACKS_JSONL",
                   help="an output folder of irstd track, or its tracks.jsonl")
    p.add_argument("--labels", required=True, metavar="FILE",
                   help="one target centre per frame, one line each, in source order")
    p.add_argument("--gate", type=ranged(float, 0.0, open_low=True), default=4.0,
                   help="a label is found by a centroid within this many px, > 0 (default 4)")
    p.add_argument("--format", default="row,col", choices=("row,col", "x,y"), help="label columns (default row,col)")
    p.add_argument("--out", default=None, help="where to write track_eval.json (default: the run's folder)")
    p.set_defaults(func=run)


def score_run(records: list[dict[str, Any]], labels: str, fmt: str, gate: float, out: Path) -> dict[str, Any]:
    """Score ``records``, print the table, write ``out/track_eval.json``; returns the scores."""
    from ..inference.track_outputs import EVAL_NAME, evaluate_track_run, evaluation_table, write_evaluation
    from ..tracking.evaluation import read_point_labels

    points = read_point_labels(labels)  # row,col → x, y
    if fmt == "x,y":
        points = points[:, ::-1].copy()
    scores = evaluate_track_run(records, points, gate)
    print(f"{len(records)} frame(s), a label found within {gate:g} px; clip starts (frames from 1): "
          + ",".join(str(s + 1) for s in scores["clip_starts"]))
    print(evaluation_table(scores))
    path = write_evaluation(out / EVAL_NAME, scores)
    print(f"-> {path}")
    return scores


def run(args: argparse.Namespace) -> int:
    from ..inference.track_outputs import read_track_run

    run_path = Path(args.run)
    records = read_track_run(run_path)
    out = Path(args.out) if args.out else (run_path if run_path.is_dir() else run_path.parent)
    out.mkdir(parents=True, exist_ok=True)
    score_run(records, args.labels, args.format, args.gate, out)
    return 0
