"""``irstd sweep``: train and evaluate a grid of models × seeds, then write its Table 1."""

from __future__ import annotations

import argparse
import sys

from ._common import add_device, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Run a sweep file (see configs/sweeps/): finished runs are skipped, "
                     "interrupted ones resume, a failed run is reported and the others go on.")
    p.add_argument("config", help="sweep YAML (models, seeds, recipe, test list)")
    p.add_argument("--report", action="store_true", help="train nothing: evaluate finished runs and write the table")
    p.add_argument("--parallel", type=positive_int, default=1, metavar="N", help="N trainings at once (processes)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads per run, >= 1 (default: cores / N)")
    add_device(p)
    p.add_argument("--out", help="table path without suffix (default <out>/<sweep>/table1)")
    p.add_argument("--rebench", action="store_true", help="time the models again instead of reusing bench.json")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..experiments import load_sweep, run_sweep, sweep_report

    spec = load_sweep(args.config)
    runtime = {"progress": False} if args.no_progress or args.parallel > 1 else {}
    outcomes = run_sweep(spec, parallel=args.parallel, train=not args.report, device=args.device,
                         threads=args.threads, runtime=runtime)
    for o in outcomes:
        print(f"{o.name:32s} {o.status:10s} {o.detail}")
    command = "irstd sweep " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["sweep"] else None
    _, written = sweep_report(spec, outcomes, device=args.device, out=args.out, command=command, rebench=args.rebench)
    print("written: " + ", ".join(str(p) for p in written))
    return 0 if all(o.status == "finished" for o in outcomes) else 1
