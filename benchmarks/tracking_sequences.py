"""Temporal confirmation on the real ISTD sequences: raw detections against confirmed targets, per detector.

    python benchmarks/tracking_sequences.py sgem_unet_t.sirst sgem_unet.sirst tophat \
        --out benchmarks/results/tracking/istd-sequences

Runs each detector once over ``seq4`` and ``seq5`` of ``$IRSTD_DATASETS/ISTD-sequences`` (default
``../shared/datasets`` beside the repository; frames in
numeric order) and caches its targets under ``runs/tracking/`` (``[x, y, area, peak]`` per target, at the
predictor's threshold 0.5 and at ``--low``); then runs, on the same detections and the same camera-shift
estimates, the tracker with its defaults (chosen on seq4 only; seq5 is the check), the tracker without
camera compensation, persistence alone (every established track confirmed) and ``norfair`` (when
installed; not a project dependency). A label is found by a point within 4 px (one to one); every
other point is a false target. ``--sweep`` adds the seq4-only parameter grid the defaults came from
(for every detector; the defaults were chosen on the ``sgem_unet_t.sirst`` rows), camera models included.
``--cameras MODEL[:MIN_WARP] ...`` adds, on every sequence, rows of the tracker with those camera settings
(``TrackerParams.camera``, ``min_warp``; the estimates of each setting's own :class:`GlobalMotion`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from irstd.bench.report import save_report
from irstd.tracking import FrameResult, GlobalMotion, TrackedTarget, Tracker, TrackerParams, confirm_offline
from irstd.tracking.evaluation import (GATE, clip_starts, detection_scores, evaluate_tracking, labels_with_clip_ids,
                                       read_point_labels)

DATA = Path(os.environ.get("IRSTD_DATASETS") or Path(__file__).resolve().parents[2] / "shared" / "datasets") \
    / "ISTD-sequences"
CACHE = Path("runs/tracking")


def frames_of(seq: str, root: Path = DATA) -> list[Path]:
    """The frames of one sequence in numeric order (``1.png``, ``2.png``, … ``10.png``)."""
    return sorted((root / seq).glob("*.png"), key=lambda p: int(p.stem))


def cache_path(model: str, seq: str) -> Path:
    return CACHE / f"detections-{model.replace('/', '_').replace(':', '_')}-{seq}.json"


def weights_id(model: str) -> str | None:
    """SHA-256 of the weights ``model`` names (shipped name or checkpoint file), None for a classical
    detector: a cache made with other weights under the same name is stale."""
    from irstd.models import get_pretrained, list_pretrained
    from irstd.models.pretrained import file_sha256

    if model in list_pretrained():
        return get_pretrained(model).sha256
    return file_sha256(model) if Path(model).is_file() else None


def detect(model: str, seq: str, low: float = 0.25, batch: int = 4) -> Path:
    """The cache file of ``model`` on ``seq``, made on the first call (CPU, fp32) and again when the
    weights behind the name changed."""
    from irstd.inference import Predictor

    out = cache_path(model, seq)
    sha = weights_id(model)
    if out.exists():
        if json.loads(out.read_text()).get("weights_sha256") == sha:
            return out
        print(f"{out}: made with other weights than {model}'s now: detecting again", file=sys.stderr)
    if ":" in model:  # a classical detector with options, e.g. tophat:k=9
        from irstd.models import create_model

        name, opts = model.split(":", 1)
        kwargs = {k: float(v) for k, v in (o.split("=") for o in opts.split(","))}
        p = Predictor(create_model(name, **kwargs), device="cpu", threshold=0.5)
    else:
        p = Predictor.from_checkpoint(model, device="cpu", threshold=0.5)
    files = frames_of(seq)
    raw, cand = [], []
    t0 = time.perf_counter()
    for start in range(0, len(files), batch):
        frames = [np.asarray(Image.open(f)) for f in files[start:start + batch]]
        frames = [f if f.ndim == 2 else f[..., 0] for f in frames]
        for prob in p.probabilities(frames):
            for thr, dst in ((0.5, raw), (low, cand)):
                tg = p.prediction(prob, thr).targets
                dst.append([[round(t.x, 2), round(t.y, 2), int(t.area), round(float(t.peak), 4)] for t in tg])
    secs = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": model, "seq": seq, "frames": [f.name for f in files], "threshold": 0.5,
                               "low": low, "seconds": round(secs, 1), "weights_sha256": sha, "raw": raw,
                               "low_targets": cand}))
    return out



def run_ours(dets: list, motions: list, params: TrackerParams) -> tuple[list[FrameResult], float]:
    t = Tracker(params)
    out, ms = [], []
    for d, m in zip(dets, motions):
        t0 = time.perf_counter()
        out.append(t.update(np.asarray(d, dtype=np.float64).reshape(-1, 4), motion=m))
        ms.append(1000 * (time.perf_counter() - t0))
    return out, float(np.median(ms))


def run_norfair(dets: list, motions: list, compensate: bool = True) -> tuple[list[FrameResult], float] | None:
    """norfair's tracker on the same points (euclidean, gate 10 px, 3 hits to start, 3 misses to end), a
    fresh tracker at each cut, fed our camera shift as its coordinate transformation."""
    try:
        from norfair import Detection
        from norfair import Tracker as NorfairTracker
        from norfair.camera_motion import TranslationTransformation
    except ImportError:
        return None

    def fresh():
        return NorfairTracker(distance_function="euclidean", distance_threshold=10, initialization_delay=2,
                              hit_counter_max=3)

    tr, cam, out, ms = fresh(), np.zeros(2), [], []
    for i, (d, m) in enumerate(zip(dets, motions)):
        d = np.asarray(d, dtype=np.float64).reshape(-1, 4)
        t0 = time.perf_counter()
        if m.cut:
            tr, cam = fresh(), np.zeros(2)
        elif compensate:
            cam += (m.dx, m.dy)
        nd = [Detection(points=row[None, :2], scores=np.array([row[3]])) for row in d]
        objs = tr.update(detections=nd, coord_transformations=TranslationTransformation(-cam) if compensate else None)
        ms.append(1000 * (time.perf_counter() - t0))
        index = {id(x): k for k, x in enumerate(nd)}
        targets, ids = [], np.full(len(d), -1)
        for o in objs:
            k = index.get(id(o.last_detection), -1)
            if k >= 0:
                targets.append(TrackedTarget(o.id, float(d[k, 0]), float(d[k, 1]), False, float(d[k, 3]), k))
                ids[k] = o.id
            else:
                x, y = o.estimate[0]
                targets.append(TrackedTarget(o.id, float(x), float(y), True, float("nan"), -1))
        out.append(FrameResult(i, d, ids, ids >= 0, targets))
    return out, float(np.median(ms))


def _delays(v: list) -> str:
    return ",".join("–" if x is None else str(x) for x in v)


_MOTIONS: dict[tuple, list] = {}


def motions_of(seq: str, p: TrackerParams) -> list:
    """The camera estimates of ``p``'s estimator over ``seq`` (made once per sequence and camera setting)."""
    key = (seq, p.downsample, p.cut_ratio, p.max_shift, p.camera, p.min_warp)
    if key not in _MOTIONS:
        g = GlobalMotion.for_params(p)
        _MOTIONS[key] = [g.update(np.asarray(Image.open(f))) for f in frames_of(seq)]
    return _MOTIONS[key]


