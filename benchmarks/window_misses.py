"""Where detection in windows loses labelled targets against the full frame, per frame and by cause.

    python benchmarks/window_misses.py --seq seq4 --setting "" --setting "window=96" \\
        --out benchmarks/results/tracking/window-misses-seq4

Runs the tracking loop of ``irstd track`` (:func:`~irstd.inference.tracking_run.track_frames`) over
``ISTD-sequences`` once with the full frame and once per ``--setting`` with
:class:`~irstd.inference.WindowedPredictor` (``key=value,…`` keyword arguments on top of ``--full-every``
and ``--window``), in the same precision, and compares them label by label (found within 4 px). A frame
the full frame confirms online and the windows do not is a *loss*; its cause is the first that applies:

- ``inside window, not detected``: the frame ran windows, the label lay inside one, no detection found it
  (the network near a window's edge, or another score).
- ``new, cut not detected``: the label lay outside every window and the windowed path had not yet found
  this clip's target; the clip's first frame ran windows (the scene-cut test did not fire).
- ``new, waiting for a full pass``: likewise, but the clip's first frame ran whole (or the clip began
  before the target could be tracked): the target is seen at the next scheduled full pass.
- ``window off the target``: outside every window although found earlier in the clip, with a window
  within 64 px of it (placed off a fast target or by the camera's motion).
- ``no window (track died)``: outside every window although found earlier in the clip, no window near.
- ``found, not confirmed``: detected in this frame by the windows too, but not (yet) confirmed: the
  track was born later or broken by an earlier loss (``after a raw miss`` when the clip has a frame the
  windows missed and the full frame found before this one).
- ``full pass differs``: the frame ran whole and still differs in detection (should not happen).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from track_speed import DATA  # noqa: E402  the same data path

from irstd.inference import Predictor, WindowedPredictor  # noqa: E402
from irstd.inference.tracking_run import track_frames  # noqa: E402
from irstd.tracking import TrackerParams  # noqa: E402
from irstd.tracking.evaluation import GATE, clip_starts, match, read_point_labels  # noqa: E402

CAUSES = ["inside window, not detected", "new, cut not detected", "new, waiting for a full pass",
          "window off the target", "no window (track died)", "found, not confirmed, after a raw miss",
          "found, not confirmed", "full pass differs"]


class Recording(WindowedPredictor):
    """A windowed predictor that keeps, per frame, whether it ran whole, its windows and its camera test."""

    def __init__(self, *a: Any, **k: Any) -> None:
        super().__init__(*a, **k)
        self.log: list[dict[str, Any]] = []

    def predict(self, frames: Any) -> list:
        hints = list(self._hints or [])
        out = super().predict(frames)
        m = self.last_motion
        self.log.append({"full": self.last_full, "windows": list(self.last_windows), "hints": hints,
                         "peak": None if m is None else m.peak, "corr": None if m is None else m.correlation,
                         "cut": bool(m is not None and m.cut)})
        return out


def run(predictor: Any, seq: str) -> tuple[list, float]:
    """The tracker's results per frame and the seconds the loop took."""
    results = []
    t0 = time.perf_counter()
    for step in track_frames(predictor, DATA / seq, params=TrackerParams()):
        results.append(step.result)
    return results, time.perf_counter() - t0


