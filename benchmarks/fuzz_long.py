"""Fuzzing the input readers and ``irstd detect`` with generated and mutated files.

Targets: ``load_image``, ``load_mask``, ``read_split_file``, the YAML training config (``load_config``)
and ``irstd detect`` over folders of mutated frames among good ones. The oracle: a reader returns a
finite float32 (H, W) frame (bool for masks, a list of names for split files, a config) or raises an
``IRSTDError`` whose message is one line naming the file; any other exception is a crash. ``detect`` must
exit 0 or 1 (never a traceback), list every file in ``detections.json`` and keep every good frame's result.

``tests/test_fuzz.py`` runs a short fixed-seed version of the same strategies in the suite; this script is
the long run whose figures ``docs/reliability.md`` reports::

    PYTHONPATH=src python benchmarks/fuzz_long.py --examples 4000 --out benchmarks/results/fuzz-long.json

``--disk-files N`` adds (``--examples 0``: runs alone) one folder of N hostile files on disk under every image
name ending, among good frames: mutated seeds, header bombs (a JPEG header claiming 9000x9000, PNG headers
claiming 60000x60000 and 2³¹x1), 4096² PNGs of zeros, multi-page TIFFs, names with spaces and accents.
``irstd detect`` runs over it as a child process (its peak RSS from ``os.wait4``); the oracle: exit 0 or 1, no
traceback, every file at least one record, every frame exactly one, every good frame a result::

    PYTHONPATH=src python benchmarks/fuzz_long.py --examples 0 --disk-files 1000 --out benchmarks/results/fuzz-disk.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from irstd.cli.main import main as irstd_main
from irstd.data.io import load_image, load_mask, read_split_file
from irstd.engine.config import load_config
from irstd.errors import IRSTDError


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _encode(arr: np.ndarray, fmt: str, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
    im.save(buf, format=fmt)
    return buf.getvalue()


def seed_files() -> dict[str, bytes]:
    """Valid files of every kind the readers meet, to be mutated (small: a few hundred bytes each)."""
    rng = np.random.default_rng(0)
    g8 = rng.integers(0, 255, (12, 10)).astype(np.uint8)
    g16 = (rng.integers(0, 65535, (9, 11))).astype(np.uint16)
    f32 = rng.normal(0, 1, (8, 8)).astype(np.float32)
    f32[0, 0], f32[1, 1] = np.nan, np.inf
    rgb = rng.integers(0, 255, (7, 9, 3)).astype(np.uint8)
    multi = io.BytesIO()
    Image.fromarray(g8).save(multi, format="TIFF", save_all=True, append_images=[Image.fromarray(g8)])
    return {
        "png8": _encode(g8, "PNG"), "png16": _encode(g16, "PNG"), "png_rgb": _encode(rgb, "PNG"),
        "png_palette": _encode(rgb, "PNG", "P"), "png_1bit": _encode(g8, "PNG", "1"), "png_la": _encode(g8, "PNG", "LA"),
        "tif16": _encode(g16, "TIFF"), "tif_float_nan": _encode(f32, "TIFF"), "tif_multipage": multi.getvalue(),
        "bmp": _encode(g8, "BMP"), "jpeg": _encode(rgb, "JPEG"), "gif": _encode(g8, "GIF"),
        "png_bomb": _png_header(60000, 60000), "png_wide": _png_header(2**31 - 1, 1), "png_zero": _png_header(0, 5),
        "empty": b"", "text": b"just text\n",
    }


SEEDS = seed_files()


@st.composite
def mutated_file(draw: st.DrawFn) -> bytes:
    """A seed file after a few mutations: truncation, bit flips, overwritten header bytes, junk appended."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["truncate", "flip", "header", "append", "none"]))
        if op == "truncate" and data:
            del data[draw(st.integers(0, len(data) - 1)):]
        elif op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "header" and data:
            i = draw(st.integers(0, min(len(data), 40) - 1))
            data[i] = draw(st.integers(0, 255))
        elif op == "append":
            data += draw(st.binary(max_size=64))
    return bytes(data)


def _one_line_naming(exc: BaseException, path: Path) -> bool:
    text = str(exc)
    return str(path) in text and "\n" not in text.strip()


