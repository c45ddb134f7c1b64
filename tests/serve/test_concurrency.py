"""Concurrency: parallel requests to a real server get their own frames' answers; the batcher batches."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
from serve_frames import encode, near, scene

from irstd.inference import Predictor
from irstd.serve import BackgroundServer, Job, MicroBatcher, ServeConfig, create_app


def test_parallel_requests_each_get_their_own_targets() -> None:
    frames = [scene(100 + i, size=64 + 8 * (i % 3)) for i in range(12)]  # three sizes, mixed in each batch
    predictor = Predictor.from_checkpoint("tophat", device="cpu")
    alone = [[tuple(t.bbox) for t in predictor.predict(f)[0].targets] for f, _ in frames]  # before serving
    assert sum(near([t.as_dict() for t in predictor.predict(f)[0].targets], xy) for f, xy in frames) >= 10
    app = create_app(predictor, ServeConfig(max_batch=8, max_wait_ms=20), name="tophat")

    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        def post(i: int) -> tuple[int, httpx.Response]:
            if i % 4 == 3:  # bad bodies interleaved with good ones must not disturb them
                return i, http.post("/v1/detect", content=b"\x89PNG\r\n\x1a\n broken", params={"name": f"bad{i}"})
            frame, _ = frames[i]
            return i, http.post("/v1/detect", content=encode(frame), params={"name": f"f{i}"},
                                headers={"content-type": "image/png"})

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(post, range(12)))
        assert http.get("/healthz").status_code == 200
    for i, r in answers:
        if i % 4 == 3:
            assert r.status_code in (415, 422) and r.json()["error"].startswith(f"bad{i}:"), r.text
            continue
        assert r.status_code == 200, r.text
        rec = r.json()["frames"][0]
        assert rec["file"] == f"f{i}" and rec["width"] == frames[i][0].shape[1]
        assert [tuple(t["bbox"]) for t in rec["targets"]] == alone[i], i  # its own frame's targets, exactly


def test_frames_queued_together_run_as_one_batch() -> None:
    predictor = Predictor.from_checkpoint("tophat", device="cpu")
    sizes: list[int] = []
    frames = [scene(200 + i)[0] for i in range(5)]

    async def main() -> list:
        batcher = MicroBatcher(predictor, max_batch=4, max_wait_ms=0, max_queue=8,
                               on_batch=lambda n, s: sizes.append(n))
        await batcher.start()
        try:
            # all five are queued before the gathering task runs: 4 in the first call, 1 in the next
            futures = batcher.submit([Job(f"f{i}", f, 0.5) for i, f in enumerate(frames)])
            return await asyncio.gather(*futures)
        finally:
            await batcher.stop()

    results = asyncio.run(main())
    assert sizes == [4, 1]
    assert [r.batch_size for r in results] == [4, 4, 4, 4, 1]
    for r, f in zip(results, frames):  # the same answer as the frame alone
        alone = predictor.predict(f)[0]
        assert [tuple(t["bbox"]) for t in r.record["targets"]] == [tuple(t.bbox) for t in alone.targets]
    assert np.isfinite([r.inference_ms for r in results]).all()


def test_model_thread_gets_its_priority_and_torch_threads_and_hands_them_down() -> None:
    import os
    import threading

    import pytest
    import torch

    if not hasattr(os, "setpriority"):
        pytest.skip("no per-thread priorities on this OS")
    base = os.getpriority(os.PRIO_PROCESS, 0)
    want = min(19, base + 3)
    threads_before = torch.get_num_threads()

    def child_nice() -> int:  # a thread the model thread starts, as OpenMP starts its pool
        seen: list[int] = []
        t = threading.Thread(target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        t.start()
        t.join()
        return seen[0]

    async def main() -> tuple[dict, int]:
        batcher = MicroBatcher(Predictor.from_checkpoint("tophat", device="cpu"), threads=1, nice=3)
        await batcher.start()
        try:
            return batcher.worker, await batcher.run_in_worker(child_nice)
        finally:
            await batcher.stop()

    worker, child = asyncio.run(main())
    assert worker == {"threads": 1, "nice": want} and child == want
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the caller's thread is untouched
    torch.set_num_threads(threads_before)  # torch may keep the count process-wide: leave it as found
