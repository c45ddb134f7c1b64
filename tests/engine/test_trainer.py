from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from irstd.engine import fit, load_model, read_checkpoint
from irstd.engine.config import TrainConfig
from irstd.engine.optimisation import build_scheduler
from irstd.errors import CheckpointError, ConfigError


def test_two_epochs_loss_falls_and_checkpoint_reloads(tiny_cfg: TrainConfig) -> None:
    result = fit(tiny_cfg)
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 2 and losses[1] < losses[0]
    for name in ("config.yaml", "log.jsonl", "log.csv", "last.safetensors", "best.safetensors", "last.state.pt"):
        assert (result.run_dir / name).is_file(), name
    rows = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and "val_iou" in rows[-1]

    model = load_model(result.last_path)
    _, meta = read_checkpoint(result.last_path)
    assert meta["model_name"] == "unet" and meta["model_kwargs"] == tiny_cfg.model_kwargs
    assert meta["epoch"] == 2 and meta["config"]["lr"] == tiny_cfg.lr
    assert len(meta["normalization"]) == 2 and meta["normalization"][1] > 0
    assert model.normalization == tuple(meta["normalization"])
    # the same logits as the trained weights give when loaded into a fresh model by hand
    weights, _ = read_checkpoint(result.last_path)
    x = torch.randn(1, 1, 32, 48)
    from irstd.models import create_model

    fresh = create_model("unet", **tiny_cfg.model_kwargs)
    fresh.load_state_dict(weights)
    with torch.no_grad():
        torch.testing.assert_close(model(x), fresh.eval()(x))


def test_resume_reproduces_a_straight_run(tmp_path: Path, tiny_cfg: TrainConfig) -> None:
    straight = fit(dataclasses.replace(tiny_cfg, name="straight"))
    one = dataclasses.replace(tiny_cfg, name="resumed", epochs=1)
    fit(one)
    resumed = fit(dataclasses.replace(one, epochs=2), resume=tmp_path / "resumed")
    a, _ = read_checkpoint(straight.last_path)
    b, _ = read_checkpoint(resumed.last_path)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert [r["epoch"] for r in resumed.history] == [1, 2]


def test_existing_run_folder_is_not_overwritten(tiny_cfg: TrainConfig) -> None:
    fit(dataclasses.replace(tiny_cfg, epochs=1))
    with pytest.raises(ConfigError, match="already holds a run"):
        fit(dataclasses.replace(tiny_cfg, epochs=1))


def test_resume_of_a_finished_or_missing_run(tmp_path: Path, tiny_cfg: TrainConfig) -> None:
    done = fit(dataclasses.replace(tiny_cfg, epochs=1))
    with pytest.raises(ConfigError, match="already finished"):
        fit(dataclasses.replace(tiny_cfg, epochs=1), resume=done.run_dir)
    with pytest.raises(CheckpointError, match="cannot resume"):
        fit(tiny_cfg, resume=tmp_path / "nowhere")


def test_bad_model_name_fails_before_creating_a_run(tmp_path: Path, tiny_cfg: TrainConfig) -> None:
    with pytest.raises(KeyError):
        fit(dataclasses.replace(tiny_cfg, model="unet3", model_kwargs={}, name="bad"))
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    "kind,expected",
    [("constant", [1.0, 1.0, 1.0, 1.0]), ("multistep", [1.0, 1.0, 0.1, 0.1]), ("cosine", [1.0, 0.8535533906, 0.5, 0.1464466094])],  # 0.5(1 + cos(pi e / 4))
)
def test_schedules(kind: str, expected: list[float]) -> None:
    cfg = TrainConfig(scheduler=kind, epochs=4, lr=1.0, min_lr=0.0, milestones=[2], gamma=0.1)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_scheduler(cfg, opt)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx(expected, abs=1e-9)


