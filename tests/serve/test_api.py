"""The HTTP API through FastAPI's TestClient: answers, bit depths, batches, every refusal, API keys."""

from __future__ import annotations

import base64
import io
import re

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from serve_frames import encode, near, scene

PNG = {"content-type": "image/png"}


def _png_size(data_url: str) -> tuple[int, int]:
    assert data_url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).size


def test_detect_raw_body_finds_the_target(client: TestClient) -> None:
    frame, xy = scene(1)
    r = client.post("/v1/detect?overlay=true&mask=true", content=encode(frame), headers=PNG)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["schema"] == "irstd-detections/1" and doc["checkpoint"] == "tophat" and doc["threshold"] == 0.5
    (rec,) = doc["frames"]
    assert (rec["file"], rec["height"], rec["width"]) == ("frame", 96, 96)
    assert near(rec["targets"], xy), (rec["targets"], xy)
    assert set(rec["targets"][0]) == {"x", "y", "area", "bbox", "peak"}
    assert _png_size(rec["overlay"]) == (96, 96) and _png_size(rec["mask"]) == (96, 96)
    assert {"decode_ms", "queue_ms", "inference_ms", "total_ms", "batch_size"} <= set(doc["timing"])


def test_detect_multipart_names_the_frame_and_takes_the_threshold(client: TestClient) -> None:
    frame, xy = scene(2)
    files = {"file": ("sky.png", encode(frame), "image/png")}
    r = client.post("/v1/detect?threshold=0.9", files=files)
    assert r.status_code == 200, r.text
    assert r.json()["threshold"] == 0.9 and r.json()["frames"][0]["file"] == "sky.png"
    assert "overlay" not in r.json()["frames"][0]
    # a threshold above every probability finds nothing: the query really reaches the thresholding
    assert client.post("/v1/detect?threshold=1.0", files=files).json()["frames"][0]["targets"] == []


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_detect_16_bit_frames(client: TestClient, fmt: str) -> None:
    frame, xy = scene(3, bit_depth=16)
    assert frame.max() > 255  # really 16-bit content
    r = client.post("/v1/detect", content=encode(frame, fmt, bit_depth=16), headers={"content-type": "image/*"})
    assert r.status_code == 200, r.text
    assert near(r.json()["frames"][0]["targets"], xy)


def test_batch_keeps_order_sizes_and_per_frame_errors(client: TestClient) -> None:
    (a, xa), (b, xb) = scene(4, size=96), scene(5, size=64)
    files = [("files", ("a.png", encode(a), "image/png")), ("files", ("notes.txt", b"not an image", "text/plain")),
             ("files", ("b.bmp", encode(b, "BMP"), "image/bmp"))]
    r = client.post("/v1/detect/batch", files=files)
    assert r.status_code == 200, r.text
    ra, bad, rb = r.json()["frames"]
    assert ra["file"] == "a.png" and ra["width"] == 96 and near(ra["targets"], xa)
    assert bad == {"file": "notes.txt", "error": "notes.txt: not an image or an unsupported format"}
    assert rb["file"] == "b.bmp" and rb["width"] == 64 and near(rb["targets"], xb)


