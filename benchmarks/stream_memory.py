"""Memory over a long stream: peak RSS growth of detect → track → write over generated frames.

    python benchmarks/stream_memory.py --frames 10000 --out benchmarks/results/tracking/stream-memory

A generator yields ``--size``² 8-bit frames (noise, a slowly panning background, two moving targets)
one at a time, as a camera loop would; :func:`~irstd.inference.detect_frames` runs a detector on each
(the white top-hat by default: no network, so 10,000 frames take minutes on 2 cores), the tracker
follows the detections (camera shift included) and every frame's record is written as a JSON line. The
resident set size is sampled every ``--every`` frames; the goal is a peak growth ≤ 50 MB after the first
``--warmup`` frames (allocator pools, lazy imports and first-call caches settle there).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from irstd.bench.timing import environment
from irstd.inference import Predictor, detect_frames
from irstd.inference.records import RecordWriter
from irstd.models import create_model
from irstd.tracking import Tracker

GOAL_MB = 50.0


def rss_mb() -> float:
    """The current resident set size (MB), from /proc."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """The process's peak resident set size so far (MB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def frames(n: int, size: int, seed: int = 0) -> Iterator[np.ndarray]:
    """``n`` generated (size, size) uint8 frames, made one at a time (nothing is kept)."""
    rng = np.random.default_rng(seed)
    big = rng.normal(90, 12, (size * 2, size * 2))  # a textured scene larger than the view, for the pan
    big = (big + np.roll(big, 1, 0) + np.roll(big, 1, 1)) / 3
    yy, xx = np.mgrid[-4:5, -4:5]  # a target's 9×9 patch
    for i in range(n):
        ox, oy = int(size / 2 + size / 3 * np.sin(i / 300)), int(size / 2)  # the camera pans back and forth
        f = big[oy:oy + size, ox:ox + size] + rng.normal(0, 2, (size, size))
        for k, (vx, vy) in enumerate(((0.9, 0.4), (-0.6, 0.8))):  # two targets crossing the view, wrapping
            x, y = (40 + 70 * k + vx * i) % (size - 10) + 5, (60 + 50 * k + vy * i) % (size - 10) + 5
            cx, cy = int(x), int(y)
            f[cy - 4:cy + 5, cx - 4:cx + 5] += 70 * np.exp(-((xx + cx - x) ** 2 + (yy + cy - y) ** 2) / 2.0)
        yield np.clip(f, 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--detector", default="tophat", help="a classical detector's name or a model spec")
    ap.add_argument("--k", type=float, default=5.0, help="the classical detector's threshold factor")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="write OUT.md and OUT.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        p = Predictor(create_model(a.detector, k=a.k), device="cpu")
    except Exception:  # not a classical detector's name: a checkpoint or shipped weights
        p = Predictor.from_checkpoint(a.detector, device="cpu")
    tracker = Tracker()
    samples: list[tuple[int, float, float]] = []
    base = None
    n_targets = n_confirmed = 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="stream-memory-") as tmp, RecordWriter(Path(tmp) / "out.jsonl") as w:
        for det in detect_frames(p, frames(a.frames, a.size), shard=False):
            r = tracker.update(det.prediction.targets, frame=det.frame.image)
            rec = det.record
            rec["confirmed"] = [{"id": t.id, "x": round(t.x, 2), "y": round(t.y, 2)} for t in r.targets]
            w.write(rec)
            i = det.record["frame"] + 1
            n_targets += len(det.prediction.targets)
            n_confirmed += len(r.targets)
            if i == a.warmup:
                base = rss_mb()
            if i % a.every == 0 or i == a.warmup:
                samples.append((i, round(rss_mb(), 1), round(peak_mb(), 1)))
                print(f"frame {i}: rss {samples[-1][1]} MB, peak {samples[-1][2]} MB", file=sys.stderr, flush=True)
        size_mb = (Path(tmp) / "out.jsonl").stat().st_size / 2**20
    secs = time.perf_counter() - t0
    assert base is not None, "--warmup must be below --frames"
    # an upper bound: the lifetime peak (or the highest sample: the kernel's peak lags /proc by a little)
    peak = max(peak_mb(), max(r for _, r, _ in samples))
    growth = peak - base
    cmd = shlex.join(["python", "benchmarks/stream_memory.py", *(sys.argv[1:] if argv is None else argv)])
    env = environment(torch.device("cpu"))
    result = {"command": cmd, "frames": a.frames, "size": a.size, "detector": f"{a.detector} (k={a.k})",
              "rss_after_warmup_mb": round(base, 1), "peak_mb": round(peak, 1), "growth_mb": round(growth, 1),
              "goal_mb": GOAL_MB, "met": growth <= GOAL_MB, "seconds": round(secs, 1),
              "targets_per_frame": round(n_targets / a.frames, 2), "confirmed_per_frame": round(n_confirmed / a.frames, 2),
              "jsonl_mb": round(size_mb, 1), "samples": samples, "environment": env}
    lines = [f"# Memory over a {a.frames}-frame stream", "", f"Command: `{cmd}`", "",
             f"{a.size}×{a.size} generated frames → `{a.detector}` (k={a.k}) → tracker → JSON Lines "
             f"({size_mb:.1f} MB written), {secs:.0f} s on {env['cpu_name']}, {a.threads} threads; "
             f"{result['targets_per_frame']} detections and {result['confirmed_per_frame']} confirmed targets per frame.", "",
             f"**Peak RSS growth after frame {a.warmup}: {growth:.1f} MB** (RSS {base:.1f} MB at frame {a.warmup}, "
             f"peak {peak:.1f} MB; goal ≤ {GOAL_MB:.0f} MB: {'met' if growth <= GOAL_MB else 'missed'}).", "",
             "| frame | RSS MB | peak RSS MB |", "|---|---|---|"]
    lines += [f"| {i} | {r} | {pk} |" for i, r, pk in samples]
    text = "\n".join(lines)
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.with_suffix(".md").write_text(text + "\n")
        a.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
