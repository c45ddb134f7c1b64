"""Two gloo ranks on the CPU train, evaluate and detect like one process (docs/distributed.md).

One torchrun job (module fixture) runs every distributed command; the single-process references run
here. Each launch has a timeout, so a broken rank fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from irstd.cli.main import main
from irstd.engine import fit, read_checkpoint
from irstd.core.seeding import seed_everything
from irstd.engine.config import TrainConfig
from irstd.models import create_model

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
TORCHRUN = Path(sys.executable).with_name("torchrun")
TIMEOUT_S = 420  # the whole two-rank job on a busy 2-core machine; a hang ends here


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dataset(root: Path) -> Path:
    """Five frames of different sizes (an odd count: the two shards differ), one target each."""
    from irstd.data.io import save_image, save_mask

    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    names = []
    for i, (h, w) in enumerate([(40, 52), (64, 64), (37, 70), (50, 33), (45, 45)]):
        img, mask = rng.normal(100, 10, (h, w)), np.zeros((h, w), bool)
        y, x = rng.integers(5, h - 5), rng.integers(5, w - 5)
        mask[y - 1 : y + 2, x - 1 : x + 2] = True
        img[mask] += 80
        save_image(root / "images" / f"f{i}.png", np.clip(img, 0, 255))
        save_mask(root / "masks" / f"f{i}.png", mask)
        names.append(f"f{i}")
    (root / "test.txt").write_text("\n".join(names))
    (root / "broken.png").write_bytes(b"not a png")  # detect lists it as an error, in its place
    return root


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not TORCHRUN.is_file():
        pytest.skip(f"torchrun not found beside {sys.executable}")
    base = tmp_path_factory.mktemp("ddp")
    data, out = _dataset(base / "data"), base / "out"
    cmd = [str(TORCHRUN), "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
           str(HERE / "_worker.py"), "jobs", str(out), str(data)]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    reports = [json.loads((base / f"report-rank{r}.json").read_text()) for r in (0, 1)]
    return {"base": base, "data": data, "out": out, "reports": reports, "stdout": proc.stdout}


def _reference_cfg(out: Path) -> TrainConfig:
    """What the worker's two ranks x batch 4 train, as one process with batch 8."""
    return TrainConfig(model="unet", model_kwargs={"widths": [4, 8, 16, 32, 64]}, epochs=2, batch_size=8,
                       crop_size=32, scheduler="constant", optimizer="sgd", lr=0.05, synthetic_train=16, synthetic_val=3,
                       target_crop_prob=1.0, eval_batch_size=2, device="cpu", progress=False, out=str(out), name="one")


def test_every_command_succeeds_on_both_ranks(job: dict) -> None:
    assert [r["codes"] for r in job["reports"]] == [[0] * 5, [0] * 5]


def _l2(a: dict, b: dict) -> float:
    """Euclidean distance between two sets of weights (trainable tensors: no BatchNorm statistics)."""
    keys = [k for k in a if a[k].is_floating_point() and "running" not in k]
    return float(sum(((a[k].double() - b[k].double()) ** 2).sum() for k in keys) ** 0.5)


def test_two_ranks_of_batch_4_train_like_one_of_batch_8(job: dict, tmp_path: Path) -> None:
    """Same samples, crops and flips per global batch, BatchNorm over the global batch (sync_bn).

    The tolerance is fp32's, for this network: its fp32 gradient at initialisation is already 1e-3
    away (relative) from the fp64 one, in one process with torch's own BatchNorm. The two runs' weights
    agree to within 0.5% of the distance training moved them (measured: 0.04%), while a run over
    other samples would miss by about 100%.
    """
    cfg = _reference_cfg(tmp_path)
    one = fit(cfg)
    two, _ = read_checkpoint(job["out"] / "runs" / "straight" / "last.safetensors")
    ref, _ = read_checkpoint(one.last_path)
    assert ref.keys() == two.keys()
    seed_everything(cfg.seed)  # what fit does before building the model: the initial weights
    init = create_model(cfg.model, **cfg.model_kwargs).state_dict()
    moved = _l2(ref, init)
    assert moved > 0.01 and _l2(two, ref) < 0.005 * moved, (_l2(two, ref), moved)
    rows = [json.loads(x) for x in (job["out"] / "runs" / "straight" / "log.jsonl").read_text().splitlines()]
    assert [(r["global_batch"], r["world_size"]) for r in rows] == [(8, 2), (8, 2)]
    assert [r["global_batch"] for r in one.history] == [8, 8]
    for mine, theirs in zip(rows, one.history):  # the same images per step: the same losses to fp32 rounding
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
    assert rows[-1]["val_n_images"] == 3 and rows[-1]["val_iou"] == pytest.approx(one.history[-1]["val_iou"], abs=1e-3)


