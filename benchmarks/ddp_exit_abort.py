"""How often two gloo ranks abort at exit after DistributedDataParallel (docs/distributed.md, "Exit status -6").

Each run starts two ranks by hand (torchrun's environment, 127.0.0.1): a small model wrapped in
DistributedDataParallel takes three steps, rank 0 broadcasts an object, the group is destroyed and
each rank exits with status 2. A run is bad when either rank ends otherwise (-6: "terminate called
without an active exception"). Variants, what happens just before ``destroy_process_group``:

- ``alive``: nothing; the wrapper is still referenced when the interpreter exits;
- ``freed``: the wrapper is deleted and ``gc.collect()`` runs (what ``irstd.engine.trainer`` does);
- ``barrier``: a ``dist.barrier()``, the wrapper alive;
- ``exit``: the wrapper alive, and the rank ends through ``irstd.core.process_exit.exit_if_gloo_left``
  (what the ``irstd`` command does), which skips interpreter finalization when gloo threads are left.

    python benchmarks/ddp_exit_abort.py --variant alive freed barrier --runs 40 --load 2

The rate depends on the machine's load (``--load N`` runs N busy processes beside the ranks, as a
loaded CI machine would); it counts, it does not time.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import socket
import subprocess
import sys

from irstd.core.process_exit import exit_if_gloo_left, gloo_threads_left

VARIANTS = ("alive", "freed", "barrier", "exit")


def rank_main(variant: str) -> int:
    """One rank, under the environment set by :func:`run_pair`."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    net = DistributedDataParallel(torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Conv2d(4, 1, 3)))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):
        loss = net(torch.randn(2, 1, 16, 16)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    box = ["disk full" if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    if variant == "barrier":
        dist.barrier()
    if variant == "freed":
        del net, opt
        gc.collect()
    dist.destroy_process_group()
    # threads of the destroyed group still running: 2 once a DistributedDataParallel was built on it
    print(f"gloo worker threads left after destroy_process_group: {gloo_threads_left()}", file=sys.stderr, flush=True)
    if variant == "exit":
        exit_if_gloo_left(2)
    return 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_pair(variant: str) -> tuple[tuple[int, int], str]:
    """Both ranks' exit statuses for one run, and rank 0's line on the threads left."""
    port, procs = str(_free_port()), []
    for r in (0, 1):
        env = dict(os.environ, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=port, OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, __file__, "--rank-worker", variant], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    errs = [p.communicate(timeout=300)[1] for p in procs]
    left = [line for line in errs[0].splitlines() if line.startswith("gloo worker threads")]
    return (procs[0].returncode, procs[1].returncode), (left or ["(rank 0 printed no thread count)"])[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", nargs="+", choices=VARIANTS, default=["alive", "freed"])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--load", type=int, default=0, help="busy processes running beside the ranks")
    ap.add_argument("--rank-worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rank_worker:
        return rank_main(args.rank_worker)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        _count(args.variant, args.runs, args.load)
    finally:
        for p in busy:
            p.kill()
    return 0


def _count(variants: list[str], runs: int, load: int) -> None:
    print(f"{runs} runs per variant, {load} busy processes beside the ranks, load average {os.getloadavg()[0]:.1f}")
    for variant in variants:
        bad, threads = [], ""
        for i in range(runs):
            codes, threads = run_pair(variant)
            if codes != (2, 2):
                bad.append(f"run {i + 1}: exit {codes[0]}, {codes[1]}")
        print(f"{variant}: {len(bad)} bad of {runs} ({threads})" + "".join(f"\n  {b}" for b in bad), flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    sys.exit(main())
