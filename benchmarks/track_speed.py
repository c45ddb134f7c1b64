"""End-to-end speed of the tracking loop on the real ISTD sequences, per detector path, with its Pd.

    python benchmarks/track_speed.py --out benchmarks/results/tracking/track-speed

For each path (the full frame in fp32, in the fast mode, in int8 through ONNX Runtime; windows around
the tracks between full passes every N frames, fp32 and fast) and each of ``seq4`` and ``seq5`` of
``$IRSTD_DATASETS/ISTD-sequences`` (default ``../shared/datasets``): read every PNG, detect, update the
tracker, write one JSON line per frame (the track record ``irstd track`` writes), timed per frame from the
decode to the written line. The loop is the one ``irstd track`` runs
(:func:`~irstd.inference.tracking_run.track_frames`): a frame is decoded only when the next one is pulled,
and before that pull the predictor gets the tracker's expected positions of every live track for the next
frame (``set_hints``). Scores: raw Pd and false targets per
frame, and the confirmed targets' online Pd and false targets per frame (:mod:`irstd.tracking.evaluation`;
a label is found within 4 px). All paths run in one process, one after the other, on the same threads;
``--cameras translation similarity`` runs each path with each camera model of the tracker.

``--prefetch 0 2`` runs each path with each read-ahead (frames decoded ahead in a reader thread; 0: each
frame decoded when the loop pulls it), one row per setting; ``--whole-frame-targets`` adds, first, the
loop as it was before the per-frame work was cut (no read-ahead, the whole-frame target extraction of
``benchmarks/whole_frame_targets.py``); ``--repeats R`` runs those settings R times, alternating, so the
rows compare under the same machine state. ``--paths`` keeps some paths only (e.g. ``"full frame, fast"``).
The rows' records are checked equal across the settings (same path, camera and sequence).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from irstd.bench.report import save_report
from irstd.bench.timing import environment
from irstd.inference import Predictor, WindowedPredictor
from irstd.inference.records import RecordWriter
from irstd.inference.tracking_run import track_frames
from irstd.tracking import FrameResult, TrackerParams
from irstd.tracking.camera import MODELS as CAMERA_MODELS
from whole_frame_targets import whole_frame_targets  # noqa: E402 — beside this script
from irstd.tracking.evaluation import (GATE, clip_starts, detection_scores, evaluate_tracking, labels_with_clip_ids,
                                       read_point_labels)

SHARED = Path(os.environ.get("IRSTD_DATASETS") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
DATA = SHARED / "ISTD-sequences"
SIRST = SHARED / "SIRST"
SPLIT = SHARED / "splits" / "NUAA-SIRST_50_50" / "train.txt"


def run_sequence(predictor: Any, seq: str, out: Path, params: TrackerParams | None = None,
                 prefetch: int = 0) -> tuple[list[float], list[FrameResult], tuple[int, int]]:
    """Per-frame seconds (decode → detect → track → write) and the tracker's results on one sequence, through
    :func:`~irstd.inference.tracking_run.track_frames`, the loop ``irstd track`` runs."""
    times, results, shape = [], [], (0, 0)
    with RecordWriter(out) as writer:
        t0 = time.perf_counter()
        for step in track_frames(predictor, DATA / seq, params=params or TrackerParams(), prefetch=prefetch):
            if "error" in step.record:
                raise SystemExit(f"{seq}: {step.record['error']}")
            shape = step.detection.frame.image.shape[:2]
            writer.write(step.record)
            results.append(step.result)
            t1 = time.perf_counter()
            times.append(t1 - t0)
            t0 = t1
    return times, results, shape


def scores(results: list[FrameResult], seq: str, shape: tuple[int, int]) -> dict[str, float]:
    pts = read_point_labels(DATA / "labels" / f"{seq}.txt")
    labels, starts = labels_with_clip_ids(pts), clip_starts(pts)
    raw, _ = detection_scores([r.detections[:, :2] for r in results], labels, shape)
    e = evaluate_tracking(results, labels, shape, GATE, starts)
    return {"raw_pd": raw.pd, "raw_false": raw.false_per_frame, "online_pd": e.confirmed.pd,
            "online_false": e.confirmed.false_per_frame}


def make_paths(model: str, windows: list[int], window: int, int8: bool, threads: int,
               linger: int, variants: list[str] = ()) -> list[tuple[str, Any]]:
    """(name, predictor factory) per path; a factory gives a fresh predictor (windows keep a schedule)."""
    fp32 = Predictor.from_checkpoint(model, device="cpu", precision="fp32", batch_size=8)
    fast = Predictor.from_checkpoint(model, device="cpu", precision="fast", batch_size=8)
    paths: list[tuple[str, Any]] = [("full frame, fp32", lambda: fp32), ("full frame, fast", lambda: fast)]
    if int8:
        from irstd.export.quantize import CalibrationSpec, cached_int8

        t0 = time.perf_counter()
        from irstd.models.pretrained import resolve_weights

        onnx = cached_int8(resolve_weights(model), CalibrationSpec(str(SIRST), split_file=str(SPLIT)))
        print(f"int8 file {onnx} ready in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        q = Predictor.from_onnx(onnx, threads=threads, precision="int8")
        paths.append(("full frame, int8 (ONNX Runtime)", lambda: q))
    for n in windows:
        for name, p in (("fp32", fp32), ("fast", fast)):
            paths.append((f"windows {window} px, full every {n}, linger {linger}, {name}",
                          lambda p=p, n=n: WindowedPredictor(p, full_every=n, window=window, linger=linger)))
            for v in variants:  # --window-variant: more WindowedPredictor keywords, key=value,…
                kw = {k.strip(): json.loads(x) for k, x in (item.split("=") for item in v.split(",") if item)}
                paths.append((f"windows {window} px, full every {n}, linger {linger}, {v}, {name}",
                              lambda p=p, n=n, kw=kw: WindowedPredictor(p, **{"full_every": n, "window": window,
                                                                             "linger": linger, **kw})))
    return paths


def markdown(rows: list[dict]) -> str:
    head = ("| path | loop | camera | seq | frames | FPS (median frame) | FPS (frames ÷ time) | ms/frame p90 | full passes | "
            "raw Pd % | raw false/frame | online Pd % | online false/frame |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        loop = r["loop"] + (f" (run {r['repeat']})" if r.get("repeat", 1) > 1 or r.get("repeats", 1) > 1 else "")
        out.append(f"| {r['path']} | {loop} | {r['camera']} | {r['seq']} | {r['frames']} | {r['fps_median']:.1f} | {r['fps_mean']:.1f} | "
                   f"{r['p90_ms']:.0f} | {r['full_passes']} | {r['raw_pd']:.1f} | {r['raw_false']:.2f} | "
                   f"{r['online_pd']:.1f} | {r['online_false']:.3f} |")
    return "\n".join(out)


def emit_report(title: str, paragraphs: list[str], table: str, env: dict[str, Any], data: dict[str, Any],
                out: Path | None) -> None:
    """Print the run's Markdown (title, command, ``paragraphs`` — ``{after}`` there becomes the load average
    after the run —, ``table``, environment) and, with ``out``, save it beside the JSON (command,
    environment and ``data``)."""
    env["load_average_after"] = list(os.getloadavg())
    cmd = shlex.join(["python", *sys.argv])
    paragraphs = [p.replace("{after}", str(env["load_average_after"])) for p in paragraphs]
    text = "\n".join([f"# {title}", "", f"Command: `{cmd}`", "", *[x for p in paragraphs for x in (p, "")],
                      table, "", "Environment: `" + json.dumps(env) + "`"])
    print(text)
    if out:
        save_report({"command": cmd, "environment": env, **data}, text + "\n", out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="sgem_unet_t.sirst")
    ap.add_argument("--seq", nargs="+", default=["seq4", "seq5"])
    ap.add_argument("--full-every", nargs="+", type=int, default=[5, 10])
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--linger", type=int, default=3, help="frames a window stays after its last hint")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--window-variant", action="append", default=[],
                    help="another windows path beside each windows path: WindowedPredictor keywords key=value,… "
                         "(e.g. soft_cut=0.0,full_after_miss=false); repeat for several")
    ap.add_argument("--no-int8", action="store_true", help="skip the int8 path (it quantises once, cached)")
    ap.add_argument("--cameras", nargs="+", default=[TrackerParams().camera], choices=CAMERA_MODELS,
                    help="the tracker's camera models, each path run with each (default: the tracker's default)")
    ap.add_argument("--prefetch", nargs="+", type=int, default=[0],
                    help="frames decoded ahead in a reader thread (0: in the loop), one row per setting")
    ap.add_argument("--whole-frame-targets", action="store_true",
                    help="also run the loop as before: no read-ahead, the whole-frame target extraction")
    ap.add_argument("--repeats", type=int, default=1, help="runs of every setting, alternating")
    ap.add_argument("--paths", nargs="+", default=None, help="run only the paths of these names")
    ap.add_argument("--out", type=Path, default=None, help="write OUT.md and OUT.json")
    a = ap.parse_args()
    if not DATA.exists():
        print(f"{DATA}: not found", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    env = environment(torch.device("cpu"))
    rows = []
    loops = ([("before: read in the loop, whole-frame targets", 0, True)] if a.whole_frame_targets else []) + [
        ("read in the loop" if n == 0 else f"prefetch {n}", n, False) for n in a.prefetch]
    with tempfile.TemporaryDirectory(prefix="track-speed-") as tmp:
        for name, factory in make_paths(a.model, a.full_every, a.window, not a.no_int8, a.threads, a.linger,
                                        a.window_variant):
            if a.paths and name not in a.paths:
                continue
            for camera, seq in itertools.product(a.cameras, a.seq):
                records: bytes | None = None  # of the first setting: every other must write the same
                for repeat, (loop, prefetch, old_targets) in itertools.product(range(a.repeats), loops):
                    p = factory()
                    p.predict([np.zeros((512, 640), np.uint8)])  # warm-up (fast-mode rewrite, ORT session)
                    if isinstance(p, WindowedPredictor):
                        p = factory()  # a fresh schedule
                    params = dataclasses.replace(TrackerParams(), camera=camera)
                    out = Path(tmp) / f"{seq}.jsonl"
                    with whole_frame_targets(old_targets):
                        times, results, shape = run_sequence(p, seq, out, params, prefetch)
                    if records is None:
                        records = out.read_bytes()
                    elif out.read_bytes() != records:
                        raise SystemExit(f"{name}, {camera}, {seq}: the records of '{loop}' differ from the first setting's")
                    ms = np.asarray(times) * 1000
                    row = {"path": name, "loop": loop, "repeat": repeat + 1, "repeats": a.repeats, "camera": camera, "seq": seq,
                           "frames": len(times), "fps_median": 1000 / statistics.median(ms),
                           "fps_mean": len(ms) / (ms.sum() / 1000), "p90_ms": float(np.percentile(ms, 90)),
                           "full_passes": getattr(p, "full_frames", len(times)), **scores(results, seq, shape),
                           "label": p.label()}
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    emit_report(f"`irstd track` loop speed: {env['cpu_name']}, {a.threads} threads", [
        f"Model `{a.model}`; every path in this one run, one after the other; torch threads {env['threads']}, "
        f"ONNX Runtime threads {a.threads}; load average before {env['load_average']}, after {{after}}.",
        "Per frame: PNG decode → detect → tracker update (with the camera shift) → one JSON line written; "
        "loop: how frames are read (prefetch N: decoded up to N ahead in a reader thread); the records of "
        "every loop setting of a path, camera and sequence were checked byte-identical. "
        "FPS (median frame) = 1000 ÷ the median frame's ms; FPS (frames ÷ time) = the throughput, the one that "
        "counts for windows (their full passes are the slow frames). A label is found within 4 px; online = "
        "confirmed targets as the frame is processed (confirmation delay counted)."],
        markdown(rows), env, {"rows": rows}, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
