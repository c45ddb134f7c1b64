"""Scores do not depend on the evaluation batch size: each frame runs at its own stride-padded size."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from irstd.data import pad_collate
from irstd.engine.eval_loop import run_evaluation

STRIDE = 8
SIZES = [(20, 24), (33, 17), (16, 40), (24, 24)]


def _items() -> list[dict]:
    gen = torch.Generator().manual_seed(3)
    items = []
    for k, (h, w) in enumerate(SIZES):
        image = torch.rand(1, h, w, generator=gen)
        mask = torch.zeros(1, h, w)
        mask[:, h // 2 - 1 : h // 2 + 1, w // 2 - 1 : w // 2 + 1] = 1  # one 2×2 target
        items.append({"image": image, "mask": mask, "name": f"f{k}", "path": f"f{k}.png"})
    return items


def _model() -> nn.Module:
    # the first conv's bias makes the zero pad non-zero for the second conv: a frame padded further
    # (to a larger neighbour in its batch) sees other context near its bottom and right edges
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1)).eval()


def _run(model: nn.Module, batch_size: int) -> tuple[object, dict[str, torch.Tensor]]:
    loader = DataLoader(_items(), batch_size=batch_size, shuffle=False, collate_fn=pad_collate(STRIDE))
    logits: dict[str, torch.Tensor] = {}
    result = run_evaluation(model, loader, torch.device("cpu"),
                            on_image=lambda name, lg, mk: logits.__setitem__(name, lg))
    return result, logits


def test_scores_and_logits_equal_at_every_batch_size() -> None:
    model = _model()
    one, logits_one = _run(model, 1)
    for batch_size in (2, 3, 4):
        result, logits = _run(model, batch_size)
        assert result == one, batch_size
        for name, lg in logits_one.items():
            assert lg.shape == logits[name].shape
            torch.testing.assert_close(logits[name], lg, rtol=0, atol=1e-6)


def test_the_model_would_differ_if_run_on_the_batch_pad() -> None:
    """The check above can fail: run whole on the batch's pad, the small frames get other logits."""
    model = _model()
    batch = pad_collate(STRIDE)(_items())
    with torch.no_grad():
        whole = model(batch["image"])  # (4, 1, 40, 40): every frame padded to the largest
        h, w = SIZES[0]
        alone = model(batch["image"][:1, :, :24, :24])  # frame 0 at its own padded size
    assert not torch.allclose(whole[0, :, :h, :w], alone[0, :, :h, :w])
    assert batch["padded"] == [(24, 24), (40, 24), (16, 40), (24, 24)]
