"""irstd bench: the CLI's JSON and table, timing statistics, interleaving, MAC counts, the accuracy guard."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from irstd import bench
from irstd.bench import (
    AgreementResult,
    Case,
    count_macs_at,
    fast_mode_agreement,
    run_cases,
    time_interleaved,
    timing_stats,
    to_markdown,
)
from irstd.cli.bench import parse_size
from irstd.cli.main import main
from irstd.errors import ConfigError
from irstd.inference import Predictor
from irstd.metrics import SegMetrics
from irstd.models import create_model
from irstd.core.profiling import count_macs


@pytest.fixture
def one_thread():
    """These tests check the report, not the speed: one thread keeps them quick on a busy machine,
    where two threads wait on each other at every operator."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_cli_bench_writes_well_formed_json_and_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], one_thread: None
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--models", "unet", "--sizes", "64", "--runs", "3"]) == 0
    printed = capsys.readouterr().out
    [json_path] = list((tmp_path / "bench-results").glob("*.json"))
    report = json.loads(json_path.read_text())
    assert report["schema"] == "irstd-bench/1"
    assert report["command"].startswith("irstd bench --models unet")
    env = report["environment"]
    assert env["torch"] == torch.__version__ and env["threads"] == torch.get_num_threads()
    assert report["models"]["unet"]["params"] == sum(p.numel() for p in create_model("unet").parameters())
    macs = count_macs(create_model("unet"), (1, 1, 64, 64))
    assert report["models"]["unet"]["macs"]["64x64"] == macs
    rows = report["results"]
    assert {(r["mode"], r["batch"]) for r in rows} == {("fp32", 1), ("fp32", 8), ("fast", 1), ("fast", 8)}
    rate = report["conv_rate"]["flops"] / report["conv_rate"]["median_ms"]  # FLOP per ms
    for r in rows:
        assert r["error"] is None and r["n_runs"] == 3 and (r["height"], r["width"]) == (64, 64)
        assert 0 < r["min_ms"] <= r["p10_ms"] <= r["median_ms"] <= r["p90_ms"] <= r["max_ms"]
        assert r["fps"] == pytest.approx(1e3 * r["batch"] / r["median_ms"])
        assert r["ms_per_mpix"] == pytest.approx(r["median_ms"] / (r["batch"] * 64 * 64 / 1e6))
        assert r["x_floor"] == pytest.approx(r["median_ms"] / (2 * macs * r["batch"] / rate))
        if r["mode"] == "fast":  # its exact up-conv rewrite executes fewer MACs than the network's count
            assert 0.75 * macs < r["macs_run_per_image"] < 0.95 * macs
            assert r["x_floor_run"] == pytest.approx(r["median_ms"] / (2 * r["macs_run_per_image"] * r["batch"] / rate))
        else:
            assert "macs_run_per_image" not in r
    table = (tmp_path / "bench-results" / json_path.with_suffix(".md").name).read_text()
    assert "| Model | Params (M) | MACs (G) | FPS fp32 | FPS fast |" in table
    assert table.count("| unet | fp32 |") == 2 and table.count("| unet | fast |") == 2
    assert "| unet | fp32 |" in printed


def test_timing_stats_on_known_values() -> None:
    stats = timing_stats([i / 1000 for i in range(1, 11)])  # 1 … 10 ms
    assert stats["n_runs"] == 10
    assert stats["median_ms"] == pytest.approx(5.5)
    assert stats["min_ms"] == pytest.approx(1.0) and stats["max_ms"] == pytest.approx(10.0)
    assert stats["p10_ms"] == pytest.approx(1.9) and stats["p90_ms"] == pytest.approx(9.1)
    assert stats["spread_pct"] == pytest.approx(100 * (9.1 - 1.9) / 5.5)
    with pytest.raises(ValueError):
        timing_stats([])


def test_interleaving_rotates_and_counts_calls() -> None:
    calls: list[str] = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    times = time_interleaved(fns, runs=4, warmup=2, settle=0)
    assert {k: len(v) for k, v in times.items()} == {"a": 4, "b": 4, "c": 4}
    timed = calls[6:]  # after 2 warm-up calls of each
    rounds = [timed[i : i + 3] for i in range(0, 12, 3)]
    assert [r[0] for r in rounds] == ["a", "b", "c", "a"]  # each round starts one further
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds)


def test_interleaving_settles_each_case_before_timing_it() -> None:
    calls: list[str] = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "ab"}
    times = time_interleaved(fns, runs=2, warmup=0, settle=2)
    assert {k: len(v) for k, v in times.items()} == {"a": 2, "b": 2}
    assert calls == list("aaabbb" "bbbaaa")  # 2 untimed + 1 timed call per case, rounds rotate
    with pytest.raises(ValueError):
        time_interleaved(fns, runs=1, settle=-1)


