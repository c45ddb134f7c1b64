"""torch's per-shape CPU kernel caches: what they keep after frames of many shapes, what bounding them costs.

One process, the service's layout (one model thread, frames made on other threads, one malloc arena),
``sgem_unet_t.sirst`` in the fast mode: warm on 256² frames, then the flood's frame sizes and batch sizes
(256² in batches of 1-13, 512², 1024², 2048²) twice, then garbage collection and ``malloc_trim`` as the
idle service does. Reports RSS and glibc's bytes in use (``mallinfo2``) warm and at the end, and the
latency of a 256² frame alone and per frame in batches of 1-16 (every batch size a new cache key).
The caches read their capacity once, so each setting is its own process:

    python benchmarks/kernel_caches.py                                  # torch's defaults (1,024 each)
    python benchmarks/kernel_caches.py --ideep 1                        # what irstd serve sets
    python benchmarks/kernel_caches.py --ideep 1 --onednn 256

Prints one JSON line (docs/serve.md, "Memory"). Linux with glibc (mallinfo2, /proc); threads: 1.
Each line also has the steady latency of one shape repeated (256² alone, and in batches of 4), and what
``--distinct N`` frame sizes (batch 1, after the latencies, before the flood's shapes) left in use.

Several oneDNN capacities side by side, each its own process, one after the other (``--repeat``
rounds, interleaved), with a report:

    python benchmarks/kernel_caches.py --sweep 0,32,64,128,256,1024 --out benchmarks/results/kernel-caches
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402

from smaps_breakdown import breakdown, delta  # noqa: E402


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--onednn", type=int, help="ONEDNN_PRIMITIVE_CACHE_CAPACITY (default: torch's)")
    p.add_argument("--ideep", type=int, help="LRU_CACHE_CAPACITY, >= 1 (default: torch's)")
    p.add_argument("--model", default="sgem_unet_t.sirst")
    p.add_argument("--distinct", type=int, default=12, help="frame sizes served once each at batch 1 (default 12)")
    p.add_argument("--sweep", help="comma-separated oneDNN capacities, each run as its own process (ideep: 1)")
    p.add_argument("--repeat", type=int, default=1, help="rounds of --sweep, interleaved (default 1)")
    p.add_argument("--out", help="with --sweep: write STEM.json and STEM.md")
    args = p.parse_args()
    if args.sweep:
        return sweep(args)
    if args.onednn is not None:
        os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(args.onednn)
    if args.ideep is not None:
        os.environ["LRU_CACHE_CAPACITY"] = str(max(1, args.ideep))
    from irstd.core.memory import libc_malloc, malloc_trim, single_malloc_arena

    single_malloc_arena()
    libc = libc_malloc()
    libc.mallinfo2.restype = _MallInfo2

    def in_use_mb() -> float:
        return round(libc.mallinfo2().uordblks / 2**20, 1)

    import torch

    from irstd.inference import Predictor

    torch.set_num_threads(1)
    model = ThreadPoolExecutor(1)  # the service's model thread
    decode = ThreadPoolExecutor(2)  # and its decoding threads
    pred = Predictor.from_checkpoint(args.model, device="cpu", precision="fast", batch_size=16)
    rng = np.random.default_rng(0)

    def run(frames: list[np.ndarray]) -> float:
        t0 = time.perf_counter()
        model.submit(pred.probabilities, frames).result()
        return time.perf_counter() - t0

    def settle() -> None:
        gc.collect()
        model.submit(gc.collect).result()
        malloc_trim()
        time.sleep(0.5)

    f256 = rng.random((256, 256), dtype=np.float32)
    for _ in range(20):
        run([f256])
    settle()
    warm = {"rss_mb": round(_rss_mb(), 1), "in_use_mb": in_use_mb(), "smaps": breakdown(os.getpid())}
    alone = [run([f256]) for _ in range(30)]
    four = [run([f256] * 4) / 4 for _ in range(10)]
    # N distinct frame sizes at batch 1 (a camera each, or a client trying sizes): what stays of them
    for k in range(args.distinct):
        run([rng.random((264 + 8 * k, 264 + 8 * k), dtype=np.float32)])
    settle()
    distinct = {"rss_mb": round(_rss_mb(), 1), "in_use_mb": in_use_mb()}
    per_frame = []
    for rep in range(3):
        for n in range(1, 17):
            dt = run([f256] * n) / n
            if rep:
                per_frame.append(dt)
    shapes = [(256, n) for n in (1, 2, 3, 5, 8, 13)] + [(512, n) for n in (1, 2, 3)] + \
             [(1024, n) for n in (1, 2, 3)] + [(2048, 1), (2048, 2)]
    for _ in range(2):
        for size, n in shapes:
            frames = list(decode.map(lambda _: rng.random((size, size), dtype=np.float32), range(n)))
            run(frames)
            del frames
    settle()
    end = {"rss_mb": round(_rss_mb(), 1), "in_use_mb": in_use_mb(), "smaps": breakdown(os.getpid())}
    run([f256])  # the single shape again after the flood: compiled again once at most
    after = [run([f256]) for _ in range(15)]
    print(json.dumps({
        "command": "python benchmarks/kernel_caches.py " + " ".join(sys.argv[1:]),
        "onednn": os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "default"),
        "ideep": os.environ.get("LRU_CACHE_CAPACITY", "default"),
        "rss_mb": [warm["rss_mb"], end["rss_mb"]], "rss_change_pct": round(100 * (end["rss_mb"] / warm["rss_mb"] - 1), 1),
        "heap_in_use_mb": [warm["in_use_mb"], end["in_use_mb"]],
        "in_use_change_mb": round(end["in_use_mb"] - warm["in_use_mb"], 1),
        "rss_change_by_kind_mb": {k: v for k, v in delta(warm["smaps"], end["smaps"]).items() if abs(v) >= 0.5},
        "distinct_sizes": args.distinct,
        "in_use_change_after_distinct_mb": round(distinct["in_use_mb"] - warm["in_use_mb"], 1),
        "rss_change_after_distinct_pct": round(100 * (distinct["rss_mb"] / warm["rss_mb"] - 1), 1),
        "ms_256_alone_median": round(1000 * float(np.median(alone)), 1),
        "ms_256_per_frame_batch_4_median": round(1000 * float(np.median(four)), 1),
        "ms_256_alone_after_flood_median": round(1000 * float(np.median(after)), 1),
        "ms_256_per_frame_batches_1_16": round(1000 * float(np.mean(per_frame)), 1),
        "loadavg": os.getloadavg(),
    }))
    return 0


def sweep(args: argparse.Namespace) -> int:
    """Run this script once per capacity (``--repeat`` rounds, interleaved); print and save a table."""
    caps = [int(c) for c in args.sweep.split(",")]
    rows = []
    for rnd in range(args.repeat):
        for cap in caps:
            cmd = [sys.executable, __file__, "--ideep", "1", "--onednn", str(cap), "--model", args.model,
                   "--distinct", str(args.distinct)]
            line = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            rows.append(dict(json.loads(line), round=rnd))
            print(line, flush=True)
    if args.out:
        from irstd.bench import save_report

        cols = [("onednn", "oneDNN entries"), ("ms_256_alone_median", "256² alone (ms)"),
                ("ms_256_per_frame_batch_4_median", "256² in batches of 4, per frame (ms)"),
                ("ms_256_per_frame_batches_1_16", "256², batches 1-16 in turn, per frame (ms)"),
                ("in_use_change_after_distinct_mb", f"in use after {args.distinct} sizes (MB)"),
                ("rss_change_after_distinct_pct", f"RSS after {args.distinct} sizes (%)"),
                ("in_use_change_mb", "in use after the flood's shapes (MB)"), ("rss_change_pct", "RSS after (%)"),
                ("ms_256_alone_after_flood_median", "256² alone after (ms)")]
        md = [f"# oneDNN's cache capacity: latency and what stays (`benchmarks/kernel_caches.py`, {args.model})", "",
              "`python benchmarks/kernel_caches.py " + " ".join(sys.argv[1:]) + "`", "",
              f"ideep's cache 1 entry, 1 thread; load average at each row's end in the JSON; {args.repeat} round(s), "
              "interleaved.", "", "| " + " | ".join(h for _, h in cols) + " | load |",
              "|" + "---:|" * (len(cols) + 1)]
        for r in rows:
            md.append("| " + " | ".join(str(r[k]) for k, _ in cols) + f" | {r['loadavg'][0]:.1f} |")
        save_report({"command": "python benchmarks/kernel_caches.py " + " ".join(sys.argv[1:]), "rows": rows},
                    "\n".join(md) + "\n", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
