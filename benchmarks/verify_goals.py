"""The verifier's goals on SIRST test and the held-out SIRST-V2 background groups (docs/verify.md).

    PYTHONPATH=src python benchmarks/verify_goals.py maps sgem_unet_t.sirst sgem_unet.sirst   # detector, once
    PYTHONPATH=src python benchmarks/verify_goals.py score sgem_unet_t.sirst sgem_unet.sirst \
        --out benchmarks/results/verify/goals

``maps`` runs each detector (CPU, fp32, the predictor at native size) over the 50_50 test list (corrected
``Misc_111``) and the held-out background groups and caches the probability maps (float16) under
``runs/verify/maps/``; ``score`` applies a verifier to them and writes, with and without it, the figures
``irstd evaluate MODEL --data … --negatives … --verify`` computes in one go (the same steps:
:func:`irstd.inference.verifier_protocol.apply_verifier`, rejected components set to 0, ``SegMetrics`` on
probabilities, ``count_negative``). Splitting the two lets a new verifier be scored without the detector.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("IRSTD_DATASETS") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
MAPS = Path("runs/verify/maps")


def _test_set():
    from irstd.data import open_dataset

    return open_dataset(DATA / "SIRST", split_file=DATA / "splits/NUAA-SIRST_50_50/test.txt",
                        mask_dir=DATA / "SIRST-corrections/masks", normalization=(0.0, 1.0))


def maps(model: str) -> None:
    from irstd.data import open_negatives
    from irstd.inference import Predictor

    MAPS.mkdir(parents=True, exist_ok=True)
    p = Predictor.from_checkpoint(model, device="cpu")
    t0 = time.time()
    ds = _test_set()
    probs = {name: p.probabilities([ds.load_raw(i)[0]])[0].astype(np.float16) for i, name in enumerate(ds.names)}
    np.savez(MAPS / f"{model}-sirst-test.npz", **probs)
    print(f"{model} sirst test: {len(probs)} maps, {time.time() - t0:.0f} s", flush=True)
    neg = open_negatives(DATA / "SIRST-V2-background", "heldout")
    t0 = time.time()
    probs = {f.stem: p.probabilities([neg.load(i)])[0].astype(np.float16) for i, f in enumerate(neg)}
    np.savez(MAPS / f"{model}-v2-heldout.npz", **probs)
    print(f"{model} v2 heldout: {len(probs)} maps, {time.time() - t0:.0f} s", flush=True)


class _Memo:
    """A verifier whose scores are computed once per (frame, targets) and compared with a settable threshold,
    so a threshold sweep costs the network once."""

    def __init__(self, verifier) -> None:
        self.verifier, self.threshold, self._scores = verifier, verifier.threshold, {}

    def keep(self, frame, targets):
        key = (frame.shape, float(np.asarray(frame, np.float64).sum()), tuple((t.x, t.y) for t in targets))
        if key not in self._scores:
            self._scores[key] = self.verifier.scores(frame, targets)
        return self._scores[key] >= self.threshold


def score(model: str, verifier) -> dict:
    import torch

    from irstd.data import open_negatives
    from irstd.inference import extract_targets
    from irstd.inference.verifier_protocol import apply_verifier
    from irstd.metrics import SegMetrics, count_negative, summarize_negatives

    def both(frame, prob):
        prob = prob.astype(np.float32)
        mask = prob > 0.5
        targets = extract_targets(prob, mask)
        mask_v, _ = apply_verifier(verifier, frame, mask, targets)
        return prob, np.where(mask & ~mask_v, np.float32(0), prob)

    ds = _test_set()
    cached = np.load(MAPS / f"{model}-sirst-test.npz")
    seg = (SegMetrics(0.5, inputs="probs"), SegMetrics(0.5, inputs="probs"))
    for i, name in enumerate(ds.names):
        frame, mask = ds.load_raw(i)
        gt = torch.from_numpy(mask.astype(np.float32))[None]
        for m, p in zip(seg, both(frame, cached[name])):
            m.update([torch.from_numpy(p)[None]], [gt])
    neg = open_negatives(DATA / "SIRST-V2-background", "heldout")
    cached = np.load(MAPS / f"{model}-v2-heldout.npz")
    rows: tuple[list, list] = ([], [])
    for i, f in enumerate(neg):
        for r, p in zip(rows, both(neg.load(i), cached[f.stem])):
            r.append(count_negative(f.stem, p, group=f.group, threshold=0.5))
    out = {"model": model}
    for label, m, r in zip(("without", "with"), seg, rows):
        res, s = m.compute(), summarize_negatives(r)
        out[label] = {"iou": 100 * res.iou, "niou": 100 * res.niou, "pd": 100 * res.pd, "fa": res.fa,
                      "target_precision": 100 * res.target_precision, "heldout_frames": s.n_frames,
                      "heldout_false_targets": s.false_targets, "heldout_per_frame": s.false_targets_per_frame,
                      "heldout_per_mp": s.false_targets_per_mp, "heldout_frames_with": 100 * s.frames_with_false_target}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("stage", choices=("maps", "score"))
    p.add_argument("models", nargs="+")
    p.add_argument("--verifier", default=None)
    p.add_argument("--thresholds", type=float, nargs="+", default=None,
                   help="verifier thresholds to score at besides its own; the network runs once")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/verify/goals")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.stage == "maps":
        for m in args.models:
            maps(m)
        return 0
    from irstd.verify import load_verifier

    if str(args.verifier).endswith(".json"):  # a verifier fused with the detector's peak and area (round 3)
        from irstd.verify.fusion import load_fused

        ver = load_fused(args.verifier)
    else:
        ver = load_verifier(args.verifier)
    memo = _Memo(ver)
    rows = []
    for m in args.models:
        for t in sorted({ver.threshold, *(args.thresholds or [])}):
            memo.threshold = t
            rows.append({**score(m, memo), "threshold": t})
    cmd = "PYTHONPATH=src python " + shlex.join(["benchmarks/verify_goals.py", *sys.argv[1:]])
    lines = [f"`{cmd}`", "", f"Verifier `{ver.name}` (its threshold {ver.threshold:.4g}); detector threshold 0.5.", "",
             "| model | | IoU | nIoU | Pd | Fa (1e-6) | held-out background: false targets | per frame | per MP | frames with ≥ 1 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for k, r in enumerate(rows):
        for label in ("without", "with"):
            if label == "without" and k and rows[k - 1]["model"] == r["model"]:
                continue  # the detector's row once per model
            v = r[label]
            kind = "detector" if label == "without" else f"+ verifier @ {r['threshold']:.4g}"
            lines.append(f"| {r['model']} | {kind} | {v['iou']:.2f} | "
                         f"{v['niou']:.2f} | {v['pd']:.2f} | {v['fa']:.2f} | {v['heldout_false_targets']} | "
                         f"{v['heldout_per_frame']:.3f} | {v['heldout_per_mp']:.3f} | {v['heldout_frames_with']:.1f} % |")
    from irstd.bench.report import save_report  # STEM.json + STEM.md, as every benchmark report
    save_report({"command": cmd, "verifier": ver.name, "verifier_threshold": ver.threshold, "rows": rows},
                "\n".join(lines) + "\n", args.out)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
