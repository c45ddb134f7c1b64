"""The soft-cut full pass of windowed detection on generated sequences: zoom steps it catches, passes it adds.

    python benchmarks/window_triggers_generated.py --soft-cut 0.6 0.7 0.8 0.9 \\
        --out benchmarks/results/tracking/window-soft-cut-generated

For each kind of ``benchmarks/tracking_generated.py`` (20 seeds each) and each ``--soft-cut`` value, the
schedule of :class:`~irstd.inference.WindowedPredictor` is run over the frames without a network (hints
always given and ``--full-every`` 1000 by default, so only the camera tests decide; a soft cut counted here
may fall on a frame a real schedule runs whole anyway): per kind, the zoom steps
(``zoom-step`` kinds: the frame where the view magnifies) that run whole because of the soft cut, and the
soft-cut passes on every other frame (each one a full pass the schedule did not ask for), per 100 frames.
Extra kinds ``zoom-step-3`` and ``zoom-step-12``: the step of ``zoom-step`` at 3 % and 12 %.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracking_generated import CAMERA_KINDS, KINDS  # noqa: E402

from irstd.data.synthetic_sequence import generate_sequence  # noqa: E402
from irstd.inference import WindowedPredictor  # noqa: E402

ALL = {**KINDS, **CAMERA_KINDS,
       "zoom-step-3": dict(CAMERA_KINDS["zoom-step"], zoom_step=(10, 1.03)),
       "zoom-step-12": dict(CAMERA_KINDS["zoom-step"], zoom_step=(10, 1.12))}


def schedule(frames: list, soft_cut: float, full_every: int) -> list[str]:
    """Per frame why it ran whole ('cut', 'soft', 'schedule') or 'window'."""
    w = WindowedPredictor(SimpleNamespace(stride=8, model=None), full_every=full_every, soft_cut=soft_cut)
    out = []
    for f in frames:
        w.set_hints([(10.0, 10.0)])
        cuts, soft = w.cuts, w.soft_cuts
        full = w._full_due(f)
        out.append("cut" if w.cuts > cuts else "soft" if w.soft_cuts > soft else "schedule" if full else "window")
        w._advance(full)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--soft-cut", nargs="+", type=float, default=[0.6, 0.7, 0.8, 0.9])
    ap.add_argument("--full-every", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None, help="write OUT.md and OUT.json")
    a = ap.parse_args()
    rows = []
    for kind, kw in ALL.items():
        seqs = [generate_sequence(pan=(3, 0), seed=100 + s, **kw).frames for s in range(a.seeds)]
        step = kw.get("zoom_step", (None,))[0]
        for sc in a.soft_cut:
            caught = extra = frames = 0
            for fr in seqs:
                why = schedule(fr, sc, a.full_every)
                caught += step is not None and why[step] == "soft"
                extra += sum(w == "soft" for i, w in enumerate(why) if i != step)
                frames += len(fr)
            rows.append({"kind": kind, "soft_cut": sc, "steps": a.seeds if step is not None else 0,
                         "steps_caught": caught, "soft_passes_per_100": 100 * extra / frames})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    lines = ["| kind | soft_cut | zoom steps caught | soft-cut passes elsewhere per 100 frames |", "|---|---|---|---|"]
    for r in rows:
        steps = f"{r['steps_caught']} / {r['steps']}" if r["steps"] else "–"
        lines.append(f"| {r['kind']} | {r['soft_cut']} | {steps} | {r['soft_passes_per_100']:.2f} |")
    text = f"Command: `python {' '.join(sys.argv)}`\n\n" + "\n".join(lines)
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.with_suffix(".md").write_text(text + "\n")
        a.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
