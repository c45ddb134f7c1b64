"""A sweep of two tiny models × two seeds on generated scenes: runs, resumes, reports; failures are reported."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

import irstd.engine.trainer as trainer
from irstd.cli.main import main
from irstd.engine import fit
from irstd.engine.config import load_config
from irstd.experiments import load_sweep, mean_std, paired_difference, run_status, run_sweep, sweep_report
from irstd.errors import ConfigError

RECIPE = {"epochs": 2, "batch_size": 4, "crop_size": 32, "target_crop_prob": 1.0, "synthetic_train": 8,
          "synthetic_val": 2, "lr": 1e-2, "scheduler": "constant", "loss": "softiou_bce", "val_every": 1,
          "ema_decay": 0.5, "progress": False, "eval_batch_size": 2}
TINY = {"unet": {"model_kwargs": {"widths": [4, 8, 16, 32, 64]}},
        "sgem_unet": {"model_kwargs": {"widths": [4, 8, 16, 32, 64], "heads": 4}}}


def _write(tmp_path: Path, models: list[str], seeds: list[int] = [0, 1]) -> Path:
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    sweep = {"name": "tiny", "recipe": "recipe.yaml", "models": models, "seeds": seeds, "out": str(tmp_path / "runs"),
             "model_overrides": TINY, "test": {"synthetic_n": 4}, "reference": "unet",
             "bench": {"size": 32, "runs": 2, "warmup": 0}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def test_sweep_runs_resumes_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_sweep(_write(tmp_path, ["sgem_unet", "unet", "nosuchnet"]))
    # an interruption: the process stops after the first epoch of one run
    real_save = trainer._save_epoch

    def save_then_stop(run, epoch, row):
        real_save(run, epoch, row)
        if run.folder.path.name == "unet-seed0" and epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_save_epoch", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec)
    monkeypatch.setattr(trainer, "_save_epoch", real_save)
    runs = tmp_path / "runs" / "tiny"
    finished = runs / "sgem_unet-seed0" / "last.safetensors"
    stamp = finished.stat().st_mtime_ns
    assert [json.loads(r)["epoch"] for r in (runs / "unet-seed0" / "log.jsonl").read_text().splitlines()] == [1]

    outcomes = run_sweep(spec)
    assert finished.stat().st_mtime_ns == stamp  # the finished run was not trained again
    status = {o.name: o.status for o in outcomes}
    assert status == {"sgem_unet-seed0": "finished", "sgem_unet-seed1": "finished", "unet-seed0": "finished",
                      "unet-seed1": "finished", "nosuchnet-seed0": "failed", "nosuchnet-seed1": "failed"}
    rows = [json.loads(r) for r in (runs / "unet-seed0" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]  # resumed, not restarted
    assert {"best", "last", "ema"} <= set(outcomes[0].metrics)

    table, written = sweep_report(spec, outcomes)
    assert {p.suffix for p in written} >= {".md", ".json"}
    # the summary is the mean and sample std of the seeds' own metrics files
    ious = [100 * json.loads((runs / f"unet-seed{s}" / "eval-test-best" / "metrics.json").read_text())["metrics"]["iou"]
            for s in (0, 1)]
    summary = table["rows"]["unet"]["summary"]["iou"]
    assert summary["n"] == 2 and summary["mean"] == pytest.approx(sum(ious) / 2)
    assert summary["std"] == pytest.approx(abs(ious[0] - ious[1]) / math.sqrt(2))
    paired = next(p for p in table["paired"] if p["metric"] == "IoU")
    assert paired["model"] == "sgem_unet" and paired["seeds"] == [0, 1]
    sgem = table["rows"]["sgem_unet"]["per_seed"]
    assert paired["mean"] == pytest.approx((sgem[0]["iou"] - ious[0] + sgem[1]["iou"] - ious[1]) / 2)
    assert table["rows"]["unet"]["bench"]["params"] > 0 and table["rows"]["unet"]["bench"]["fps"] > 0
    md = (runs / "table1.md").read_text()
    assert "| nosuchnet-seed0 | failed |" in md and "nosuchnet" in md.split("## Runs not in the table")[1]
    assert "| unet | 2 |" in md and "## Paired against `unet`" in md
    # --report trains nothing and evaluates nothing again
    assert main(["sweep", str(tmp_path / "sweep.yaml"), "--report", "--no-progress"]) == 1  # nosuchnet failed
    assert finished.stat().st_mtime_ns == stamp


def test_runtime_keys_do_not_make_a_run_different(tmp_path: Path) -> None:
    spec = load_sweep(_write(tmp_path, ["unet"], seeds=[0]))
    (run,) = spec.runs()
    # trained by hand, as `irstd train` would, with other threads/progress settings
    cfg = load_config(tmp_path / "recipe.yaml", {**TINY["unet"], "model": "unet", "seed": 0, "threads": 1,
                                                 "out": str(tmp_path / "runs" / "tiny"), "name": "unet-seed0",
                                                 "device_data": "off"})
    fit(cfg)
    assert run_status(run)[0] == "finished"
    shadow = load_sweep(_write(tmp_path, ["unet"], seeds=[0]))
    shadow.overrides = {"ema_decay": 0.99}  # a moving average beside the weights: the same run
    (averaged,) = shadow.runs()
    assert run_status(averaged)[0] == "finished"
    other = load_sweep(_write(tmp_path, ["unet"], seeds=[0]))
    other.overrides = {"lr": 0.5}
    (changed,) = other.runs()
    status, detail = run_status(changed)
    assert status == "conflict" and "lr=0.01" in detail
    outcome = run_sweep(other, train=True)[0]
    assert outcome.status == "conflict"  # reported, never overwritten


def test_aggregation_against_hand_computed_numbers() -> None:
    mean, std, n = mean_std([1.0, 2.0, 4.0])
    assert (mean, n) == (pytest.approx(7 / 3), 3) and std == pytest.approx(math.sqrt(7 / 3))
    assert math.isnan(mean_std([5.0])[1])
    p = paired_difference("sgem_unet", "unet", "IoU", {0: 70.0, 1: 72.0, 2: 71.0, 3: 99.0}, {0: 68.0, 1: 69.0, 2: 71.5})
    assert p.seeds == (0, 1, 2) and p.differences == (2.0, 3.0, -0.5)
    assert p.mean == pytest.approx(1.5) and p.std == pytest.approx(math.sqrt(3.25))
    half = 4.302652729911275 * math.sqrt(3.25) / math.sqrt(3)  # t(0.975, 2 dof)
    assert (p.low, p.high) == (pytest.approx(1.5 - half), pytest.approx(1.5 + half))
    assert p.within_noise is True and "within noise" in p.sentence()
    clear = paired_difference("a", "b", "IoU", {0: 5.0, 1: 6.0, 2: 5.5}, {0: 1.0, 1: 1.2, 2: 0.9})
    assert clear.within_noise is False and "better" in clear.sentence()
    assert paired_difference("a", "b", "IoU", {0: 1.0}, {0: 0.0}).within_noise is None


def test_bad_sweep_files_fail_with_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("models: [unet]\nseeds: [0]\nmodles: [x]\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_sweep(path)
    path.write_text("models: []\nseeds: [0]\n")
    with pytest.raises(ConfigError, match="models must be a non-empty list"):
        load_sweep(path)


def test_steadiest_checkpoint_is_not_a_steadily_worse_one() -> None:
    from irstd.experiments.aggregate import steadiest

    # (mean, sd) per model: best 57.9 ± 5.6 and 51.7 ± 13.9 (mean 54.8, sd 9.75: floor 45.05);
    # last 50.5 ± 17.5 and 51.0 ± 22.4 (mean 50.75 >= floor, sd 19.95); ema 26.1 ± 5.9 and 38.3 ± 0.2
    # (sd 3.05, the lowest, but mean 32.2 < floor: out) -> best
    readings = {"best": [(57.9, 5.6), (51.7, 13.9)], "last": [(50.5, 17.5), (51.0, 22.4)],
                "ema": [(26.1, 5.9), (38.3, 0.2)]}
    assert steadiest(readings) == "best"
    # the same level, less spread: the steadier one wins
    assert steadiest({"best": [(60.0, 6.0)], "ema": [(58.0, 2.0)]}) == "ema"
    assert steadiest({"best": [], "ema": [(float("nan"), 1.0)]}) is None


def test_interrupting_a_parallel_sweep_stops_its_workers(tmp_path: Path) -> None:
    # a SIGINT sent to the sweep's process alone (kill -INT, a supervisor) must stop the runs in the worker
    # processes too, instead of leaving the pool to wait for whole runs; each keeps its finished epochs
    import os
    import signal
    import subprocess
    import sys
    import time

    path = _write(tmp_path, ["sgem_unet", "unet"], seeds=[0])
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump({**RECIPE, "epochs": 500, "val_every": 1000}))
    # the default SIGINT handler, even where the test runner was started with SIGINT ignored (a background job)
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from irstd.cli.main import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, "sweep", str(path), "--parallel", "2", "--threads", "1",
                             "--no-progress"], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    logs = [tmp_path / "runs" / "tiny" / f"{m}-seed0" / "log.jsonl" for m in ("sgem_unet", "unet")]

    def lines() -> list[int]:  # epochs logged so far, per run
        return [len(p.read_text().splitlines()) if p.is_file() else 0 for p in logs]

    try:
        deadline = time.monotonic() + 120
        while min(lines()) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert min(lines()) >= 2, proc.stderr.read() if proc.poll() is not None else "runs did not start"
        os.kill(proc.pid, signal.SIGINT)  # the parent only, not its process group
        proc.wait(timeout=60)
        done = lines()
        time.sleep(3)
        assert lines() == done  # no worker left training
        assert max(done) < 500 and proc.returncode != 0
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of its session: a hung parent, an orphaned worker
        except ProcessLookupError:
            pass
