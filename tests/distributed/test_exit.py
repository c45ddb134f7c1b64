"""``exit_if_gloo_left``: a process whose gloo threads outlived their group ends with its own status and
everything it printed, without interpreter finalization (docs/distributed.md, "Exit status -6")."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from irstd.core.process_exit import exit_if_gloo_left, gloo_threads_left

SRC = Path(__file__).resolve().parents[2] / "src"

CHILD = textwrap.dedent("""
    import atexit, datetime, logging, os, socket, sys
    sys.path.insert(0, {src!r})
    import torch, torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from irstd.core.process_exit import exit_if_gloo_left, gloo_threads_left
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=30))
    if {ddp!r}:
        net = DistributedDataParallel(torch.nn.Linear(2, 1))
        net(torch.ones(1, 2)).sum().backward()
        del net
    dist.destroy_process_group()
    atexit.register(lambda: print("finalized", flush=True))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("child").info("threads left %d", gloo_threads_left())
    sys.stdout.write("no newline, not flushed")
    exit_if_gloo_left(7)
    print(" / returned")
    sys.exit(5)
""")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through /proc (Linux)")
@pytest.mark.parametrize("ddp", [True, False])
def test_exit_skips_finalization_only_when_gloo_threads_are_left(ddp: bool) -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD.format(src=str(SRC), ddp=ddp)], capture_output=True, text=True,
                          timeout=120, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    if ddp:  # PyTorch keeps the group's threads after a DDP: leave at once, with the status and the output
        assert proc.returncode == 7, proc.stderr
        assert proc.stdout == "no newline, not flushed" and "threads left 2" in proc.stderr, (proc.stdout, proc.stderr)
    else:  # the group's threads ended with it: the process ends as it always did
        assert proc.returncode == 5, proc.stderr
        assert proc.stdout == "no newline, not flushed / returned\nfinalized\n" and "threads left 0" in proc.stderr


def test_a_single_process_has_no_gloo_threads_and_goes_on() -> None:
    assert gloo_threads_left() == 0
    exit_if_gloo_left(3)  # returns: nothing to leave behind
