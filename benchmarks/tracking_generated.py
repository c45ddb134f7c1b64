"""Early confirmation and camera models on generated sequences: online / offline Pd and false targets per frame.

    python benchmarks/tracking_generated.py --out benchmarks/results/tracking/generated-early
    python benchmarks/tracking_generated.py --cameras translation similarity:0 similarity:0.5 similarity:1 \
        affine:0 affine:0.5 affine:1 --out benchmarks/results/tracking/generated-camera

Each kind: 20 sequences (seeds 100-119) of :func:`~irstd.data.synthetic_sequence.generate_sequence` with a
pan of 3 px/frame and a cut half-way, fed the ideal detections (every drawn target and every static and
shown flickering clutter spot, centroids jittered 0.3 px) and the frames for the camera. ``default``:
60 frames of 128×160, 2 targets at 1.5-2.5 px/frame, 6 static and 4 flickering spots; ``fast``: 40 frames
of 256×320, targets at 3-8 px/frame in the scene, 24 static and 16 flickering spots; ``cluttered``: as
default with 12 static and 16 flickering spots shown half the time. A target is found by a confirmed
target within 4 px; every other confirmed target is false.

``--births SETTING ...`` compares births of fast targets (``TrackerParams`` ``birth_image``, ``birth_gate``,
``birth_second_pass``, ``birth_span``, ``birth_early``; ``none``: the fourth pass's, ``default``: today's) on
every kind below and ``against``: 40 frames of 256×320, a pan of 7 px/frame in the first clip, targets at
11-14 px/frame in the scene (faster than the 10 px gate; 4-6.4 px/frame in the image, against the static
scene's image motion), 24 static and 16 flickering spots, a cut half-way (the second clip's camera still).

    python benchmarks/tracking_generated.py --births none gate=12 birth_image=1 ... \
        --out benchmarks/results/tracking/generated-births

``--cameras MODEL[:MIN_WARP] ...`` compares camera models (``TrackerParams.camera`` and ``min_warp``, the
estimates made by each setting's own :class:`GlobalMotion`) at the default ``early_step``, on the three
kinds above and three more of 256×320 with a pan of 3 px/frame and a cut half-way, 12 static and 4
flickering spots, whose first clip also ``zoom-step``: zooms in 6 % between two frames (the 10th and
11th); ``zoom``: zooms in 0.5 % every frame; ``rotation``: turns 0.3° every frame.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from irstd.bench.report import save_report
from irstd.data.synthetic_sequence import generate_sequence, ideal_detections
from irstd.tracking import GlobalMotion, Tracker, TrackerParams, confirm_offline
from irstd.tracking.evaluation import match

KINDS = {
    "default": dict(n_frames=60, cut_at=30, size=(128, 160)),
    "fast": dict(n_frames=40, cut_at=20, size=(256, 320), speed=(3.0, 8.0), n_static=24, n_flicker=16),
    "cluttered": dict(n_frames=60, cut_at=30, size=(128, 160), n_static=12, n_flicker=16, flicker_rate=0.5),
}
# a target faster than the gate relative to the scene, crossing against a pan (seq5 frames 13-32)
AGAINST = {"against": dict(n_frames=40, cut_at=20, size=(256, 320), pan=(7, 0), speed=(11.0, 14.0), n_static=24,
                           n_flicker=16)}
_VIEW = dict(n_frames=60, cut_at=30, size=(256, 320), n_static=12, n_flicker=4)
CAMERA_KINDS = {
    "zoom-step": dict(_VIEW, zoom_step=(10, 1.06)),
    "zoom": dict(_VIEW, zoom=1.005),
    "rotation": dict(_VIEW, rotation=0.3),
}


def sequences(kind: str, n: int = 20, params: TrackerParams | None = None) -> list:
    """(sequence, detections, camera motions of ``params``' estimator) of ``n`` seeds."""
    out = []
    for s in range(n):
        seq = generate_sequence(**{"pan": (3, 0), "seed": 100 + s, **{**KINDS, **CAMERA_KINDS, **AGAINST}[kind]})
        g = GlobalMotion.for_params(params or TrackerParams())
        out.append((seq, ideal_detections(seq, seed=s), [g.update(f) for f in seq.frames]))
    return out


def with_camera(seqs: list, params: TrackerParams) -> list:
    """The same sequences and detections with the camera motions of ``params``' estimator."""
    out = []
    for seq, dets, _ in seqs:
        g = GlobalMotion.for_params(params)
        out.append((seq, dets, [g.update(f) for f in seq.frames]))
    return out


def camera_setting(text: str) -> TrackerParams:
    """``MODEL`` or ``MODEL:MIN_WARP`` as tracker parameters."""
    model, _, warp = text.partition(":")
    return replace(TrackerParams(), camera=model, min_warp=float(warp or 0.0))


def camera_rows(settings: list[str], n: int) -> list[dict]:
    rows = []
    for kind in [*KINDS, *CAMERA_KINDS]:
        seqs = sequences(kind, n)
        for text in settings:
            p = camera_setting(text)
            rows.append({"kind": kind, "camera": p.camera, "min_warp": p.min_warp, **scores(p, with_camera(seqs, p))})
    return rows


# the fourth pass's births (docs/tracking.md, fifth pass): no wider association of new tracks
BIRTHS_OFF = dict(birth_image=False, birth_gate=0.0, birth_second_pass=False, birth_span=1, birth_early=True)


def birth_setting(text: str) -> TrackerParams:
    """``none`` (the fourth pass's births), ``default`` (today's), or ``NAME=VALUE,...`` (``TrackerParams``
    fields; booleans as 0/1) over ``none``."""
    if text == "default":
        return TrackerParams()
    kw = dict(BIRTHS_OFF)
    for item in text.split(",") if text != "none" else ():
        name, _, value = item.partition("=")
        kind = type(getattr(TrackerParams(), name))
        kw[name] = bool(int(value)) if kind is bool else kind(value)
    return replace(TrackerParams(), **kw)


def birth_rows(settings: list[str], n: int) -> list[dict]:
    rows = []
    for kind in [*KINDS, *CAMERA_KINDS, *AGAINST]:
        seqs = sequences(kind, n)
        for text in settings:
            rows.append({"kind": kind, "setting": text, **scores(birth_setting(text), seqs)})
    return rows


def scores(params: TrackerParams, seqs: list) -> dict:
    """Online and offline Pd (%) and false targets per frame over all sequences."""
    n = {"found": 0, "labels": 0, "false": 0, "frames": 0, "off_found": 0, "off_false": 0}
    for seq, dets, motions in seqs:
        tracker = Tracker(params)
        online = [tracker.update(d, motion=m) for d, m in zip(dets, motions)]
        for key, results in (("", online), ("off_", confirm_offline(online))):
            for r, truth in zip(results, seq.targets):
                tp = np.array([(t.x, t.y) for t in r.targets]).reshape(-1, 2)
                found, paired = match(tp, truth[:, 1:])
                n[key + "found"] += int(found.sum())
                n[key + "false"] += int((~paired).sum())
                if not key:
                    n["labels"] += len(truth)
                    n["frames"] += 1
    return {"online_pd": 100 * n["found"] / n["labels"], "online_false": n["false"] / n["frames"],
            "offline_pd": 100 * n["off_found"] / n["labels"], "offline_false": n["off_false"] / n["frames"]}


def emit(rows: list[dict], head: str, row_text: Callable[[dict], str], out: Path | None) -> None:
    """Print the command, the parameters and one table row per result; save them under ``out``."""
    lines = [f"Command: `{shlex.join(['python', *sys.argv])}`", "", f"Parameters otherwise: `{TrackerParams()}`", "",
             head, "|" + "---|" * (head.count("|") - 1)]
    text = "\n".join(lines + [row_text(r) for r in rows])
    print(text)
    if out:
        save_report({"command": lines[0], "rows": rows}, text + "\n", out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", nargs="+", type=float, default=[0.0, 4.0, 5.0, 6.0], help="early_step values")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--cameras", nargs="+", metavar="MODEL[:MIN_WARP]",
                    help="compare camera models instead of early_step values (see the module)")
    ap.add_argument("--out", type=Path, default=None, help="write OUT.md and OUT.json")
    ap.add_argument("--births", nargs="+", metavar="SETTING",
                    help="compare births of fast targets instead (default, or NAME=VALUE,... of TrackerParams), "
                         "on every kind and `against`")
    a = ap.parse_args()
    if a.births:
        emit(birth_rows(a.births, a.seeds),
             "| generated | setting | online Pd % | online false/frame | offline Pd % | offline false/frame |",
             lambda r: f"| {r['kind']} | {r['setting']} | {r['online_pd']:.1f} | {r['online_false']:.3f} | "
                       f"{r['offline_pd']:.1f} | {r['offline_false']:.3f} |", a.out)
        return 0
    if a.cameras:
        emit(camera_rows(a.cameras, a.seeds),
             "| generated | camera | min_warp | online Pd % | online false/frame | offline Pd % | offline false/frame |",
             lambda r: f"| {r['kind']} | {r['camera']} | {r['min_warp']:g} | {r['online_pd']:.1f} | "
                       f"{r['online_false']:.3f} | {r['offline_pd']:.1f} | {r['offline_false']:.3f} |", a.out)
        return 0
    rows = []
    for kind in KINDS:
        seqs = sequences(kind, a.seeds)
        for step in a.steps:
            rows.append({"kind": kind, "early_step": step, **scores(replace(TrackerParams(), early_step=step), seqs)})
    emit(rows, "| generated | early_step | online Pd % | online false/frame | offline Pd % | offline false/frame |",
         lambda r: f"| {r['kind']} | {r['early_step']:g} | {r['online_pd']:.1f} | {r['online_false']:.3f} | "
                   f"{r['offline_pd']:.1f} | {r['offline_false']:.3f} |", a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
