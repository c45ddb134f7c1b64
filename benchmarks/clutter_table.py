"""With and without negatives, side by side: the clutter table of docs/clutter.md.

    python benchmarks/clutter_table.py runs/sweeps/sirst_cpu_light runs/sweeps/sirst_cpu_light_negatives \
        --models sgem_unet_t unet_t --seed 0 --out benchmarks/results/clutter-cpu-light

Each run folder ``<sweep>/<model>-seed<seed>`` must hold ``eval-clutter-best/metrics.json``, written by

    irstd evaluate RUN/best.safetensors --data ../shared/datasets/SIRST \
        --split-file ../shared/datasets/splits/NUAA-SIRST_50_50/test.txt \
        --mask-dir ../shared/datasets/SIRST-corrections/masks \
        --negatives ../shared/datasets/SIRST-V2-background --negatives-split heldout --sweep \
        --out RUN/eval-clutter-best

(the target test list and the held-out background groups in one call). The table puts the target metrics
beside the false alarms on the held-out groups and checks the goals of the clutter protocol: held-out
Fa ≤ 20×10⁻⁶ and ≤ 0.1 false targets per megapixel, and test Pd and IoU within 1 point of the same
recipe without negatives.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

FA_GOAL, FT_MP_GOAL, POINTS = 20.0, 0.1, 1.0


def row(sweep: Path, model: str, seed: int) -> dict:
    """The figures of one run from its ``eval-clutter-best/metrics.json``."""
    path = sweep / f"{model}-seed{seed}" / "eval-clutter-best" / "metrics.json"
    if not path.is_file():
        raise SystemExit(f"{path}: missing (run the irstd evaluate command in this script's docstring)")
    d = json.loads(path.read_text())
    m, neg = d["metrics"], d["negatives"]["totals"]
    pd_at = d.get("sweep", {}).get("pd_at", {}).get("false_targets_per_mp<=0.1", {})
    return {"sweep": sweep.name, "model": model, "seed": seed, "iou": 100 * m["iou"], "niou": 100 * m["niou"],
            "pd": 100 * m["pd"], "fa": m["fa"], "neg_fa": neg["fa"], "neg_ft_mp": neg["false_targets_per_mp"],
            "neg_ft_frame": neg["false_targets_per_frame"], "neg_frames_hit": 100 * neg["frames_with_false_target"],
            "pd_at_ft_mp": 100 * pd_at["pd"] if pd_at else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("without", type=Path, help="sweep folder of the recipe without negatives")
    p.add_argument("with_", metavar="with", type=Path, help="sweep folder of the recipe with negatives")
    p.add_argument("--models", nargs="+", default=["sgem_unet_t", "unet_t"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="output path without suffix")
    args = p.parse_args(argv)
    rows, lines = [], []
    head = ("| model | negatives | test IoU (%) | nIoU (%) | Pd (%) | Fa (×10⁻⁶) | held-out Fa (×10⁻⁶) "
            "| false targets / MP | per frame | frames with ≥ 1 | Pd at ≤ 0.1 FT/MP (%) |")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    goals = []
    for model in args.models:
        a, b = row(args.without, model, args.seed), row(args.with_, model, args.seed)
        rows += [a, b]
        for r, label in ((a, "no"), (b, "yes")):
            pd_at = "–" if r["pd_at_ft_mp"] is None else f"{r['pd_at_ft_mp']:.2f}"
            lines.append(f"| `{model}` | {label} | {r['iou']:.2f} | {r['niou']:.2f} | {r['pd']:.2f} | {r['fa']:.1f} "
                         f"| {r['neg_fa']:.1f} | {r['neg_ft_mp']:.3f} | {r['neg_ft_frame']:.2f} "
                         f"| {r['neg_frames_hit']:.1f} % | {pd_at} |")
        checks = {
            f"held-out Fa ≤ {FA_GOAL:g}e-6": (b["neg_fa"] <= FA_GOAL, f"{b['neg_fa']:.1f}"),
            f"held-out false targets/MP ≤ {FT_MP_GOAL:g}": (b["neg_ft_mp"] <= FT_MP_GOAL, f"{b['neg_ft_mp']:.3f}"),
            f"test Pd within {POINTS:g} point": (b["pd"] >= a["pd"] - POINTS, f"{b['pd'] - a['pd']:+.2f}"),
            f"test IoU within {POINTS:g} point": (b["iou"] >= a["iou"] - POINTS, f"{b['iou'] - a['iou']:+.2f}"),
        }
        goals.append((model, checks))
    cmd = "python " + " ".join(shlex.quote(x) for x in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    md = [f"# With and without negatives (seed {args.seed})", "",
          f"Without: `{args.without}`; with: `{args.with_}`. Test: NUAA-SIRST 50_50 test list at native size, "
          "threshold 0.5; held-out: the held-out scene groups of the SIRST-V2 background frames "
          "(`src/irstd/data/negatives_split.json`), never trained on.", "", f"Made by `{cmd}`.", "", *lines, "",
          "## Goals (the run with negatives; the moves against the run without)", "",
          "| model | goal | value | met |", "|---|---|---|---|"]
    for model, checks in goals:
        md += [f"| `{model}` | {k} | {v} | {'yes' if ok else 'no'} |" for k, (ok, v) in checks.items()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n", encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps({"command": cmd, "rows": rows, "goals": {
        m: {k: {"met": ok, "value": v} for k, (ok, v) in c.items()} for m, c in goals}}, indent=1), encoding="utf-8")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
