"""``irstd serve`` under a flood of hostile requests (issue 36): no 500, ``/healthz`` fast throughout,
memory back to its warm baseline within a minute.

Starts ``irstd serve MODEL`` (default the shipped ``sgem_unet_t.sirst``, CPU, default limits) on a free
127.0.0.1 port, measures its warm RSS after a few ordinary frames, then runs ``--clients`` concurrent
clients for ``--duration`` seconds, each sending hostile requests in turn: batches of eight 4096² PNGs,
a JPEG whose header claims 9000×9000, large frames (1024², 2048²), an 80 kB header, heads and bodies
sent a byte at a time, truncated bodies, clients that leave before their answer, garbage bodies and
garbage HTTP, broken multipart, and ordinary frames (with ``--sizes N``, also of N sizes in turn). A prober in its own process asks ``/healthz``
every 100 ms from start to end; the server's RSS is sampled every 0.5 s during the flood and every
second for ``--recovery`` seconds after it; where the RSS lives, warm and at the end, by kind of mapping
(``smaps_breakdown.py``) and, with ``--malloc-info``, glibc's own count (in use / free in the heap). Writes ``<out>.json`` and ``<out>.md``; about
``duration + recovery + 30`` seconds in all. Loopback only.

    python benchmarks/serve_flood.py --out benchmarks/results/serve-flood-cpu
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Awaitable, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import REPO, Server  # noqa: E402
from smaps_breakdown import breakdown, delta  # noqa: E402

#: the /healthz prober, its own process: a new connection every 100 ms until its stdin closes; prints
#: [wall-clock time, latency in seconds or null when it failed] pairs as JSON
_PROBE = r"""
import http.client, json, select, sys, time
port, out = int(sys.argv[1]), []
while not select.select([sys.stdin], [], [], 0.1)[0]:
    t0, w = time.perf_counter(), time.time()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        r.read()
        out.append([w, time.perf_counter() - t0 if r.status == 200 else None])
    except OSError:
        out.append([w, None])
    finally:
        conn.close()
print(json.dumps(out))
"""

#: the goals of issue 36 for the service
HEALTHZ_P99_MS, RSS_SLACK, RECOVERY_S = 100.0, 0.20, 60.0


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1 if array.any() else 9)
    return buf.getvalue()


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A valid 8×8 JPEG whose frame header (SOF0) is patched to claim ``width``×``height``."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def _multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "floodboundary7d1f"
    parts = [(f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
              "Content-Type: image/png\r\n\r\n").encode() + data + b"\r\n" for name, data in files]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Payloads:
    """The encoded bodies, made once."""

    def __init__(self, sizes: int = 0) -> None:
        rng = np.random.default_rng(0)
        # --sizes: ordinary frames of that many sizes (264², 272², ...), sent in turn
        self.sized = [_png(rng.integers(0, 255, (264 + 8 * k,) * 2, dtype=np.uint8)) for k in range(sizes)]
        self.next_size = 0
        self.zero4096 = _png(np.zeros((4096, 4096), np.uint8))
        self.batch8, self.batch8_type = _multipart([(f"z{i}.png", self.zero4096) for i in range(8)])
        self.bomb_jpeg = _jpeg_claiming(9000, 9000)
        self.large = _png(rng.integers(0, 255, (1024, 1024), dtype=np.uint8))
        self.huge = _png(rng.integers(0, 255, (2048, 2048), dtype=np.uint8))
        self.medium = _png(rng.integers(0, 255, (512, 512), dtype=np.uint8))
        self.small = _png(rng.integers(0, 255, (256, 256), dtype=np.uint8))
        self.garbage = rng.integers(0, 255, 50_000, dtype=np.uint8).tobytes()


def _head(path: str, content_type: str, length: int, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n{extra}\r\n").encode()


async def _status(reader: asyncio.StreamReader, timeout: float) -> int | None:
    """The status of the answer (None: the server closed without one, or none came in time)."""
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
        await asyncio.wait_for(reader.read(), timeout)  # drain until the server closes
    except (asyncio.TimeoutError, OSError):
        return None
    parts = line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


async def _exchange(port: int, chunks: list[bytes], *, gap: float = 0.0, leave_after: float | None = None,
                    timeout: float = 60.0) -> int | None:
    """Send ``chunks`` (``gap`` seconds apart), then read the status; ``leave_after``: close after that
    many seconds without reading (a client that leaves)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i, chunk in enumerate(chunks):
            if i and gap:
                await asyncio.sleep(gap)
            writer.write(chunk)
            await writer.drain()
        if leave_after is not None:
            await asyncio.sleep(leave_after)
            return None
        return await _status(reader, timeout)
    except OSError:  # the server closed on us (a refused head, a timeout): that is its answer
        return None
    finally:
        writer.close()


