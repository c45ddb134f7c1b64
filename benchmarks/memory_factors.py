"""Bytes per pixel of the predictor's peak memory, per model and run mode: the factors of
``irstd.inference.memory_budget`` (``BYTES_PER_PIXEL``) come from this script's output.

Each case runs in a fresh process (the way ``irstd detect`` runs: glibc keeps freed memory, so the peak RSS
is what the process holds afterwards). The peak is read from ``VmHWM`` in ``/proc/self/status`` and reset
between calls through ``/proc/self/clear_refs`` (no tracemalloc: torch's allocations are not Python's).
For each case and size: a warm-up call on a 256² frame, then one call on the frame; the growth of the peak over the
RSS before the call, divided by the frame's pixels, is the factor (the frame itself, decoded as float32,
is held before the call and not counted; the stored factors add it back, see ``memory_budget.py``).

    PYTHONPATH=src python benchmarks/memory_factors.py --out benchmarks/results/memory-factors
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

CASES = [  # (model, precision)
    ("sgem_unet_t.sirst", "fp32"), ("sgem_unet_t.sirst", "fast"),
    ("sgem_unet_s.synth", "fp32"), ("sgem_unet_s.synth", "fast"),
    ("sgem_unet.sirst", "fp32"), ("sgem_unet.sirst", "fast"),
    ("unet_t.sirst", "fp32"), ("unet.sirst", "fp32"),
    ("tophat", "fp32"),
]
SIZES = (512, 1024, 2048)

_CHILD = r"""
import json, sys
import numpy as np
from irstd.core.memory import retain_freed_memory
retain_freed_memory()
import torch
torch.set_num_threads(2)
from irstd.inference import Predictor

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

model, precision, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = Predictor.from_checkpoint(model, device="cpu", precision=precision, batch_size=1)
rng = np.random.default_rng(0)
p.predict(rng.uniform(0, 255, (256, 256)).astype(np.float32))  # warm-up: lazy initialisation
frame = rng.uniform(0, 255, (n, n)).astype(np.float32)
before = status("VmRSS:")
reset_peak()
p.predict(frame)
peak = status("VmHWM:")
print(json.dumps({"label": p.label(), "rss_before": before, "peak": peak, "growth": peak - before,
                  "bytes_per_pixel": (peak - before) / (n * n)}))
"""


def run_case(model: str, precision: str, sizes: tuple[int, ...]) -> dict:
    """One case: each size in a fresh process (memory a larger frame left would hide a smaller one's peak)."""
    env = dict(os.environ, OMP_NUM_THREADS="2")
    res: dict = {"model": model, "precision": precision, "sizes": {}}
    for n in sizes:
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _CHILD, model, precision, str(n)],
                              capture_output=True, text=True, env=env, timeout=1800)
        if proc.returncode:
            res["error"] = proc.stderr.strip().splitlines()[-1]
            return res
        one = json.loads(proc.stdout.strip().splitlines()[-1])
        res["label"] = one.pop("label")
        res["sizes"][str(n)] = dict(one, seconds=round(time.perf_counter() - t, 1))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="result path without suffix (.json and .md written)")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="square frame sides, ascending")
    args = ap.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    rows = []
    for model, precision in CASES:
        r = run_case(model, precision, sizes)
        rows.append(r)
        print(json.dumps(r), flush=True)
    command = "PYTHONPATH=src python benchmarks/memory_factors.py " + " ".join(argv if argv is not None else sys.argv[1:])
    doc = {"command": command, "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
           "load": os.getloadavg(), "rows": rows}
    lines = [f"`{command}`", "", "Peak RSS growth of one `Predictor.predict` call over the RSS before it (the float32 "
             "frame already held), per frame pixel, fresh process per row, glibc keeping freed memory.", "",
             "| model | run mode | " + " | ".join(f"{n}² B/px" for n in sizes) + " |",
             "|---|---|" + "---|" * len(sizes)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['precision']} | error: {r['error']} |")
            continue
        cells = [f"{r['sizes'][str(n)]['bytes_per_pixel']:.0f}" for n in sizes]
        lines.append(f"| {r['model']} | {r['label']} | " + " | ".join(cells) + " |")
    from irstd.bench.report import save_report  # STEM.json + STEM.md, as every benchmark report
    save_report(doc, "\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
