"""What running a batch as power-of-two chunks (13 frames as 8 + 4 + 1) costs against one call, on the CPU.

``irstd serve`` gathers 1-16 frames per model call, and oneDNN compiles kernels per batch size (about 26
per batch size for ``sgem_unet_t``: ``kernel_counts.py``), so 16 batch sizes of one frame size need 439
cache entries and five (1, 2, 4, 8, 16) need 153. This times, with oneDNN's cache large enough for
both (1,024), a batch of n 256² frames run whole and run as power-of-two chunks, interleaved, ``--rounds``
times each, for every n from 1 to 16 that is not a power of two; the service's settings otherwise (fast
mode, ideep's cache 1; ``--threads``, default 1).

    python benchmarks/batch_split.py --out benchmarks/results/batch-split-cpu
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="sgem_unet_t.sirst")
    p.add_argument("--side", type=int, default=256)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: on a shared 2-core machine two "
                                                           "spinning OpenMP threads measure the neighbours)")
    p.add_argument("--out", help="write STEM.json and STEM.md")
    args = p.parse_args()
    os.environ.setdefault("LRU_CACHE_CAPACITY", "1")
    import torch

    from irstd.inference import Predictor
    from irstd.inference.predictor import pow2_chunks

    torch.set_num_threads(args.threads)
    pred = Predictor.from_checkpoint(args.model, device="cpu", precision="fast", batch_size=16)
    frame = np.random.default_rng(0).random((args.side, args.side), dtype=np.float32)
    x = [pred._normalise(frame)]

    def call(n: int, split: bool) -> float:
        t0 = time.perf_counter()
        for k in pow2_chunks(n) if split else [n]:
            pred._run(x * k)
        return time.perf_counter() - t0

    sizes = [n for n in range(1, 17) if n & (n - 1)]
    for n in range(1, 17):  # every kernel compiled before timing
        call(n, False)
    times: dict[int, dict[str, list[float]]] = {n: {"whole": [], "split": []} for n in sizes}
    for _ in range(args.rounds):
        for n in sizes:
            times[n]["whole"].append(call(n, False))
            times[n]["split"].append(call(n, True))
    rows = []
    for n in sizes:
        whole, split = (1000 * float(np.median(times[n][k])) / n for k in ("whole", "split"))
        rows.append({"frames": n, "chunks": pow2_chunks(n), "ms_per_frame_whole": round(whole, 2),
                     "ms_per_frame_split": round(split, 2), "split_over_whole": round(split / whole, 3)})
        print(rows[-1], flush=True)
    ratio = float(np.exp(np.mean([np.log(r["split_over_whole"]) for r in rows])))
    print(f"geometric mean split/whole: {ratio:.3f}")
    if args.out:
        from irstd.bench import save_report

        md = [f"# Power-of-two chunks against one call (`benchmarks/batch_split.py`, {args.model}, {args.side}²)", "",
              "`python benchmarks/batch_split.py " + " ".join(sys.argv[1:]) + "`", "",
              f"Median of {args.rounds} interleaved rounds, ms per frame; torch threads {torch.get_num_threads()}; "
              f"load average after {os.getloadavg()[0]:.1f}. Geometric mean split/whole: **{ratio:.3f}**.", "",
              "| frames | chunks | whole | split | split / whole |", "|---:|---|---:|---:|---:|"]
        md += [f"| {r['frames']} | {'+'.join(map(str, r['chunks']))} | {r['ms_per_frame_whole']} | "
               f"{r['ms_per_frame_split']} | {r['split_over_whole']} |" for r in rows]
        save_report({"command": "python benchmarks/batch_split.py " + " ".join(sys.argv[1:]), "rows": rows,
                     "geomean_split_over_whole": round(ratio, 3), "loadavg": os.getloadavg()},
                    "\n".join(md) + "\n", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
