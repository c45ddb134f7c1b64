"""Peak RSS of ``irstd detect`` over a folder of hostile frames (issue 36, goal: at most 4 GB on the 2-core
machine with the default memory budget).

The folder: a JPEG of a few hundred bytes whose header claims 9000x9000, a real (decodable) 9000x9000 JPEG of
zeros, a 16.7 MP (4096x4096) frame with content, a 4096² PNG of zeros, a PNG header claiming 60000x60000, and
a few ordinary 512x640 frames. ``irstd detect`` runs as a child process; its peak RSS is the ``ru_maxrss``
that ``os.wait4`` returns for it. Every file must give one record, every ordinary frame a result.

    PYTHONPATH=src python benchmarks/hostile_memory.py --out benchmarks/results/hostile-memory
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

GOAL_BYTES = 4 * 10**9


def jpeg_claiming(width: int, height: int) -> bytes:
    """A tiny JPEG whose SOF0 header claims ``width`` x ``height``."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def png_claiming(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def make_folder(folder: Path, ordinary: int = 4) -> dict[str, str]:
    """The hostile files in ``folder``; returns name → what it is."""
    from irstd.data.synthetic import generate_scene

    folder.mkdir(parents=True, exist_ok=True)
    what = {}
    (folder / "bomb_header_9000.jpg").write_bytes(jpeg_claiming(9000, 9000))
    what["bomb_header_9000.jpg"] = f"JPEG header claiming 9000x9000 ({len(jpeg_claiming(9000, 9000))} bytes)"
    Image.new("L", (9000, 9000)).save(folder / "zeros_9000.jpg", quality=50)
    what["zeros_9000.jpg"] = f"real 9000x9000 JPEG of zeros ({(folder / 'zeros_9000.jpg').stat().st_size} bytes)"
    rng = np.random.default_rng(0)
    scene = np.rint(generate_scene(5, size=(512, 512))[0])
    big = np.clip(np.tile(scene, (8, 8)) + rng.normal(0, 2, (4096, 4096)), 0, 255).astype(np.uint8)
    Image.fromarray(big).save(folder / "real_4096.png")
    what["real_4096.png"] = "16.7 MP (4096x4096) frame with content"
    Image.new("L", (4096, 4096)).save(folder / "zeros_4096.png")
    what["zeros_4096.png"] = f"4096x4096 PNG of zeros ({(folder / 'zeros_4096.png').stat().st_size} bytes)"
    (folder / "bomb_header_60000.png").write_bytes(png_claiming(60000, 60000))
    what["bomb_header_60000.png"] = "PNG header claiming 60000x60000"
    for i in range(ordinary):
        frame = np.clip(np.rint(generate_scene(10 + i, size=(512, 640))[0]), 0, 255).astype(np.uint8)
        Image.fromarray(frame).save(folder / f"ordinary_{i}.png")
        what[f"ordinary_{i}.png"] = "ordinary 640x512 frame"
    return what


def run_detect(argv: list[str]) -> tuple[int, int, float, str]:
    """(exit code, peak RSS in bytes, seconds, output) of ``irstd detect`` as a child process."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "irstd", *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    out = proc.stdout.read() if proc.stdout is not None else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss * 1024, time.perf_counter() - t, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="sgem_unet_t.sirst")
    ap.add_argument("--max-memory", default=None, help="passed to irstd detect (default: its own default)")
    ap.add_argument("--out", type=Path, required=True, help="result path without suffix (.json and .md written)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        folder, out = Path(tmp) / "hostile", Path(tmp) / "out"
        what = make_folder(folder)
        detect = ["detect", args.model, str(folder), "--out", str(out)]
        if args.max_memory:
            detect += ["--max-memory", args.max_memory]
        code, peak, seconds, output = run_detect(detect)
        records = json.loads((out / "detections.json").read_text())["frames"] if (out / "detections.json").exists() else []
    by_file = {Path(r["file"]).name: r for r in records}
    rows = [{"file": name, "what": desc, "outcome": ("error: " + by_file[name]["error"].split(": ", 1)[1])
             if "error" in by_file.get(name, {}) else ("result" if name in by_file else "LOST"),
             "targets": len(by_file.get(name, {}).get("targets", ()))} for name, desc in what.items()]
    lost = sum(r["outcome"] == "LOST" for r in rows)
    command = "PYTHONPATH=src python benchmarks/hostile_memory.py " + " ".join(sys.argv[1:] if argv is None else argv)
    doc = {"command": command, "detect": "irstd " + " ".join(detect[:2]) + " FOLDER --out OUT"
           + (f" --max-memory {args.max_memory}" if args.max_memory else ""),
           "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
           "exit_code": code, "peak_rss_bytes": peak, "seconds": round(seconds, 1), "goal_bytes": GOAL_BYTES,
           "goal_met": peak <= GOAL_BYTES and lost == 0 and code in (0, 1), "lost": lost, "files": rows,
           "output": output.splitlines()[-12:]}
    md = [f"`{command}`", "", f"`{doc['detect']}` on a {platform.machine()} machine with {os.cpu_count()} cores: exit "
          f"{code}, **peak RSS {peak / 1e9:.2f} GB** (goal ≤ {GOAL_BYTES / 1e9:.0f} GB: "
          f"{'met' if doc['goal_met'] else 'NOT met'}), {seconds:.0f} s, {lost} result(s) lost.", "",
          "| file | what | outcome |", "|---|---|---|"]
    md += [f"| {r['file']} | {r['what']} | {r['outcome']} |" for r in rows]
    from irstd.bench.report import save_report  # STEM.json + STEM.md, as every benchmark report
    save_report(doc, "\n".join(md) + "\n", args.out)
    print("\n".join(md))
    return 0 if doc["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
