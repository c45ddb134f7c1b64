"""The verifier's cost against the light detector's: one 640×512 frame with 50 candidates (docs/verify.md).

    PYTHONPATH=src python benchmarks/verify_speed.py --threads 1 --out benchmarks/results/verify/speed.json

Times (median of ``--repeats`` after warm-up, same thread count for both) the detector
(``sgem_unet_t.sirst``, fp32, the predictor's whole path: normalise, pad, network, targets) and the
verifier's whole path (50 patches cut, normalised, one batched forward, threshold). Goal: verifier ≤ 10 %.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np


def median_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(1000 * (time.perf_counter() - t0))
    return float(np.median(ts))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--detector", default="sgem_unet_t.sirst")
    p.add_argument("--verifier", default=None, help="verifier name or file (default: the shipped one)")
    p.add_argument("--candidates", type=int, default=50)
    p.add_argument("--size", default="640x512")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out")
    args = p.parse_args(argv)
    import torch

    from irstd.inference import Predictor, Target
    from irstd.verify import load_verifier

    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    frame = rng.normal(100, 5, (h, w)).astype(np.float32)
    xs, ys = rng.uniform(0, w - 1, args.candidates), rng.uniform(0, h - 1, args.candidates)
    targets = [Target(float(x), float(y), 3, (int(x), int(y), int(x), int(y)), 0.9) for x, y in zip(xs, ys)]
    det = Predictor.from_checkpoint(args.detector, device="cpu")
    ver = load_verifier(args.verifier)
    det_ms = median_ms(lambda: det.predict(frame), args.repeats)
    ver_ms = median_ms(lambda: ver.keep(frame, targets), args.repeats)
    result = {"command": "PYTHONPATH=src python " + shlex.join(["benchmarks/verify_speed.py", *sys.argv[1:]]),
              "detector": args.detector, "verifier": ver.name, "size": args.size, "candidates": args.candidates,
              "threads": args.threads, "detector_ms": round(det_ms, 2), "verifier_ms": round(ver_ms, 2),
              "ratio": round(ver_ms / det_ms, 4), "machine": f"{platform.machine()} CPU, torch {torch.__version__}"}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
