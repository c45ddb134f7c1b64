"""Which model-thread settings keep ``/healthz`` fast under load: the same batched load (16 clients,
256×256 PNG, SGEM-UNet-T with random weights) against servers that differ only in ``--threads``,
``--worker-nice``, ``--no-freeze-gc`` and ``--decode-threads``, one after the other in the same run, so a
busy machine hurts them alike.

    python benchmarks/serve_healthz.py --duration 10      # 6 variants, about 1.5 minutes in all
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import REPO, Server, _frame_png, _load, _model  # noqa: E402

#: (label, server options): torch's default threads at normal priority, one core left free, a niced worker
_SPARE = f"--threads={max(1, (os.cpu_count() or 2) - 1)}"
VARIANTS = {"threads=cores": [], "threads=cores-1": [_SPARE], "threads=cores+nice10": ["--worker-nice=10"],
            "threads=cores-1+nice10": [_SPARE, "--worker-nice=10"],
            # the defaults with the garbage collector left to walk everything loaded (docs/serve.md)
            "threads=cores+nice10+no-freeze-gc": ["--worker-nice=10", "--no-freeze-gc"],
            # ... and with a decoding thread per request, as before decoding was bounded to the cores
            "threads=cores+nice10+decode-threads=64": ["--worker-nice=10", "--decode-threads=64"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10.0, help="seconds per variant")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated labels of VARIANTS")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serve-healthz-cpu.json"))
    args = p.parse_args(argv)
    body, rows = _frame_png(256), []
    with tempfile.TemporaryDirectory() as tmp:
        model = _model(None, Path(tmp))
        for label in args.variants.split(","):
            # --threads/--worker-nice are spelled out so the comparison does not depend on the server's defaults
            opts = VARIANTS[label]
            opts = opts + [o for o in (f"--threads={os.cpu_count()}", "--worker-nice=0")
                           if o.split("=")[0] not in {x.split("=")[0] for x in opts}]
            with Server(model, 16, 2.0, "fast", opts) as server:
                load = round(os.getloadavg()[0], 2)
                row = asyncio.run(_load(server, body, args.clients, args.duration, 100000))
            rows.append({"variant": label, "options": opts, **row, "worker": server.worker, "loadavg_before": load})
            print(f"{label:>24}: {row['rps']:6.2f} req/s  p99 {row['p99_ms']} ms  failed {row['failed']}  "
                  f"/healthz p99 {row['healthz_p99_ms']} ms  max {row['healthz_max_ms']} ms  "
                  f"({row['healthz_probes']} probes, server CPU {row['server_cpu_pct']} %, load {load}, "
                  f"full GCs {row['gc_full_collections']}, longest GC {row['gc_longest_ms']} ms)", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"command": "python benchmarks/serve_healthz.py " + " ".join(
        argv if argv is not None else sys.argv[1:]), "cpu_count": os.cpu_count(), "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
