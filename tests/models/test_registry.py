"""One run over every registered model: the shared contract of irstd.models.base."""

from __future__ import annotations

import pytest
import torch

from irstd.errors import UnknownModelError
from irstd.models import IRSTDModel, create_model, get_model_entry, list_models, main_logits, register_model

ALL = list_models()
LEARNED = list_models(kind="learned")


def _input(model: torch.nn.Module, b: int, h: int, w: int) -> torch.Tensor:
    s = model.stride
    return torch.randn(b, model.in_chans, -(-h // s) * s, -(-w // s) * s)


def test_registry_has_flagship_and_twin() -> None:
    assert {"unet", "sgem_unet"} <= set(ALL)
    assert get_model_entry("sgem_unet").kind == "learned"


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(1, 64, 64), (2, 96, 128)])
def test_forward_gives_logits_of_input_shape(name: str, shape: tuple[int, int, int]) -> None:
    model = create_model(name).eval()
    x = _input(model, *shape)
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, torch.Tensor), "eval mode must return a plain logits tensor"
    assert out.shape == (x.shape[0], 1, x.shape[2], x.shape[3])
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", LEARNED)
def test_backward_finite_and_declared_outputs(name: str) -> None:
    model = create_model(name).train()
    x = _input(model, 2, 64, 64)
    out = model(x)
    if model.extra_outputs:
        assert isinstance(out, dict) and set(out) == {"logits", *model.extra_outputs}
        for key in model.extra_outputs:
            for t in out[key] if isinstance(out[key], (list, tuple)) else [out[key]]:
                assert t.shape == (2, 1, *x.shape[-2:]), f"{key} output has shape {tuple(t.shape)}"
    logits = main_logits(out)
    assert logits.shape == (2, 1, *x.shape[-2:])
    # every output that the loss would use: deep-supervision heads only feed their side outputs
    outputs = [logits] + [
        t for key in model.extra_outputs for t in (out[key] if isinstance(out[key], (list, tuple)) else [out[key]])
    ]
    sum(t.float().pow(2).mean() for t in outputs).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", ALL)
def test_eval_is_deterministic(name: str) -> None:
    model = create_model(name).eval()
    x = _input(model, 1, 64, 64)
    with torch.no_grad():
        a, b = model(x), model(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", ALL)
def test_records_name_and_kwargs_for_checkpoints(name: str) -> None:
    model = create_model(name)
    assert model.model_name == name and model.model_kwargs == {}
    assert model.in_chans == 1 and model.num_classes == 1


@pytest.mark.parametrize("name", ALL)
def test_registered_factory_is_the_network_class(name: str) -> None:
    # the convention: a model file decorates its class, variants only change the defaults
    factory = get_model_entry(name).factory
    assert isinstance(factory, type) and issubclass(factory, IRSTDModel), f"{name} registers {factory!r}"


def test_variants_differ_by_defaults_only() -> None:
    base, small, tiny = (get_model_entry(n) for n in ("sgem_unet", "sgem_unet_s", "sgem_unet_t"))
    assert base.factory is small.factory is tiny.factory
    assert base.defaults == {}
    assert small.defaults == {"widths": (16, 32, 64, 128, 256), "heads": 4}
    assert tiny.defaults == {"widths": (8, 16, 32, 64, 128), "heads": 2}
    model = create_model("sgem_unet_s", in_chans=2)
    assert model.widths == (16, 32, 64, 128, 256) and model.in_chans == 2
    assert model.model_kwargs == {"in_chans": 2}  # the caller's kwargs only: the defaults come from the name


@pytest.mark.parametrize("suffix", ["_s", "_t"])
def test_light_unet_is_the_ablation_twin_of_light_sgem_unet(suffix: str) -> None:
    unet, sgem = create_model("unet" + suffix), create_model("sgem_unet" + suffix)
    assert unet.widths == sgem.widths and type(unet).__name__ == "UNet"
    # the twin differs by the SGEM skip alone: every parameter name outside the skips exists in both
    sgem_shapes = {k: v.shape for k, v in sgem.state_dict().items() if not k.startswith("skips.")}
    unet_shapes = {k: v.shape for k, v in unet.state_dict().items() if not k.startswith("skips.")}
    assert set(unet_shapes) <= set(sgem_shapes)


def test_uniform_constructor_in_chans() -> None:
    model = create_model("unet", in_chans=3).eval()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1, 32, 32)
    assert model.model_kwargs == {"in_chans": 3}


def test_unknown_name_suggests() -> None:
    with pytest.raises(UnknownModelError, match="did you mean sgem_unet"):
        create_model("sgem_net")


def test_duplicate_registration_rejected() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register_model("unet")(lambda **kw: None)


def test_size_not_multiple_of_stride_is_a_clear_error() -> None:
    model = create_model("unet").eval()
    with pytest.raises(ValueError, match="multiples of 16"):
        model(torch.randn(1, 1, 60, 64))