def found(results: list, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(raw found, confirmed found) per frame, (F,) bool each."""
    raw = np.array([match(r.detections[:, :2], labels[i:i + 1], GATE)[0][0] for i, r in enumerate(results)])
    conf = np.array([match(np.array([(t.x, t.y) for t in r.targets]).reshape(-1, 2), labels[i:i + 1], GATE)[0][0]
                     for i, r in enumerate(results)])
    return raw, conf


def inside(box: tuple[int, int, int, int], x: float, y: float) -> bool:
    return box[0] <= y < box[2] and box[1] <= x < box[3]


def classify(i: int, lab: np.ndarray, clip0: int, rec: list[dict], w_raw: np.ndarray, f_raw: np.ndarray) -> str:
    """The cause of a loss at frame ``i`` (see the module docstring)."""
    x, y = lab[i]
    r = rec[i]
    if r["full"]:
        return "full pass differs" if not w_raw[i] else ("found, not confirmed, after a raw miss"
                                                         if np.any(f_raw[clip0:i] & ~w_raw[clip0:i]) else "found, not confirmed")
    if w_raw[i]:
        return ("found, not confirmed, after a raw miss" if np.any(f_raw[clip0:i] & ~w_raw[clip0:i])
                else "found, not confirmed")
    if any(inside(b, x, y) for b in r["windows"]):
        return "inside window, not detected"
    if not np.any(w_raw[clip0:i]):
        return "new, cut not detected" if clip0 > 0 and not rec[clip0]["full"] else "new, waiting for a full pass"
    near = any(max(abs(x - (b[1] + b[3]) / 2) - (b[3] - b[1]) / 2, abs(y - (b[0] + b[2]) / 2) - (b[2] - b[0]) / 2) < 64
               for b in r["windows"])
    return "window off the target" if near else "no window (track died)"


def compare(seq: str, base: tuple[np.ndarray, np.ndarray], results: list, rec: list[dict]) -> dict[str, Any]:
    pts = read_point_labels(DATA / "labels" / f"{seq}.txt")  # (F, 2) x, y
    lab = pts.astype(np.float64)
    starts = clip_starts(pts)
    f_raw, f_conf = base
    w_raw, w_conf = found(results, pts)
    causes: collections.Counter = collections.Counter()
    frames: dict[str, list[int]] = collections.defaultdict(list)
    for i in np.flatnonzero(f_conf & ~w_conf):
        clip0 = max(s for s in starts if s <= i)
        c = classify(int(i), lab, clip0, rec, w_raw, f_raw)
        causes[c] += 1
        frames[c].append(int(i))
    raw_lost = collections.Counter()
    for i in np.flatnonzero(f_raw & ~w_raw):
        clip0 = max(s for s in starts if s <= i)
        raw_lost[classify(int(i), lab, clip0, rec, w_raw, f_raw)] += 1
    n = len(lab)
    return {"raw_pd": 100 * w_raw.mean(), "online_pd": 100 * w_conf.mean(), "full_raw_pd": 100 * f_raw.mean(),
            "full_online_pd": 100 * f_conf.mean(), "lost": int((f_conf & ~w_conf).sum()),
            "gained": int((w_conf & ~f_conf).sum()), "frames": n, "full_passes": sum(r["full"] for r in rec),
            "causes": dict(causes), "cause_frames": dict(frames), "raw_lost": dict(raw_lost),
            "clip_starts": starts, "full_at_clip_start": [int(rec[s]["full"]) for s in starts]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="sgem_unet_t.sirst")
    ap.add_argument("--precision", default="fast")
    ap.add_argument("--seq", nargs="+", default=["seq4"])
    ap.add_argument("--full-every", type=int, default=5)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--setting", action="append", default=None,
                    help="extra WindowedPredictor keywords, key=value,… (repeat for several; '' = the defaults)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    settings = a.setting if a.setting is not None else [""]
    p = Predictor.from_checkpoint(a.model, device="cpu", precision=a.precision, batch_size=8)
    p.predict([np.zeros((512, 640), np.uint8)])
    rows = []
    for seq in a.seq:
        pts = read_point_labels(DATA / "labels" / f"{seq}.txt")
        full_results, full_s = run(p, seq)
        base = found(full_results, pts)
        for setting in settings:
            kw: dict[str, Any] = {"full_every": a.full_every, "window": a.window}
            for item in filter(None, setting.split(",")):
                k, v = item.split("=")
                kw[k.strip()] = json.loads(v)
            w = Recording(p, **kw)
            results, secs = run(w, seq)
            row = {"seq": seq, "setting": setting or "(defaults)", "kwargs": kw, "fps": len(results) / secs,
                   "full_fps": len(full_results) / full_s, **compare(seq, base, results, w.log),
                   "per_frame": w.log}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k not in ("per_frame", "cause_frames")}), file=sys.stderr,
                  flush=True)
    lines = ["| seq | setting | full passes | raw Pd % (full) | online Pd % (full) | lost / gained | losses by cause |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        c = "; ".join(f"{k} {v}" for k, v in sorted(r["causes"].items(), key=lambda kv: -kv[1]))
        lines.append(f"| {r['seq']} | {r['setting']} | {r['full_passes']} | {r['raw_pd']:.1f} ({r['full_raw_pd']:.1f}) | "
                     f"{r['online_pd']:.1f} ({r['full_online_pd']:.1f}) | {r['lost']} / {r['gained']} | {c} |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.with_suffix(".md").write_text(f"Command: `python {' '.join(sys.argv)}`\n\n{text}\n")
        for r in rows:
            r["per_frame"] = [{k: v for k, v in f.items() if k != "hints"} for f in r["per_frame"]]
        a.out.with_suffix(".json").write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
