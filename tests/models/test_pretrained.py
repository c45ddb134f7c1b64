"""Shipped weights by name: table, SHA-256, rebuild alone, detection, errors, fp16 conversion."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import irstd.models.pretrained as pretrained
from irstd.apps.demo import DEMO_WEIGHTS
from irstd.cli.main import main
from irstd.core.errors import CheckpointError, UnknownModelError
from irstd.data.synthetic import generate_scene
from irstd.inference import Predictor
from irstd.models import (create_model, get_pretrained, is_weights_name, list_pretrained, load_model,
                          pretrained_tags, read_checkpoint, save_checkpoint)
from irstd.models.pretrained import PretrainedTag, default_tag, file_sha256, resolve_weights
from irstd.models.publishing import convert_checkpoint, write_tag

SHIPPED = list_pretrained()
DEMO_MODEL = get_pretrained(DEMO_WEIGHTS).model  # the architecture the demo weights are for


def test_the_demo_full_width_and_small_cpu_weights_are_shipped() -> None:
    assert DEMO_WEIGHTS in SHIPPED
    assert {"sgem_unet.sirst", "unet.sirst"} <= set(SHIPPED)
    assert get_pretrained("sgem_unet").name == "sgem_unet.sirst"  # pretrained=True picks it
    assert pretrained_tags("sgem_unet_t") and get_pretrained("sgem_unet_t").name in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_tag_matches_its_table_row(name: str) -> None:
    row = get_pretrained(name)
    assert row.path.parent == pretrained.WEIGHTS_DIR and row.path.is_file()
    assert file_sha256(row.path) == row.sha256
    state, meta = read_checkpoint(name)
    assert meta["model_name"] == row.model
    assert tuple(meta["normalization"]) == pytest.approx(row.normalization)
    assert meta["weights"]["dtype"] == row.dtype == "float16"
    assert meta["weights"]["source_sha256"] == row.source_sha256
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    # the table says how it was made and measured, and the measured fp16 → fp32 agreement
    assert row.train_command.startswith("irstd train") and row.metrics_command.startswith(f"irstd evaluate {name}")
    assert {"iou", "pd", "fa", "n_images"} <= set(row.metrics)
    assert row.agreement["frames"] == row.metrics["n_images"] and row.agreement["pixels"] > 0


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_tag_rebuilds_alone_and_detects_a_generated_target(name: str) -> None:
    model, tag = name.split(".")
    net = create_model(model, pretrained=tag)
    assert net.model_name == model and net.training  # like any freshly built model
    assert all(p.dtype == torch.float32 for p in net.parameters())
    # an easy frame: one 25-pixel target at SCR 10 on a smooth sky, no clutter
    frame, gt, _ = generate_scene((7, 1), n_targets=1, area=25, scr=10.0, background="sky", clutter=0.0)
    pred = Predictor.from_pretrained(name, device="cpu").predict(frame)[0]
    assert pred.mask[gt].any(), f"{name} misses the target"
    assert len(pred.targets) <= 2


def test_pretrained_true_name_tag_and_plain_architecture() -> None:
    by_flag = create_model(DEMO_MODEL, pretrained=True)
    by_name = create_model(f"{DEMO_WEIGHTS}", pretrained=True)
    ref = load_model(DEMO_WEIGHTS)
    for a, b, c in zip(by_flag.state_dict().values(), by_name.state_dict().values(), ref.state_dict().values()):
        assert torch.equal(a, b) and torch.equal(a, c)
    plain = create_model(DEMO_WEIGHTS)  # timm-style: the tag alone picks only the architecture
    assert not hasattr(plain, "checkpoint_meta") and plain.model_name == DEMO_MODEL
    with pytest.raises(UnknownModelError, match="give one tag"):
        create_model(DEMO_WEIGHTS, pretrained="other")


def test_unknown_tag_suggests_the_known_ones() -> None:
    with pytest.raises(UnknownModelError, match=r"did you mean sgem_unet_t\.synth[,?]") as exc:
        load_model("sgem_unet_t.synht")
    assert "shipped:" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(UnknownModelError, match="no pretrained weights for 'acm'"):
        create_model("acm", pretrained=True)
    with pytest.raises(CheckpointError, match="did you mean sgem_unet_t.synth"):
        resolve_weights("sgem_unet_tt.synth")  # the model name itself misspelt


def test_names_that_are_files_are_not_tags(tmp_path: Path) -> None:
    assert is_weights_name("sgem_unet.sirst") and not is_weights_name("unet.safetensors")
    assert not is_weights_name("runs/unet.sirst") and not is_weights_name("nope.sirst")
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_model(tmp_path / "unet.safetensors")


def test_trainable_name_alone_points_to_its_weights(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", DEMO_MODEL, "frame.png"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "shipped weights (" in err and DEMO_WEIGHTS in err.split("shipped weights (")[1]


@pytest.fixture
def corrupted_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped folder copied to tmp with one byte of the demo weights flipped, and used instead."""
    folder = tmp_path / "weights"
    shutil.copytree(pretrained.WEIGHTS_DIR, folder)
    target = folder / get_pretrained(DEMO_WEIGHTS).file
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", folder)
    return target


