"""Load test of ``irstd serve`` on loopback: requests/s and latency at several client counts,
micro-batching on (``--max-batch``) against one frame at a time (``--max-batch 1``), same model.

The goal setting (batched, most clients) runs ``--duration`` seconds, every other setting
``--other-duration``, each also capped at ``--max-requests``; the server is a subprocess on 127.0.0.1
that is always stopped. A prober in its own process (so the clients' event loop cannot delay it) asks
``/healthz`` every 100 ms throughout. Per setting it records requests/s, p50/p99, failures, /healthz
p99 and worst, the CPU the server and the clients used, the server's thread count and the model
thread's torch threads and nice value; the goals table adds the queueing bound of the p99 goal,
computed from the same run. Writes ``<out>.json`` and ``<out>.md``.

    python benchmarks/serve_load.py --duration 120      # the goal run: about 5 minutes in all
    python benchmarks/serve_load.py --duration 20 --other-duration 8 --out /tmp/serve-load   # a check, ~80 s
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _frame_png(size: int) -> bytes:
    from PIL import Image

    from irstd.data.synthetic import generate_scene

    img, _, _ = generate_scene(0, size=(size, size))
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _model(spec: str | None, folder: Path) -> str:
    """The model to serve: as given, or an SGEM-UNet-T checkpoint (random weights: speed only)."""
    if spec:
        return spec
    from irstd.models import create_model
    from irstd.models.checkpoint import save_checkpoint

    path = folder / "sgem_unet_t.safetensors"
    save_checkpoint(path, create_model("sgem_unet_t"), normalization=(100.0, 30.0))
    return str(path)


class Server:
    """``irstd serve`` in a subprocess on a free loopback port; stopped on exit whatever happens."""

    def __init__(self, model: str, max_batch: int, max_wait_ms: float, precision: str,
                 worker: list[str] | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "irstd.cli.main", "serve", model, "--host", "127.0.0.1",
                    "--port", str(self.port), "--device", "cpu", "--precision", precision,
                    "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms), "--max-queue", "256",
                    *(worker or [])]

    def __enter__(self) -> "Server":
        import httpx

        env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen(self.cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    self.worker = httpx.get(self.url + "/v1/models", timeout=5).json()["models"][0]["worker"]
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("server did not become ready within 180 s")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (Linux /proc; NaN elsewhere)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return float("nan")

    def threads(self) -> int | None:
        """OS threads of the server process (Linux /proc)."""
        try:
            found = re.search(r"^Threads:\s+(\d+)", Path(f"/proc/{self.proc.pid}/status").read_text(), re.M)
        except OSError:
            return None
        return int(found.group(1)) if found else None

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


#: the /healthz prober, run as its own process: a new connection every 100 ms (as an orchestrator's
#: probe does) until its stdin closes; prints the latencies in seconds (null: failed) as JSON
_PROBE = r"""
import http.client, json, select, sys, time
port, out = int(sys.argv[1]), []
while not select.select([sys.stdin], [], [], 0.1)[0]:
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        r.read()
        out.append(time.perf_counter() - t0 if r.status == 200 else None)
    except OSError:
        out.append(None)
    finally:
        conn.close()
