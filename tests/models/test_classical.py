"""Classical detectors: the logit contract, their filters on tiny known inputs, and detection of a
synthetic point target on smooth clutter (Pd = 1, Fa < 1e-3 of the pixels)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from irstd.errors import ConfigError
from irstd.metrics import image_counts
from irstd.models import create_model, get_model_entry, list_models
from irstd.models.classical import adaptive_threshold_logits, max_median_background, mpcm_score, white_tophat
from irstd.models.classical_ipi import patch_positions, rpca_ialm, singular_value_threshold
from irstd.core.profiling import count_params

DETECTORS = ["ipi", "maxmedian", "mpcm", "tophat"]
FA_BOUND = 1e-3  # false-alarm pixels / all pixels on the synthetic frames


def synthetic_frame(seed: int, size: int = 128, amp: float = 4.0) -> tuple[torch.Tensor, np.ndarray]:
    """One Gaussian point target (σ = 1, peak ``amp`` × the background's std) on smooth clutter.

    Background: a linear ramp, low-frequency noise (white noise blurred with σ = 12 px, unit std)
    and small white noise (std 0.1); the frame is normalised to zero mean and unit std as the data
    pipeline does. Mask: pixels where the target profile exceeds 0.2 of its peak.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    low = ndimage.gaussian_filter(rng.standard_normal((size, size)), 12.0)
    background = 2.0 * xx / size + yy / size + low / low.std() + 0.1 * rng.standard_normal((size, size))
    cy, cx = rng.uniform(16, size - 16, 2)
    profile = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0)
    img = background + amp * background.std() * profile
    img = (img - img.mean()) / img.std()
    return torch.tensor(img, dtype=torch.float32)[None, None], profile > 0.2


@pytest.fixture(scope="module")
def frames() -> list[tuple[torch.Tensor, np.ndarray]]:
    return [synthetic_frame(seed) for seed in range(3)]


def test_all_four_registered_as_classical() -> None:
    assert set(DETECTORS) <= set(list_models(kind="classical"))
    for name in DETECTORS:
        entry = get_model_entry(name)
        assert entry.kind == "classical" and entry.paper


@pytest.mark.parametrize("name", DETECTORS)
def test_contract_stride_one_no_parameters(name: str) -> None:
    model = create_model(name)
    assert model.stride == 1 and count_params(model) == 0
    out = model(torch.randn(2, 1, 37, 53))  # any size
    assert out.shape == (2, 1, 37, 53) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", DETECTORS)
def test_finds_the_point_target(name: str, frames: list[tuple[torch.Tensor, np.ndarray]]) -> None:
    model = create_model(name).eval()
    for x, mask in frames:
        c = image_counts((model(x) > 0)[0, 0].numpy(), mask)
        assert c.n_targets == 1 and c.n_matched_targets == 1, f"{name} missed the target"
        assert c.fa_pixels / c.n_pixels < FA_BOUND, f"{name}: {c.fa_pixels} false-alarm pixels"


@pytest.mark.parametrize("name", DETECTORS)
def test_logit_sign_is_the_adaptive_threshold_rule(name: str, frames: list[tuple[torch.Tensor, np.ndarray]]) -> None:
    model = create_model(name)
    x = frames[0][0][..., :64, :80]  # a crop keeps IPI's decomposition small
    score = model.score(x)
    t = score.mean() + model.k * score.std(unbiased=False)
    assert torch.equal(model(x) > 0, score > t)


@pytest.mark.parametrize("name", DETECTORS)
def test_invariant_to_positive_affine_input_change(name: str, frames: list[tuple[torch.Tensor, np.ndarray]]) -> None:
    model = create_model(name)
    x = frames[1][0][..., :64, :80]
    a, b = model(x), model(3.0 * x - 2.0)
    torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("name", DETECTORS)