def test_mac_count_falls_back_to_scaling_when_meta_fails(monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    assert count_macs_at("unet", 64, 96) == (count_macs(create_model("unet"), (1, 1, 64, 96)), True)
    real_create = bench.cases.create_model

    def no_meta(name: str, **kw):
        if torch.empty(0).device.type == "meta":
            raise NotImplementedError("data-dependent op")
        return real_create(name, **kw)

    monkeypatch.setattr(bench.cases, "create_model", no_meta)
    small = count_macs(create_model("sgem_unet_t"), (1, 1, 256, 256))
    assert count_macs_at("sgem_unet_t", 128, 128) == (count_macs(create_model("sgem_unet_t"), (1, 1, 128, 128)), True)
    assert count_macs_at("sgem_unet_t", 512, 512) == (4 * small, False)


def test_interleaved_cases_with_floor_and_markdown(one_thread: None) -> None:
    cases = [Case("sgem_unet_t", "fp32", 1, 32, 40), Case("sgem_unet_t", "fast", 2, 32, 40)]
    report = run_cases(cases, device="cpu", runs=3, warmup=1, interleave=True)
    assert report["settings"]["interleave"] and report["conv_rate"]["n_runs"] == 3
    for row in report["results"]:
        assert row["n_runs"] == 3 and row["floor_ms"] > 0 and math.isfinite(row["x_floor"])
        assert (row["height"], row["width"]) == (32, 48)  # width 40 rounded up to the stride (16)
    text = to_markdown(report)
    assert "interleaved" in text and "Floor reference" in text and "| sgem_unet_t | fast | 2 | 48×32 |" in text
    with pytest.raises(ConfigError):
        Case("unet", "turbo")
    with pytest.raises(ConfigError):
        run_cases(cases, device="cpu", runs=0)


def test_parse_size() -> None:
    assert parse_size("256") == (256, 256)
    assert parse_size("640x512") == (512, 640)  # WxH, height first in the tuple
    with pytest.raises(ConfigError):
        parse_size("big")


def _synthetic_pairs(n: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(n):
        frame = rng.normal(100, 20, (40, 56)).astype(np.float32)
        mask = np.zeros((40, 56), bool)
        r, c = rng.integers(4, 36), rng.integers(4, 52)
        mask[r - 1 : r + 2, c - 1 : c + 2] = True
        frame[mask] += 80  # a bright target
        pairs.append((frame, mask))
    return pairs


def test_fast_mode_agreement_on_random_weights() -> None:
    model = create_model("sgem_unet_t")
    pairs = _synthetic_pairs()
    threshold = 0.5
    result = fast_mode_agreement(model, pairs, normalization=(100.0, 20.0), device="cpu", threshold=threshold)
    assert result.n_images == 3 and result.n_pixels == 3 * 40 * 56
    assert 0 <= result.n_disagree <= result.n_positive_either <= result.n_pixels
    assert result.pixel_agreement == pytest.approx(1 - result.n_disagree / result.n_pixels)
    # the fp32 side equals the metrics of a plain fp32 predictor
    ref = Predictor(model, (100.0, 20.0), device="cpu", precision="fp32").probabilities([f for f, _ in pairs])
    metrics = SegMetrics(threshold, inputs="probs")
    metrics.update(ref, [m for _, m in pairs])
    assert result.fp32["iou"] == pytest.approx(metrics.compute().iou, nan_ok=True)
    assert result.passed == (result.pixel_agreement >= 0.999 and (
        math.isnan(result.iou_delta_points) or abs(result.iou_delta_points) <= 0.3))
    assert json.loads(json.dumps(result.as_dict()))["n_images"] == 3
    with pytest.raises(ConfigError):
        fast_mode_agreement(model, [], normalization=(100.0, 20.0), device="cpu")


def test_agreement_guard_limits() -> None:
    def result(disagree: int, iou_fast: float) -> AgreementResult:
        return AgreementResult(1, 10_000, disagree, 100, 0.0, {"iou": 0.70}, {"iou": iou_fast}, "fast", "cpu")

    assert result(10, 0.702).passed  # 99.9 % agreement, +0.2 points
    assert not result(11, 0.70).passed  # 99.89 %
    assert not result(0, 0.696).passed  # −0.4 points


def test_plain_cli_bench_on_a_cpu_is_small_and_says_how_many_cases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Plain ``irstd bench`` on a CPU: one size, batch 1, a time limit per case, and the case count printed
    before the first case runs (issue 37, item 6)."""
    import irstd.bench as bench
    from irstd.cli import bench as cli_bench

    seen: dict = {}

    def fake_run(models, **kw):  # the plan, not hours of timing
        seen.update(kw, printed=capsys.readouterr().out)
        raise SystemExit(0)

    monkeypatch.setattr(bench, "run_benchmark", fake_run)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["bench", "--device", "cpu"])
    assert seen["sizes"] == [(256, 256)] and seen["batches"] == cli_bench.CPU_BATCHES == [1]
    assert seen["budget_s"] == cli_bench.CPU_BUDGET_S
    n = len(bench.plan_cases(None, modes=["fp32", "fast"], sizes=[(256, 256)], batches=[1]))
    assert f"bench: {n} case(s)" in seen["printed"] and "at most 3 s each" in seen["printed"]
    assert n * cli_bench.CPU_BUDGET_S <= 10 * 60  # a person can wait for it
