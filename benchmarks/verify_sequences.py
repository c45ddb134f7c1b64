"""Per-frame Pd and false targets on the ISTD sequences with and without the verifier (docs/verify.md).

    PYTHONPATH=src python benchmarks/verify_sequences.py sgem_unet_t.sirst sgem_unet.sirst \
        --out benchmarks/results/verify/istd-sequences

The detections are those of ``benchmarks/tracking_sequences.py`` (the predictor at threshold 0.5, CPU,
fp32; cached under ``runs/tracking/`` and made there on the first call), so a run costs the verifier only.
The same figures come from ``irstd evaluate MODEL --verify --sequence DIR`` (which runs the detector).
A label is found by a target centroid within 4 px, one to one; every other target is a false one.
The verifier never saw these sequences.
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
from tracking_sequences import DATA, detect, frames_of  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--verifier", default=None)
    p.add_argument("--thresholds", type=float, nargs="+", default=None,
                   help="verifier thresholds to score at (default: its own); the network runs once")
    p.add_argument("--seqs", nargs="+", default=["seq4", "seq5"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/verify/istd-sequences")
    args = p.parse_args(argv)
    import torch

    from irstd.inference import Target
    from irstd.tracking.evaluation import detection_scores, read_point_labels
    from irstd.verify import load_verifier

    torch.set_num_threads(args.threads)
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
            for t in args.thresholds or [ver.threshold]:
                b = detection_scores([p[s >= t] for p, s in zip(before, scores)], lab, shape)[0]
                rows.append({"model": model, "seq": seq, "threshold": t, "without": asdict(a), "with": asdict(b)})
                print(f"{model} {seq} @ {t:.4g}: Pd {a.pd:.1f} → {b.pd:.1f} %, false/frame {a.false_per_frame:.3f} → "
                      f"{b.false_per_frame:.3f}", flush=True)
    cmd = "PYTHONPATH=src python " + shlex.join(["benchmarks/verify_sequences.py", *sys.argv[1:]])
    lines = [f"`{cmd}`", "", f"Verifier `{ver.name}` (its threshold {ver.threshold:.4g}); a label found within 4 px.", "",
             "| model | seq | verifier threshold | Pd | + verifier | false targets / frame | + verifier | frames with ≥ 1 | + verifier |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["without"], r["with"]
        lines.append(f"| {r['model']} | {r['seq']} | {r['threshold']:.4g} | {a['pd']:.1f} % | {b['pd']:.1f} % | {a['false_per_frame']:.3f} | "
                     f"{b['false_per_frame']:.3f} | {a['frames_with_false']:.1f} % | {b['frames_with_false']:.1f} % |")
    from irstd.bench.report import save_report  # STEM.json + STEM.md, as every benchmark report
    save_report({"command": cmd, "verifier": ver.name, "verifier_threshold": ver.threshold, "rows": rows},
                "\n".join(lines) + "\n", args.out)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
