"""How many oneDNN primitives (cache entries) each model needs per frame size and batch size, on the CPU.

oneDNN keeps one compiled primitive per layer and input shape (batch size included) in its primitive
cache (``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` entries, least recently used dropped first). To size that
cache for ``irstd serve`` (docs/serve.md, "Memory") this runs each model in a child process with
``ONEDNN_VERBOSE=profile_create``, which prints one line per primitive made (``create:cache_miss``: a
new entry, ``create:cache_hit``: found in the cache), and counts them per step: a 256² frame alone
(first call, then again), then 256² in new batch sizes, then new frame sizes alone. The cache is made
large enough (4,096) that nothing is dropped, so the misses of a step are the entries it adds; the
misses plus hits of the repeated call are what one call asks for (its working set: a capacity below it
recompiles on every call).

    python benchmarks/kernel_counts.py --out benchmarks/results/kernel-counts
    python benchmarks/kernel_counts.py --models sgem_unet_t.sirst tophat untrained:uiunet

Same settings as ``irstd serve``: the fast mode, ideep's cache at one entry, torch's threads. ONNX
models are not counted: ONNX Runtime does not use torch's oneDNN.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

#: the models ``irstd serve`` may load from the shipped weights (one tag per kind) and a classical one
MODELS = ["sgem_unet_t.sirst", "unet_t.sirst", "sgem_unet_s.synth", "sgem_unet.sirst", "unet.sirst", "tophat"]
#: (step name, frame side, batch sizes run in that step, each batch once)
STEPS = [("256 b1 first", 256, [1]), ("256 b1 again", 256, [1]), ("256 b2", 256, [2]), ("256 b4", 256, [4]),
         ("256 b8", 256, [8]), ("256 b16", 256, [16]), ("256 b3,5-7,9-15", 256, [3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15]),
         ("256 b1..16 again", 256, list(range(1, 17))), ("320 b1", 320, [1]), ("512 b1", 512, [1]),
         ("1024 b1", 1024, [1])]
_MARK = "@@step "


def child(model: str) -> None:
    """Run the steps, printing a marker line before each (oneDNN's lines go to the same stdout)."""
    import numpy as np

    from irstd.inference import Predictor

    if model.startswith("untrained:"):  # an architecture without shipped weights, as a user's checkpoint of it
        from irstd.models import create_model

        pred = Predictor(create_model(model.split(":", 1)[1]), (0.0, 1.0), device="cpu", precision="fast", batch_size=16)
    else:
        pred = Predictor.from_checkpoint(model, device="cpu", precision="fast", batch_size=16)
    rng = np.random.default_rng(0)
    for name, side, batches in STEPS:
        print(_MARK + name, flush=True)
        frame = rng.random((side, side), dtype=np.float32)
        for n in batches:
            pred.probabilities([frame] * n)
        sys.stdout.flush()
    print(_MARK + "end", flush=True)


#: traffic patterns for --capacities: (name, [(frame side, batch size), ...] one cycle); each is run one
#: cycle to warm, then ``_CYCLES`` cycles whose cache misses (kernels compiled again) are counted
PATTERNS = [("256 b1", [(256, 1)]), ("256 b1,2,4,8,16", [(256, n) for n in (1, 2, 4, 8, 16)]),
            ("256 b1..16", [(256, n) for n in range(1, 17)]), ("256 and 320 b1", [(256, 1), (320, 1)]),
            ("4 sizes b1", [(256, 1), (320, 1), (384, 1), (448, 1)])]
_CYCLES = 3
#: the flood's shapes of kernel_caches.py, run before the last pattern again: is the single shape back?
_FLOOD = [(256, n) for n in (1, 2, 3, 5, 8, 13)] + [(512, n) for n in (1, 2, 3)] + [(1024, n) for n in (1, 2, 3)] + \
         [(2048, 1), (2048, 2)]


def child_patterns(model: str) -> None:
    """Each pattern: one warm cycle, then its counted cycles (markers between); then the flood, then 256² b1."""
    import numpy as np

    from irstd.inference import Predictor

    pred = Predictor.from_checkpoint(model, device="cpu", precision="fast", batch_size=16)
    rng = np.random.default_rng(0)
    frames = {side: rng.random((side, side), dtype=np.float32) for side in (256, 320, 384, 448, 512, 1024, 2048)}
    for name, cycle in PATTERNS + [("flood", _FLOOD), ("256 b1 after the flood", [(256, 1)])]:
        print(_MARK + "warm " + name, flush=True)
        for side, n in cycle:
            pred.probabilities([frames[side]] * n)
        sys.stdout.flush()
        print(_MARK + name, flush=True)
        for _ in range(_CYCLES if name != "flood" else 0):
            for side, n in cycle:
                pred.probabilities([frames[side]] * n)
        sys.stdout.flush()
    print(_MARK + "end", flush=True)


def count(model: str, capacity: int = 4096, patterns: bool = False) -> dict:
    """Misses (new entries, by primitive kind) and hits per step for ``model``, from a child process."""
    env = dict(os.environ, ONEDNN_VERBOSE="profile_create", ONEDNN_PRIMITIVE_CACHE_CAPACITY=str(capacity),
               LRU_CACHE_CAPACITY="1", PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    cmd = [sys.executable, __file__, "--child-patterns" if patterns else "--child", model]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    steps: dict[str, dict] = {}
    step = "load"
    for line in out.splitlines():
        if line.startswith(_MARK):
            step = line[len(_MARK):]
            continue
        m = re.match(r"onednn_verbose,(?:v1,)?(?:primitive,)?create:cache_(miss|hit),cpu,([a-z_]+),", line)
        if m:
            rec = steps.setdefault(step, {"miss": 0, "hit": 0, "miss_by_kind": Counter()})
            rec[m.group(1)] += 1
            if m.group(1) == "miss":
                rec["miss_by_kind"][m.group(2)] += 1
    return {name: {"new_entries": rec["miss"], "found": rec["hit"], "new_by_kind": dict(rec["miss_by_kind"])}
            for name, rec in steps.items()}


def summary(model: str, steps: dict) -> dict:
    """The figures docs/serve.md uses: entries for one 256² frame alone, per new batch size, per new size."""
    def new(name: str) -> int:
        return steps.get(name, {}).get("new_entries", 0)

    again = steps.get("256 b1 again", {})
    per_batch = [new(f"256 b{n}") for n in (2, 4, 8, 16)]
    all16 = new("256 b1 first") + sum(per_batch) + new("256 b3,5-7,9-15")
    return {
        "model": model,
        "one_call_asks": again.get("new_entries", 0) + again.get("found", 0),
        "entries_256_b1": new("256 b1 first"),
        "new_per_batch_size_b2_b4_b8_b16": per_batch,
        "entries_256_batches_1_2_4_8_16": new("256 b1 first") + sum(per_batch),
        "entries_256_batches_1_to_16": all16,
        "new_per_frame_size_320_512_1024": [new("320 b1"), new("512 b1"), new("1024 b1")],
        "new_on_repeat": new("256 b1 again") + new("256 b1..16 again"),
    }


def capacities(args: argparse.Namespace) -> int:
    """Kernels compiled again per cycle of each pattern in its steady state, at each capacity."""
    model, caps = args.models[0], [int(c) for c in args.capacities.split(",")]
    rows = []
    for cap in caps:
        steps = count(model, cap, patterns=True)
        row = {"capacity": cap}
        for name in [n for n, _ in PATTERNS] + ["256 b1 after the flood"]:
            rec = steps.get(name, {"new_entries": 0, "found": 0})
            row[name] = round(rec["new_entries"] / _CYCLES, 1)
        rows.append(row)
        print(row, flush=True)
    if args.out:
        from irstd.bench import save_report

        names = [n for n, _ in PATTERNS] + ["256 b1 after the flood"]
        md = [f"# oneDNN kernels compiled again per cycle, steady state (`benchmarks/kernel_counts.py`, {model})", "",
              "`python benchmarks/kernel_counts.py " + " ".join(sys.argv[1:]) + "`", "",
              f"Each pattern: one cycle to warm, then the mean cache misses of {_CYCLES} cycles (0: nothing compiled "
              "again). Cycles: " + "; ".join(f"{n}: {c}" for n, c in PATTERNS) + ". The last column runs the "
              "flood's shapes of kernel_caches.py, then 256² b1 (one warm call, then counted).", "",
              "| oneDNN entries | " + " | ".join(names) + " |", "|" + "---:|" * (len(names) + 1)]
        for r in rows:
            md.append(f"| {r['capacity']} | " + " | ".join(str(r[n]) for n in names) + " |")
        save_report({"command": "python benchmarks/kernel_counts.py " + " ".join(sys.argv[1:]), "model": model,
                     "cycles": _CYCLES, "patterns": PATTERNS, "rows": rows}, "\n".join(md) + "\n", args.out)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=MODELS)
    p.add_argument("--out", help="write STEM.json and STEM.md (irstd.bench.save_report)")
    p.add_argument("--capacities", help="comma-separated oneDNN capacities: count the kernels compiled again per "
                                        "cycle of each traffic pattern (PATTERNS) at each, for the first model")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-patterns", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child)
        return 0
    if args.child_patterns:
        child_patterns(args.child_patterns)
        return 0
    if args.capacities:
        return capacities(args)
    rows, raw = [], {}
    for model in args.models:
        raw[model] = count(model)
        rows.append(summary(model, raw[model]))
        print(rows[-1], flush=True)
    if args.out:
        from irstd.bench import save_report

        lines = ["# oneDNN primitives per frame size and batch size (`benchmarks/kernel_counts.py`)", "",
                 "`python benchmarks/kernel_counts.py " + " ".join(sys.argv[1:]) + "`", "",
                 "| model | one call asks | 256² b1 | new per batch size (b2, b4, b8, b16) | 256² at b1,2,4,8,16 | "
                 "256² at b1..16 | new per frame size (320², 512², 1024²) | new on repeat |",
                 "|---|---:|---:|---|---:|---:|---|---:|"]
        for r in rows:
            lines.append(f"| {r['model']} | {r['one_call_asks']} | {r['entries_256_b1']} | "
                         f"{r['new_per_batch_size_b2_b4_b8_b16']} | {r['entries_256_batches_1_2_4_8_16']} | "
                         f"{r['entries_256_batches_1_to_16']} | {r['new_per_frame_size_320_512_1024']} | "
                         f"{r['new_on_repeat']} |")
        save_report({"command": "python benchmarks/kernel_counts.py " + " ".join(sys.argv[1:]),
                     "loadavg": os.getloadavg(), "summary": rows, "steps": raw}, "\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