def camera_setting(text: str) -> TrackerParams:
    """``MODEL`` or ``MODEL:MIN_WARP`` as tracker parameters (the defaults otherwise)."""
    model, _, warp = text.partition(":")
    return replace(TrackerParams(), camera=model, min_warp=float(warp or 0.0))


# the fifth pass (docs/tracking.md): association of tracks with one detection; a plain wider gate for reference.
# Every row states all five birth parameters (the fourth pass's defaults: image off, gate 0, one pass).
_OFF = dict(birth_image=False, birth_gate=0.0, birth_second_pass=False, birth_span=1, birth_early=True)
BIRTH_GRID = [dict(_OFF), dict(_OFF, gate=12.0)]
for _span in (3, 1):
    for _two in (False, True):
        BIRTH_GRID += [dict(_OFF, birth_image=True, birth_second_pass=_two, birth_span=_span)]
        BIRTH_GRID += [dict(_OFF, birth_gate=g, birth_second_pass=_two, birth_span=_span) for g in (12.0, 15.0, 20.0)]
BIRTH_GRID += [dict(_OFF, birth_image=True, birth_second_pass=True, birth_early=False),
               dict(_OFF, birth_gate=15.0, birth_early=False)]


def birth_label(kw: dict) -> str:
    """A fifth-pass setting as its differences from the fourth pass's (``none``: none)."""
    diff = {k: v for k, v in kw.items() if _OFF.get(k, TrackerParams().gate if k == "gate" else None) != v}
    return ", ".join(f"{k}={v}" for k, v in diff.items()) or "none"


