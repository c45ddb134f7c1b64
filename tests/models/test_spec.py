"""What a model argument names (irstd.models.spec) and the one name.tag split (irstd.models._registry)."""

from __future__ import annotations

from pathlib import Path

import pytest

from irstd.core.errors import CheckpointError
from irstd.inference import Predictor
from irstd.models import ModelSpec, is_weights_name, resolve_model_spec, split_name_tag


def test_split_name_tag() -> None:
    assert split_name_tag("sgem_unet.sirst") == ("sgem_unet", "sirst")
    assert split_name_tag("unet") == ("unet", None)
    assert split_name_tag("a.b.c") == ("a", "b.c")  # the tag follows the first dot


@pytest.mark.parametrize(
    ("text", "kind", "model", "tag"),
    [
        ("https://example.org/w/m.safetensors#sha256=" + "a" * 64, "url", None, None),
        ("http://127.0.0.1:8000/m.safetensors", "url", None, None),
        ("export/m.onnx", "onnx", None, None),
        ("M.ONNX", "onnx", None, None),
        ("tophat", "classical", "tophat", None),
        ("unet", "model", "unet", None),
        ("sgem_unet.sirst", "shipped", "sgem_unet", "sirst"),
        ("sgem_unet.nosuchtag", "shipped", "sgem_unet", "nosuchtag"),  # the table says it is unknown, later
        ("unet.safetensors", "file", None, None),  # a file name, not model unet with tag "safetensors"
        ("runs/x/best.safetensors", "file", None, None),
        ("nosuchmodel.sirst", "file", None, None),
    ],
)
def test_every_form_of_a_model_argument(text: str, kind: str, model: str | None, tag: str | None) -> None:
    assert resolve_model_spec(text) == ModelSpec(kind, text, model=model, tag=tag)  # type: ignore[arg-type]
    assert is_weights_name(text) == (kind == "shipped")


def test_an_existing_file_wins_over_a_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tophat").write_bytes(b"x")
    (tmp_path / "sgem_unet.sirst").write_bytes(b"x")
    assert resolve_model_spec("tophat").kind == "file"
    assert resolve_model_spec("sgem_unet.sirst").kind == "file"
    (tmp_path / "unet").mkdir()  # a folder of that name is no model name either: its reader says so
    assert resolve_model_spec("unet").kind == "file"


def test_a_path_object_is_always_a_file() -> None:
    assert resolve_model_spec(Path("tophat")).kind == "file"
    assert resolve_model_spec(Path("m.onnx")).is_onnx
    assert resolve_model_spec(Path("~/m.safetensors")).path == Path.home() / "m.safetensors"


def test_the_predictor_dispatches_on_the_spec(tmp_path: Path) -> None:
    assert Predictor.from_checkpoint("tophat", device="cpu").backend == "torch"
    with pytest.raises(CheckpointError, match="is a trainable model"):
        Predictor.from_checkpoint("unet", device="cpu")
    pytest.importorskip("onnxruntime")
    with pytest.raises(CheckpointError, match="ONNX file not found"):  # an .onnx goes to ONNX Runtime
        Predictor.from_checkpoint(str(tmp_path / "missing.onnx"))
