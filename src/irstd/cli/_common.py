"""Options and defaults shared by several commands: one definition each.

Its top level imports no torch (``irstd --help`` must stay fast): library facts an option shows are
imported by the function that adds the option, the rest inside the functions that run.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..core.errors import ConfigError

if TYPE_CHECKING:
    from ..export.quantize import CalibrationSpec

#: default output folder of ``irstd detect``
DETECTIONS_DIR = "detections"
#: default output folder of ``irstd bench``
BENCH_DIR = "bench-results"


def ranged(kind: Callable[[str], Any], low: float, high: float | None = None, *,
           open_low: bool = False, open_high: bool = False) -> Callable[[str], Any]:
    """An argparse type: ``kind`` within [low, high] (``open_low``/``open_high`` exclude an end), checked at
    parse time; the error names the range and the value to give instead."""
    left, right = "(" if open_low else "[", ")" if open_high or high is None else "]"
    span = f"{left}{low:g}, {'∞' if high is None else format(high, 'g')}{right}"
    noun = "a whole number" if kind is int else "a number"

    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}: give {noun} in {span}") from None
        below = v <= low if open_low else v < low
        above = high is not None and (v >= high if open_high else v > high)
        if below or above:
            raise argparse.ArgumentTypeError(f"{v} is out of range {span}: give {noun} in {span}")
        return v

    parse.__name__ = kind.__name__  # argparse names the type in "invalid <name> value"
    return parse


#: a probability threshold: 0 < t < 1 (0 would keep every pixel, 1 none)
probability = ranged(float, 0.0, 1.0, open_low=True, open_high=True)
#: a count that must be at least 1
positive_int = ranged(int, 1)
#: help text of ``--threshold`` (detect, evaluate, track, serve)
THRESHOLD_HELP = "probability threshold, 0 < t < 1 (default 0.5)"


def __getattr__(name: str) -> Any:
    if name == "RUNS_DIR":  # default parent folder of run folders and of evaluations of models given by name
        from ..engine.config import TrainConfig  # late: the config module loads yaml and numpy

        return TrainConfig.out
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")


def add_verify(p: argparse.ArgumentParser) -> None:
    """``--verify [NAME|FILE]``: a candidate verifier after the detector (docs/verify.md); alone, the shipped one."""
    from ..verify.defaults import DEFAULT_VERIFIER

    p.add_argument("--verify", nargs="?", const=DEFAULT_VERIFIER, metavar="NAME|FILE",
                   help=f"check each target with a candidate verifier and drop the clutter it rejects (alone: the "
                        f"shipped {DEFAULT_VERIFIER}; a shipped name (docs/verify.md) or a .safetensors file of "
                        "scripts/train_verifier.py; "
                        "put it after the positional arguments or write --verify=NAME)")


def verifier_of(args: argparse.Namespace) -> Any:
    """The verifier ``--verify`` names (None without the option)."""
    if not getattr(args, "verify", None):
        return None
    from ..verify import load_verifier

    return load_verifier(args.verify)


def add_precision(p: argparse.ArgumentParser, amp_help: str) -> None:
    """``--precision fp32|fast|int8`` (fp32 by default everywhere, as in the library), ``--amp`` and the
    calibration options int8 needs for a checkpoint."""
    from ..core.amp import AMP_CHOICES
    from ..inference.precisions import COMMAND_PRECISIONS

    p.add_argument("--precision", default="fp32", choices=COMMAND_PRECISIONS,
                   help="fp32 (default, the scores of record), the device's fast mode (docs/speed.md) or int8 "
                        "(ONNX Runtime, CPU: an int8 .onnx file, or a checkpoint with --calib; docs/int8.md)")
    p.add_argument("--amp", choices=AMP_CHOICES, help=amp_help)
    add_calibration(p, "with --precision int8 and a checkpoint: ")


def add_calibration(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """``--calib DATA [--calib-split S | --calib-split-file F] [--calib-frames N]``."""
    from ..export.defaults import CALIB_FRAMES

    p.add_argument("--calib", metavar="DATA", help=prefix + "dataset folder whose training frames calibrate int8")
    p.add_argument("--calib-split", default="train", help="calibration split (default train; test is refused)")
    p.add_argument("--calib-split-file", metavar="F", help="list of calibration stems instead of --calib-split")
    p.add_argument("--calib-frames", type=positive_int, default=CALIB_FRAMES,
                   help=f"calibration frames, >= 1 (default {CALIB_FRAMES}, chosen deterministically)")


def calibration_spec(args: argparse.Namespace) -> CalibrationSpec:
    """The calibration spec of the options of :func:`add_calibration`; ``--calib`` is required."""
    from ..export.quantize import CalibrationSpec

    if not args.calib:
        raise ConfigError("int8 needs calibration frames: add --calib DATA (a dataset folder with training frames)")
    return CalibrationSpec(args.calib, args.calib_split, args.calib_split_file, args.calib_frames)


def int8_model(args: argparse.Namespace) -> str:
    """The model argument to run: with ``--precision int8``, a checkpoint becomes its cached int8 ONNX file
    (quantised once per checkpoint and calibration spec); an ``.onnx`` file is used as is."""
    if args.precision != "int8":
        return args.checkpoint
    from ..export.quantize import cached_int8
    from ..inference.backends.onnx import require_onnxruntime
    from ..models import resolve_model_spec

    if resolve_model_spec(args.checkpoint).is_onnx:
        return args.checkpoint
    require_onnxruntime()
    return str(cached_int8(args.checkpoint, calibration_spec(args)))


def add_frame_options(p: argparse.ArgumentParser) -> None:
    """``--input-range``, ``--tile``, ``--tile-overlap`` and ``--merge-distance``: how frames outside the
    training range and frames too large for memory are run, and what one target is (``irstd detect``,
    ``irstd track``)."""
    from ..inference.input_range import INPUT_RANGE_POLICIES
    from ..inference.targets import MERGE_DISTANCE

    p.add_argument("--input-range", choices=INPUT_RANGE_POLICIES, default="auto",
                   help="frames outside the training range (e.g. 16-bit for an 8-bit model): auto (default) "
                        "scales or stretches them, native uses them as is; see docs/reliability.md")
    p.add_argument("--tile", type=positive_int, default=None, metavar="PIXELS",
                   help="run frames larger than this in overlapping tiles of this size, >= 1 (a multiple of the stride)")
    p.add_argument("--tile-overlap", type=ranged(int, 0), default=None, metavar="PIXELS", help="tile overlap, >= 0 (default tile/4)")
    p.add_argument("--merge-distance", type=merge_distance, default=MERGE_DISTANCE, metavar="PIXELS",
                   help="mask pieces whose pixels come this close are one target, >= 0 (default "
                        f"{MERGE_DISTANCE:g}; 0: every piece is a target; Pd/Fa metrics do not merge)")


def merge_distance(text: str) -> float:
    """``--merge-distance``: a finite number >= 0, checked at parse time."""
    v = ranged(float, 0.0)(text)
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number: give a number in [0, ∞)")
    return v


merge_distance.__name__ = "float"  # argparse names the type in "invalid <name> value"


def add_max_memory(p: argparse.ArgumentParser) -> None:
    """``--max-memory SIZE``: the predictor's memory budget per frame (:mod:`irstd.inference.memory_budget`),
    parsed at parse time."""
    from ..inference.memory_budget import DEFAULT_CAP, DEFAULT_FRACTION, memory_size

    p.add_argument("--max-memory", type=memory_size, default="auto", metavar="SIZE",
                   help="memory budget per frame, e.g. 4G or 500M: a frame whose estimated peak is above it runs in "
                        "tiles that fit, or is refused before decoding when even tiles cannot fit (default auto: "
                        f"{DEFAULT_FRACTION:g} of the available memory, at most {DEFAULT_CAP >> 30} GiB; none: no budget)")


def retains_memory(p: argparse.ArgumentParser) -> None:
    """Mark a command that runs networks on large tensors: ``main`` lets its process keep freed
    memory (:func:`irstd.core.memory.retain_freed_memory`; ``IRSTD_RETAIN_MEMORY=0`` turns it off)."""
    p.set_defaults(retain_memory=True)


def parse_size(text: str) -> tuple[int, int]:
    """``N`` → (N, N); ``WxH`` (frame convention, width first) → (H, W)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[x×X]\s*(\d+))?\s*", text)
    if not m:
        raise ConfigError(f"size must be N or WxH (e.g. 256 or 640x512), got {text!r}")
    w = int(m.group(1))
    h = int(m.group(2)) if m.group(2) else w
    if h < 1 or w < 1:
        raise ConfigError(f"size must be positive, got {text!r}")
    return h, w