def rows_for(model: str, seq: str, sweep: bool, low: float, cameras: tuple[str, ...] = ()) -> list[dict]:
    cache = json.loads(detect(model, seq, low).read_text())
    files = frames_of(seq)
    motions = motions_of(seq, TrackerParams())
    shape = np.asarray(Image.open(files[0])).shape[:2]
    pts = read_point_labels(DATA / "labels" / f"{seq}.txt")
    labels, starts = labels_with_clip_ids(pts), clip_starts(pts)
    cuts = [i for i, m in enumerate(motions) if m.cut]
    dets = cache["raw"]
    base = {"detector": model, "seq": seq, "clips": len(starts), "cuts_found": len(cuts),
            "cuts_at_clip_starts": len(set(cuts) & set(starts))}
    raw, _ = detection_scores([np.asarray(d, dtype=np.float64).reshape(-1, 4)[:, :2] for d in dets], labels, shape)
    rows = [{**base, "method": "raw detections", "mode": "", "pd": raw.pd, "false_per_frame": raw.false_per_frame,
             "false_per_mpx": raw.false_per_mpx, "frames_with_false": raw.frames_with_false}]

    def add(method: str, results: list[FrameResult], ms: float, modes=("online", "offline")) -> None:
        for mode in modes:
            r = confirm_offline(results) if mode == "offline" else results
            e = evaluate_tracking(r, labels, shape, GATE, starts)
            rows.append({**base, "method": method, "mode": mode, "pd": e.confirmed.pd,
                         "false_per_frame": e.confirmed.false_per_frame, "false_per_mpx": e.confirmed.false_per_mpx,
                         "frames_with_false": e.confirmed.frames_with_false, "mota": e.mot["mota"],
                         "idf1": e.mot["idf1"], "id_switches": int(e.mot["num_switches"]),
                         "delays": _delays(e.confirmed_delays), "raw_delays": _delays(e.raw_delays),
                         "tracker_ms": round(ms, 3)})

    p = TrackerParams()
    add("irstd.tracking (defaults)", *run_ours(dets, motions, p))
    add("irstd.tracking, no camera compensation", *run_ours(dets, motions, replace(p, compensate=False)))
    add("persistence only (3 of 5, no motion rule)", *run_ours(dets, motions, replace(p, min_displacement=0.0, hover_frames=0)))
    low_results = run_ours(cache["low_targets"], motions, replace(p, birth_score=0.5))
    add(f"irstd.tracking fed candidates >= {low} (births >= 0.5)", *low_results)
    for text in cameras:
        pc = camera_setting(text)
        add(f"irstd.tracking, camera {pc.camera}, min_warp {pc.min_warp:g}", *run_ours(dets, motions_of(seq, pc), pc))
    nf = run_norfair(dets, motions_of(seq, replace(p, camera="translation", min_warp=0.0)))  # it takes a shift
    if nf is not None:
        import norfair

        add(f"norfair {norfair.__version__} (persistence, our camera shift)", *nf, modes=("online",))
    if sweep and seq == "seq4":
        grid = [dict(min_displacement=d, motion_window=w) for d in (5.0, 6.0, 8.0) for w in (5, 9, 13)]
        grid += [dict(accel_std=a) for a in (0.5, 1.0)] + [dict(max_residual=r) for r in (1.0, 1.5, 3.0)]
        grid += [dict(hover_frames=h) for h in (10, 25, 100)] + [dict(coast=c) for c in (0, 2)]
        grid += [dict(release_after=r) for r in (0, 3, 8)]
        # births M of N without early confirmation, then early confirmation's step (0: off)
        grid += [dict(early_step=0.0, birth_hits=m, birth_window=n)
                 for m, n in ((2, 3), (2, 4), (2, 5), (3, 4), (3, 5), (3, 6), (4, 5), (4, 6))]
        grid += [dict(early_step=e) for e in (0.0, 4.0, 6.0, 8.0)] + [dict(birth_hits=2, birth_window=3)]
        for kw in grid:
            add("seq4 sweep: " + ", ".join(f"{k}={v}" for k, v in kw.items()), *run_ours(dets, motions, replace(p, **kw)))
        for kw in BIRTH_GRID:  # tracks with one detection: a wider or an image-coordinate association
            add(f"seq4 sweep: births {birth_label(kw)}", *run_ours(dets, motions, replace(p, **kw)))
        for cam in ("similarity", "affine"):  # camera models beyond the shift, and the fit's deadband
            for warp in (0.0, 0.5, 1.0, 2.0):
                pc = replace(p, camera=cam, min_warp=warp)
                add(f"seq4 sweep: camera={cam}, min_warp={warp}", *run_ours(dets, motions_of(seq, pc), pc))
    return rows


