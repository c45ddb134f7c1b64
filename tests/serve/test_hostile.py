"""Hostile requests (issue 36, item 2): the memory budget per request and in flight, frames of clients
that left or timed out dropped unrun, header/body timeouts, recovery after an allocation failure."""

from __future__ import annotations

import io
import json
import socket
import threading
import time

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from serve_frames import encode, scene

PNG = {"content-type": "image/png"}


class _Counting(torch.nn.Module):
    """Identity that counts its calls on frames other than the 64×64 warm-up, and may take its time."""

    def __init__(self, seconds: float = 0.0) -> None:
        super().__init__()
        self.seconds, self.calls, self.started = seconds, 0, threading.Event()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 64:
            self.calls += 1
            self.started.set()
            time.sleep(self.seconds)
        return x


def _app(module: torch.nn.Module, **config):
    from irstd.inference import Predictor
    from irstd.serve import ServeConfig, create_app

    return create_app(Predictor(module, (0.0, 1.0), device="cpu"), ServeConfig(**config), name="test")


def _one_line_error(r, status: int, *words: str) -> dict:
    assert r.status_code == status, r.text
    assert r.text.count("\n") == 0 and set(r.json()) == {"error"}, r.text
    for w in words:
        assert w in r.json()["error"], r.text
    return r.json()


def _zero_png(side: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((side, side), np.uint8)).save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def _count_decodes(monkeypatch) -> list[str]:
    import irstd.serve.requests as requests_module  # where frames are decoded

    decoded, original = [], requests_module.load_image_bytes

    def counting(data, name="<bytes>", **kw):
        decoded.append(name)
        return original(data, name, **kw)

    monkeypatch.setattr(requests_module, "load_image_bytes", counting)
    return decoded


def test_eight_4096_frames_are_refused_before_any_is_decoded(make_app, monkeypatch) -> None:
    decoded = _count_decodes(monkeypatch)
    big = _zero_png(4096)  # ~16 kB of file, 16.7 MP of pixels
    files = [("files", (f"z{i}.png", big, "image/png")) for i in range(8)]
    with TestClient(make_app()) as c:
        doc = _one_line_error(c.post("/v1/detect/batch", files=files), 413, "8 frames of 134,217,728 pixels",
                              "per-request limit of 16,777,216")
        assert doc["error"].startswith("8 frames")
        # one such frame fits the request limit; a service whose whole budget is smaller refuses it for good
        assert decoded == []
    with TestClient(make_app(max_inflight_mb=100)) as c:
        _one_line_error(c.post("/v1/detect?name=z.png", content=big, headers=PNG), 413, "1 frame",
                        "memory budget of 100.0 MiB")
        assert c.app.state.budget.used == 0 and c.app.state.budget.holds == 0
    assert decoded == []


def test_requests_beyond_the_inflight_budget_get_503_until_it_frees() -> None:
    from irstd.inference.memory_budget import frame_bytes_per_pixel
    from irstd.serve.budget import frame_bytes

    model = _Counting(seconds=0.6)
    frame = encode(scene(3, size=96)[0])
    one = frame_bytes(96 * 96, frame_bytes_per_pixel(None)) / 2**20  # MB of one frame; the budget holds one and a half
    with TestClient(_app(model, max_inflight_mb=one * 1.5)) as c:
        budget = c.app.state.budget
        first: list = []
        t = threading.Thread(target=lambda: first.append(c.post("/v1/detect", content=frame, headers=PNG)))
        t.start()
        assert model.started.wait(10)
        r = c.post("/v1/detect", content=frame, headers=PNG)
        _one_line_error(r, 503, "server busy", "requests in flight hold")
        assert r.headers["retry-after"] == "1"
        t.join(10)
        assert first[0].status_code == 200, first[0].text
        assert budget.used == 0 and budget.holds == 0  # every hold given back
        assert c.post("/v1/detect", content=frame, headers=PNG).status_code == 200  # room again
        assert 'irstd_errors_total{reason="memory_busy"} 1.0' in c.get("/metrics").text


def _raw_request(port: int, body: bytes, path: str = "/v1/detect", *, send_all: bool = True) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    s.sendall(head + (body if send_all else body[:10]))
    return s


def _answer(s: socket.socket) -> str:
    """All the server sends until it closes the connection."""
    chunks = []
    while chunk := s.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks).decode("latin-1")


