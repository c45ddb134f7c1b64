"""The benchmark scripts: goal arithmetic on hand-made reports, and a tiny real run of each cheap one."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _row(model: str, mode: str, median: float, h: int = 256, w: int = 256, **extra: float) -> dict:
    return {"model": model, "mode": mode, "batch": 1, "height": h, "width": w, "median_ms": median,
            "min_ms": 0.9 * median, "ms_per_mpix": median / (h * w / 1e6), **extra}


def test_speed_goals_arithmetic() -> None:
    goals_mod = _load("speed_goals")
    # flagship: 100 GMACs nominal, 80 executed; floor 50 ms at the conv rate, median 60 ms
    fast = _row("net", "fast", 60.0, macs_per_image=100e9, macs_run_per_image=80e9, floor_ms=50.0,
                x_floor=1.2, x_floor_best=1.1, x_floor_run=1.5)
    report = {"results": [
        fast, _row("net", "fp32", 150.0), _row("base", "fp32", 230.0),
        _row("net", "fast", 4 * 60.0 * 0.9, 512, 512),  # 4× the pixels, 0.9× the time per pixel
        _row("tiny", "fast", 10.0), _row("tiny", "fp32", 20.0), _row("ref", "fast", 12.0), _row("ref", "fp32", 9.0),
    ]}
    args = argparse.Namespace(model="net", baseline="base", light="tiny", light_ref="ref")
    by_target = {g["target"]: g for g in goals_mod._goals(report, args, []) if g["met"] is not None}
    floor = by_target["≤ 1.3×"]
    assert floor["met"] and floor["ratio"] == 1.2
    base = by_target["≥ 4.0×"]
    assert not base["met"] and base["ratio"] == pytest.approx(230 / 60)
    assert base["ceiling"] == pytest.approx(230 / 50)  # the baseline against the flagship's floor
    assert base["ceiling_run"] == pytest.approx(230 / 40)  # ... and against the floor of the MACs run
    scaling = by_target["ratio ≤ 1 (no worse than linear)"]
    assert scaling["met"] and scaling["ratio"] == pytest.approx(0.9)
    light = by_target["≤"]
    assert not light["met"] and light["ratio"] == pytest.approx(10 / 9)  # best modes: tiny fast vs ref fp32


def test_light_variants_runs_and_writes(tmp_path: Path) -> None:
    module = _load("light_variants")
    out = tmp_path / "lv"
    assert module.main(["--runs", "1", "--warmup", "0", "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    rows = {r["label"]: r for r in report["results"]}
    assert set(rows) == set(module.VARIANTS)
    t = rows["sgem_unet_t (widths 8…128, 2 heads)"]
    assert t["macs_run"] < t["macs"] and t["median_ms"] > 0 and t["runs"] == 1
    assert "| acm |" in out.with_suffix(".md").read_text()


def test_openvino_compare_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    module = _load("openvino_compare")
    if importlib.util.find_spec("openvino") is not None:
        pytest.skip("openvino is installed: the missing-package message cannot be checked")
    assert module.main(["--runs", "1"]) == 2
    assert "pip install openvino" in capsys.readouterr().err


def test_speed_goals_end_to_end(tmp_path: Path) -> None:
    """One timed run of every case (about 20 s on two cores): the report and its goal section."""
    module = _load("speed_goals")
    out = tmp_path / "goals"
    assert module.main(["--runs", "1", "--warmup", "0", "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    targets = [g["target"] for g in report["goals"]]
    assert targets[:4] == ["≤ 1.3×", "≥ 4.0×", "ratio ≤ 1 (no worse than linear)", "≤"]
    assert all(isinstance(g["met"], bool) for g in report["goals"][:4])
    assert report["goals"][1]["ceiling"] > 0 and report["not_registered"] == []
    assert report["settings"]["interleave"] and report["settings"]["settle"] == 1
    assert "## Goals" in out.with_suffix(".md").read_text()


def _serve_row(mode: str, clients: int, rps: float, p50: float, p99: float, healthz_max: float, **extra) -> dict:
    return {"mode": mode, "clients": clients, "requests": 100, "failed": 0, "seconds": 10.0, "rps": rps,
            "p50_ms": p50, "p99_ms": p99, "little_mean_ms": round(clients / rps * 1000, 1), "healthz_probes": 90,
            "healthz_p99_ms": healthz_max / 2, "healthz_max_ms": healthz_max, "server_cpu_pct": 150.0,
            "client_cpu_pct": 5.0, "server_threads": 7, "gc_full_collections": 1, "gc_longest_ms": 3.5,
            "failures": [], "worker": {"threads": 2, "nice": 10}, "loadavg_before": 0.5, **extra}


def test_serve_load_goals_and_bound() -> None:
    serve = _load("serve_load")
    rows = [_serve_row("one at a time", 1, 20.0, 50.0, 80.0, 10.0),
            _serve_row("one at a time", 16, 16.0, 900.0, 1200.0, 12.0),
            _serve_row("batched", 16, 32.0, 480.0, 700.0, 60.0)]
    goals = {g["goal"]: g for g in serve._goals(rows, 16)}
    speedup = goals["requests/s at 16 clients, batched / one at a time"]
    assert speedup["value"] == 2.0 and speedup["met"]
    p99 = goals["p99 at 16 clients (batched) / single-request p50"]
    assert p99["value"] == 14.0 and not p99["met"]  # 700 / 50
    bound = next(g for g in serve._goals(rows, 16) if g["goal"].startswith("bound"))
    assert bound["value"] == 10.0  # 16 / 32 req/s = 500 ms mean, / 50 ms
    assert "≥ 80.0 req/s" in bound["goal"]  # 16 / (4 × 0.05 s)
    assert not goals["/healthz latency, worst"]["met"] and goals["/healthz latency, p99 (worst setting)"]["met"]
    report = {"device": "CPU", "command": "python benchmarks/serve_load.py", "model_label": "m", "size": 256,
              "precision": "fast", "max_batch": 16, "max_wait_ms": 2.0, "duration": 10, "other_duration": 10,
              "top": 16, "worker_args": [], "max_requests": 100, "results": rows, "goals": serve._goals(rows, 16)}
    table = serve._markdown(report)
    assert "| batched | 16 | 100 | 0 | 32.0 | 480.0 | 700.0 | 500.0 |" in table
    assert table.count("| 1, 3.5 |") == 3  # the server's full collections and longest GC pause, per setting


def test_train_precision_runs_and_writes(tmp_path: Path) -> None:
    module = _load("train_precision")
    out = tmp_path / "tp"
    argv = ["--model", "sgem_unet_t", "--crop", "32", "--batch", "4", "--images", "8", "--rounds", "1", "--out", str(out)]
    assert module.main(argv) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    labels = [label for label, *_ in module.SETTINGS]
    assert list(report["median_img_s"]) == labels
    assert all(len(report["img_s"][k]) == 1 and report["median_img_s"][k] > 0 for k in labels)
    assert report["speedup_vs_fp32"]["fp32"] == 1.0
    assert report["speedup_vs_fp32"]["bf16"] == pytest.approx(report["median_img_s"]["bf16"] / report["median_img_s"]["fp32"])
    assert "--rounds 1" in report["command"] and "| bf16 channels-last |" in out.with_suffix(".md").read_text()


def test_stream_memory_runs_and_writes(tmp_path: Path) -> None:
    module = _load("stream_memory")
    out = tmp_path / "mem"
    assert module.main(["--frames", "30", "--size", "64", "--warmup", "10", "--every", "10", "--threads", "1",
                        "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["frames"] == 30 and [s[0] for s in report["samples"]] == [10, 20, 30]
    assert report["growth_mb"] >= 0 and "peak rss growth" in out.with_suffix(".md").read_text().lower()


def test_fuzz_disk_folder_gives_every_file_a_record(tmp_path: Path) -> None:
    """``fuzz_long.py --disk-files``: ``irstd detect`` as a child process over hostile files on disk (a JPEG
    header claiming 9000x9000 among them) loses nothing."""
    pytest.importorskip("hypothesis")
    report = _load("fuzz_long").run_disk_folder(24, 0, tmp_path)
    assert report["files"] == 24 and report["lost"] == 0 and report["duplicates"] == 0
    assert report["records"] >= 24 and report["results"] >= report["good_frames"] == 3
    assert report["error_reasons"].get("header claims too much (memory budget)") == 1


def test_clean_detections_counts_borders_and_pair_kinds() -> None:
    module = _load("clean_detections")
    mask = np.zeros((20, 30), bool)
    mask[19, 5:7] = True  # bottom edge
    mask[3:5, 29] = True  # right edge
    mask[0, 0] = True  # top-left corner: top and left
    mask[10, 10] = True  # inside
    c = module.border_counts(mask)
    assert (c["detections"], c["border"]) == (4, 3)
    assert (c["top"], c["left"], c["bottom"], c["right"]) == (1, 1, 1, 1)
    assert module.pair_kind({1}, {1, 2}) == "same target" and module.pair_kind({1}, {2}) == "two targets"
    assert module.pair_kind({1}, set()) == "target and clutter" and module.pair_kind(set(), set()) == "clutter"
    labels = np.zeros((10, 20), np.int32)
    labels[2, 2], labels[2, 5], labels[2, 18] = 1, 2, 3
    assert module.pair_distances(labels, 3, 10.0) == [(1, 2, 3.0)]
    assert module.needs_pad((240, 320), 16) is False and module.needs_pad((188, 294), 16) is True


@pytest.mark.skipif(not Path("/proc/self/smaps").is_file(), reason="/proc/PID/smaps: Linux")
def test_smaps_breakdown_of_this_process() -> None:
    import os

    module = _load("smaps_breakdown")
    now = module.breakdown(os.getpid())
    kinds = now["kinds"]
    assert kinds["files"]["rss_mb"] > 0 and "heap" in kinds  # the interpreter's libraries, glibc's heap
    assert now["rollup"]["Rss"] >= sum(k["rss_mb"] for k in kinds.values()) - 1  # the kinds add up to RSS
    more = {"kinds": {**kinds, "heap": {"rss_mb": kinds["heap"]["rss_mb"] + 5, "mappings": 1}}}
    assert next(iter(module.delta(now, more).items())) == ("heap", 5.0)
    assert module.breakdown(2**22 + 12345) == {}  # no such process: nothing, no error


def test_serve_flood_reads_malloc_info(tmp_path: Path) -> None:
    xml = tmp_path / "m.xml"
    xml.write_text('<malloc version="1"><heap nr="0"><sizes></sizes><total type="rest" count="1" size="1"/>'
                   '<system type="current" size="1"/></heap><total type="fast" count="0" size="0"/>'
                   f'<total type="rest" count="3" size="{600 * 2**20}"/><total type="mmap" count="8" size="{10 * 2**20}"/>'
                   f'<system type="current" size="{800 * 2**20}"/><system type="max" size="{900 * 2**20}"/></malloc>')
    summary = _load("serve_flood")._malloc_summary(xml)
    assert summary == {"heap_mb": 800.0, "free_in_heap_mb": 600.0, "in_use_mb": 200.0, "mmapped_mb": 10.0,
                       "mmapped_blocks": 8}
    assert _load("serve_flood")._malloc_summary(tmp_path / "missing.xml") is None


def test_verify_residue_mosaic_grid(tmp_path: Path) -> None:
    from PIL import Image

    residue = _load("verify_residue")
    rng = np.random.default_rng(0)
    patches = [rng.normal(100, 5, (32, 32)).astype(np.float32) for _ in range(13)]
    patches[12][16, 16] += 500  # the last patch: one hot pixel, stretched to white
    path = tmp_path / "m.png"
    residue.mosaic(patches, path, cols=12)
    img = np.asarray(Image.open(path))
    assert img.shape == (2 * 96, 12 * 96)  # 13 tiles of 3× 32 px: two rows, the second padded black
    assert img[96:, 96:].max() == 0 and img[96 + 48, 48] == 255
    residue.mosaic([], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
