"""The benchmark report as Markdown, and saving it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from ..core.files import atomic_write_text
from .cases import MODES

__all__ = ["to_markdown", "save_report"]


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _reference(results: list[dict[str, Any]]) -> tuple[int, int, int] | None:
    """(batch, H, W) of the Table-1 view: batch 1 at 256×256 if run, else the first case."""
    ok = [r for r in results if r.get("median_ms") is not None]
    if not ok:
        return None
    for r in ok:
        if (r["batch"], r["height"], r["width"]) == (1, 256, 256):
            return 1, 256, 256
    return ok[0]["batch"], ok[0]["height"], ok[0]["width"]


def to_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: a header (machine, versions, command), a Table-1 view (Params, MACs,
    FPS per mode next to the published figures) and every case in detail."""
    lines = _header(report) + _table1(report) + _all_cases(report)
    return "\n".join(lines) + "\n"


def _header(report: dict[str, Any]) -> list[str]:
    """Machine, versions, command, timing settings and the floor's reference rate."""
    env = report["environment"]
    lines = [f"# irstd bench — {env['device_name']} ({env['device']})", ""]
    if report.get("command"):
        lines += ["Command:", "", f"    {report['command']}", ""]
    if report.get("note"):
        lines += [f"**Note:** {report['note']}", ""]
    lines.append(
        f"{report['created']} · torch {env['torch']} · numpy {env['numpy']} · onnxruntime {env['onnxruntime'] or '–'} · "
        f"irstd {env['irstd']} · {env['threads']} threads of {env['cpu_count']} CPUs ({env['cpu_capability']}"
        f"{', bf16' if env['cpu_bf16'] else ''})" + (f" · CUDA {env['cuda']}, cuDNN {env['cudnn']}" if env.get("cuda") else "")
    )
    s = report["settings"]
    share = env.get("cpu_share")
    budget = f", budget {s['budget_s']:g} s per case" if s.get("budget_s") else ""
    lines.append(
        f"{s['warmup']} warm-up + {s['runs']} timed runs per case{_interleaved(s)}{budget}; "
        f"load average {_fmt_load(env.get('load_average'))} → {_fmt_load(env.get('load_average_end'))}"
        + (f"; CPU share obtained {share:.0%}" if share is not None and env["device"] == "cpu" else "")
        + ("; " + " ".join(f"{k}={v}" for k, v in env["env"].items()) if env.get("env") else "")
        + ("; freed memory retained by malloc" if env.get("malloc_retains_memory") else "")
    )
    cr = report.get("conv_rate")
    if cr and "gflops_median" in cr:
        lines.append(
            f"Floor reference: 3×3 conv {'×'.join(map(str, cr['shape']))} → {cr['out_channels']} ch, {cr['dtype']}, channels-last: "
            f"{cr['gflops_median']:.0f} GFLOP/s median ({cr['gflops_best']:.0f} best)"
        )
    return lines + [""]


def _table1(report: dict[str, Any]) -> list[str]:
    """One row per model at the reference case: Params, MACs, FPS per mode, × floor, published figures."""
    results = report["results"]
    ref = _reference(results)
    if ref is None:
        return []
    b, h, w = ref
    modes = [m for m in MODES if any(r["mode"] == m for r in results)]
    lines = [f"## Table 1 view: batch {b}, {w}×{h}", ""]
    head = ["Model", "Params (M)", "MACs (G)"] + [f"FPS {m}" for m in modes] + ["fast × floor", "Published Params / FLOPs / FPS"]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + ["---"]) + "|"]
    for name, info in report["models"].items():
        sel = {r["mode"]: r for r in results if r["model"] == name and (r["batch"], r["height"], r["width"]) == ref}
        macs = info["macs"].get(f"{h}x{w}")
        cells = [name, f"{info['params'] / 1e6:.2f}", f"{macs / 1e9:.2f}" if macs is not None else "–"]
        cells += [_fmt(sel[m].get("fps")) if m in sel else "–" for m in modes]
        cells.append(_fmt(sel["fast"].get("x_floor"), 2) if "fast" in sel else "–")
        pub = info.get("published")
        cells.append(f"{pub['params_m']} / {pub['gflops']} / {pub['fps'] or '–'}" if pub else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def _all_cases(report: dict[str, Any]) -> list[str]:
    """Every case with its timing spread, MACs run and memory, then the modes' legend."""
    lines = ["## All cases", "",
             "| model | mode | batch | W×H | median ms | p10–p90 ms | runs | FPS | ms/MPix | × floor | GMACs run | peak MB |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        size = f"{r['width']}×{r['height']}"
        if r.get("error"):
            lines.append(f"| {r['model']} | {r['mode']} | {r['batch']} | {size} | error: {r['error']} ||||||||")
            continue
        if "median_ms" not in r:
            continue
        runs = f"{r['n_runs']}{'*' if r.get('truncated') else ''}"
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['batch']} | {size} | {r['median_ms']:.2f} | "
            f"{r['p10_ms']:.2f}–{r['p90_ms']:.2f} | {runs} | {r['fps']:.1f} | {r['ms_per_mpix']:.1f} | "
            f"{_fmt(r.get('x_floor'), 2)} | {_gmacs_run(r)} | {_fmt(r.get('peak_mem_mb'), 0)} |"
        )
    lines.append("")
    modes_desc = {m: d for info in report["models"].values() for m, d in info["modes"].items()}
    if modes_desc:
        lines.append("Modes: " + "; ".join(f"**{m}** = {d['label']}" for m, d in modes_desc.items()))
    lines.append("`*`: fewer runs than asked (time budget). × floor: median ÷ (2·MACs ÷ the conv rate above), with the "
                 "network's MACs. GMACs run: per image, what the mode executes; the fast mode's exact rewrites "
                 "(up-sampling + 3×3 conv as one 2×2 conv) execute fewer MACs than the network's count.")
    return lines


def save_report(report: dict[str, Any], markdown: str, stem: str | Path) -> tuple[Path, Path]:
    """Write ``STEM.json`` (the report) and ``STEM.md`` (its Markdown), creating the folder; returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = stem.parent / f"{stem.name}.json", stem.parent / f"{stem.name}.md"
    atomic_write_text(json_path, json.dumps(report, indent=2) + "\n")
    atomic_write_text(md_path, markdown)
    return json_path, md_path


def _interleaved(settings: dict[str, Any]) -> str:
    if not settings["interleave"]:
        return ""
    settle = settings.get("settle")
    return ", interleaved" + (f" (each timed call after {settle} untimed call{'s' if settle > 1 else ''} of the same case)"
                              if settle else " (each call straight after another case's)")


def _gmacs_run(r: dict[str, Any]) -> str:
    macs = r.get("macs_run_per_image", r.get("macs_per_image"))
    return f"{macs / 1e9:.2f}" if macs else "–"


def _fmt_load(load: Sequence[float] | None) -> str:
    return "/".join(f"{v:.1f}" for v in load) if load else "–"


