"""Which generated targets a model misses: Pd by target area and by signal-to-clutter ratio (SCR), and
Pd per background, on scenes of a seed the shipped ``synth`` tag never saw (training used seed 0's train
and val streams, its test the test stream: ``irstd.data.SPLIT_STREAMS``; the default here is seed 1, the
test stream). Same matching as Pd
(``irstd.metrics.counting.found_targets``), same threshold as ``irstd evaluate`` (0.5). Its ``Fa`` counts
every predicted pixel off the masks, a found target's spill included (stricter than ``irstd evaluate``,
which counts unmatched components only: reported beside it as ``fa_eval_1e6``).

    python benchmarks/synthetic_misses.py sgem_unet_t.synth --out benchmarks/results/synthetic-misses-sgem_unet_t
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

AREA_BINS = [(1, 3), (3, 9), (9, 27), (27, 10_000)]  # pixels, [lo, hi)
SCR_BINS = [(0, 2), (2, 3), (3, 4), (4, 6), (6, 9), (9, 1e9)]  # measured SCR, [lo, hi)
DISTANCE, CONNECTIVITY = 3.0, 8  # the matching of irstd evaluate


def _bins(found: np.ndarray, values: np.ndarray, bins: list[tuple[float, float]]) -> list[dict]:
    rows = []
    for lo, hi in bins:
        sel = (values >= lo) & (values < hi)
        rows.append({"from": lo, "to": hi, "targets": int(sel.sum()),
                     "pd": round(100 * float(found[sel].mean()), 1) if sel.any() else None})
    return rows


def main(argv: list[str] | None = None) -> int:
    from irstd.data.synthetic_dataset import TEST_STREAM

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="checkpoint, shipped name (sgem_unet_t.synth) or detector")
    p.add_argument("--n", type=int, default=100, help="scenes (default 100)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--stream", type=int, default=TEST_STREAM, help=f"generator stream (default {TEST_STREAM}, the test split's)")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--out", help="write <out>.json and <out>.md")
    args = p.parse_args(argv)

    from irstd.core.components import connected_components
    from irstd.data.synthetic_dataset import SyntheticDataset
    from irstd.inference import Predictor
    from irstd.metrics.counting import counts_with_gt, found_targets

    predictor = Predictor.from_checkpoint(args.model, device="cpu", threshold=args.threshold)
    scenes = SyntheticDataset(args.n, seed=args.seed, stream=args.stream)
    found, area, scr, background = [], [], [], []
    fp_pixels = fa_pixels = pixels = 0
    for i in range(scenes.n):
        image, mask, info = scenes.scene(i)
        pred = predictor.predict([image])[0].mask
        gt_cc = connected_components(mask, CONNECTIVITY)
        hit = found_targets(gt_cc, connected_components(pred, CONNECTIVITY), DISTANCE)  # (n_gt,) in label order
        labels = gt_cc.labels
        for t in info["targets"]:  # a target's component is the one under its centre pixel
            label = int(labels[t["center"]])
            found.append(bool(hit[label - 1]) if label else False)
            area.append(t["area"])
            scr.append(t["scr_measured"])
            background.append(info["background"])
        fp_pixels += int((pred & ~mask).sum())  # every predicted pixel off the masks
        fa_pixels += counts_with_gt(pred, mask, gt_cc, DISTANCE, CONNECTIVITY).fa_pixels  # irstd evaluate's Fa: unmatched components
        pixels += pred.size
    found_a, area_a, scr_a, bg_a = np.array(found), np.array(area, float), np.array(scr, float), np.array(background)
    report = {
        "command": "python benchmarks/synthetic_misses.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": args.model, "scenes": scenes.n, "seed": args.seed, "stream": args.stream, "targets": int(found_a.size),
        "pd": round(100 * float(found_a.mean()), 2), "fa_1e6": round(fp_pixels / pixels * 1e6, 1),
        "fa_eval_1e6": round(fa_pixels / pixels * 1e6, 1),
        "by_area": _bins(found_a, area_a, AREA_BINS), "by_scr": _bins(found_a, scr_a, SCR_BINS),
        "by_background": {b: {"targets": int((bg_a == b).sum()), "pd": round(100 * float(found_a[bg_a == b].mean()), 1)}
                          for b in sorted(set(background))},
    }
    lines = [f"# Missed generated targets: `{args.model}`", "", f"Command: `{report['command']}`", "",
             f"{scenes.n} scenes of seed {args.seed}, stream {args.stream}; {report['targets']} targets; "
             f"threshold {args.threshold}: Pd {report['pd']} %, Fa {report['fa_1e6']}×10⁻⁶ (every predicted pixel off "
             f"the masks; as `irstd evaluate` counts it, unmatched components only: {report['fa_eval_1e6']}×10⁻⁶).", "",
             "| target area (px) | targets | Pd (%) |", "|---|---:|---:|"]
    lines += [f"| {r['from']:g}–{r['to'] - 1:g} | {r['targets']} | {r['pd']} |" if r['to'] < 10_000 else
              f"| ≥ {r['from']:g} | {r['targets']} | {r['pd']} |" for r in report["by_area"]]
    lines += ["", "| measured SCR | targets | Pd (%) |", "|---|---:|---:|"]
    lines += [f"| {r['from']:g}–{r['to']:g} | {r['targets']} | {r['pd']} |" if r['to'] < 1e9 else
              f"| ≥ {r['from']:g} | {r['targets']} | {r['pd']} |" for r in report["by_scr"]]
    lines += ["", "| background | targets | Pd (%) |", "|---|---:|---:|"]
    lines += [f"| {b} | {v['targets']} | {v['pd']} |" for b, v in report["by_background"].items()]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(report, indent=2))
        out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