def test_resume_under_two_ranks_continues_exactly(job: dict) -> None:
    straight, _ = read_checkpoint(job["out"] / "runs" / "straight" / "last.safetensors")
    resumed, meta = read_checkpoint(job["out"] / "runs" / "halves" / "last.safetensors")
    assert meta["epoch"] == 2
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0, msg=key)


def test_sharded_evaluate_equals_one_process(job: dict, tmp_path: Path) -> None:
    ckpt = job["out"] / "runs" / "straight" / "last.safetensors"
    assert main(["evaluate", str(ckpt), "--data", str(job["data"]), "--device", "cpu", "--batch-size", "2", "--sweep",
                 "--out", str(tmp_path / "eval")]) == 0
    for name in ("metrics.json", "metrics.md", "per_image.csv"):
        assert (job["out"] / "eval" / name).read_text() == (tmp_path / "eval" / name).read_text(), name
    rows = (tmp_path / "eval" / "per_image.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == [f"f{i}" for i in range(5)]


def test_sharded_detect_equals_one_process(job: dict, tmp_path: Path) -> None:
    ckpt = job["out"] / "runs" / "straight" / "last.safetensors"
    data = job["data"]
    main(["detect", str(ckpt), str(data / "images"), str(data / "broken.png"), "--device", "cpu",
          "--out", str(tmp_path / "detect")])
    for name in ("detections.json", "detections.csv"):
        assert (job["out"] / "detect" / name).read_bytes() == (tmp_path / "detect" / name).read_bytes(), name
    frames = json.loads((tmp_path / "detect" / "detections.json").read_text())["frames"]
    assert len(frames) == 6 and "broken.png" in json.dumps(frames[-1])


def test_only_rank_0_writes_run_files(job: dict) -> None:
    rank0, rank1 = job["reports"]
    assert rank1["written"] == []
    assert any(p.endswith("last.safetensors") for p in rank0["written"])  # the audit sees rank 0's writes
    run = job["out"] / "runs" / "straight"
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["config.yaml", "log.jsonl", "log.csv", "last.safetensors", "best.safetensors", "last.state.pt"])
    assert job["stdout"].count("run folder :") == 3  # printed by rank 0 only, once per train command


def _launch_by_hand(mode: str, base: Path) -> tuple[subprocess.Popen, subprocess.Popen]:
    """Two ranks with torchrun's environment but no torchrun agent: nothing but the process-group
    timeout (5 s in the worker) can end rank 0's wait."""
    data, out = _dataset(base / "data"), base / "out"
    port, procs = str(_free_port()), []
    for r in (0, 1):
        env = dict(_env(), RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        procs.append(subprocess.Popen([sys.executable, str(HERE / "_worker.py"), mode, str(out), str(data)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs[0], procs[1]


@pytest.mark.parametrize("mode", ["raise", "hang"])
def test_a_failed_or_hung_rank_ends_the_job_with_a_clear_error(mode: str, tmp_path: Path) -> None:
    rank0, rank1 = _launch_by_hand(mode, tmp_path)
    try:
        _, err = rank0.communicate(timeout=TIMEOUT_S)
    finally:
        rank1.kill()
        _, err1 = rank1.communicate(timeout=60)
    assert rank0.returncode == 2, err
    lines = [line for line in err.splitlines() if line.startswith("irstd evaluate: error:")]
    assert len(lines) == 1 and "stopped answering" in lines[0] and "Traceback" not in err, err
    if mode == "raise":
        assert "missing.safetensors" in err1


def test_rank_0_out_of_space_ends_every_rank_with_its_line(tmp_path: Path) -> None:
    """Rank 0 cannot write its checkpoint (a full disk): the other rank is told and ends with the same one
    line at once, instead of waiting for rank 0 in the next epoch until the process-group timeout (60 s)."""
    rank0, rank1 = _launch_by_hand("diskfull", tmp_path)
    try:
        _, err0 = rank0.communicate(timeout=TIMEOUT_S)
        _, err1 = rank1.communicate(timeout=30)  # not the 60 s of the process-group timeout
    finally:
        rank0.kill()
        rank1.kill()
    lines = [[line for line in err.splitlines() if line.startswith("irstd train: error:")] for err in (err0, err1)]
    assert rank0.returncode == rank1.returncode == 2, (err0, err1)
    assert len(lines[0]) == 1 and "free the space" in lines[0][0] and lines[1] == lines[0], (err0, err1)
    assert "Traceback" not in err0 + err1
