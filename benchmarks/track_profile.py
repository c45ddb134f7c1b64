"""Where the milliseconds of one ``irstd track`` frame go: the full-frame loop, stage by stage.

    python benchmarks/track_profile.py --threads 2 --whole-frame-targets --prefetch 0 2 \
        --out benchmarks/results/tracking/track-profile

Runs :func:`~irstd.inference.tracking_run.track_frames` (the loop ``irstd track`` runs) over ``seq4`` of
``$IRSTD_DATASETS/ISTD-sequences`` with the full-frame predictor (default ``sgem_unet_t.sirst`` in the fast
mode) and a JSON Lines writer, and times each stage by wrapping the library function that does it (the
loop itself is not changed): decode (``load_image``), normalise (``Predictor._normalise``: cast, range
policy, statistics), network (``Predictor._run``: stack, pad, the model, sigmoid, crop, to numpy), targets
(``Predictor.prediction``: threshold, connected components), the detection record, camera
(``GlobalMotion.update``), tracker (``Tracker.update``), the track record and the write. ``other`` is the
frame's time not inside a stage of the main thread: the loop's glue and, with prefetch, the wait for a
frame the reader thread has not finished. Decoding done in the reader thread (``--prefetch`` N > 0) is
shown apart: it overlaps the rest. ``--whole-frame-targets`` adds the loop as it was before (no
read-ahead, the target extraction of ``benchmarks/whole_frame_targets.py``).

The settings run side by side in one pass: each has its own loop (source, tracker, writer) and they take
turns, ``--chunk`` frames each (default 25), so that they see the same machine state even on a loaded
machine whose load moves within seconds; their records are checked byte-identical. While another
setting runs, a read-ahead setting's reader thread decodes its next frames (at most its depth, then
waits): a bias in its favour of at most depth ÷ chunk of a decode per frame (2 ÷ 25 × 4 ms ≈ 0.3 ms).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import irstd.inference.pipeline as pipeline_mod
import irstd.inference.sources.files as files_mod
import irstd.inference.tracking_run as tracking_mod
from irstd.bench.timing import environment
from irstd.inference import Predictor
from irstd.inference.records import RecordWriter
from irstd.tracking import Tracker, TrackerParams
from irstd.tracking.motion import GlobalMotion
from track_speed import emit_report  # noqa: E402 — beside this script
from whole_frame_targets import whole_frame_targets  # noqa: E402 — beside this script

SHARED = Path(os.environ.get("IRSTD_DATASETS") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
DATA = SHARED / "ISTD-sequences"

#: (stage, owner, attribute) in the order of a frame's work
STAGES: list[tuple[str, Any, str]] = [
    ("decode", files_mod, "load_image"),
    ("normalise", Predictor, "_normalise"),
    ("network", Predictor, "_run"),
    ("targets", Predictor, "prediction"),
    ("detection record", pipeline_mod, "frame_record"),
    ("camera", GlobalMotion, "update"),
    ("tracker", Tracker, "update"),
    ("track record", tracking_mod, "track_record"),
    ("write", RecordWriter, "write"),
]


class StageClock:
    """Seconds spent in each wrapped function, by stage and by thread (main or reader), added to ``spent``
    (the dict of the setting being pulled; a reader thread's to the setting active when it first decoded)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self._readers: dict[int, dict[str, float]] = {}
        self._lock = threading.Lock()
        self._saved: list[tuple[Any, str, Any]] = []

    def _wrap(self, stage: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                with self._lock:
                    if threading.current_thread() is threading.main_thread():
                        self.spent[stage] += dt
                    else:
                        self._readers.setdefault(threading.get_ident(), self.spent)[f"{stage} (reader thread)"] += dt
        return timed

    def __enter__(self) -> "StageClock":
        for stage, owner, name in STAGES:
            fn = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
            self._saved.append((owner, name, fn))
            setattr(owner, name, self._wrap(stage, fn))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, fn in reversed(self._saved):
            setattr(owner, name, fn)
        self._saved.clear()


class Setting:
    """One way of running the loop (read-ahead, target extraction) over ``seq``, pulled frame by frame."""

    def __init__(self, predictor: Predictor, seq: str, out: Path, prefetch: int, old_targets: bool) -> None:
        self.name = "before" if old_targets else f"prefetch {prefetch}"
        self.prefetch, self.old_targets, self.out = prefetch, old_targets, out
        self.spent: dict[str, float] = defaultdict(float)
        self.frames, self.total, self.done = 0, 0.0, False
        self.writer = RecordWriter(out)
        self.steps = tracking_mod.track_frames(predictor, DATA / seq, params=TrackerParams(), prefetch=prefetch)

    def pull(self, clock: StageClock, n: int) -> None:
        """Up to ``n`` frames: decode → detect → track → write, each timed."""
        clock.spent = self.spent
        with whole_frame_targets(self.old_targets):
            for _ in range(n):
                t0 = time.perf_counter()
                step = next(self.steps, None)
                if step is None:
                    self.done = True
                    self.writer.close()
                    return
                if "error" in step.record:
                    raise SystemExit(f"{step.record['file']}: {step.record['error']}")
                self.writer.write(step.record)
                self.total += time.perf_counter() - t0
                self.frames += 1

    def result(self) -> dict[str, Any]:
        ms = {k: 1000 * v / self.frames for k, v in self.spent.items()}
        ms["other"] = 1000 * self.total / self.frames - sum(v for k, v in ms.items() if "reader" not in k)
        return {"loop": self.name, "prefetch": self.prefetch, "frames": self.frames, "fps": self.frames / self.total,
                "ms_per_frame": 1000 * self.total / self.frames, "stages_ms": ms}


def profile(predictor: Predictor, seq: str, tmp: Path, loops: list[tuple[int, bool]], chunk: int) -> list[dict[str, Any]]:
    """Every setting of ``loops`` ((prefetch, whole-frame targets) each) over ``seq``: ``chunk`` frames of
    one, then of the next, … until all are done (0: each whole sequence in turn); their records checked equal."""
    settings = [Setting(predictor, seq, tmp / f"{seq}-{k}.jsonl", n, old) for k, (n, old) in enumerate(loops)]
    with StageClock() as clock:
        while not all(s.done for s in settings):
            for s in settings:
                if not s.done:
                    s.pull(clock, chunk or 10**9)
    first = settings[0].out.read_bytes()
    for s in settings[1:]:
        if s.out.read_bytes() != first:
            raise SystemExit(f"{seq}: the records of '{s.name}' differ from those of '{settings[0].name}'")
    return [s.result() for s in settings]


def markdown(runs: list[dict[str, Any]]) -> str:
    """One column per run: mean ms per frame of each stage."""
    names = [s for s, _, _ in STAGES]
    keys = names + [f"{s} (reader thread)" for s in names] + ["other"]
    keys = [k for k in keys if any(k in r["stages_ms"] for r in runs)]
    head = "| stage | " + " | ".join(f"{r['loop']} (run {r['repeat']})" for r in runs) + " |"
    out = [head, "|" + "---|" * (len(runs) + 1)]
    for k in keys:
        out.append(f"| {k} | " + " | ".join(f"{r['stages_ms'].get(k, 0.0):.2f}" for r in runs) + " |")
    out.append("| **frame (ms)** | " + " | ".join(f"**{r['ms_per_frame']:.1f}**" for r in runs) + " |")
    out.append("| **FPS** | " + " | ".join(f"**{r['fps']:.1f}**" for r in runs) + " |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="sgem_unet_t.sirst")
    ap.add_argument("--precision", default="fast")
    ap.add_argument("--seq", default="seq4")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prefetch", nargs="+", type=int, default=[0],
                    help="frames decoded ahead in a reader thread, one run per setting (0: decode in the loop)")
    ap.add_argument("--whole-frame-targets", action="store_true",
                    help="also run the loop as before (no read-ahead, the whole-frame target extraction) first")
    ap.add_argument("--repeats", type=int, default=1, help="passes per setting")
    ap.add_argument("--chunk", type=int, default=25,
                    help="frames of one setting before the next setting's (0: each setting's whole sequence in turn)")
    ap.add_argument("--out", type=Path, default=None, help="write OUT.md and OUT.json")
    a = ap.parse_args()
    if not DATA.exists():
        print(f"{DATA}: not found", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    env = environment(torch.device("cpu"))
    predictor = Predictor.from_checkpoint(a.model, device="cpu", precision=a.precision, batch_size=8)
    predictor.predict([np.zeros((512, 640), np.uint8)])  # warm-up (the fast mode's rewrite)
    runs = []
    loops = ([(0, True)] if a.whole_frame_targets else []) + [(n, False) for n in a.prefetch]
    with tempfile.TemporaryDirectory(prefix="track-profile-") as tmp:
        for repeat in range(a.repeats):
            for r in profile(predictor, a.seq, Path(tmp), loops, a.chunk):
                r["repeat"] = repeat + 1
                runs.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
    emit_report(f"`irstd track` loop, per stage: {env['cpu_name']}, {a.threads} threads", [
        f"Model `{a.model}`, precision {a.precision}, full frame, `{a.seq}` ({runs[0]['frames']} frames, 640×512 PNG), "
        f"similarity camera; torch threads {env['threads']}; load average before {env['load_average']}, after "
        "{after}.",
        f"The settings run side by side, taking turns of {a.chunk} frames (0: whole sequences in turn); "
        "records checked byte-identical. "
        "Mean ms per frame in each stage (the library function wrapped by a timer); `other` = the frame's time "
        "outside the main thread's stages (loop glue; with prefetch, waiting for the reader thread). A "
        "stage marked (reader thread) overlaps the main thread's work."],
        markdown(runs), env, {"runs": runs}, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
