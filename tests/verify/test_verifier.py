"""A verifier trained in seconds on generated patches keeps a planted target and rejects a planted edge and
speck; any detector composed with a verifier runs through detect, evaluate, track and the service."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from irstd.inference import Predictor, Target
from irstd.verify import load_verifier
from irstd.verify.training import PatchSet, TrainSettings, train_verifier

C, S = 24, 16  # cached patch side, verifier patch side


def _background(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (100 + 0.05 * yy + rng.normal(0, 2, shape)).astype(np.float32)


def _blob(img: np.ndarray, y: float, x: float, amp: float, sigma: float) -> None:
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    img += amp * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))


def _edge(img: np.ndarray, y: float, x: float, amp: float, angle: float) -> None:
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    img += amp * (((xx - x) * np.cos(angle) + (yy - y) * np.sin(angle)) > 0)


def _patch(rng: np.random.Generator, kind: str) -> np.ndarray:
    img = _background(rng, (C, C))
    c = C // 2 + rng.uniform(-0.5, 0.5, 2)
    amp = rng.uniform(15, 40)
    if kind == "target":
        _blob(img, c[0], c[1], amp, rng.uniform(1.0, 1.6))
    elif kind == "edge":
        _edge(img, c[0], c[1], amp, rng.uniform(0, 2 * np.pi))
    else:  # a single hot pixel
        img[C // 2, C // 2] += amp
    return img


@pytest.fixture(scope="module")
def verifier_file(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    kinds = ["target"] * 300 + ["edge"] * 150 + ["speck"] * 150
    patches = np.stack([_patch(rng, k) for k in kinds])
    labels = np.asarray([k == "target" for k in kinds], np.uint8)
    source = np.asarray([f"f{i}:{k}" for i, k in enumerate(kinds)])
    settings = TrainSettings(epochs=6, per_epoch=1024, batch_size=64, width=8, patch_size=S, jitter=1, lr=5e-3)
    path = tmp_path_factory.mktemp("verifier") / "tiny.safetensors"
    card = train_verifier([PatchSet("generated", patches, labels, source)], settings, path)
    assert card["params"] < 100_000
    return path


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, list[Target], list[bool]]:
    """A 64×64 frame: two targets (one 1 px from the top-left corner), an edge, a speck; the candidates."""
    rng = np.random.default_rng(5)
    img = _background(rng, (64, 64))
    _blob(img, 20, 20, 30, 1.3)
    _blob(img, 1, 1, 30, 1.3)
    _edge(img[:, 40:], 40, 10, 30, 0.3)  # a bright region from column ~50 on, tilted
    img[52, 12] += 30
    cands = [(20, 20), (1, 1), (50.2, 40), (12, 52)]  # (x, y)
    targets = [Target(float(x), float(y), 1, (int(x), int(y), int(x), int(y)), 1.0) for x, y in cands]
    return img, targets, [True, True, False, False]


def test_keeps_planted_targets_rejects_edge_and_speck(verifier_file: Path, planted) -> None:
    v = load_verifier(verifier_file)
    frame, targets, truth = planted
    scores = v.scores(frame, targets)
    assert v.keep(frame, targets).tolist() == truth, scores
    assert [t for t in v.filter(frame, targets)] == [t for t, k in zip(targets, truth) if k]
    # a gain and offset of the frame (16-bit) change nothing
    np.testing.assert_allclose(v.scores(frame * 257 + 500, targets), scores, atol=1e-4)


def test_save_load_round_trip_and_errors(verifier_file: Path, tmp_path: Path) -> None:
    from irstd.core.errors import CheckpointError

    v = load_verifier(verifier_file, threshold=0.3)
    assert v.threshold == 0.3 and v.patch_size == S
    p = v.save(tmp_path / "again.safetensors")
    assert load_verifier(p, threshold=0.3).scores(np.zeros((8, 8), np.float32), []).shape == (0,)
    with pytest.raises(CheckpointError, match="no such verifier"):
        load_verifier(tmp_path / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"nope")
    with pytest.raises(CheckpointError, match="not a verifier file"):
        load_verifier(tmp_path / "bad.safetensors")


class _RejectAll:
    def keep(self, frame, targets):
        return np.zeros(len(targets), bool)


def test_predictor_drops_rejected_targets_and_their_pixels(planted) -> None:
    frame = planted[0]
    plain = Predictor.from_checkpoint("tophat", device="cpu").predict(frame)[0]
    assert plain.targets
    verified = Predictor.from_checkpoint("tophat", device="cpu", verifier=_RejectAll()).predict(frame)[0]
    assert verified.targets == [] and not verified.mask.any()
    np.testing.assert_array_equal(verified.prob, plain.prob)  # the network's map is kept


def _frames(folder: Path, n: int = 3) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(1, n + 1):
        img = _background(rng, (48, 64))
        _blob(img, 20, 10 + 3 * i, 40, 1.3)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def test_detect_evaluate_track_with_verifier(verifier_file: Path, tmp_path: Path, capsys) -> None:
    from irstd.cli.main import main

    seq = _frames(tmp_path / "seq")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "seq.txt").write_text("".join(f"20,{10 + 3 * i}\n" for i in range(1, 4)))
    v = f"--verify={verifier_file}"
    assert main(["detect", "tophat", str(seq), v, "--out", str(tmp_path / "det"), "--device", "cpu"]) == 0
    assert (tmp_path / "det" / "detections.json").is_file()
    assert main(["track", "tophat", str(seq), v, "--out", str(tmp_path / "trk"), "--device", "cpu"]) == 0
    assert (tmp_path / "trk" / "tracks.jsonl").is_file()
    capsys.readouterr()
    assert main(["evaluate", "tophat", v, "--sequence", str(seq), "--out", str(tmp_path / "ev"),
                 "--device", "cpu"]) == 0
    said = capsys.readouterr().out
    assert "+ verifier" in said and f"Sequence `{seq}`" in said
    assert main(["evaluate", "tophat", v, "--out", str(tmp_path / "ev2"), "--device", "cpu"]) == 0  # generated scenes
    assert "IoU" in (tmp_path / "ev2" / "verify.md").read_text()


def test_service_with_verifier() -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    import io

    from fastapi.testclient import TestClient

    from irstd.serve import ServeConfig, create_app

    predictor = Predictor.from_checkpoint("tophat", device="cpu", verifier=_RejectAll())
    img = _background(np.random.default_rng(2), (48, 64))
    _blob(img, 20, 20, 40, 1.3)
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format="PNG")
    with TestClient(create_app(predictor, ServeConfig(), name="tophat")) as client:
        r = client.post("/v1/detect", content=buf.getvalue(), headers={"content-type": "image/png"})
        assert r.status_code == 200, r.text
        assert r.json()["frames"][0]["targets"] == []


def test_a_rejected_merged_target_leaves_the_mask_whole() -> None:
    """Fragments merged into one target (2 px apart) go together when the verifier rejects it; a separate
    target 20 px away stays with its pixels."""
    from irstd.inference.targets import extract_targets
    from irstd.inference.verifier_protocol import apply_verifier

    mask = np.zeros((40, 60), bool)
    mask[10:12, 10:12] = True
    mask[10:12, 14:16] = True  # 2 px gap: the same target
    mask[10:12, 36:38] = True  # 20 px away: another
    prob = mask.astype(np.float32)
    targets = extract_targets(prob, mask, 8, 3.0)
    assert len(targets) == 2

    class RejectFirst:
        def keep(self, frame, ts):
            return np.array([t.bbox[0] != 10 for t in ts])

    out, kept = apply_verifier(RejectFirst(), prob, mask, targets, 8, 3.0)
    assert len(kept) == 1 and kept[0].bbox[0] == 36
    assert not out[:, :30].any() and out[10:12, 36:38].all() and out.sum() == 4