def _wait(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_queued_frames_of_a_client_that_left_or_timed_out_are_not_run() -> None:
    import httpx

    from irstd.serve import BackgroundServer

    model = _Counting(seconds=2.5)
    frame = encode(scene(4, size=96)[0])
    app = _app(model, max_batch=1, timeout_s=1.5)
    with BackgroundServer(app) as server:
        batcher, budget = app.state.batcher, app.state.budget
        busy = _raw_request(server.port, frame)  # occupies the model for 2.5 s
        assert model.started.wait(10)
        gone = _raw_request(server.port, frame)  # queued behind it...
        assert _wait(lambda: batcher.depth() == 1)
        gone.close()  # ...and its client leaves
        with httpx.Client(base_url=server.url, timeout=10) as http:
            r = http.post("/v1/detect", content=frame, headers=PNG)  # queued behind, then times out (1.5 s)
            _one_line_error(r, 504, "no answer within 1.5 s")
            assert _wait(lambda: batcher.dropped == 2 and budget.holds == 0)
            assert model.calls == 1  # only the first frame ran
            metrics = http.get("/metrics").text
        assert "irstd_frames_dropped_total 2.0" in metrics
        assert 'status="499"' in metrics and 'status="500"' not in metrics
        busy.close()


def test_truncated_slow_and_oversized_heads_and_bodies_never_500() -> None:
    import httpx

    from irstd.serve import BackgroundServer

    frame = encode(scene(5, size=96)[0])
    app = _app(_Counting(), header_timeout_s=0.5, body_timeout_s=0.5, keep_alive_s=0.5)
    with BackgroundServer(app) as server:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)  # sends nothing
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never ends its head
        start = time.monotonic()
        assert silent.recv(100) == b"" and slow.recv(100) == b""  # closed by the server
        assert time.monotonic() - start < 3
        trickle = _raw_request(server.port, frame, send_all=False)  # 10 bytes of the body, then nothing
        answer = _answer(trickle)
        assert answer.startswith("HTTP/1.1 408") and "did not arrive within 0.5 s" in answer
        cut = _raw_request(server.port, frame, send_all=False)
        cut.close()  # truncated body: the client leaves
        bomb = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        bomb.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        assert _answer(bomb).startswith("HTTP/1.1 431")  # arrives in one read: h11's own limit misses it
        trickled = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        try:
            for i in range(40):  # the same limit when the head comes in pieces
                trickled.sendall(b"X-Part: " + b"b" * 500 + b"\r\n" if i else b"GET /healthz HTTP/1.1\r\n")
                time.sleep(0.005)
        except OSError:  # the server closed it while we were still sending
            pass
        assert "exceed 16384 bytes" in _answer(trickled)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("/healthz").status_code == 200
            assert _wait(lambda: 'status="499"' in http.get("/metrics").text)
            assert 'status="500"' not in http.get("/metrics").text
        for s in (silent, slow, trickle, bomb, trickled):
            s.close()
        assert app.state.budget.holds == 0


def test_shutdown_is_prompt_with_work_in_flight_and_queued() -> None:
    from irstd.serve import BackgroundServer

    model = _Counting(seconds=1.0)
    frame = encode(scene(7, size=96)[0])
    app = _app(model, max_batch=1, shutdown_timeout_s=0.3)
    server = BackgroundServer(app).__enter__()
    clients = [_raw_request(server.port, frame) for _ in range(4)]  # one running, three queued: 4 s of work
    assert model.started.wait(10)
    start = time.monotonic()
    server.__exit__(None, None, None)
    assert time.monotonic() - start < 3.5  # the running frame ends; the queued ones (3 s more) never start
    assert model.calls == 1
    for c in clients:
        c.close()


def test_uvicorn_gets_the_timeouts_and_limits_of_the_config(make_app) -> None:
    from irstd.serve.server import uvicorn_config

    app = make_app(header_timeout_s=7, keep_alive_s=3, max_header_bytes=8192, max_connections=99,
                   shutdown_timeout_s=2)
    cfg = uvicorn_config(app)
    assert (cfg.timeout_keep_alive, cfg.h11_max_incomplete_event_size, cfg.limit_concurrency,
            cfg.timeout_graceful_shutdown) == (3, 8192, 99, 2)
    assert cfg.http.header_timeout == 7 and not cfg.server_header
    with pytest.raises(Exception, match="header_timeout_s must be > 0"):
        make_app(header_timeout_s=0)


def test_after_an_allocation_failure_ordinary_frames_work(make_app) -> None:
    frame = encode(scene(6)[0])
    with TestClient(make_app()) as c:
        predictor = c.app.state.batcher.predictor
        original, failed = predictor.probabilities, []

        def fail_once(frames):
            if not failed:
                failed.append(1)
                raise RuntimeError("could not create a primitive")
            return original(frames)

        predictor.probabilities = fail_once
        r = c.post("/v1/detect?name=a.png", content=frame, headers=PNG)
        _one_line_error(r, 503, "a.png: out of memory")
        assert r.headers["retry-after"] == "1"
        for _ in range(3):  # no sticky failure
            assert c.post("/v1/detect", content=frame, headers=PNG).status_code == 200
        assert c.app.state.budget.holds == 0


@pytest.mark.parametrize("argv,words", [
    (["--header-timeout", "0"], ["--header-timeout", "(0, ∞)"]),
    (["--max-inflight-mb", "-1"], ["--max-inflight-mb", "(0, ∞)"]),
    (["--max-request-pixels", "0"], ["--max-request-pixels", "[1, ∞)"]),
    (["--max-header-kb", "4096"], ["--max-header-kb", "[1, 1024]"]),
])
def test_cli_checks_the_new_limits_at_parse_time(argv, words, capsys) -> None:
    from irstd.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["serve", "m.safetensors", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(w in err for w in words), err


def test_budget_holds_give_back_once_and_call_idle() -> None:
    from irstd.serve.budget import Budget, BudgetBusy, BudgetTooLarge

    idle: list[int] = []
    b = Budget(100, on_idle=lambda: idle.append(b.used))
    a = b.take(60, "a")
    with pytest.raises(BudgetBusy):
        b.take(50, "b")
    with pytest.raises(BudgetTooLarge):
        b.take(101, "c")
    body = b.take(0, "body")
    body.grow(30, "body")
    with pytest.raises(BudgetBusy):
        body.grow(20, "body")
    a.release()
    a.release()
    assert (b.used, b.holds, idle) == (30, 1, [])
    body.release()
    assert (b.used, b.holds, idle) == (0, 0, [0])
    assert json.dumps(b.limit) == "100"
