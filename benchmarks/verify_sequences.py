"""Per-frame Pd and false targets on the ISTD sequences with and without the verifier (docs/verify.md).

    PYTHONPATH=src python benchmarks/verify_sequences.py sgem_unet_t.sirst sgem_unet.sirst \
        --out benchmarks/results/verify/istd-sequences

The detections are those of ``benchmarks/tracking_sequences.py`` (the predictor at threshold 0.5, CPU,
fp32; cached under ``runs/tracking/`` and made there on the first call), so a run costs the verifier only.
The same figures come from ``irstd evaluate MODEL --verify --sequence DIR`` (which runs the detector).
A label is found by a target centroid within 4 px, one to one; every other target is a false one.
The shipped verifier never saw these sequences; a round-3 verifier trained with ``--sequence seq4``
(docs/verify.md) saw seq4, so only seq5 measures it.

``--track`` adds the tracker on the same detections, with and without the verifier (the verifier drops
targets before the tracker, as ``irstd track MODEL --verify`` does): confirmed Pd and false targets per
frame, online and offline (``confirm_offline``), the tracker's defaults and camera estimates (its default
camera model, ``GlobalMotion.for_params``) as in ``benchmarks/tracking_sequences.py``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracking_sequences import DATA, detect, frames_of, run_ours  # noqa: E402


def track_rows(files: list, dets: list, keep: list | None, labels_xy: np.ndarray, shape: tuple) -> dict:
    """Confirmed Pd / false per frame of the tracker (defaults) on ``dets`` (per frame [x, y, area, peak]
    rows), the rows flagged False in ``keep`` dropped first; online and offline."""
    from irstd.tracking import GlobalMotion, TrackerParams, confirm_offline
    from irstd.tracking.evaluation import GATE, clip_starts, evaluate_tracking, labels_with_clip_ids

    p = TrackerParams()
    if not hasattr(track_rows, "_motions") or track_rows._files != files:
        g = GlobalMotion.for_params(p)  # the defaults' camera model, as the tracker builds it
        track_rows._motions = [g.update(np.asarray(Image.open(f))) for f in files]
        track_rows._files = files
    d = [np.asarray(x, np.float64).reshape(-1, 4) for x in dets]
    if keep is not None:
        d = [x[k] for x, k in zip(d, keep)]
    results, _ = run_ours(d, track_rows._motions, p)
    labels, starts = labels_with_clip_ids(labels_xy), clip_starts(labels_xy)
    out = {}
    for mode in ("online", "offline"):
        e = evaluate_tracking(confirm_offline(results) if mode == "offline" else results, labels, shape, GATE, starts)
        out[mode] = {"pd": e.confirmed.pd, "false_per_frame": e.confirmed.false_per_frame,
                     "frames_with_false": e.confirmed.frames_with_false}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--verifier", default=None)
    p.add_argument("--thresholds", type=float, nargs="+", default=None,
                   help="verifier thresholds to score at besides its own; the network runs once")
    p.add_argument("--seqs", nargs="+", default=["seq4", "seq5"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/verify/istd-sequences")
    p.add_argument("--track", action="store_true", help="also the tracker's confirmed targets, with and without")
    args = p.parse_args(argv)
    import torch

    from irstd.inference import Target
    from irstd.tracking.evaluation import detection_scores, read_point_labels
    from irstd.verify import load_verifier

    torch.set_num_threads(args.threads)
    if str(args.verifier).endswith(".json"):  # a verifier fused with the detector's peak and area (round 3)
        from irstd.verify.fusion import load_fused

        ver = load_fused(args.verifier)
    else:
        ver = load_verifier(args.verifier)
    rows = []
    for model in args.models:
        for seq in args.seqs:
            cache = json.loads(detect(model, seq).read_text())
            labels = read_point_labels(DATA / "labels" / f"{seq}.txt")
            files = frames_of(seq)
            before, scores = [], []
            for f, dets in zip(files, cache["raw"]):
                frame = np.asarray(Image.open(f))
                frame = frame if frame.ndim == 2 else frame[..., 0]
                ts = [Target(x, y, int(a), (int(x), int(y), int(x), int(y)), pk) for x, y, a, pk in dets]
                scores.append(ver.scores(frame, ts) if ts else np.zeros(0, np.float32))
                before.append(np.asarray([[t.x, t.y] for t in ts], np.float64).reshape(-1, 2))
            shape = frame.shape
            lab = [label[None] for label in labels]
            a = detection_scores(before, lab, shape)[0]
            tr_a = track_rows(files, cache["raw"], None, labels, shape) if args.track else None
            for t in sorted({ver.threshold, *(args.thresholds or [])}):
                b = detection_scores([p[s >= t] for p, s in zip(before, scores)], lab, shape)[0]
                rows.append({"model": model, "seq": seq, "threshold": t, "without": asdict(a), "with": asdict(b)})
                print(f"{model} {seq} @ {t:.4g}: Pd {a.pd:.1f} → {b.pd:.1f} %, false/frame {a.false_per_frame:.3f} → "
                      f"{b.false_per_frame:.3f}", flush=True)
                if args.track:
                    rows[-1]["track_without"] = tr_a
                    rows[-1]["track_with"] = track_rows(files, cache["raw"], [s >= t for s in scores], labels, shape)
    cmd = "PYTHONPATH=src python " + shlex.join(["benchmarks/verify_sequences.py", *sys.argv[1:]])
    lines = [f"`{cmd}`", "", f"Verifier `{ver.name}` (its threshold {ver.threshold:.4g}); a label found within 4 px.", "",
             "| model | seq | verifier threshold | Pd | + verifier | false targets / frame | + verifier | frames with ≥ 1 | + verifier |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["without"], r["with"]
        lines.append(f"| {r['model']} | {r['seq']} | {r['threshold']:.4g} | {a['pd']:.1f} % | {b['pd']:.1f} % | {a['false_per_frame']:.3f} | "
                     f"{b['false_per_frame']:.3f} | {a['frames_with_false']:.1f} % | {b['frames_with_false']:.1f} % |")
    if args.track:
        lines += ["", "Tracker (defaults) on the same detections: confirmed targets, without → with the verifier.", "",
                  "| model | seq | verifier threshold | mode | confirmed Pd | + verifier | false / frame | + verifier | "
                  "frames with ≥ 1 | + verifier |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            for mode in ("online", "offline"):
                a, b = r["track_without"][mode], r["track_with"][mode]
                lines.append(f"| {r['model']} | {r['seq']} | {r['threshold']:.4g} | {mode} | {a['pd']:.1f} % | {b['pd']:.1f} % | "
                             f"{a['false_per_frame']:.3f} | {b['false_per_frame']:.3f} | {a['frames_with_false']:.1f} % | "
                             f"{b['frames_with_false']:.1f} % |")
    from irstd.bench.report import save_report  # STEM.json + STEM.md, as every benchmark report
    save_report({"command": cmd, "verifier": ver.name, "verifier_threshold": ver.threshold, "rows": rows},
                "\n".join(lines) + "\n", args.out)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
