"""How small must an SGEM-UNet be to run as fast as ACM on this CPU? Width and depth sweep.

    python benchmarks/light_variants.py [--runs 30] [--out benchmarks/results/cpu-light-variants]

Times ACM and SGEM-UNet built with narrower widths (the registered ``sgem_unet_t`` = base 8, plus
base 4 and a 4-level base-8 network, built through ``create_model`` with other ``widths``) in the fast
mode, batch 1, 256², interleaved in one run (each timed call after one untimed call of the same
network), and writes MACs (network / executed) and latencies to ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys

import torch

from irstd.bench import save_report
from irstd.bench.cases import count_runner_macs
from irstd.bench.timing import environment, time_interleaved
from irstd.core.memory import retain_freed_memory
from irstd.inference import ModelRunner, resolve_mode
from irstd.models import create_model
from irstd.core.profiling import count_macs, count_params

VARIANTS = {  # label: (registered name, keyword arguments)
    "acm": ("acm", {}),
    "sgem_unet_t (widths 8…128, 2 heads)": ("sgem_unet_t", {}),
    "widths 8…64, 4 levels, 2 heads": ("sgem_unet", {"widths": (8, 16, 32, 64), "heads": 2}),
    "widths 4…64, 1 head": ("sgem_unet", {"widths": (4, 8, 16, 32, 64), "heads": 1}),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--out", default="benchmarks/results/cpu-light-variants")
    args = p.parse_args(argv)
    retain_freed_memory()
    cpu = torch.device("cpu")
    mode = resolve_mode("fast", cpu)
    torch.manual_seed(0)
    x = torch.randn(1, 1, 256, 256)
    rows, fns = [], {}
    for label, (name, kwargs) in VARIANTS.items():
        model = create_model(name, **kwargs).eval()
        runner = ModelRunner(model, cpu, mode)
        fns[label] = lambda r=runner: r(x)
        rows.append({"label": label, "model": name, "kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
                     "params": count_params(model), "macs": count_macs(model, (1, 1, 256, 256)),
                     "macs_run": count_runner_macs(runner.model, 256, 256)})
    times = time_interleaved(fns, runs=args.runs, warmup=args.warmup, device=cpu, settle=1)
    for row in rows:
        t = [1e3 * s for s in times[row["label"]]]
        row.update(median_ms=statistics.median(t), min_ms=min(t), runs=len(t))
    command = shlex.join(["python", "benchmarks/light_variants.py", *(sys.argv[1:] if argv is None else argv)])
    report = {"command": command, "mode": mode.label(), "environment": environment(cpu), "results": rows}
    env = report["environment"]
    lines = ["# SGEM-UNet light variants against ACM (CPU, fast mode, batch 1, 256×256)", "", "Command:", "",
             f"    {command}", "",
             f"torch {env['torch']} · {env['threads']} threads of {env['cpu_count']} CPUs ({env['cpu_name']}) · "
             f"mode: {mode.label()} · {args.runs} timed runs each, interleaved", "",
             "| network | params (M) | GMACs | GMACs run | median ms | best ms | ÷ ACM |", "|---|---:|---:|---:|---:|---:|---:|"]
    acm = rows[0]["median_ms"]
    for r in rows:
        run = f"{r['macs_run'] / 1e9:.3f}" if r["macs_run"] else "–"
        lines.append(f"| {r['label']} | {r['params'] / 1e6:.3f} | {r['macs'] / 1e9:.3f} | {run} | {r['median_ms']:.2f} | "
                     f"{r['min_ms']:.2f} | {r['median_ms'] / acm:.2f} |")
    text = "\n".join(lines) + "\n"
    save_report(report, text, args.out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
