"""OpenVINO against PyTorch on this CPU: the same networks, exported to ONNX, batch 1, 256².

    pip install openvino          # not a dependency of the project
    python benchmarks/openvino_compare.py [--models sgem_unet sgem_unet_t acm] [--runs 30]
                                          [--out benchmarks/results/cpu-openvino]

For each model: PyTorch fp32 eager and fast mode (``irstd.inference.ModelRunner``), and OpenVINO's
CPU plugin on the exported ONNX file with ``INFERENCE_PRECISION_HINT`` f32 and bf16 (latency hint,
as many threads as torch), all timed interleaved in one run (each timed call after one untimed call of
the same case). Also reports each OpenVINO result's max |logit − PyTorch fp32| on the timing input, to
show it computes the same network. Writes ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from irstd.bench import save_report
from irstd.bench.timing import environment, time_interleaved
from irstd.core.memory import retain_freed_memory
from irstd.export import export_onnx
from irstd.inference import ModelRunner, resolve_mode
from irstd.models import create_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["sgem_unet", "sgem_unet_t", "acm"])
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--out", default="benchmarks/results/cpu-openvino")
    args = p.parse_args(argv)
    try:
        import openvino as ov
    except ImportError:
        print("openvino is not installed: pip install openvino", file=sys.stderr)
        return 2
    retain_freed_memory()
    cpu = torch.device("cpu")
    threads = torch.get_num_threads()
    core = ov.Core()
    torch.manual_seed(0)
    x = torch.randn(1, 1, 256, 256)
    fns, ref, outs = {}, {}, {}
    tmp = tempfile.TemporaryDirectory(prefix="irstd-ov-")
    for name in args.models:
        model = create_model(name).eval()
        with torch.no_grad():
            ref[name] = model(x)
        for mode in ("fp32", "fast"):
            runner = ModelRunner(model, cpu, resolve_mode(mode, cpu))
            fns[f"{name}/PyTorch {mode}"] = lambda r=runner: r(x)
        path = export_onnx(model, Path(tmp.name) / f"{name}.onnx")
        ov_model = core.read_model(str(path))
        ov_model.reshape([1, 1, 256, 256])
        for prec in ("f32", "bf16"):
            compiled = core.compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": prec, "PERFORMANCE_HINT": "LATENCY",
                                                            "INFERENCE_NUM_THREADS": threads})
            request = compiled.create_infer_request()
            arr = x.numpy()
            key = f"{name}/OpenVINO {prec}"
            fns[key] = lambda r=request, a=arr: r.infer([a])
            outs[key] = torch.from_numpy(np.array(request.infer([arr])[0]))
    times = time_interleaved(fns, runs=args.runs, warmup=args.warmup, device=cpu, settle=1)
    rows = []
    for key, t in times.items():
        name, backend = key.split("/", 1)
        ms = [1e3 * s for s in t]
        row = {"model": name, "backend": backend, "median_ms": statistics.median(ms), "min_ms": min(ms), "runs": len(ms)}
        if key in outs:
            row["max_abs_diff_vs_fp32"] = float((outs[key] - ref[name]).abs().max())
        rows.append(row)
    command = shlex.join(["python", "benchmarks/openvino_compare.py", *(sys.argv[1:] if argv is None else argv)])
    env = environment(cpu)
    report = {"command": command, "openvino": ov.__version__ if hasattr(ov, "__version__") else ov.get_version(),
              "environment": env, "results": rows}
    lines = ["# OpenVINO against PyTorch (CPU, batch 1, 256×256)", "", "Command:", "", f"    {command}", "",
             f"openvino {report['openvino']} · torch {env['torch']} · {threads} threads of {env['cpu_count']} CPUs "
             f"({env['cpu_name']}) · {args.runs} timed runs per case, interleaved", "",
             "| model | backend | median ms | best ms | ÷ PyTorch fast | max abs Δ logit vs fp32 |", "|---|---|---:|---:|---:|---:|"]
    fast = {r["model"]: r["median_ms"] for r in rows if r["backend"] == "PyTorch fast"}
    for r in rows:
        diff = f"{r['max_abs_diff_vs_fp32']:.2e}" if "max_abs_diff_vs_fp32" in r else "–"
        lines.append(f"| {r['model']} | {r['backend']} | {r['median_ms']:.2f} | {r['min_ms']:.2f} | "
                     f"{r['median_ms'] / fast[r['model']]:.2f} | {diff} |")
    text = "\n".join(lines) + "\n"
    save_report(report, text, args.out)
    print(text)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
