"""retain_freed_memory: large tensors reuse freed memory instead of page-faulting it again."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from irstd.core.memory import memory_retained, retain_freed_memory

_GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# minor page faults of the last of several forward passes of a small network on a 1280×1024 frame
# (its 8-channel float32 activations are 42 MB, above glibc's largest mmap threshold), in a fresh process
_PROBE = """
import resource, sys, torch
from irstd.core.memory import retain_freed_memory
torch.set_num_threads(1)
if sys.argv[1] == "1":
    assert retain_freed_memory()
c = torch.nn.Conv2d
net = torch.nn.Sequential(c(1, 8, 3, padding=1), torch.nn.ReLU(), c(8, 8, 3, padding=1), torch.nn.ReLU(), c(8, 1, 1))
x = torch.randn(1, 1, 1024, 1280)
with torch.inference_mode():
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        net(x)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _last_pass_faults(retain: bool) -> int:
    out = subprocess.run([sys.executable, "-c", _PROBE, "1" if retain else "0"], capture_output=True, text=True,
                         check=True, env={k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")})
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not _GLIBC, reason="mallopt is glibc's; elsewhere retain_freed_memory returns False")
def test_retained_memory_is_reused_without_page_faults() -> None:
    pages = 8 * 1024 * 1280 * 4 // 4096  # one activation: 10240 pages of 4 KiB
    assert _last_pass_faults(retain=False) > pages  # glibc unmaps each activation and faults it in again
    assert _last_pass_faults(retain=True) < pages // 10  # kept and reused from the second pass on


@pytest.mark.skipif(not _GLIBC, reason="mallopt is glibc's")
def test_retain_is_idempotent_and_reported() -> None:
    assert retain_freed_memory() and retain_freed_memory()
    assert memory_retained()
