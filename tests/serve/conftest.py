"""Fixtures of the service tests: generated frames encoded as files, apps around small models."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'sgem-irstd[serve]')")
pytest.importorskip("httpx", reason="the test extra's httpx is not installed")

from serve_frames import generate_scene  # noqa: E402


@pytest.fixture
def make_app() -> Callable:
    """``make_app(**config)``: the service around the classical ``tophat`` detector (no weights)."""
    from irstd.inference import Predictor
    from irstd.serve import ServeConfig, create_app

    def build(spec: str = "tophat", **config):
        return create_app(Predictor.from_checkpoint(spec, device="cpu"), ServeConfig(**config), name=str(spec))

    return build


@pytest.fixture
def client(make_app):
    from fastapi.testclient import TestClient

    with TestClient(make_app()) as c:
        yield c


@pytest.fixture
def learned_checkpoint(tmp_path: Path) -> Path:
    """A real SGEM-UNet checkpoint (tiny variant, a few optimiser steps on generated scenes)."""
    import torch

    from irstd.data.items import normalize
    from irstd.models import create_model
    from irstd.models.checkpoint import save_checkpoint

    model = create_model("sgem_unet_t")
    norm = (100.0, 20.0)
    scenes = [generate_scene(s, size=(32, 32), n_targets=1, clutter=0) for s in range(4)]
    x = torch.from_numpy(np.stack([normalize(img, norm) for img, _, _ in scenes]))[:, None]
    y = torch.from_numpy(np.stack([m for _, m, _ in scenes]).astype(np.float32))[:, None]
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    model.train()
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(model(x), y).backward()
        opt.step()
    path = tmp_path / "sgem.safetensors"
    save_checkpoint(path, model.eval(), normalization=norm, epoch=1)
    return path