def test_batch_frames_are_independent(name: str, frames: list[tuple[torch.Tensor, np.ndarray]]) -> None:
    model = create_model(name)
    x0, x1 = frames[0][0][..., :64, :80], 5.0 * frames[2][0][..., :64, :80]  # different scales in one batch
    both = model(torch.cat([x0, x1]))
    torch.testing.assert_close(both[0:1], model(x0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(both[1:2], model(x1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", DETECTORS)
def test_constant_frame_detects_nothing(name: str) -> None:
    out = create_model(name)(torch.full((1, 1, 40, 40), 0.7))
    assert not (out > 0).any()


def test_adaptive_threshold_logits_formula() -> None:
    score = torch.tensor([[[[0.0, 1.0, 2.0, 9.0]]]])
    mean, std = score.mean(), score.std(unbiased=False)
    logits = adaptive_threshold_logits(score, k=1.0)
    torch.testing.assert_close(logits, (score - mean - std) / (std + 1e-6))
    assert (logits > 0).tolist() == [[[[False, False, False, True]]]]


# --- the filters on tiny inputs ---------------------------------------------------------------------


def test_white_tophat_keeps_small_bright_square_only() -> None:
    img = torch.ones(1, 1, 20, 20)
    img[..., 8:11, 8:11] = 4.0  # 3×3 bright square, smaller than the 5×5 element
    img[..., :, 15:] = 3.0  # a wide plateau, larger than the element
    th = white_tophat(img, 5)
    assert torch.allclose(th[..., 8:11, 8:11], torch.full((3, 3), 3.0))
    th[..., 8:11, 8:11] = 0
    assert th.abs().max() == 0


def test_max_median_background_ignores_a_single_spike() -> None:
    img = torch.zeros(1, 1, 15, 15)
    img[..., 7, 7] = 5.0
    bg = max_median_background(img, 5)
    assert bg.abs().max() == 0  # every directional median of a lone spike is the background
    assert create_model("maxmedian", size=5).score(img)[..., 7, 7].item() == 5.0


def test_mpcm_of_a_single_pixel() -> None:
    img = torch.zeros(1, 1, 21, 21)
    img[..., 10, 10] = 9.0
    s = mpcm_score(img, (3,))
    # centre cell mean 1, all eight neighbour cells 0: d_i = 1, product 1
    assert s[..., 10, 10].item() == pytest.approx(1.0)
    assert s.max().item() == pytest.approx(1.0)
    # a dark dip gives no response (bright targets only)
    assert mpcm_score(-img, (3,)).max().item() == 0.0


def test_singular_value_threshold_matches_svd() -> None:
    g = torch.Generator().manual_seed(0)
    for shape in [(50, 20), (20, 50)]:
        m = torch.randn(*shape, generator=g, dtype=torch.float64)
        u, s, vh = torch.linalg.svd(m, full_matrices=False)
        want = (u * (s - 3.0).clamp(min=0)) @ vh
        torch.testing.assert_close(singular_value_threshold(m, 3.0), want)


def test_rpca_recovers_low_rank_plus_sparse() -> None:
    g = torch.Generator().manual_seed(1)
    low = torch.randn(80, 2, generator=g, dtype=torch.float64) @ torch.randn(2, 60, generator=g, dtype=torch.float64)
    sparse = torch.zeros(80, 60, dtype=torch.float64)
    where = torch.rand(80, 60, generator=g) < 0.03
    sparse[where] = 8.0 * torch.sign(torch.randn(int(where.sum()), generator=g, dtype=torch.float64))
    a, e, iters = rpca_ialm(low + sparse, lam=1 / math.sqrt(80), tol=1e-8, max_iter=200)
    assert iters < 200
    assert torch.linalg.matrix_norm(a - low) / torch.linalg.matrix_norm(low) < 1e-3
    assert torch.equal(e.abs() > 1.0, where)


def test_patch_positions_cover_the_border() -> None:
    assert patch_positions(128, 50, 10) == [0, 10, 20, 30, 40, 50, 60, 70, 78]
    assert patch_positions(50, 50, 10) == [0]


def test_ipi_on_a_frame_smaller_than_the_patch() -> None:
    out = create_model("ipi")(torch.randn(1, 1, 24, 30))
    assert out.shape == (1, 1, 24, 30) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("tophat", {"size": 4}),
        ("maxmedian", {"size": 1}),
        ("mpcm", {"scales": ()}),
        ("ipi", {"reduce": "max"}),
        ("ipi", {"lam": 0}),
    ],
)
def test_bad_settings_are_config_errors(name: str, kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        create_model(name, **kwargs)