def check_reader(read: Callable[[Path], object], path: Path, data: bytes, outcomes: Counter) -> None:
    """Write ``data`` to ``path`` and read it: a valid result or a one-line IRSTDError naming the file."""
    path.write_bytes(data)
    try:
        out = read(path)
    except IRSTDError as exc:
        assert _one_line_naming(exc, path), f"error does not name the file on one line: {exc!r}"
        outcomes["error"] += 1
        return
    if isinstance(out, np.ndarray):
        assert out.ndim == 2 and out.size > 0, out.shape
        assert out.dtype == bool or (out.dtype == np.float32 and np.isfinite(out).all())
    outcomes["ok"] += 1


yaml_text = st.one_of(
    st.text(max_size=200),
    st.dictionaries(st.sampled_from(["epochs", "lr", "crop_size", "model", "model_kwargs", "milestones", "amp",
                                     "bogus", "learning_rate", "seed", "threads", "val_fraction"]),
                    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                              st.text(max_size=20), st.lists(st.integers(), max_size=3),
                              st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)),
                    max_size=4).map(lambda d: "\n".join(f"{k}: {json.dumps(v)}" for k, v in d.items())),
)


def run_detect(folder: Path, files: dict[str, bytes], good: set[str], out: Path, outcomes: Counter) -> None:
    """``irstd detect`` over ``files``: exit 0/1, every file listed, every good frame has a result."""
    for name, data in files.items():
        (folder / name).write_bytes(data)
    buf_out, buf_err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf_out), contextlib.redirect_stderr(buf_err):
        code = irstd_main(["detect", "tophat", str(folder), "--out", str(out)])
    assert code in (0, 1), (code, buf_err.getvalue())
    assert "Traceback" not in buf_out.getvalue() + buf_err.getvalue()
    doc = json.loads((out / "detections.json").read_text())
    records = {Path(r["file"]).name: r for r in doc["frames"]}
    assert set(records) == set(files), set(files) ^ set(records)
    for name in good:
        assert "error" not in records[name], records[name]
    outcomes["detect_files"] += len(files)
    outcomes["detect_errors"] += sum("error" in r for r in records.values())