#: what a command's model argument accepts (detect, evaluate, export)
MODEL_SPEC_HELP = ("a .safetensors checkpoint, shipped weights by name (e.g. sgem_unet.sirst; irstd models --pretrained "
                   "lists them), a URL ending in #sha256=<hex>, or a classical detector's name (e.g. tophat)")


def output_beside(spec: str, suffix: str, fallback_parent: str | Path = ".") -> Path:
    """Where a command writes what it made of model ``spec`` (which it has opened): beside the file (its stem +
    ``suffix``) when ``spec`` is a file, else ``fallback_parent/<spec><suffix>`` (a model given by name)."""
    from ..models import resolve_model_spec

    parsed = resolve_model_spec(spec)
    if parsed.is_local_file:
        path = parsed.path
        return path.with_name(path.stem + suffix) if suffix.startswith(".") else path.parent / suffix
    return Path(fallback_parent) / f"{spec}{suffix}"


def say(text: str) -> None:
    """Print one line; a file name that is not valid UTF-8 is shown with escapes, never a crash."""
    enc = getattr(sys.stdout, "encoding", None) or "utf-8"
    print(text.encode(enc, "backslashreplace").decode(enc, "replace"))


def _write_advice(exc: OSError) -> str:
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some space"
    return "make it writable" if exc.errno in (errno.EACCES, errno.EPERM) else "check the disk"