def test_init_weights_start_the_run_from_a_checkpoint(tmp_path: Path, tiny_cfg: TrainConfig, checkpoint: Path) -> None:
    from irstd.engine.trainer import _start_run

    cfg = dataclasses.replace(tiny_cfg, init_weights=str(checkpoint), name="init")
    run = _start_run(cfg, None)
    want, _ = read_checkpoint(checkpoint)
    got = run.model.state_dict()
    assert want.keys() == got.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, msg=key)
    # without it the same seed gives other weights: the check above is not the default init
    fresh = _start_run(dataclasses.replace(tiny_cfg, name="fresh"), None).model.state_dict()
    assert any(not torch.equal(fresh[k], want[k]) for k in want if want[k].is_floating_point())


def test_init_weights_undo_a_folded_operating_point(tmp_path: Path, tiny_cfg: TrainConfig, checkpoint: Path) -> None:
    """A checkpoint whose threshold was folded twice (``irstd operating-point`` on a folded file) starts
    the run from the logits it was trained with: the bias gets both offsets back, nothing else moves."""
    from irstd.engine.trainer import _start_run
    from irstd.models import fold_threshold, folded_offset, save_checkpoint

    model = load_model(checkpoint)
    first = fold_threshold(model, 0.9)  # bias - logit(0.9)
    second = fold_threshold(model, 0.2)  # bias - logit(0.2)
    record = {"logit_offset": second, "previous": {"logit_offset": first}}  # as fold_operating_point nests them
    folded = tmp_path / "folded.safetensors"
    save_checkpoint(folded, model, normalization=(110.0, 20.0), operating_point=record)
    _, meta = read_checkpoint(folded)
    assert folded_offset(meta) == pytest.approx(first + second)
    run = _start_run(dataclasses.replace(tiny_cfg, init_weights=str(folded), name="unfold"), None)
    want, _ = read_checkpoint(checkpoint)
    got = run.model.state_dict()
    name = run.model.logit_layer + ".bias"
    torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-6)
    for key in want:
        if key != name:
            torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, msg=key)


def test_init_weights_that_do_not_fit_fail_in_one_line(tiny_cfg: TrainConfig, checkpoint: Path) -> None:
    # widths that are no tiling of the checkpoint's (4, 8, 16, 32, 64): a multiple of them would be widened
    cfg = dataclasses.replace(tiny_cfg, model_kwargs={"widths": [6, 12, 24, 48, 96]}, init_weights=str(checkpoint))
    with pytest.raises(CheckpointError, match=r"init_weights .*ckpt\.safetensors.* do not fit") as info:
        fit(cfg)
    assert "\n" not in str(info.value)


def test_init_weights_of_a_narrower_twin_are_widened_to_the_same_logits(
        tiny_cfg: TrainConfig, checkpoint: Path, caplog: pytest.LogCaptureFixture) -> None:
    """widths (8, …, 128) tile the checkpoint's (4, …, 64): the run starts from the same function."""
    from irstd.engine.trainer import _start_run

    cfg = dataclasses.replace(tiny_cfg, model_kwargs={"widths": [8, 16, 32, 64, 128]}, init_weights=str(checkpoint),
                              name="wide")
    with caplog.at_level("INFO", logger="irstd.engine.trainer"):
        run = _start_run(cfg, None)
    assert sum("widened" in r.getMessage() for r in caplog.records) == 1
    narrow = load_model(checkpoint)
    x = torch.randn(2, 1, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(run.model.eval()(x), narrow.eval()(x), rtol=0, atol=1e-5)


def test_a_resumed_run_keeps_its_own_weights_not_init_weights(tmp_path: Path, tiny_cfg: TrainConfig,
                                                              checkpoint: Path) -> None:
    one = dataclasses.replace(tiny_cfg, init_weights=str(checkpoint), epochs=1, name="ft")
    fit(one)
    checkpoint.unlink()  # resuming must not read it again (the state holds the trained weights)
    resumed = fit(dataclasses.replace(one, epochs=2), resume=tmp_path / "ft")
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    _, meta = read_checkpoint(resumed.last_path)
    assert meta["config"]["init_weights"] == str(checkpoint)  # the run records where it started