_BAD_MULTIPART = b"--x\r\nContent-Disposition: form-data\r\n\r\nno end"


def _kinds(p: Payloads, port: int) -> dict[str, Callable[[], Awaitable[int | None]]]:
    """Each hostile request: a coroutine factory returning the status (None: no answer, by design or not)."""
    img = "image/png"
    kinds: dict[str, Callable[[], Awaitable[int | None]]] = {
        "oversized_batch": lambda: _exchange(port, [_head("/v1/detect/batch", p.batch8_type, len(p.batch8)), p.batch8]),
        "pixel_bomb_jpeg": lambda: _exchange(port, [_head("/v1/detect", "image/jpeg", len(p.bomb_jpeg)), p.bomb_jpeg]),
        "large_frame_1024": lambda: _exchange(port, [_head("/v1/detect", img, len(p.large)), p.large]),
        "huge_frame_2048": lambda: _exchange(port, [_head("/v1/detect", img, len(p.huge)), p.huge]),
        "header_bomb_80kB": lambda: _exchange(port, [_head("/v1/detect", img, len(p.small),
                                                           "X-Bomb: " + "a" * 80_000 + "\r\n"), p.small]),
        # a byte of head every second: the server must close it (header timeout)
        "slow_header": lambda: _exchange(port, [b"GET /healthz HTTP/1.1\r\n"] + [b"X"] * 30, gap=1.0, timeout=5),
        # a body a kilobyte a second: 408 (body timeout)
        "slow_body": lambda: _exchange(port, [_head("/v1/detect", img, len(p.large))]
                                       + [p.large[i:i + 1024] for i in range(0, 40 * 1024, 1024)], gap=1.0,
                                       timeout=5),
        "truncated_body": lambda: _exchange(port, [_head("/v1/detect", img, len(p.large)), p.large[:5000]],
                                            leave_after=0.05),
        "client_leaves": lambda: _exchange(port, [_head("/v1/detect", img, len(p.medium)), p.medium],
                                           leave_after=0.05),
        "garbage_body": lambda: _exchange(port, [_head("/v1/detect", "application/octet-stream", len(p.garbage)),
                                                 p.garbage]),
        "garbage_http": lambda: _exchange(port, [p.garbage[:2000] + b"\r\n\r\n"]),
        "bad_multipart": lambda: _exchange(port, [_head("/v1/detect/batch", "multipart/form-data; boundary=x",
                                                        len(_BAD_MULTIPART)), _BAD_MULTIPART]),
        "ordinary_256": lambda: _exchange(port, [_head("/v1/detect", img, len(p.small)), p.small]),
    }
    if p.sized:
        def many_sizes() -> Awaitable[int | None]:
            body = p.sized[p.next_size % len(p.sized)]
            p.next_size += 1
            return _exchange(port, [_head("/v1/detect", img, len(body)), body])

        kinds["many_sizes"] = many_sizes
    return kinds