def torchrun_rank() -> tuple[int, int]:
    """(rank, world size) that torchrun's environment gives this process ((0, 1) alone), read without
    torch: a command that runs in one process only decides before loading anything."""
    import os

    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        me = int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0, 1
    return (me, world) if world > 1 and "RANK" in os.environ else (0, 1)


def check_out(out: str | Path) -> Path:
    """Folder ``out`` (``--out``), created and proven writable before any work (a probe file is written,
    synced and removed), or :class:`ConfigError` in one line: a read-only folder or a full disk is found
    before the model loads, not after the last frame."""
    from ..core.files import check_writable

    try:
        check_writable(out)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write outputs here ({exc.strerror or exc}): {_write_advice(exc)} "
                          "or give another --out") from None
    return Path(out)


def write_stopped_line(exc: OSError, kept: int, records: Path) -> str:
    """The one line of a run stopped by a failed write (a disk that filled up): how many finished frames
    the records file keeps, where, and how to go on."""
    where = exc.filename or records.parent
    return (f"stopped: cannot write {where} ({exc.strerror or exc}): {kept} finished frame(s) kept in {records}; "
            f"{_write_advice(exc)}, then run the same command with --resume to do the rest")


def skip_line(file: str, error: str) -> str:
    """``skipped <file>: <why>`` for a frame that could not be read, the file named once (the library's
    errors already start with ``<file>: ``; a TIFF page ``x.tif#3`` with ``x.tif: ``)."""
    for named in (file, file.rsplit("#", 1)[0]):
        if error.startswith(f"{named}: "):
            error = error[len(named) + 2:]
            break
    return f"skipped {file}: {error}"
