"""Load test of ``irstd serve`` on loopback: requests/s and latency at several client counts,
micro-batching on (``--max-batch``) against one frame at a time (``--max-batch 1``), same model.

Each setting runs until ``--duration`` seconds or ``--max-requests`` requests, whichever comes first;
the server is a subprocess on 127.0.0.1 that is always stopped. A prober asks ``/healthz`` every
100 ms throughout. Writes ``<out>.json`` and ``<out>.md``.

    python benchmarks/serve_load.py --duration 120 --clients 16     # the 2-minute goal run
    python benchmarks/serve_load.py --duration 25                   # what results/serve-load-cpu.md ran
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
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

    def __init__(self, model: str, max_batch: int, max_wait_ms: float, precision: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "irstd.cli.main", "serve", model, "--host", "127.0.0.1",
                    "--port", str(self.port), "--device", "cpu", "--precision", precision,
                    "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms), "--max-queue", "256"]

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
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("server did not become ready within 180 s")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _load(url: str, body: bytes, clients: int, duration: float, max_requests: int) -> dict:
    """``clients`` loops posting ``body`` until the time or the request budget is spent."""
    import httpx

    latencies: list[float] = []
    health: list[float] = []
    failures: list[str] = []
    budget = [max_requests]
    stop_at = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
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

        async def prober(done: asyncio.Event) -> None:
            while not done.is_set():
                t0 = time.perf_counter()
                try:
                    r = await http.get("/healthz")
                    health.append(time.perf_counter() - t0 if r.status_code == 200 else float("inf"))
                except httpx.HTTPError:
                    health.append(float("inf"))
                await asyncio.sleep(0.1)

        done = asyncio.Event()
        probe = asyncio.create_task(prober(done))
        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
        done.set()
        await probe
    lat = np.array(latencies) * 1000
    hl = np.array(health) * 1000
    return {"clients": clients, "requests": len(latencies), "failed": len(failures), "seconds": round(elapsed, 2),
            "rps": round(len(latencies) / elapsed, 2),
            "p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 1) if lat.size else None,
            "healthz_p99_ms": round(float(np.percentile(hl, 99)), 1) if hl.size else None,
            "healthz_max_ms": round(float(hl.max()), 1) if hl.size else None, "failures": sorted(set(failures))}


def _goals(rows: list[dict], top: int) -> list[dict]:
    by = {(r["mode"], r["clients"]): r for r in rows}
    on, off, single = by.get(("batched", top)), by.get(("one at a time", top)), by.get(("one at a time", 1))
    goals = []
    if on and off:
        ratio = on["rps"] / off["rps"] if off["rps"] else float("inf")
        goals.append({"goal": f"requests/s at {top} clients, batched / one at a time", "target": "≥ 1.5×",
                      "value": round(ratio, 2), "met": ratio >= 1.5})
    if on and single and single["p50_ms"]:
        ratio = on["p99_ms"] / single["p50_ms"]
        goals.append({"goal": f"p99 at {top} clients (batched) / single-request p50", "target": "< 4×",
                      "value": round(ratio, 2), "met": ratio < 4})
    failed = sum(r["failed"] for r in rows)
    goals.append({"goal": "failed requests", "target": "0", "value": failed, "met": failed == 0})
    worst = max(r["healthz_max_ms"] or 0 for r in rows)
    goals.append({"goal": "/healthz latency, worst", "target": "< 50 ms", "value": worst, "met": worst < 50})
    return goals


def _markdown(report: dict) -> str:
    lines = [f"# `irstd serve` load test ({report['device']})", "",
             f"Command: `{report['command']}`", "",
             f"Model `{report['model_label']}`, {report['size']}×{report['size']} PNG frames, precision "
             f"`{report['precision']}`, batched = `--max-batch {report['max_batch']} --max-wait-ms "
             f"{report['max_wait_ms']}`, one at a time = `--max-batch 1`; each setting ran "
             f"{report['duration']:g} s or {report['max_requests']} requests. Client and server share the machine.", "",
             "| mode | clients | requests | failed | req/s | p50 ms | p99 ms | /healthz p99 ms | /healthz max ms | load avg (1 min) before |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        lines.append(f"| {r['mode']} | {r['clients']} | {r['requests']} | {r['failed']} | {r['rps']} | {r['p50_ms']} | "
                     f"{r['p99_ms']} | {r['healthz_p99_ms']} | {r['healthz_max_ms']} | {r['loadavg_before']} |")
    lines += ["", "| goal | target | value | met |", "|---|---|---:|---|"]
    for g in report["goals"]:
        lines.append(f"| {g['goal']} | {g['target']} | {g['value']} | {'yes' if g['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="checkpoint or detector name (default: an SGEM-UNet-T checkpoint, random weights)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--clients", default="1,4,16", help="comma-separated client counts")
    p.add_argument("--duration", type=float, default=25.0, help="seconds per setting (at most)")
    p.add_argument("--max-requests", type=int, default=5000, help="requests per setting (at most)")
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--max-wait-ms", type=float, default=2.0)
    p.add_argument("--precision", default="fast", choices=["fast", "fp32"])
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serve-load-cpu"))
    args = p.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]
    body = _frame_png(args.size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = _model(args.model, Path(tmp))
        for mode, max_batch in (("one at a time", 1), ("batched", args.max_batch)):
            with Server(model, max_batch, args.max_wait_ms if max_batch > 1 else 0.0, args.precision) as server:
                for c in clients:
                    load = round(os.getloadavg()[0], 2)
                    row = asyncio.run(_load(server.url, body, c, args.duration, args.max_requests))
                    rows.append({"mode": mode, **row, "loadavg_before": load})
                    print(f"{mode:>14} {c:>3} clients: {row['rps']:7.2f} req/s  p50 {row['p50_ms']} ms  "
                          f"p99 {row['p99_ms']} ms  failed {row['failed']}  healthz max {row['healthz_max_ms']} ms",
                          flush=True)
    report = {"device": f"CPU, {os.cpu_count()} cores ({platform.processor() or platform.machine()})",
              "command": "python benchmarks/serve_load.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "model_label": args.model or "sgem_unet_t", "size": args.size, "precision": args.precision,
              "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms, "duration": args.duration,
              "max_requests": args.max_requests, "results": rows, "goals": _goals(rows, max(clients))}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(_markdown(report))
    for g in report["goals"]:
        print(f"{g['goal']}: {g['value']} (target {g['target']}) {'met' if g['met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
