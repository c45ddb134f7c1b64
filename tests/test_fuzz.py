"""Short fixed-seed fuzz of the readers, the YAML config and ``irstd detect`` (the long run:
``benchmarks/fuzz_long.py``): no crash, one-line errors naming the file, good frames kept."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("hypothesis", reason="the fuzz test needs hypothesis (pip install -e .[test])")

REPO = Path(__file__).resolve().parents[1]


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_long", REPO / "benchmarks" / "fuzz_long.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_fuzz_short(tmp_path: Path) -> None:
    report = _fuzz_module().fuzz(examples=250, seed=0, work=tmp_path, detect_batches=1)
    assert report["inputs"] >= 1000
    for target in ("load_image", "load_mask", "read_split_file", "config"):
        counts = report[target]
        assert sum(counts.values()) == 250, (target, counts)
    # the mutations must reach both outcomes, or the fuzz tests nothing
    assert report["load_image"].get("ok", 0) > 0 and report["load_image"].get("error", 0) > 0
    assert report["config"].get("error", 0) > 0
    assert report["detect"]["detect_files"] > report["detect"]["detect_errors"] > 0