async def _flood(port: int, payloads: Payloads, clients: int, duration: float) -> list[tuple[str, int | None, float]]:
    kinds = _kinds(payloads, port)
    names = list(kinds)
    out: list[tuple[str, int | None, float]] = []
    end = time.monotonic() + duration

    async def client(i: int) -> None:
        k = i
        while time.monotonic() < end:
            name = names[k % len(names)]
            k += 1
            t0 = time.perf_counter()
            try:
                status = await kinds[name]()
            except OSError:
                status = None  # refused connection
            out.append((name, status, time.perf_counter() - t0))

    await asyncio.gather(*(client(i) for i in range(clients)))
    return out


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _largest_mappings(pid: int, n: int = 8) -> list[str]:
    """The server's ``n`` largest resident mappings (where memory that did not come back lives)."""
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return []
    maps, current = [], ""
    for line in text.splitlines():
        if line[:1].isdigit() or line[:1] in "abcdef" and "-" in line.split()[0]:
            current = " ".join(line.split()[5:]) or f"anonymous {line.split()[0]}"
        elif line.startswith("Rss:"):
            maps.append((int(line.split()[1]) // 1024, current))
    return [f"{mb} MB {name}" for mb, name in sorted(maps, reverse=True)[:n]]


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _malloc_info(pid: int, path: Path) -> None:
    """glibc's ``malloc_info`` of process ``pid`` into ``path`` (XML), through gdb; nothing when gdb fails."""
    cmds = [f'set $f = (void *) fopen("{path.resolve()}", "w")', "call (int) malloc_info(0, $f)",
            "call (int) fclose($f)"]
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx", *sum((["-ex", c] for c in cmds), [])],
                       capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        pass


def _malloc_summary(path: Path) -> dict[str, float] | None:
    """The totals of a ``malloc_info`` XML in MB: the heap's size, free (inside it), in use, mmapped blocks."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    total = {t.get("type"): (int(t.get("count", 0)), int(t.get("size", 0))) for t in root.findall("total")}
    system = sum(int(x.get("size", 0)) for x in root.findall("system") if x.get("type") == "current")
    free = total.get("fast", (0, 0))[1] + total.get("rest", (0, 0))[1]
    mb = 1024 * 1024
    return {"heap_mb": round(system / mb, 1), "free_in_heap_mb": round(free / mb, 1),
            "in_use_mb": round((system - free) / mb, 1), "mmapped_mb": round(total.get("mmap", (0, 0))[1] / mb, 1),
            "mmapped_blocks": total.get("mmap", (0, 0))[0]}


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


def _ordinary(url: str, body: bytes, n: int) -> list[int]:
    import httpx

    with httpx.Client(base_url=url, timeout=60) as http:
        return [http.post("/v1/detect", content=body, headers={"content-type": "image/png"}).status_code
                for _ in range(n)]


async def _sample_rss(pid: int, stop: asyncio.Event, every: float, into: list[tuple[float, float]]) -> None:
    t0 = time.monotonic()
    while not stop.is_set():
        rss = _rss_mb(pid)
        if rss is not None:
            into.append((round(time.monotonic() - t0, 2), rss))
        try:
            await asyncio.wait_for(stop.wait(), every)
        except asyncio.TimeoutError:
            pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="sgem_unet_t.sirst", help="what irstd serve runs (default sgem_unet_t.sirst)")
    p.add_argument("--clients", type=int, default=200, help="concurrent hostile clients (default 200)")
    p.add_argument("--duration", type=float, default=45.0, help="seconds of flood (default 45)")
    p.add_argument("--recovery", type=float, default=RECOVERY_S, help="seconds to watch RSS after (default 60)")
    p.add_argument("--serve-args", default="", help="extra irstd serve options, one string")
    p.add_argument("--sizes", type=int, default=0,
                   help="add a client kind sending ordinary frames of this many sizes in turn (264², 272², ...: "
                        "a kernel per layer and size for torch's caches; default 0: none)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serve-flood-cpu"))
    p.add_argument("--malloc-info", action="store_true",
                   help="also ask the server's glibc for malloc_info (through gdb) when warm and at the end, "
                        "written beside --out as <out>.malloc-{warm,end}.xml, summed up in the report")
    args = p.parse_args(argv)
    load_before = _uptime()
    random.seed(0)
    payloads = Payloads(args.sizes)
    extra = ["--device", "cpu", *args.serve_args.split()]
    with Server(args.model, 16, 2.0, "fast", extra) as server:
        pid, port = server.proc.pid, server.port
        assert _ordinary(server.url, payloads.small, 20) == [200] * 20
        time.sleep(3.0)  # idle: the service trims the heap a second after its last request
        baseline, baseline_mappings, smaps_warm = _rss_mb(pid), _largest_mappings(pid), breakdown(pid)
        if args.malloc_info:
            _malloc_info(pid, Path(args.out).with_suffix(".malloc-warm.xml"))
        marks: dict[str, float] = {"probe_start": time.time()}
        prober = subprocess.Popen([sys.executable, "-c", _PROBE, str(port)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)

        async def run() -> tuple[list, list, list, float]:
            flood_rss: list[tuple[float, float]] = []
            stop = asyncio.Event()
            sampler = asyncio.create_task(_sample_rss(pid, stop, 0.5, flood_rss))
            t0 = time.monotonic()
            marks["flood_start"] = time.time()
            results = await _flood(port, payloads, args.clients, args.duration)
            marks["flood_end"] = time.time()
            flood_s = time.monotonic() - t0
            stop.set()
            await sampler
            after: list[tuple[float, float]] = []
            stop2 = asyncio.Event()
            sampler2 = asyncio.create_task(_sample_rss(pid, stop2, 1.0, after))
            await asyncio.sleep(args.recovery)
            stop2.set()
            await sampler2
            return results, flood_rss, after, flood_s

        results, flood_rss, after, flood_s = asyncio.run(run())
        mappings, smaps_end = _largest_mappings(pid), breakdown(pid)
        ordinary_after = _ordinary(server.url, payloads.small, 5)
        probe_out, _ = prober.communicate(input="", timeout=60)
        timed = json.loads(probe_out)
        probes = [lat for _, lat in timed]
        # the slowest answers and when they came, in seconds from the flood's start
        slowest = sorted(((lat, round(w - marks["flood_start"], 2)) for w, lat in timed if lat is not None),
                         reverse=True)[:5]
        import httpx

        metrics = httpx.get(server.url + "/metrics", timeout=10).text
        if args.malloc_info:  # gdb stops the server a few seconds: after the prober and the last requests
            _malloc_info(pid, Path(args.out).with_suffix(".malloc-end.xml"))
    by_kind: dict[str, Counter] = defaultdict(Counter)
    for name, status, _ in results:
        by_kind[name][str(status)] += 1
    statuses = Counter(str(s) for _, s, _ in results)
    ok_probes = [x for x in probes if x is not None]
    limit = baseline * (1 + RSS_SLACK) if baseline else None
    back_at = next((t for t, rss in after if limit is not None and rss <= limit), None)
    served_500 = sum(int(float(v)) for v in _metric_lines(metrics, "irstd_http_requests_total", 'status="500"'))
    report = {
        "command": "python benchmarks/serve_flood.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "uptime_before": load_before, "uptime_after": _uptime(),
                    "loadavg_after": os.getloadavg()},
        # what the server's allocator and libraries were told from outside (the service sets its own in code)
        "env": {k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "GLIBC_TUNABLES", "ONEDNN_",
                                                                     "DNNL_", "OMP_", "MKL_", "IRSTD_"))},
        "model": args.model, "clients": args.clients, "flood_s": round(flood_s, 1), "requests": len(results),
        "statuses": dict(statuses), "by_kind": {k: dict(v) for k, v in by_kind.items()},
        "server_500_answers": served_500,
        "healthz": {"probes": len(probes), "failed": len(probes) - len(ok_probes), "p50_ms": _pct(ok_probes, 50),
                    "p99_ms": _pct(ok_probes, 99), "worst_ms": _pct(ok_probes, 100),
                    "slowest_ms_at_s": [[round(lat * 1000, 1), at] for lat, at in slowest],
                    "flood_ended_at_s": round(marks["flood_end"] - marks["flood_start"], 2)},
        "rss_mb": {"warm_baseline": baseline, "flood_peak": max((r for _, r in flood_rss), default=None),
                   "limit": round(limit, 1) if limit else None, "back_within_limit_after_s": back_at,
                   "end": after[-1][1] if after else None, "flood": flood_rss, "after": after},
        "ordinary_after_flood": ordinary_after,
        "largest_mappings": {"warm": baseline_mappings, "end": mappings},
        # RSS by kind of mapping (benchmarks/smaps_breakdown.py): where what stays after the flood lives
        "smaps": {"warm": smaps_warm, "end": smaps_end, "delta_mb": delta(smaps_warm, smaps_end)},
        # glibc's own count (--malloc-info): in use = live allocations; free = inside the heap, not given back
        "malloc": {w: _malloc_summary(Path(args.out).with_suffix(f".malloc-{w}.xml"))
                   for w in ("warm", "end")} if args.malloc_info else None,
        "dropped_frames": _metric_value(metrics, "irstd_frames_dropped_total"),
        "inflight_bytes_after": _metric_value(metrics, "irstd_inflight_bytes"),
        "errors_by_reason": {m.split('reason="')[1].split('"')[0]: float(m.rsplit(" ", 1)[1])
                             for m in metrics.splitlines() if m.startswith("irstd_errors_total{")},
    }
    report["goals"] = {
        "no 500": served_500 == 0 and statuses.get("500", 0) == 0,
        f"/healthz p99 < {HEALTHZ_P99_MS:g} ms, none failed": (report["healthz"]["p99_ms"] or 1e9) < HEALTHZ_P99_MS
        and report["healthz"]["failed"] == 0,
        f"RSS within {RSS_SLACK:.0%} of warm baseline within {RECOVERY_S:g} s": back_at is not None
        and back_at <= RECOVERY_S,
        "ordinary frames answered after": ordinary_after == [200] * 5,
    }
    from irstd.bench.report import save_report  # STEM.json + STEM.md, as every benchmark report
    save_report(report, _markdown(report), args.out)
    print(_markdown(report))
    return 0 if all(report["goals"].values()) else 1


def _metric_lines(text: str, name: str, has: str) -> list[str]:
    return [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(name + "{") and has in line]


def _metric_value(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def _markdown(r: dict) -> str:
    h, m = r["healthz"], r["rss_mb"]
    lines = [f"# irstd serve under {r['clients']} concurrent hostile clients", "",
             f"`{r['command']}`", "",
             f"{r['machine']['platform']}, {r['machine']['cpus']} CPUs; model {r['model']}; "
             f"{r['requests']} requests in {r['flood_s']} s; load average after {r['machine']['loadavg_after']}; "
             f"server environment {r.get('env') or '{}'}", "",
             f"`uptime` before: {r['machine'].get('uptime_before')}; after: {r['machine'].get('uptime_after')}", "",
             "| goal | met |", "|---|---|"]
    lines += [f"| {g} | {'yes' if ok else 'NO'} |" for g, ok in r["goals"].items()]
    lines += ["", f"- statuses: {r['statuses']} (None: no answer, by design for clients that leave, slow heads "
                  "closed by the header timeout, and refused connections)",
              f"- server's own count of 500 answers: {r['server_500_answers']}",
              f"- /healthz: {h['probes']} probes, {h['failed']} failed, p50 {h['p50_ms']} ms, p99 {h['p99_ms']} ms, "
              f"worst {h['worst_ms']} ms; the slowest [ms, seconds from the flood's start]: "
              f"{h['slowest_ms_at_s']} (the flood ended at {h['flood_ended_at_s']} s)",
              f"- RSS: warm baseline {m['warm_baseline']:.0f} MB, flood peak {m['flood_peak']:.0f} MB, limit "
              f"{m['limit']:.0f} MB, back within it {m['back_within_limit_after_s']} s after the flood, "
              f"{m['end']:.0f} MB at the end",
              f"- queued frames dropped unrun (timed out or client gone): {r['dropped_frames']}",
              f"- refusals by reason: {r['errors_by_reason']}",
              f"- ordinary frames after the flood: {r['ordinary_after_flood']}",
              "- RSS by kind of mapping, MB warm → end (change), `benchmarks/smaps_breakdown.py`: "
              + _kinds_line(r.get("smaps", {})),
              f"- glibc's malloc_info, warm → end (MB): {r.get('malloc')}", "",
              "| request | answers (status: count) |", "|---|---|"]
    lines += [f"| {k} | {', '.join(f'{s}: {n}' for s, n in sorted(v.items()))} |" for k, v in r["by_kind"].items()]
    return "\n".join(lines) + "\n"


def _kinds_line(s: dict) -> str:
    warm, end = s.get("warm", {}).get("kinds", {}), s.get("end", {}).get("kinds", {})
    return "; ".join(f"{k} {warm.get(k, {}).get('rss_mb', 0):.0f} → {end.get(k, {}).get('rss_mb', 0):.0f} "
                     f"({d:+.0f}; {end.get(k, {}).get('mappings', 0)} mappings)"
                     for k, d in s.get("delta_mb", {}).items() if abs(d) >= 1 or k in ("heap", "thread_stacks"))


if __name__ == "__main__":
    raise SystemExit(main())
