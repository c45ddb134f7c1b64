"""SGEM-UNet (both readings of the SGEM) and its U-Net twin: counts against the paper, size
independence, gradients, linear cost, the residual and skip options."""

from __future__ import annotations

import pytest
import torch

from irstd.models import create_model
from irstd.models.layers.conv import resample_matrix
from irstd.models.sgem_unet import SGEM, BilinearSGEM, SGEMUNet
from irstd.models.unet import EncoderSkip
from irstd.core.profiling import count_macs, count_params

# (params, MACs at 1x1x256x256): the paper's Table 1 for sgem_unet, the measured reference for unet
REFERENCE = {"sgem_unet": (8.69e6, 15.92e9), "sgem_unet_bilinear": (8.69e6, 15.92e9), "unet": (8.63e6, 16.42e9)}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_params_and_macs_within_5_percent(name: str) -> None:
    model = create_model(name)
    params, macs = count_params(model), count_macs(model, (1, 1, 256, 256))
    ref_params, ref_macs = REFERENCE[name]
    assert abs(params / ref_params - 1) <= 0.05, f"{name}: {params / 1e6:.3f} M params"
    assert abs(macs / ref_macs - 1) <= 0.05, f"{name}: {macs / 1e9:.2f} GMACs"


def test_sgem_replaces_exactly_the_e3_to_d2_skip() -> None:
    model = create_model("sgem_unet")
    kinds = [type(s) for s in model.skips]  # decoder levels 1..4
    assert kinds == [EncoderSkip, SGEM, EncoderSkip, EncoderSkip]
    sgem = model.skips[1]
    assert sgem.conv_q[0].in_channels == 128  # E3 (H/4) of a base-32 U-Net
    assert sgem.conv_k[0].in_channels == 256  # D1 (H/8)


