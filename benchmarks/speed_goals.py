"""The speed goals, measured side by side in one interleaved run (``irstd.bench.run_cases``).

    python benchmarks/speed_goals.py [--runs 30] [--threads N] [--out benchmarks/results/cpu-goals]

Cases, all timed round-robin so that a change of machine load hits every one alike:

* the floor reference: a large 3×3 convolution in the fast mode's dtype;
* SGEM-UNet, batch 1, 256²: fast mode (goal ≤ 1.3 × its floor) and fp32;
* the baseline (default DNANet), fp32 eager (goal: SGEM-UNet fast ≥ 4× faster);
* SGEM-UNet fast at 640×512 and 1280×1024 (goal: ms per megapixel no worse than at 256²);
* the light variant (default SGEM-UNet-T) against the light reference (default ACM), fp32 and fast
  (goal: the variant's best latency ≤ the reference's best);
* ONNX Runtime (fp32) against PyTorch fp32 and fast, batch 1, 256², for SGEM-UNet and the two small
  models.

Writes ``OUT.json`` (the full report plus a ``goals`` section) and ``OUT.md``. Models that are not
registered are left out and named in the report. On CUDA the same script runs with ``--device cuda``
(ONNX cases are CPU-only and are skipped there).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

import torch

from irstd.bench import Case, run_cases, save_report, to_markdown
from irstd.core.device import resolve_device
from irstd.core.memory import retain_freed_memory
from irstd.models import is_model

FLOOR_GOAL = 1.3
BASELINE_GOAL = 4.0


def _cases(args: argparse.Namespace, cpu: bool) -> tuple[list[Case], list[str]]:
    flagship, baseline, light, light_ref = args.model, args.baseline, args.light, args.light_ref
    missing = [m for m in dict.fromkeys([flagship, baseline, light, light_ref]) if not is_model(m)]
    have = lambda m: m not in missing  # noqa: E731
    cases: list[Case] = []
    if have(flagship):
        cases += [Case(flagship, "fast"), Case(flagship, "fp32"),
                  Case(flagship, "fast", 1, 512, 640), Case(flagship, "fast", 1, 1024, 1280)]
        if cpu:
            cases.append(Case(flagship, "onnx"))
    if have(baseline):
        cases.append(Case(baseline, "fp32"))
    for m in (light, light_ref):
        if have(m):
            cases += [Case(m, "fp32"), Case(m, "fast")] + ([Case(m, "onnx")] if cpu else [])
    return cases, missing


def _row(report: dict[str, Any], model: str, mode: str, h: int = 256, w: int = 256) -> dict[str, Any] | None:
    for r in report["results"]:
        if (r["model"], r["mode"], r["batch"], r["height"], r["width"]) == (model, mode, 1, h, w) and "median_ms" in r:
            return r
    return None


def _goals(report: dict[str, Any], args: argparse.Namespace, missing: list[str]) -> list[dict[str, Any]]:
    goals: list[dict[str, Any]] = []

    def add(name: str, measured: str, target: str, met: bool | None, **extra: Any) -> None:
        goals.append({"goal": name, "measured": measured, "target": target, "met": met, **extra})

    fast = _row(report, args.model, "fast")
    if fast and "x_floor" in fast:
        add(f"{args.model} fast, b1 256²: latency ÷ floor",
            f"median {fast['median_ms']:.1f} ms ÷ {fast['floor_ms']:.1f} ms = {fast['x_floor']:.2f}× "
            f"(best vs best: {fast['x_floor_best']:.2f}×)"
            + (f"; against the {fast['macs_run_per_image'] / 1e9:.2f} GMACs the fast mode executes: {fast['x_floor_run']:.2f}×"
               if fast.get("x_floor_run") else ""),
            f"≤ {FLOOR_GOAL}×", max(fast["x_floor"], fast["x_floor_best"]) <= FLOOR_GOAL,
            ratio=fast["x_floor"], ratio_best=fast["x_floor_best"])
    base = _row(report, args.baseline, "fp32")
    if fast and base:
        ratio = base["median_ms"] / fast["median_ms"]
        # the most any implementation could reach at this machine's conv rate: the baseline against
        # the flagship's floor (its MACs at the rate), and against the floor of the MACs it executes
        ceiling = base["median_ms"] / fast["floor_ms"] if fast.get("floor_ms") else None
        ceiling_run = base["median_ms"] / (fast["floor_ms"] * fast["macs_run_per_image"] / fast["macs_per_image"]) \
            if fast.get("floor_ms") and fast.get("macs_run_per_image") else None
        text = f"{base['median_ms']:.1f} ÷ {fast['median_ms']:.1f} ms = {ratio:.2f}×"
        if ceiling:
            text += f"; ceiling at the conv rate: {ceiling:.2f}× at the floor" + (
                f", {ceiling_run:.2f}× at the floor of the MACs run" if ceiling_run else "")
        add(f"{args.baseline} fp32 ÷ {args.model} fast, b1 256²", text, f"≥ {BASELINE_GOAL}×", ratio >= BASELINE_GOAL,
            ratio=ratio, ceiling=ceiling, ceiling_run=ceiling_run)
    elif args.baseline in missing:
        add(f"{args.baseline} fp32 ÷ {args.model} fast", "not measured", f"≥ {BASELINE_GOAL}×", None,
            note=f"{args.baseline} is not registered")
    scaling = sorted((r for r in report["results"] if r["model"] == args.model and r["mode"] == "fast"
                      and r["batch"] == 1 and "ms_per_mpix" in r), key=lambda r: r["height"] * r["width"])
    if len(scaling) >= 2:
        first, last = scaling[0], scaling[-1]
        growth = last["ms_per_mpix"] / first["ms_per_mpix"]
        growth_best = (last["min_ms"] / (last["height"] * last["width"])) / (first["min_ms"] / (first["height"] * first["width"]))
        add(f"{args.model} fast: ms per megapixel, {first['width']}×{first['height']} → {last['width']}×{last['height']}",
            " · ".join(f"{r['width']}×{r['height']}: {r['ms_per_mpix']:.0f}" for r in scaling)
            + f" (ratio {growth:.2f}; best vs best {growth_best:.2f})",
            "ratio ≤ 1 (no worse than linear)", max(growth, growth_best) <= 1.0, ratio=growth, ratio_best=growth_best)
    light = [r for r in (_row(report, args.light, "fast"), _row(report, args.light, "fp32")) if r]
    ref = [r for r in (_row(report, args.light_ref, "fast"), _row(report, args.light_ref, "fp32")) if r]
    if light and ref:
        lb, rb = min(light, key=lambda r: r["median_ms"]), min(ref, key=lambda r: r["median_ms"])
        add(f"{args.light} best vs {args.light_ref} best (PyTorch), b1 256²",
            f"{lb['median_ms']:.2f} ms ({lb['mode']}) vs {rb['median_ms']:.2f} ms ({rb['mode']})",
            "≤", lb["median_ms"] <= rb["median_ms"], ratio=lb["median_ms"] / rb["median_ms"])
    for model in (args.model, args.light, args.light_ref):
        for h, w in ((256, 256), (512, 640)):
            onnx, t32, tfast = (_row(report, model, m, h, w) for m in ("onnx", "fp32", "fast"))
            if onnx and t32:
                text = f"ONNX Runtime {onnx['median_ms']:.1f} ms, PyTorch fp32 {t32['median_ms']:.1f} ms"
                if tfast:
                    text += f", PyTorch fast {tfast['median_ms']:.1f} ms"
                add(f"{model}, b1 {w}×{h}: ONNX Runtime vs PyTorch", text, "(comparison)", None,
                    onnx_vs_fp32=t32["median_ms"] / onnx["median_ms"],
                    onnx_vs_fast=tfast["median_ms"] / onnx["median_ms"] if tfast else None)
    return goals


def _goals_markdown(goals: list[dict[str, Any]], missing: list[str]) -> str:
    lines = ["## Goals", "", "| goal | measured | target | met |", "|---|---|---|---|"]
    for g in goals:
        met = {True: "yes", False: "**no**", None: "–"}[g["met"]]
        measured = g["measured"]
        if "onnx_vs_fp32" in g:
            faster = lambda r: f"{r:.2f}× {'faster' if r >= 1 else 'slower'}"  # noqa: E731
            measured += f" → ONNX Runtime {faster(g['onnx_vs_fp32'])} than fp32"
            if g.get("onnx_vs_fast") is not None:
                measured += f", {faster(g['onnx_vs_fast'])} than fast"
        lines.append(f"| {g['goal']} | {measured} | {g['target']} | {met} |")
    if missing:
        lines += ["", f"Not registered when this ran (left out): {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sgem_unet")
    p.add_argument("--baseline", default="dnanet")
    p.add_argument("--light", default="sgem_unet_t")
    p.add_argument("--light-ref", default="acm")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--settle", type=int, default=1, help="untimed calls of a case before each timed one (0: cold caches)")
    p.add_argument("--threads", type=int, help="torch (and ONNX Runtime) threads (default: torch's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--note", default="", help="a sentence for the Markdown header (e.g. that the machine was shared)")
    p.add_argument("--out", default="benchmarks/results/cpu-goals", help="output path without extension")
    p.add_argument("--system-malloc", action="store_true",
                   help="keep malloc's defaults (the irstd command, like this script, lets malloc retain freed memory)")
    args = p.parse_args(argv)
    if not args.system_malloc:
        retain_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cases, missing = _cases(args, device.type == "cpu")
    command = shlex.join(["python", "benchmarks/speed_goals.py", *(sys.argv[1:] if argv is None else argv)])
    report = run_cases(cases, device=device, runs=args.runs, warmup=args.warmup, interleave=True, settle=args.settle, command=command,
                       note=args.note)
    goals = _goals(report, args, missing)
    report["goals"], report["not_registered"] = goals, missing
    head, _, rest = to_markdown(report).partition("\n## ")
    text = head + "\n" + _goals_markdown(goals, missing) + "\n## " + rest
    json_path, md_path = save_report(report, text, args.out)
    print(text)
    print(f"written: {json_path}, {md_path}  ({report['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
