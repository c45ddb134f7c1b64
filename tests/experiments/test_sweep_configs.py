"""The sweep files of configs/sweeps/ parse, and the CPU sweep's seed-0 cells are the runs `irstd train` makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from irstd.engine.config import load_config
from irstd.experiments import RunSpec, load_sweep
from irstd.experiments.spec import identity

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["sirst_cpu", "sirst_table1_gpu"])
def test_sweep_files_parse(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    spec = load_sweep(ROOT / "configs" / "sweeps" / f"{name}.yaml")
    cells = spec.runs()
    assert all(isinstance(c, RunSpec) for c in cells), [c for c in cells if not isinstance(c, RunSpec)]
    assert {c.model for c in cells} >= {"sgem_unet", "unet"}
    assert sum(c.model == "sgem_unet" for c in cells) >= 3  # several seeds of the flagship


def test_cpu_sweep_recognises_runs_made_by_irstd_train(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    spec = load_sweep(ROOT / "configs" / "sweeps" / "sirst_cpu.yaml")
    for model in ("sgem_unet", "unet"):
        # irstd train --config configs/sirst_cpu.yaml --model M --amp none --set channels_last=false --threads 2
        #   --out runs/sweeps/sirst_cpu --name M-seed0 --no-progress
        by_hand = load_config("configs/sirst_cpu.yaml", {"model": model, "amp": "none", "channels_last": "false",
                                                         "threads": 2, "out": "runs/sweeps/sirst_cpu",
                                                         "name": f"{model}-seed0", "progress": False})
        cell = next(c for c in spec.runs() if c.model == model and c.seed == 0)
        assert cell.run_dir == Path("runs/sweeps/sirst_cpu") / f"{model}-seed0"
        assert identity(cell.cfg) == identity(by_hand)


def test_full_width_negatives_sweep_is_the_light_tags_recipe_at_full_width(monkeypatch: pytest.MonkeyPatch) -> None:
    # the CPU source of sgem_unet.sirst / unet.sirst: the light tags' sweep with only the models changed
    monkeypatch.chdir(ROOT)
    full = load_sweep(ROOT / "configs" / "sweeps" / "sirst_cpu_negatives.yaml").runs()
    light = {c.model: c for c in load_sweep(ROOT / "configs" / "sweeps" / "sirst_cpu_light_negatives.yaml").runs()}
    assert sorted((c.model, c.seed) for c in full) == [("sgem_unet", 0), ("unet", 0)]
    for cell in full:
        twin = light[f"{cell.model}_t"].cfg.to_dict()
        differ = {k for k, v in cell.cfg.to_dict().items() if twin[k] != v}
        assert differ == {"model", "name", "out"}, differ
        assert cell.run_dir == Path("runs/sweeps/sirst_cpu_negatives") / f"{cell.model}-seed0"


@pytest.mark.parametrize("model", ["sgem_unet", "unet"])
def test_full_width_tags_train_command_rebuilds_their_config(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the shipped sgem_unet.sirst / unet.sirst: the `train_command` in their table row must rebuild the config
    # the run saved (`train_config`, all but its folder and runtime keys), and that config is the 240-epoch
    # recipe file's (docs/weights.md, sixth try)
    import shlex

    import irstd.engine.trainer as trainer
    from irstd.cli.main import main
    from irstd.models import get_pretrained

    monkeypatch.chdir(ROOT)
    built = []

    def capture(cfg, resume=None):  # stop before training: the config is what is compared
        built.append(cfg)
        raise SystemExit(0)

    monkeypatch.setattr(trainer, "fit", capture)  # irstd train imports it when it runs
    tag = get_pretrained(f"{model}.sirst")
    with pytest.raises(SystemExit):
        main(shlex.split(tag.train_command)[1:])
    ours, saved = built[0].to_dict(), tag.train_config
    runtime = {"name", "out", "threads", "progress"}
    assert {k for k in ours if k not in runtime and ours[k] != saved.get(k)} == set()
    recipe = load_config("configs/sirst_cpu_negatives_240.yaml", {"model": model}).to_dict()
    assert {k for k in ours if k not in runtime and ours[k] != recipe[k]} == set()
    assert ours["epochs"] == 240 and ours["negatives"]["mining_every"] == 60
