"""``irstd bench``: params, MACs, latency, throughput and memory of registered models (JSON + Markdown)."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

from ..bench.modes import MODES
from ..core.amp import AMP_CHOICES
from ..core.errors import ConfigError
from ._common import BENCH_DIR, add_device, parse_size, positive_int, ranged, retains_memory

DEFAULT_SIZES = ["256", "640x512", "1280x1024"]
DEFAULT_BATCHES = [1, 8]
#: plain ``irstd bench`` on a CPU: one size, batch 1 and a time limit per case, so it ends in minutes
CPU_SIZES = ["256"]
CPU_BATCHES = [1]
CPU_BUDGET_S = 3.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", nargs="+", metavar="NAME", help="model names or shell patterns (default: all registered)")
    p.add_argument("--kind", choices=["learned", "classical"], help="only models of this kind (with the default --models)")
    p.add_argument("--modes", nargs="+", default=["fp32", "fast"], choices=MODES, help="run modes (default: fp32 fast)")
    p.add_argument("--sizes", nargs="+", metavar="SIZE",
                   help=f"input sizes, N or WxH (default: {' '.join(DEFAULT_SIZES)}; on a CPU without --sizes and "
                        f"--batch-sizes: {' '.join(CPU_SIZES)})")
    p.add_argument("--batch-sizes", nargs="+", type=positive_int, metavar="B",
                   help=f"batch sizes, >= 1 (default: {' '.join(map(str, DEFAULT_BATCHES))}; on a CPU without "
                        f"--sizes and --batch-sizes: {' '.join(map(str, CPU_BATCHES))})")
    p.add_argument("--runs", type=positive_int, default=30, help="timed runs per case (default 30)")
    p.add_argument("--warmup", type=ranged(int, 0), default=5, help="untimed runs first (default 5)")
    add_device(p)
    p.add_argument("--amp", choices=AMP_CHOICES, help="dtype of the fast mode (default: the device's best)")
    p.add_argument("--no-cuda-graphs", action="store_true", help="CUDA: do not replay the fast mode from CUDA graphs")
    p.add_argument("--budget", type=ranged(float, 0, open_low=True), metavar="S", help=f"at most this many seconds per case (fewer runs if needed; default: none, on a CPU "
                        f"{CPU_BUDGET_S:g} when --sizes and --batch-sizes are not given)")
    p.add_argument("--interleave", action="store_true", help="time all cases round-robin (fair comparison on a busy machine)")
    p.add_argument("--settle", type=ranged(int, 0), default=1, metavar="N",
                   help="with --interleave: untimed calls of a case before each timed one (default 1: steady state, warm caches)")
    p.add_argument("--threads", type=positive_int, help="torch intra-op threads, >= 1 (default: torch's)")
    p.add_argument("--no-conv-rate", action="store_true", help="skip the 3x3-conv rate (no floor column)")
    p.add_argument("--out", default=BENCH_DIR, help=f"output folder (default ./{BENCH_DIR})")
    p.add_argument("--name", help="file stem of the outputs (default: from the device name)")
    p.add_argument("--note", default="", help="a sentence for the report's header (e.g. 'machine shared with other jobs')")
    retains_memory(p)
    p.set_defaults(func=run)


def _command(args: argparse.Namespace) -> str:
    """The invocation, rebuilt from the parsed options (defaults spelled out where they matter)."""
    parts = ["irstd", "bench"]
    if args.models:
        parts += ["--models", *args.models]
    if args.kind:
        parts += ["--kind", args.kind]
    parts += ["--modes", *args.modes, "--sizes", *args.sizes, "--batch-sizes", *map(str, args.batch_sizes),
              "--runs", str(args.runs), "--warmup", str(args.warmup), "--device", args.device]
    if args.interleave:
        parts += ["--settle", str(args.settle)]
    for flag, value in (("--amp", args.amp), ("--budget", args.budget), ("--threads", args.threads),
                        ("--out", args.out), ("--name", args.name), ("--note", args.note or None)):
        if value is not None:
            parts += [flag, str(value)]
    for flag, on in (("--no-cuda-graphs", args.no_cuda_graphs), ("--interleave", args.interleave),
                     ("--no-conv-rate", args.no_conv_rate)):
        if on:
            parts.append(flag)
    return shlex.join(parts)


def _apply_defaults(args: argparse.Namespace) -> str:
    """Fill --sizes, --batch-sizes (and --budget) left out: on a CPU the small set (:data:`CPU_SIZES`, a time
    limit per case) — every model × 3 sizes × 2 batches takes hours there — else the full one."""
    from ..core.device import resolve_device

    device = resolve_device(args.device)
    on_cpu = device.type == "cpu"
    small = on_cpu and args.sizes is None and args.batch_sizes is None  # plain `irstd bench` on a CPU
    if small and args.budget is None:
        args.budget = CPU_BUDGET_S
    if args.sizes is None:
        args.sizes = list(CPU_SIZES if small else DEFAULT_SIZES)
    if args.batch_sizes is None:
        args.batch_sizes = list(CPU_BATCHES if small else DEFAULT_BATCHES)
    return str(device)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def run(args: argparse.Namespace) -> int:
    import torch

    from ..bench import plan_cases, run_benchmark, save_report, to_markdown

    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    device = _apply_defaults(args)
    sizes = [parse_size(s) for s in args.sizes]
    cases = plan_cases(args.models, kind=args.kind, modes=args.modes, sizes=sizes, batches=args.batch_sizes)
    n_models = len({c.model for c in cases})
    limit = f", at most {args.budget:g} s each (about {len(cases) * args.budget / 60:.0f} min)" if args.budget else ""
    print(f"bench: {len(cases)} case(s) = {n_models} model(s) × {len(args.modes)} mode(s) × {len(sizes)} size(s) × "
          f"{len(args.batch_sizes)} batch size(s) on {device}{limit}", flush=True)
    report = run_benchmark(
        args.models, kind=args.kind, modes=args.modes, sizes=sizes, batches=args.batch_sizes, device=args.device, runs=args.runs,
        warmup=args.warmup, amp=args.amp, cuda_graphs=not args.no_cuda_graphs, budget_s=args.budget,
        interleave=args.interleave, settle=args.settle, conv_rate=not args.no_conv_rate, command=_command(args), note=args.note,
    )
    text = to_markdown(report)
    stem = args.name or _slug(f"{report['environment']['device'].split(':')[0]}-{report['environment']['device_name']}")
    json_path, md_path = save_report(report, text, Path(args.out) / stem)
    print(text)
    print(f"written: {json_path}, {md_path}")
    errors = sum(1 for r in report["results"] if r.get("error"))
    if errors:
        print(f"{errors} case(s) failed (see the 'error' fields)")
    return 0