COLS = [("detector", "detector"), ("seq", "seq"), ("method", "method"), ("mode", "mode"), ("pd", "Pd %"),
        ("false_per_frame", "false/frame"), ("false_per_mpx", "false/Mpx"), ("frames_with_false", "frames with false %"),
        ("mota", "MOTA %"), ("idf1", "IDF1 %"), ("id_switches", "ID sw"), ("delays", "delay per clip (frames)"),
        ("tracker_ms", "tracker ms/frame")]


def markdown(rows: list[dict]) -> str:
    def cell(v) -> str:
        if v is None:
            return ""
        return f"{v:.3f}" if isinstance(v, float) and abs(v) < 1 else (f"{v:.1f}" if isinstance(v, float) else str(v))

    out = ["| " + " | ".join(h for _, h in COLS) + " |", "|" + "---|" * len(COLS)]
    out += ["| " + " | ".join(cell(r.get(k)) for k, _ in COLS) + " |" for r in rows]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="shipped names, checkpoints or classical detectors")
    ap.add_argument("--seq", nargs="+", default=["seq4", "seq5"])
    ap.add_argument("--low", type=float, default=0.25, help="threshold of the cached candidates")
    ap.add_argument("--sweep", action="store_true", help="also the seq4-only grid the defaults came from")
    ap.add_argument("--cameras", nargs="+", default=[], metavar="MODEL[:MIN_WARP]",
                    help="also the tracker with these camera settings, on every sequence")
    ap.add_argument("--out", type=Path, default=None, help="write OUT.md and OUT.json")
    a = ap.parse_args()
    if not DATA.exists():
        print(f"{DATA}: not found", file=sys.stderr)
        return 2
    rows = [r for m in a.models for s in a.seq for r in rows_for(m, s, a.sweep, a.low, tuple(a.cameras))]
    cmd = shlex.join(["python", *sys.argv])
    clips = {(r["seq"]): (r["clips"], r["cuts_found"], r["cuts_at_clip_starts"]) for r in rows}
    notes = [f"Command: `{cmd}`", "", f"Parameters: `{TrackerParams()}`", "",
             "Clips (label jumps > 20 px) and scene cuts found: " + "; ".join(
                 f"{s}: {c} clips, {f} cuts found, {k} at clip starts" for s, (c, f, k) in clips.items()),
             "", "A label is found by a point within 4 px; delay: frames from each clip's start to its first found label "
             "(– never). Parameters chosen on seq4 only; seq5 is the check.", ""]
    text = "\n".join(notes) + markdown(rows)
    print(text)
    if a.out:
        save_report({"command": cmd, "params": str(TrackerParams()), "rows": rows}, text + "\n", a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