def test_sgem_output_shape_and_any_size() -> None:
    sgem = SGEM(enc_ch=32, deep_ch=64, heads=4).eval()
    for h, w in [(8, 8), (12, 20), (40, 24)]:
        enc, deep = torch.randn(2, 32, h, w), torch.randn(2, 64, h // 2, w // 2)
        assert sgem(enc, deep).shape == (2, 32, h, w)


def test_sgem_matrix_is_row_stochastic() -> None:
    sgem = SGEM(enc_ch=16, deep_ch=32, heads=2).eval()
    captured = {}
    sgem.conv_matrix.register_forward_hook(lambda m, i, o: captured.setdefault("logits", o))
    sgem(torch.randn(1, 16, 8, 8), torch.randn(1, 32, 4, 4))
    matrix = torch.softmax(captured["logits"], dim=-1)
    assert matrix.shape == (1, 2, 8, 8)  # (B, heads, d, d): a channel correlation, not N×N
    torch.testing.assert_close(matrix.sum(-1), torch.ones(1, 2, 8))



class _WithDeepInput(torch.nn.Module):
    """An SGEM fed E3 (B, 128, H, W) with a zero D1 (1, 256, H/2, W/2), so MACs can be counted from one input."""

    def __init__(self, sgem: torch.nn.Module) -> None:
        super().__init__()
        self.sgem = sgem

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return self.sgem(x, torch.zeros(1, 256, h // 2, w // 2))


def test_sgem_cost_is_linear_in_pixels() -> None:
    sgem = SGEM(enc_ch=128, deep_ch=256, heads=8)

    small = count_macs(_WithDeepInput(sgem), (1, 128, 32, 32))
    large = count_macs(_WithDeepInput(sgem), (1, 128, 128, 128))  # 16x the pixels
    assert small > 0
    assert large == pytest.approx(16 * small, rel=0.02)


def test_sgem_level_and_heads_are_validated() -> None:
    with pytest.raises(ValueError, match="sgem_level"):
        SGEMUNet(sgem_level=5)
    with pytest.raises(ValueError, match="divisible"):
        SGEM(enc_ch=30, deep_ch=64, heads=8)


def test_sgem_unet_differs_from_unet_only_at_level_2() -> None:
    unet, sgem = create_model("unet"), create_model("sgem_unet")
    unet_keys = {k for k in unet.state_dict() if not k.startswith("skips.")}
    sgem_keys = {k for k in sgem.state_dict() if not k.startswith("skips.1.")}
    assert unet_keys == sgem_keys


# ---------------------------------------------------------------- the bilinear reading and the options


def test_bilinear_sgem_replaces_the_same_skip() -> None:
    model = create_model("sgem_unet_bilinear")
    assert [type(s) for s in model.skips] == [EncoderSkip, BilinearSGEM, EncoderSkip, EncoderSkip]
    sgem = model.skips[1]
    # different Linear layers for E3 (64×64 at 256²) and D1 (32×32), both to E3's 64 rows
    assert (sgem.query_line.in_features, sgem.query_line.out_features) == (64 * 64, 64)
    assert (sgem.key_line.in_features, sgem.key_line.out_features) == (32 * 32, 64)
    assert float(sgem.gamma.detach()) == 0.0  # ABC's residual: starts as the plain skip


def test_bilinear_sgem_is_the_three_equations_at_the_reference_size() -> None:
    torch.manual_seed(0)
    sgem = BilinearSGEM(enc_ch=8, deep_ch=16, ref_side=12).eval()
    with torch.no_grad():
        sgem.gamma.fill_(0.7)
        enc, deep = torch.randn(2, 8, 12, 12), torch.randn(2, 16, 6, 6)
        q = sgem.query_line(sgem.query_conv(enc).flatten(1))  # (B, 12)
        k = sgem.key_line(sgem.key_conv(deep).flatten(1))  # (B, 12)
        corr = q[:, :, None] * k[:, None, :]  # (B, 12, 12)
        matrix = torch.softmax(sgem.spread(corr[:, None]), dim=-1)  # (B, 8, 12, 12)
        expected = enc + 0.7 * (matrix @ enc)
        torch.testing.assert_close(sgem(enc, deep), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("residual", ["abc", "sum"])
def test_bilinear_sgem_output_shape_at_any_size(residual: str) -> None:
    sgem = BilinearSGEM(enc_ch=16, deep_ch=32, ref_side=16, residual=residual).eval()
    for h, w in [(4, 4), (16, 16), (12, 20), (40, 24), (64, 64)]:  # below, at and above the reference
        enc, deep = torch.randn(2, 16, h, w), torch.randn(2, 32, h // 2, w // 2)
        out = sgem(enc, deep)
        assert out.shape == (2, 16, h, w) and torch.isfinite(out).all()


def test_resample_matrix_is_identity_at_equal_sizes_and_averages_otherwise() -> None:
    like = torch.zeros(1)
    assert torch.equal(resample_matrix(9, 9, like), torch.eye(9))
    for n_out, n_in in [(4, 16), (16, 4), (5, 7)]:
        m = resample_matrix(n_out, n_in, like)
        assert m.shape == (n_out, n_in) and (m >= 0).all()
        torch.testing.assert_close(m.sum(1), torch.ones(n_out))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reading": "channel"},
        {"reading": "channel", "residual": "abc", "skip_mode": "replace"},
        {"reading": "bilinear"},
        {"reading": "bilinear", "residual": "sum", "skip_mode": "replace"},
    ],
)
def test_gradients_reach_every_parameter(kwargs: dict) -> None:
    torch.manual_seed(0)
    model = SGEMUNet(widths=(8, 16, 32, 64, 128), heads=2, ref_size=64, **kwargs).train()
    for p in model.parameters():  # γ starts at 0, which would stop the attention's gradient at step 0
        if p.ndim == 1 and p.numel() == 1:
            torch.nn.init.constant_(p, 0.5)
    model(torch.randn(2, 1, 64, 96)).sigmoid().mean().backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent, f"parameters without gradient: {silent}"


def test_bilinear_sgem_cost_is_linear_in_pixels() -> None:
    sgem = BilinearSGEM(enc_ch=128, deep_ch=256, ref_side=64)

    costs = [count_macs(_WithDeepInput(sgem), (1, 128, s, s)) for s in (64, 128, 256)]  # 1x, 4x, 16x the pixels
    assert costs[0] > 0
    # no term grows faster than the pixel count (an H×H matrix, as ABC's, would make 256² cost 64x)
    assert costs[1] <= 4 * costs[0] * 1.01 and costs[2] <= 4 * costs[1] * 1.01
    assert costs[2] >= 8 * costs[0]  # and it does grow with the pixels (the resampling products)


def test_replace_mode_feeds_decoder_2_with_the_sgem_alone() -> None:
    concat, replace = create_model("sgem_unet_bilinear"), create_model("sgem_unet_bilinear", skip_mode="replace")
    assert isinstance(replace.ups[1], torch.nn.Identity) and not isinstance(concat.ups[1], torch.nn.Identity)
    assert replace.decoder[1][0][0].in_channels == 128 and concat.decoder[1][0][0].in_channels == 256
    assert count_params(concat) - count_params(replace) == count_params(concat.ups[1]) + 128 * 128 * 9
    replace.eval()
    assert replace(torch.randn(1, 1, 64, 48)).shape == (1, 1, 64, 48)


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="reading"):
        SGEMUNet(reading="pixel")
    with pytest.raises(ValueError, match="residual"):
        SGEMUNet(residual="none")
    with pytest.raises(ValueError, match="skip_mode"):
        SGEMUNet(skip_mode="add")
    with pytest.raises(ValueError, match="ref_size"):
        SGEMUNet(reading="bilinear", ref_size=100)