def test_corrupted_weight_file_fails_with_one_line_naming_it(corrupted_copy: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CheckpointError, match="SHA-256") as exc:
        load_model(DEMO_WEIGHTS)
    assert str(corrupted_copy) in str(exc.value) and "\n" not in str(exc.value)
    frame = corrupted_copy.parent / "frame.png"
    assert main(["detect", DEMO_WEIGHTS, str(frame)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(corrupted_copy) in err and "Traceback" not in err


def test_missing_shipped_file_is_named(corrupted_copy: Path) -> None:
    corrupted_copy.unlink()
    with pytest.raises(CheckpointError, match="missing from the installed package"):
        load_model(DEMO_WEIGHTS)


def test_fp16_conversion_keeps_the_model_and_the_metadata(tmp_path: Path) -> None:
    net = create_model("sgem_unet_t")
    with torch.no_grad():  # non-trivial BatchNorm statistics, as after training
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(123)
    src, dst = tmp_path / "fp32.safetensors", tmp_path / "fp16.safetensors"
    save_checkpoint(src, net, normalization=(90.0, 30.0), config={"epochs": 3})
    sha = convert_checkpoint(src, dst)
    assert sha == file_sha256(dst) and dst.stat().st_size < 0.6 * src.stat().st_size
    state, meta = read_checkpoint(dst)
    assert meta["weights"] == {"dtype": "float16", "source_sha256": file_sha256(src)}
    assert meta["config"] == {"epochs": 3} and meta["normalization"] == [90.0, 30.0]
    assert all(v.dtype == torch.int64 for k, v in state.items() if k.endswith("num_batches_tracked"))
    a, b = load_model(src), load_model(dst, sha256=sha)
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        ya, yb = a(x), b(x)
    ya, yb = (ya[0], yb[0]) if isinstance(ya, (tuple, list)) else (ya, yb)
    assert torch.allclose(ya, yb, atol=5e-2, rtol=1e-2)
    with pytest.raises(CheckpointError, match="does not match"):
        load_model(dst, sha256="0" * 64)


def test_write_tag_replaces_a_row_and_reads_back(tmp_path: Path) -> None:
    table = tmp_path / "tags.json"
    row = PretrainedTag(model="unet", tag="x", file="unet-x.safetensors", sha256="a" * 64, dtype="float16",
                        normalization=(1.0, 2.0), input_range=(0.0, 255.0), data="d", train_command="irstd train")
    write_tag(row, table)
    write_tag(PretrainedTag(**{**row.__dict__, "note": "second"}), table)
    rows = json.loads(table.read_text())["weights"]
    assert len(rows) == 1 and rows[0]["note"] == "second" and rows[0]["normalization"] == [1.0, 2.0]


def test_a_new_default_tag_takes_the_mark_from_the_models_others(tmp_path: Path) -> None:
    table = tmp_path / "tags.json"
    row = PretrainedTag(model="unet", tag="x", file="unet-x.safetensors", sha256="a" * 64, dtype="float16",
                        normalization=(1.0, 2.0), input_range=(0.0, 255.0), data="d", train_command="irstd train",
                        default=True)
    write_tag(row, table)
    write_tag(PretrainedTag(**{**row.__dict__, "model": "unet_t"}), table)  # another model keeps its own
    write_tag(PretrainedTag(**{**row.__dict__, "tag": "y"}), table)
    marks = {(r["model"], r["tag"]): r["default"] for r in json.loads(table.read_text())["weights"]}
    assert marks == {("unet", "x"): False, ("unet", "y"): True, ("unet_t", "x"): True}


def test_the_shipped_table_marks_at_most_one_default_per_model() -> None:
    defaults = [get_pretrained(n).model for n in list_pretrained() if get_pretrained(n).default]
    assert len(defaults) == len(set(defaults)), defaults
    assert f"{DEMO_MODEL}.{default_tag(DEMO_MODEL)}" == DEMO_WEIGHTS  # pretrained=True gives the demo's weights


def test_write_tag_from_concurrent_publishes_keeps_every_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    import irstd.models.publishing as publish

    real_write = publish.atomic_write_text

    def write_slowly(path, text):  # widen the read-modify-write window: without the lock rows get lost
        time.sleep(0.05)
        real_write(path, text)

    monkeypatch.setattr(publish, "atomic_write_text", write_slowly)
    table = tmp_path / "tags.json"
    rows = [PretrainedTag(model="unet", tag=f"t{i}", file=f"unet-t{i}.safetensors", sha256="a" * 64, dtype="float16",
                          normalization=(1.0, 2.0), input_range=(0.0, 255.0), data="d", train_command="irstd train")
            for i in range(6)]
    threads = [threading.Thread(target=write_tag, args=(row, table)) for row in rows]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["tag"] for r in json.loads(table.read_text())["weights"]) == [f"t{i}" for i in range(6)]


def test_models_command_lists_the_tags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--pretrained"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        assert name in out and get_pretrained(name).sha256[:12] in out
    assert main(["models", "sgem_unet_t", "--no-count"]) == 0
    capsys.readouterr()
    assert main(["models", "sgem_unet_t"]) == 0
    line = [l for l in capsys.readouterr().out.splitlines() if l.startswith("sgem_unet_t ")][0]
    assert ",".join(pretrained_tags("sgem_unet_t")) in line
    # a name longer than the default column (sgem_unet_bilinear) keeps the numbers in line
    assert main(["models", "sgem_unet*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 5 and len({l.index(" params (M)") + 11 if i == 0 else l.index(".") + 4
                                    for i, l in enumerate(lines)}) == 1, lines


def test_evaluate_and_export_take_a_name(tmp_path: Path) -> None:
    from irstd.engine.evaluation import evaluate_checkpoint

    report = evaluate_checkpoint(DEMO_WEIGHTS, None, synthetic_n=2)
    assert report.result.n_images == 2 and report.model == DEMO_MODEL
    pytest.importorskip("onnxruntime")
    out = tmp_path / "m.onnx"
    assert main(["export", DEMO_WEIGHTS, "--out", str(out)]) == 0
    assert out.is_file() and out.stat().st_size > 10_000
    frame = np.zeros((32, 32), np.float32)
    assert Predictor.from_onnx(out).predict(frame)[0].prob.shape == (32, 32)
