"""Where a process's resident memory lives, from ``/proc/PID/smaps`` (Linux): the heap, thread stacks,
Python's object arenas, other anonymous mappings by size, and file mappings (libraries).

Used by ``serve_flood.py --smaps`` before and after the flood (issue 36: what stays after a flood);
on its own:

    python benchmarks/smaps_breakdown.py PID [PID_BEFORE_JSON]

Kinds, in MB of RSS (a mapping's resident pages), each with its count of mappings:

- ``heap``: glibc's main arena (``[heap]``, grown with ``brk``);
- ``thread_stacks``: an anonymous mapping right after a small ``---p`` guard mapping (how glibc lays out
  a thread's stack);
- ``arena_heaps``: glibc's per-thread arenas (64 MiB reservations, an ``rw`` head and a ``---p`` tail);
- ``pymalloc_1MiB``: anonymous mappings of exactly 1 MiB (CPython 3.10+ object arenas);
- ``anon_small`` / ``anon_large``: other anonymous mappings below / from 4 MiB (glibc's mmapped blocks,
  oneDNN / OpenMP buffers, JIT code);
- ``files``: file mappings (shared libraries, the model file), mostly clean pages the kernel can drop;
- ``stack``, ``other``: the main stack, ``[vdso]`` and the like.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["breakdown", "delta", "rollup"]

_KB = 1024


def rollup(pid: int) -> dict[str, float]:
    """``/proc/PID/smaps_rollup`` in MB (Rss, Pss, Anonymous, Private_Dirty, ...); {} where unreadable."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
            out[parts[0][:-1]] = round(int(parts[1]) / _KB, 1)
    return out


def _mappings(pid: int) -> list[dict]:
    """Each mapping: start, end (bytes), perms, name ('' when anonymous), rss (kB), anon (kB)."""
    maps: list[dict] = []
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(None, 5)
        if "-" in head[0] and ":" not in head[0]:
            start, end = (int(x, 16) for x in head[0].split("-"))
            maps.append({"start": start, "end": end, "perms": head[1], "name": head[5] if len(head) > 5 else "",
                         "rss": 0, "anon": 0})
        elif head[0] == "Rss:":
            maps[-1]["rss"] = int(head[1])
        elif head[0] == "Anonymous:":
            maps[-1]["anon"] = int(head[1])
    return maps


def _kind(m: dict, prev: dict | None, nxt: dict | None) -> str:
    name, size = m["name"], m["end"] - m["start"]
    if name == "[heap]":
        return "heap"
    if name == "[stack]":
        return "stack"
    if name.startswith("["):
        return "other"
    if name:
        return "files"
    if m["perms"].startswith("---"):
        return "guards"
    if prev is not None and not prev["name"] and prev["perms"].startswith("---") and prev["end"] == m["start"] \
            and prev["end"] - prev["start"] <= 64 * _KB and size <= 64 * _KB * _KB:
        return "thread_stacks"
    if nxt is not None and not nxt["name"] and nxt["perms"].startswith("---") and nxt["start"] == m["end"] \
            and size + nxt["end"] - nxt["start"] == 64 * _KB * _KB:
        return "arena_heaps"
    if size == _KB * _KB:
        return "pymalloc_1MiB"
    return "anon_large" if size >= 4 * _KB * _KB else "anon_small"


def breakdown(pid: int) -> dict:
    """RSS by kind (MB, mappings), the totals of smaps_rollup and the ten largest resident mappings."""
    try:
        maps = _mappings(pid)
    except OSError:
        return {}
    kinds: dict[str, dict[str, float]] = {}
    for i, m in enumerate(maps):
        k = _kind(m, maps[i - 1] if i else None, maps[i + 1] if i + 1 < len(maps) else None)
        entry = kinds.setdefault(k, {"rss_mb": 0.0, "mappings": 0})
        entry["rss_mb"] += m["rss"] / _KB
        entry["mappings"] += 1
    for entry in kinds.values():
        entry["rss_mb"] = round(entry["rss_mb"], 1)
    largest = sorted(maps, key=lambda m: m["rss"], reverse=True)[:10]
    return {"rollup": rollup(pid), "kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1]["rss_mb"])),
            "largest": [f"{m['rss'] // _KB} MB {m['name'] or 'anonymous'} "
                        f"({(m['end'] - m['start']) // _KB} kB mapped)" for m in largest]}


def delta(before: dict, after: dict) -> dict[str, float]:
    """RSS change by kind (MB), largest first."""
    names = set(before.get("kinds", {})) | set(after.get("kinds", {}))
    d = {k: round(after.get("kinds", {}).get(k, {}).get("rss_mb", 0.0)
                  - before.get("kinds", {}).get(k, {}).get("rss_mb", 0.0), 1) for k in names}
    return dict(sorted(d.items(), key=lambda kv: -abs(kv[1])))


if __name__ == "__main__":
    now = breakdown(int(sys.argv[1]))
    if len(sys.argv) > 2:
        now["delta_mb"] = delta(json.loads(Path(sys.argv[2]).read_text()), now)
    print(json.dumps(now, indent=1))