def _error(r, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and "Traceback" not in body["error"]
    for w in words:
        assert w in body["error"], body["error"]


def test_every_refusal_has_its_status_and_one_line(make_app) -> None:
    frame, _ = scene(6)
    png = encode(frame)
    with TestClient(make_app(max_body_bytes=len(png) - 1)) as c:
        _error(c.post("/v1/detect", content=png, headers=PNG), 413, "exceeds the limit")

        def chunks():  # no Content-Length: the limit is enforced while reading
            yield png[:100]
            yield png[100:]
        _error(c.post("/v1/detect", content=chunks(), headers=PNG), 413, "exceeds the limit")
    with TestClient(make_app(max_pixels=96 * 96 - 1)) as c:
        _error(c.post("/v1/detect", content=png, headers=PNG), 413, "96x96", "limit")
    with TestClient(make_app(max_batch_frames=2)) as c:
        _error(c.post("/v1/detect", content=b"plain text", headers={"content-type": "text/plain"}), 415, "not an image")
        _error(c.post("/v1/detect", content=png[: len(png) // 2], headers=PNG), 422, "truncated")
        _error(c.post("/v1/detect", content=b""), 422, "empty body")
        _error(c.post("/v1/detect?threshold=high", content=png), 422, "threshold")
        _error(c.post("/v1/detect?threshold=1.5", content=png), 422, "threshold")
        two = [("files", ("a.png", png, "image/png")), ("files", ("b.png", png, "image/png"))]
        _error(c.post("/v1/detect", files=two), 422, "exactly one file")
        _error(c.post("/v1/detect/batch", content=png, headers=PNG), 415, "multipart")
        _error(c.post("/v1/detect/batch", files=two * 2), 413, "limit")
        _error(c.get("/v1/nothing"), 404)
        _error(c.get("/v1/detect"), 405)


def test_full_queue_answers_503_with_retry_after(make_app) -> None:
    frame, _ = scene(7)
    files = [("files", (f"{i}.png", encode(frame), "image/png")) for i in range(3)]
    with TestClient(make_app(max_queue=2)) as c:
        r = c.post("/v1/detect/batch", files=files)
        _error(r, 503, "busy")
        assert r.headers["retry-after"] == "1"
        assert c.post("/v1/detect/batch", files=files[:2]).status_code == 200  # within the bound


class _Slow(torch.nn.Module):
    """A detector that takes its time (the per-request timeout) or breaks (no traceback escapes)."""

    def __init__(self, seconds: float = 0.0, fail: bool = False, oom_width: int | None = None) -> None:
        super().__init__()
        self.seconds, self.fail, self.oom_width = seconds, fail, oom_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fail and x.shape[-1] != 64:  # the warm-up frame (64×64) passes
            raise RuntimeError("boom")
        if self.oom_width is not None and x.shape[-1] >= self.oom_width:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB")
        torch.cuda.synchronize() if x.is_cuda else None
        import time
        time.sleep(self.seconds if x.shape[-1] != 64 else 0)
        return x


def _app_around(module: torch.nn.Module, **config):
    from irstd.inference import Predictor
    from irstd.serve import ServeConfig, create_app

    return create_app(Predictor(module, (0.0, 1.0), device="cpu"), ServeConfig(**config), name="test")


def test_timeout_answers_504_and_model_failure_500() -> None:
    frame, _ = scene(8)
    with TestClient(_app_around(_Slow(seconds=1.0), timeout_s=0.2)) as c:
        _error(c.post("/v1/detect", content=encode(frame), headers=PNG), 504, "no answer within 0.2 s")
    with TestClient(_app_around(_Slow(fail=True))) as c:
        r = c.post("/v1/detect", content=encode(frame), headers=PNG)
        _error(r, 500, "model failed")
        assert "boom" not in r.text


def test_out_of_memory_costs_that_frame_only() -> None:
    """The per-frame policy of ``irstd detect`` (inference.pipeline.frame_failure): an allocation failure is
    that frame's error (503 alone, an error record in a batch), never a 500; the others are answered."""
    (small, _), (large, _) = scene(9, size=96), scene(10, size=160)
    with TestClient(_app_around(_Slow(oom_width=160))) as c:
        _error(c.post("/v1/detect?name=big.png", content=encode(large), headers=PNG), 503, "big.png: out of memory")
        files = [("files", ("big.png", encode(large), "image/png")), ("files", ("small.png", encode(small), "image/png"))]
        r = c.post("/v1/detect/batch", files=files)
        assert r.status_code == 200, r.text
        big, ok = r.json()["frames"]
        assert big["file"] == "big.png" and big["error"].startswith("big.png: out of memory")
        assert ok["file"] == "small.png" and "error" not in ok


def test_api_key_on_and_off(make_app, monkeypatch) -> None:
    png = encode(scene(9)[0])
    with TestClient(make_app(api_key="s3cret")) as c:
        r = c.post("/v1/detect", content=png, headers=PNG)
        _error(r, 401, "API key")
        assert r.headers["www-authenticate"] == "Bearer"
        _error(c.post("/v1/detect", content=png, headers={**PNG, "X-API-Key": "wrong"}), 401)
        _error(c.get("/metrics"), 401)
        _error(c.get("/v1/models"), 401)
        assert c.post("/v1/detect", content=png, headers={**PNG, "X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200  # probes stay open
        assert c.get("/").status_code == 200
    with TestClient(make_app()) as c:
        assert c.post("/v1/detect", content=png, headers=PNG).status_code == 200


def test_cors_off_unless_asked(make_app) -> None:
    ask = {"Origin": "http://console.example", "Access-Control-Request-Method": "POST"}
    with TestClient(make_app()) as c:
        assert "access-control-allow-origin" not in c.options("/v1/detect", headers=ask).headers
    with TestClient(make_app(cors_origins=["http://console.example"])) as c:
        r = c.options("/v1/detect", headers=ask)
        assert r.headers["access-control-allow-origin"] == "http://console.example"


def test_health_metrics_docs_and_page(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["ready"] is True
    client.post("/v1/detect", content=encode(scene(10)[0]), headers=PNG)
    client.post("/v1/detect", content=b"junk", headers=PNG)
    text = client.get("/metrics").text
    assert 'irstd_http_requests_total{route="/v1/detect",status="200"} 1.0' in text
    assert 'irstd_errors_total{reason="unsupported"} 1.0' in text
    assert "irstd_batch_size_count" in text and "irstd_http_request_duration_seconds_bucket" in text
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/detect", "/v1/detect/batch", "/v1/models", "/healthz", "/readyz", "/metrics"} <= set(paths)
    assert client.get("/docs").status_code == 200
    page = client.get("/").text
    assert "/static/app.js" in page and "http" not in page.replace("http-equiv", "")  # no CDN
    assert client.get("/static/app.js").status_code == 200


def test_learned_checkpoint_model_card_and_detect(make_app, learned_checkpoint) -> None:
    with TestClient(make_app(str(learned_checkpoint))) as c:
        (card,) = c.get("/v1/models").json()["models"]
        assert card["name"] == "sgem_unet_t" and card["tag"] == str(learned_checkpoint)
        assert card["params"] > 100_000 and card["normalization"] == {"mean": 100.0, "std": 20.0}
        assert card["stride"] == 16 and card["epoch"] == 1
        assert card["worker"]["threads"] >= 1 and card["worker"]["nice"] is not None  # what the model thread runs at
        frame, _ = scene(11, size=72)  # not a multiple of the stride: padded and cropped back
        r = c.post("/v1/detect?threshold=0.3", content=encode(frame), headers=PNG)
        assert r.status_code == 200, r.text
        rec = r.json()["frames"][0]
        assert (rec["height"], rec["width"]) == (72, 72) and isinstance(rec["targets"], list)


def test_cli_serve_refuses_a_missing_checkpoint_on_one_line(tmp_path, capsys) -> None:
    from irstd.cli.main import main

    assert main(["serve", str(tmp_path / "missing.safetensors"), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("irstd serve: error:") and "missing.safetensors" in err and "\n" not in err


@pytest.mark.parametrize("bad, words", [({"threads": 0}, "threads must be >= 1, got 0"),
                                        ({"worker_nice": 20}, "worker_nice must be in 0..19, got 20"),
                                        ({"worker_nice": -1}, "worker_nice must be in 0..19, got -1")])
def test_worker_settings_are_checked(bad: dict, words: str) -> None:
    from irstd.core.errors import ConfigError
    from irstd.serve import ServeConfig

    with pytest.raises(ConfigError, match=re.escape(words)):
        ServeConfig(**bad)


def test_loaded_objects_are_frozen_while_serving_and_released_after(make_app) -> None:
    import gc

    before = gc.get_freeze_count()
    with TestClient(make_app()) as c:
        assert c.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > before + 1000  # torch, FastAPI, the model: out of full collections
    assert gc.get_freeze_count() == 0  # collectable again once the service stops
    with TestClient(make_app(freeze_gc=False)):
        assert gc.get_freeze_count() == 0


def test_metrics_time_garbage_collections(client: TestClient) -> None:
    import gc

    gc.collect()  # a full collection while the service runs: timed, by generation
    text = client.get("/metrics").text
    assert 'irstd_gc_pause_seconds_count{generation="2"}' in text
    (longest,) = [float(line.split()[1]) for line in text.splitlines()
                  if line.startswith("irstd_gc_pause_longest_seconds ")]
    assert 0.0 < longest < 60.0


def test_decoding_is_bounded_and_concurrent_frames_all_answer(make_app, monkeypatch) -> None:
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import irstd.serve.requests as app_module  # where frames are decoded

    original, lock, running, most = app_module.load_image_bytes, threading.Lock(), [0], [0]

    def slow_decode(*args, **kwargs):  # counts the decodes in flight
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(app_module, "load_image_bytes", slow_decode)
    with TestClient(make_app(decode_threads=2)) as c:
        frames = [scene(40 + i)[0] for i in range(6)]
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda f: c.post("/v1/detect", content=encode(f), headers=PNG), frames))
    assert [r.status_code for r in answers] == [200] * 6
    assert most[0] == 2  # six requests at once, two decoders
    with pytest.raises(Exception, match="decode_threads must be >= 1"):
        make_app(decode_threads=0)


def test_batch_total_covers_inference() -> None:
    """Frames of one model call share its time: the batch answer counts each call once, so total ≥ inference."""
    frames = [scene(20 + i)[0] for i in range(4)]
    files = [("files", (f"f{i}.png", encode(f), "image/png")) for i, f in enumerate(frames)]
    with TestClient(_app_around(_Slow(seconds=0.2), max_batch=4, max_wait_ms=200)) as c:
        r = c.post("/v1/detect/batch", files=files)
    assert r.status_code == 200, r.text
    timing = r.json()["timing"]
    assert timing["total_ms"] >= timing["inference_ms"] >= 150, timing
    assert 1 <= timing["model_calls"] <= 4