def fuzz(examples: int, seed: int, work: Path, detect_batches: int = 3) -> dict:
    """Run every target; returns counts per target and outcome (an assertion error is a finding)."""
    counts: dict[str, Counter] = {k: Counter() for k in ("load_image", "load_mask", "read_split_file", "config")}
    common = dict(max_examples=examples, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
    def reader_target(name: str, read: Callable[[Path], object]) -> Callable[[], None]:
        @settings(**common)
        @given(data=mutated_file())
        def target(data: bytes) -> None:
            check_reader(read, work / f"{name}.png", data, counts[name])
        return target

    reader_target("load_image", load_image)()
    reader_target("load_mask", load_mask)()

    @settings(**common)
    @given(data=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
    def split_target(data: bytes) -> None:
        check_reader(read_split_file, work / "split.txt", data, counts["read_split_file"])
    split_target()

    @settings(**common)
    @given(text=st.one_of(yaml_text.map(str.encode), st.binary(max_size=200)))
    def config_target(text: bytes) -> None:
        check_reader(lambda p: load_config(p), work / "config.yaml", text, counts["config"])
    config_target()

    rng = random.Random(seed)  # the detect folders; the reader targets use hypothesis' fixed derandomised stream
    detect = Counter()
    good_frame = SEEDS["png8"]
    for b in range(detect_batches):
        folder, out = work / f"detect{b}", work / f"detect{b}-out"
        folder.mkdir()
        files = {f"good{i}.png": good_frame for i in range(3)}
        for i in range(max(examples // 20, 5)):
            files[f"m{i:04d}.png"] = _draw_bytes(rng)
        good = {n for n in files if n.startswith("good")}
        run_detect(folder, files, good, out, detect)
    report = {k: dict(v) for k, v in counts.items()}
    report["detect"] = dict(detect)
    report["inputs"] = sum(sum(v.values()) for v in counts.values()) + detect["detect_files"]
    return report


def _draw_bytes(rng: random.Random) -> bytes:
    """Mutations as in :func:`mutated_file`, drawn from ``rng``."""
    data = bytearray(SEEDS[rng.choice(sorted(SEEDS))])
    for _ in range(rng.randint(0, 4)):
        op = rng.choice(["truncate", "flip", "header", "append", "none"])
        if op == "truncate" and data:
            del data[rng.randrange(len(data)):]
        elif op == "flip" and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif op == "header" and data:
            data[rng.randrange(min(len(data), 40))] = rng.randrange(256)
        elif op == "append":
            data += bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    return bytes(data)


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A tiny JPEG whose SOF0 header claims ``width`` x ``height``."""
    data = bytearray(_encode(np.zeros((8, 8), np.uint8), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


_ENDINGS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".PNG")


def disk_files(n: int, seed: int) -> tuple[dict[str, bytes], set[str]]:
    """``n`` hostile files (name → bytes) and the names of the good frames among them."""
    rng = random.Random(seed)
    zeros = io.BytesIO()
    Image.new("L", (4096, 4096)).save(zeros, format="PNG")
    specials = [_jpeg_claiming(9000, 9000), _png_header(60000, 60000), _png_header(2**31 - 1, 1), zeros.getvalue(),
                SEEDS["tif_multipage"]]
    files: dict[str, bytes] = {}
    good: set[str] = set()
    for i in range(n):
        if i % 10 == 0:
            name = f"good {i:04d}.png" if i % 20 else f"gööd_{i:04d}.png"
            files[name] = SEEDS["png8"]
            good.add(name)
        elif i % 50 == 1:
            special = specials[(i // 50) % len(specials)]
            ending = {0: ".jpg", 4: ".tif"}.get((i // 50) % len(specials), ".png")
            files[f"special_{i:04d}{ending}"] = special
        else:
            files[f"m{i:04d}{rng.choice(_ENDINGS)}"] = _draw_bytes(rng)
    return files, good


def run_disk_folder(n: int, seed: int, work: Path) -> dict:
    """``irstd detect tophat`` as a child process over :func:`disk_files` written to ``work``: counts, 0 lost."""
    folder, out = work / "disk", work / "disk-out"
    folder.mkdir()
    files, good = disk_files(n, seed)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "irstd", "detect", "tophat", str(folder), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read() if proc.stdout is not None else ""
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    assert code in (0, 1), (code, output[-2000:])
    assert "Traceback" not in output, output[-2000:]
    records = json.loads((out / "detections.json").read_text())["frames"]
    per_file: Counter = Counter()
    frames = [int(r["frame"]) for r in records]
    for r in records:
        path = Path(r["file"]) if Path(r["file"]).name in files else Path(r["file"].rsplit("#", 1)[0])
        per_file[path.name] += 1
    lost = sorted(set(files) - set(per_file))
    unknown = sorted(set(per_file) - set(files))
    duplicates = len(frames) - len(set(frames))
    bad_good = [r["file"] for r in records if Path(r["file"]).name in good and "error" in r]
    assert not lost and not unknown and not duplicates and not bad_good, (lost[:5], unknown[:5], duplicates, bad_good[:5])
    assert sorted(frames) == list(range(len(frames)))
    reasons = Counter()
    for r in records:
        if "error" in r:
            why = r["error"].split(": ", 1)[-1]
            reasons["header claims too much (memory budget)" if "memory budget" in why else
                    "above the pixel limit" if "above the limit" in why else why.split(" (")[0][:48]] += 1
    return {"files": len(files), "good_frames": len(good), "records": len(records),
            "results": sum("error" not in r for r in records), "errors": sum("error" in r for r in records),
            "files_with_several_records": sum(v > 1 for v in per_file.values()), "lost": len(lost),
            "duplicates": duplicates, "exit_code": code, "peak_rss_bytes": usage.ru_maxrss * 1024,
            "detect_seconds": round(seconds, 1), "error_reasons": dict(reasons.most_common(12))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=4000, help="examples per reader target (default 4000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--detect-batches", type=int, default=5)
    parser.add_argument("--disk-files", type=int, default=0, help="also run detect over a folder of this many files")
    parser.add_argument("--out", help="write the counts as JSON here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        report = fuzz(args.examples, args.seed, Path(tmp), args.detect_batches) if args.examples > 0 else {}
        if args.disk_files:
            report["disk_folder"] = run_disk_folder(args.disk_files, args.seed, Path(tmp))
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["crashes"] = 0  # any crash raised above and ended the run
    report["command"] = "PYTHONPATH=src python benchmarks/fuzz_long.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