print(json.dumps(out))
"""


def _server_gc(server: Server) -> tuple[int | None, float | None]:
    """Full (generation-2) collections in the server so far and its longest GC pause in ms (/metrics)."""
    import httpx

    try:
        text = httpx.get(server.url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return None, None
    full = re.search(r'^irstd_gc_pause_seconds_count\{generation="2"\} (\S+)$', text, re.M)
    longest = re.search(r"^irstd_gc_pause_longest_seconds (\S+)$", text, re.M)
    return (int(float(full.group(1))) if full else 0,
            round(float(longest.group(1)) * 1000, 1) if longest else None)


def _pct(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values.size else None


async def _load(server: Server, body: bytes, clients: int, duration: float, max_requests: int) -> dict:
    """``clients`` loops posting ``body`` until the time or the request budget is spent."""
    import httpx

    latencies: list[float] = []
    failures: list[str] = []
    budget = [max_requests]
    stop_at = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    probe = subprocess.Popen([sys.executable, "-c", _PROBE, str(server.port)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as http:
            async def client() -> None:
                while time.perf_counter() < stop_at and budget[0] > 0:
                    budget[0] -= 1
                    t0 = time.perf_counter()
                    try:
                        r = await http.post("/v1/detect", content=body, headers={"content-type": "image/png"})
                        ok = r.status_code == 200 and "frames" in r.json()
                    except httpx.HTTPError as exc:
                        ok, r = False, exc
                    if ok:
                        latencies.append(time.perf_counter() - t0)
                    else:
                        failures.append(str(getattr(r, "status_code", r)))

            cpu0, own0, threads = server.cpu_seconds(), time.process_time(), server.threads()
            start = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(clients)))
            elapsed = time.perf_counter() - start
            cpu1, own1 = server.cpu_seconds(), time.process_time()
        gc_collections, gc_longest = _server_gc(server)
    finally:
        health_out, _ = probe.communicate("stop\n", timeout=30)
    health = [float("inf") if h is None else h for h in json.loads(health_out or "[]")]
    lat, hl = np.array(latencies) * 1000, np.array(health) * 1000
    rps = len(latencies) / elapsed
    return {"clients": clients, "requests": len(latencies), "failed": len(failures), "seconds": round(elapsed, 2),
            "rps": round(rps, 2), "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99),
            # Little's law for a closed loop: mean latency = clients in flight / throughput
            "little_mean_ms": round(clients / rps * 1000, 1) if rps else None,
            "healthz_probes": hl.size, "healthz_p99_ms": _pct(hl, 99),
            "healthz_max_ms": round(float(hl.max()), 1) if hl.size else None,
            "server_cpu_pct": round((cpu1 - cpu0) / elapsed * 100, 1),
            "client_cpu_pct": round((own1 - own0) / elapsed * 100, 1),
            "server_threads": threads, "gc_full_collections": gc_collections, "gc_longest_ms": gc_longest,
            "failures": sorted(set(failures))}


def _goals(rows: list[dict], top: int) -> list[dict]:
    by = {(r["mode"], r["clients"]): r for r in rows}
    on, off, single = by.get(("batched", top)), by.get(("one at a time", top)), by.get(("one at a time", 1))
    goals = []
    if on and off:
        ratio = on["rps"] / off["rps"] if off["rps"] else float("inf")
        goals.append({"goal": f"requests/s at {top} clients, batched / one at a time", "target": "≥ 1.5×",
                      "value": round(ratio, 2), "met": ratio >= 1.5})
    if on and single and single["p50_ms"] and on["p99_ms"]:
        ratio = on["p99_ms"] / single["p50_ms"]
        goals.append({"goal": f"p99 at {top} clients (batched) / single-request p50", "target": "< 4×",
                      "value": round(ratio, 2), "met": ratio < 4})
        # the bound: p99 >= mean = top / rps (Little's law), so p99 < 4x single needs rps >= top / (4 x single)
        floor = on["little_mean_ms"] / single["p50_ms"]
        need = top / (4 * single["p50_ms"] / 1000)
        goals.append({"goal": f"bound: mean latency at {top} clients = {top} / req/s = {on['little_mean_ms']} ms, "
                              f"/ single p50 (the p99 ratio cannot be below it; < 4× needs ≥ {need:.1f} req/s, "
                              f"{need / single['rps']:.1f}× the single-client {single['rps']} req/s)",
                      "target": "< 4×", "value": round(floor, 2), "met": floor < 4})
    failed = sum(r["failed"] for r in rows)
    goals.append({"goal": "failed requests", "target": "0", "value": failed, "met": failed == 0})
    worst = max(r["healthz_max_ms"] or 0 for r in rows)
    p99 = max(r["healthz_p99_ms"] or 0 for r in rows)
    goals.append({"goal": "/healthz latency, p99 (worst setting)", "target": "< 50 ms", "value": p99, "met": p99 < 50})
    goals.append({"goal": "/healthz latency, worst", "target": "< 50 ms", "value": worst, "met": worst < 50})
    return goals


def _markdown(report: dict) -> str:
    lines = [f"# `irstd serve` load test ({report['device']})", "",
             f"Command: `{report['command']}`", "",
             f"Model `{report['model_label']}`, {report['size']}×{report['size']} PNG frames, precision "
             f"`{report['precision']}`, batched = `--max-batch {report['max_batch']} --max-wait-ms "
             f"{report['max_wait_ms']}`, one at a time = `--max-batch 1`; server worker options "
             f"`{' '.join(report['worker_args']) or '(defaults)'}`. The batched {report['top']}-client setting ran "
             f"{report['duration']:g} s, the others {report['other_duration']:g} s, each at most "
             f"{report['max_requests']} requests. Client and server share the machine; CPU % is of one core; GC counts and the longest GC pause "
             f"are the server's own (`/metrics`), since it started (one server per mode).", "",
             "| mode | clients | requests | failed | req/s | p50 ms | p99 ms | clients / req/s ms | /healthz p99 ms "
             "| /healthz max ms | probes | server CPU % | client CPU % | server threads | model threads, nice "
             "| load avg before | server full GCs, longest GC ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in report["results"]:
        w = r["worker"]
        lines.append(f"| {r['mode']} | {r['clients']} | {r['requests']} | {r['failed']} | {r['rps']} | {r['p50_ms']} | "
                     f"{r['p99_ms']} | {r['little_mean_ms']} | {r['healthz_p99_ms']} | {r['healthz_max_ms']} | "
                     f"{r['healthz_probes']} | {r['server_cpu_pct']} | {r['client_cpu_pct']} | {r['server_threads']} | "
                     f"{w.get('threads')}, {w.get('nice')} | {r['loadavg_before']} | "
                     f"{r.get('gc_full_collections')}, {r.get('gc_longest_ms')} |")
    lines += ["", "| goal | target | value | met |", "|---|---|---:|---|"]
    for g in report["goals"]:
        lines.append(f"| {g['goal']} | {g['target']} | {g['value']} | {'yes' if g['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="checkpoint or detector name (default: an SGEM-UNet-T checkpoint, random weights)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--clients", default="1,4,16", help="comma-separated client counts")
    p.add_argument("--duration", type=float, default=25.0,
                   help="seconds of the goal setting, batched at the most clients (at most)")
    p.add_argument("--other-duration", type=float, default=30.0,
                   help="seconds of every other setting (at most; never more than --duration)")
    p.add_argument("--max-requests", type=int, default=10000, help="requests per setting (at most)")
    p.add_argument("--threads", type=int, help="the server's --threads (default: the server's default)")
    p.add_argument("--worker-nice", type=int, help="the server's --worker-nice (default: the server's default)")
    p.add_argument("--no-freeze-gc", action="store_true", help="pass --no-freeze-gc to the server")
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--max-wait-ms", type=float, default=2.0)
    p.add_argument("--precision", default="fast", choices=["fast", "fp32"])
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serve-load-cpu"))
    args = p.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]
    top, other = max(clients), min(args.other_duration, args.duration)
    worker = ([f"--threads={args.threads}"] if args.threads is not None else []) + \
        ([f"--worker-nice={args.worker_nice}"] if args.worker_nice is not None else []) + \
        (["--no-freeze-gc"] if args.no_freeze_gc else [])
    print(f"about {args.duration + (2 * len(clients) - 1) * other:.0f} s of load plus two server starts", flush=True)
    body = _frame_png(args.size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = _model(args.model, Path(tmp))
        for mode, max_batch in (("one at a time", 1), ("batched", args.max_batch)):
            with Server(model, max_batch, args.max_wait_ms if max_batch > 1 else 0.0, args.precision,
                        worker) as server:
                for c in clients:
                    load = round(os.getloadavg()[0], 2)
                    seconds = args.duration if (mode, c) == ("batched", top) else other
                    row = asyncio.run(_load(server, body, c, seconds, args.max_requests))
                    rows.append({"mode": mode, **row, "worker": server.worker, "loadavg_before": load})
                    print(f"{mode:>14} {c:>3} clients: {row['rps']:7.2f} req/s  p50 {row['p50_ms']} ms  "
                          f"p99 {row['p99_ms']} ms  failed {row['failed']}  healthz p99/max {row['healthz_p99_ms']}/"
                          f"{row['healthz_max_ms']} ms  server CPU {row['server_cpu_pct']} %",
                          flush=True)
    report = {"device": f"CPU, {os.cpu_count()} cores ({platform.processor() or platform.machine()})",
              "command": "python benchmarks/serve_load.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "model_label": args.model or "sgem_unet_t", "size": args.size, "precision": args.precision,
              "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms, "duration": args.duration,
              "other_duration": other, "top": top, "worker_args": worker, "cpu_count": os.cpu_count(),
              "max_requests": args.max_requests, "results": rows, "goals": _goals(rows, top)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(_markdown(report))
    for g in report["goals"]:
        print(f"{g['goal']}: {g['value']} (target {g['target']}) {'met' if g['met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
