"""Every shipped verifier loads by name (SHA-256 checked), carries its model card, and separates a clear
target from an edge on a generated frame."""

from __future__ import annotations

import numpy as np
import pytest

from irstd.inference import Target
from irstd.verify import DEFAULT_VERIFIER, load_verifier, shipped_verifiers

SHIPPED = sorted(shipped_verifiers())


def test_the_default_is_shipped() -> None:
    assert DEFAULT_VERIFIER in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_verifier_loads_with_its_card(name: str) -> None:
    row = shipped_verifiers()[name]
    v = load_verifier(name)
    assert v.threshold == pytest.approx(row["threshold"])
    for key in ("train_command", "cache_files", "data", "machine", "val"):
        assert row[key], key
    assert f"--name {name}" in row["train_command"]
    assert "Never the test list, the held-out groups" in row["data"]
    # a 3 px target on a noisy ramp is kept, the end of a bright tilted edge is not
    yy, xx = np.mgrid[:96, :96].astype(np.float32)
    img = 100 + 0.05 * yy + np.random.default_rng(5).normal(0, 2, (96, 96)).astype(np.float32)
    img += 30 * np.exp(-((yy - 30) ** 2 + (xx - 30) ** 2) / 2)  # the target: a Gaussian of sigma 1 px
    img[:, 60:] += 30 * ((xx[:, 60:] - 60) * np.cos(0.3) + (yy[:, 60:] - 15) * np.sin(0.3) > 0)  # the edge
    cands = [Target(float(x), float(y), 1, (x, y, x, y), 1.0) for x, y in ((30, 30), (75, 60))]
    assert v.keep(img, cands).tolist() == [True, False]


def test_models_pretrained_lists_the_verifiers(capsys: pytest.CaptureFixture[str]) -> None:
    from irstd.cli.main import main

    assert main(["models", "--pretrained"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        line = next(l for l in out.splitlines() if l.startswith(name + " "))
        assert shipped_verifiers()[name]["sha256"][:12] in line
        assert ("(default of --verify)" in line) == (name == DEFAULT_VERIFIER)
    assert main(["models", "--pretrained", "sgem*"]) == 0
    assert "verifier" not in capsys.readouterr().out
