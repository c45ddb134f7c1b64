"""int8 beside fp32 and the fast mode, every learned model, batch 1, 256² and 640×512, one interleaved run.

    python benchmarks/int8/speed.py [--models M ...] [--runs 10] [--threads N] [--calib DATA --calib-split-file F]
                                    [--out benchmarks/results/int8/cpu-speed]

Modes (``irstd.bench`` cases, timed round-robin so that a load change hits every case alike): PyTorch fp32
eager, the fast mode (whatever ``precision="fast"`` resolves to on this CPU: bf16 autocast where the CPU
has bf16 instructions, else fp32 math with the fast layout), ONNX Runtime fp32 and ONNX Runtime int8
(static QDQ of ``irstd.export.quantize``). Without ``--calib`` the int8 ranges come from N(0, 1) inputs:
the weights are random too, and only the timing is reported. Writes ``OUT.json`` (every timing, the
machine, the CPU flags that decide int8 and bf16 speed, the goals) and ``OUT.md``.

The default model list leaves out the models named in ``SLOW`` (their rounds alone would pass the 8-minute
budget on two cores); ``--models`` takes any list, ``--models all`` every learned model.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

import torch

from irstd.bench import Case, run_cases, save_report, to_markdown
from irstd.core.memory import retain_freed_memory
from irstd.export.quantize import CalibrationSpec
from irstd.models import list_models

MODES = ("fp32", "fast", "onnx", "int8")
#: left out by default, with the reason (``--models`` brings them back)
SLOW = {"iaanet": "transformer stage, seconds per 640×512 frame on 2 cores",
        "uiunet": "nested U-Nets, seconds per 640×512 frame on 2 cores"}
#: the goals of issue #19, each (name, target)
INT8_VS_FAST, INT8_VS_DNANET, LIGHT_FPS = 1.6, 4.0, 25.0
#: CPU flags that decide int8 (VNNI) and bf16 speed
FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def cpu_flags() -> dict[str, bool]:
    """Which of :data:`FLAGS` /proc/cpuinfo lists (all False where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            have = next((set(ln.split(":", 1)[1].split()) for ln in f if ln.startswith("flags")), set())
    except OSError:
        have = set()
    return {flag: flag in have for flag in FLAGS}


def _row(report: dict[str, Any], model: str, mode: str, h: int, w: int) -> dict[str, Any] | None:
    for r in report["results"]:
        if (r["model"], r["mode"], r["batch"], r["height"], r["width"]) == (model, mode, 1, h, w) and "median_ms" in r:
            return r
    return None


def _best(report: dict[str, Any], model: str, h: int, w: int) -> dict[str, Any] | None:
    rows = [r for m in MODES if (r := _row(report, model, m, h, w))]
    return min(rows, key=lambda r: r["median_ms"]) if rows else None


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The goals computed from this run's medians (None where a case is missing)."""
    out: list[dict[str, Any]] = []

    def add(goal: str, measured: str | None, target: str, met: bool | None, ratio: float | None = None) -> None:
        out.append({"goal": goal, "measured": measured or "not measured", "target": target, "met": met, "ratio": ratio})

    q, fast = _row(report, "sgem_unet", "int8", 256, 256), _row(report, "sgem_unet", "fast", 256, 256)
    r = fast["median_ms"] / q["median_ms"] if q and fast else None
    add("sgem_unet fast ÷ int8, b1 256²", r and f"{fast['median_ms']:.1f} ÷ {q['median_ms']:.1f} ms = {r:.2f}×",
        f"≥ {INT8_VS_FAST}×", None if r is None else r >= INT8_VS_FAST, r)
    base = _row(report, "dnanet", "fp32", 256, 256)
    r = base["median_ms"] / q["median_ms"] if q and base else None
    add("dnanet fp32 ÷ sgem_unet int8, b1 256²", r and f"{base['median_ms']:.1f} ÷ {q['median_ms']:.1f} ms = {r:.2f}×",
        f"≥ {INT8_VS_DNANET}×", None if r is None else r >= INT8_VS_DNANET, r)
    lt, acm = _best(report, "sgem_unet_t", 256, 256), _best(report, "acm", 256, 256)
    r = lt["median_ms"] / acm["median_ms"] if lt and acm else None
    add("sgem_unet_t fastest ÷ acm fastest, b1 256²",
        r and f"{lt['median_ms']:.2f} ms ({lt['mode']}) ÷ {acm['median_ms']:.2f} ms ({acm['mode']}) = {r:.2f}×",
        "≤ 1×", None if r is None else r <= 1.0, r)
    big = _best(report, "sgem_unet_t", 512, 640)
    fps = 1000.0 / big["median_ms"] if big else None
    add("sgem_unet_t fastest, b1 640×512: frames/s", fps and f"{fps:.1f} frames/s ({big['mode']}, {big['median_ms']:.1f} ms)",
        f"≥ {LIGHT_FPS:g}", None if fps is None else fps >= LIGHT_FPS, fps)
    return out


def _table(report: dict[str, Any], models: list[str], sizes: list[tuple[int, int]]) -> str:
    lines = ["## Median ms, batch 1", "", "| model | size | fp32 | fast | ORT fp32 | ORT int8 | int8 vs fast | int8 vs ORT fp32 |",
             "|---|---|---|---|---|---|---|---|"]
    for m in models:
        for h, w in sizes:
            rows = {mode: _row(report, m, mode, h, w) for mode in MODES}
            cell = lambda r: f"{r['median_ms']:.1f}" if r else "–"  # noqa: E731
            ratio = lambda a, b: f"{a['median_ms'] / b['median_ms']:.2f}×" if a and b else "–"  # noqa: E731
            lines.append(f"| {m} | {w}×{h} | " + " | ".join(cell(rows[x]) for x in MODES)
                         + f" | {ratio(rows['fast'], rows['int8'])} | {ratio(rows['onnx'], rows['int8'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", help="models (default: every learned model but SLOW; 'all': every one)")
    p.add_argument("--sizes", nargs="+", default=["256", "640x512"], help="N or WxH (default 256 640x512)")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, help="torch and ONNX Runtime threads (default: torch's)")
    p.add_argument("--calib", help="dataset folder for the int8 calibration (default: N(0, 1) inputs)")
    p.add_argument("--calib-split-file", help="calibration stems (with --calib)")
    p.add_argument("--calib-frames", type=int, default=8)
    p.add_argument("--note", default="")
    p.add_argument("--out", default="benchmarks/results/int8/cpu-speed", help="output path without extension")
    args = p.parse_args(argv)
    retain_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    learned = list_models(kind="learned")
    if not args.models:
        models, left_out = [m for m in learned if m not in SLOW], {m: SLOW[m] for m in learned if m in SLOW}
    else:
        models, left_out = (learned if args.models == ["all"] else args.models), {}
    sizes = []
    for s in args.sizes:
        w, _, h = s.partition("x")
        sizes.append((int(h or w), int(w)))
    cases = [Case(m, mode, 1, h, w) for m in models for h, w in sizes for mode in MODES]
    calib = CalibrationSpec(args.calib, split_file=args.calib_split_file, frames=args.calib_frames) if args.calib else None
    command = shlex.join(["python", "benchmarks/int8/speed.py", *(sys.argv[1:] if argv is None else argv)])
    report = run_cases(cases, device="cpu", runs=args.runs, warmup=args.warmup, interleave=True, command=command,
                       note=args.note, calib=calib, progress=lambda msg: print(msg, file=sys.stderr))
    report["cpu_flags"], report["left_out"] = cpu_flags(), left_out
    report["goals"] = goals(report)
    flags = ", ".join(f for f, on in report["cpu_flags"].items() if on) or "none found"
    env = report["environment"]
    lines = [f"# int8 speed: {env['cpu_name']}, {env['threads']} thread(s)", "",
             f"Command: `{command}`", "", f"CPU flags (of {', '.join(FLAGS)}): {flags}.",
             f"Fast mode here: {report['models'].get(models[0], {}).get('modes', {}).get('fast', {}).get('label', 'see JSON')}.", ""]
    lines += ["## Goals", "", "| goal | measured | target | met |", "|---|---|---|---|"]
    lines += [f"| {g['goal']} | {g['measured']} | {g['target']} | {({True: 'yes', False: '**no**', None: '–'})[g['met']]} |"
              for g in report["goals"]]
    if left_out:
        lines += ["", "Left out: " + "; ".join(f"{m} ({why})" for m, why in left_out.items()) + "."]
    rest = to_markdown(report).partition("\n## ")[2]  # the standard report without its header
    text = "\n".join(lines) + "\n\n" + _table(report, models, sizes) + "\n## " + rest
    json_path, md_path = save_report(report, text, args.out)
    print(text)
    print(f"written: {json_path}, {md_path}  ({report['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
