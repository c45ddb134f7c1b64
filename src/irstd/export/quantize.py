"""Static post-training int8 quantisation of an exported ONNX graph with ONNX Runtime (``docs/int8.md``).

The fp32 graph of :func:`irstd.export.onnx.export_onnx` gets QuantizeLinear/DequantizeLinear pairs (QDQ
format) around every convolution and matrix product: per-channel int8 weights, uint8 activations whose
ranges come from calibration frames of the training data, normalised exactly as the model's inputs
(the model's stored mean/std) and padded to its stride.

Weights use 7 bits (``reduce_range=True``) by default: on x86 CPUs without VNNI, ONNX Runtime multiplies
uint8 activations by int8 weights with VPMADDUBSW, whose int16 pair sums saturate at full 8-bit range;
7-bit weights keep every pair sum in range (ONNX Runtime's own advice for non-VNNI CPUs).

Calibration never sees a test list: a split named ``test`` is refused, and so is any chosen frame whose
stem is in a test list known for the calibration source — the ``test`` split of the dataset's layout when
calibrating on a layout split, the ``test.txt`` beside the split file when one is given (the protocol the
split file belongs to, e.g. ``splits/NUAA-SIRST_50_50/``), and any ``exclude`` lists passed explicitly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..core.errors import ConfigError, DataError, IRSTDError, first_line
from ..core.files import atomic_write
from ..core.padding import pad_to_multiple
from ..data.dataset import open_dataset
from ..data.items import normalize
from ..data.layouts import detect_layout
from ..inference.backends.onnx import require_onnxruntime
from ..models import load_model, model_metadata, resolve_model_spec
from ..models.pretrained import cache_dir as weights_cache_dir
from ..models.pretrained import file_sha256
from .defaults import CALIB_FRAMES
from .onnx import OPSET, export_onnx

__all__ = ["CALIB_FRAMES", "CalibrationSpec", "calibration_frames", "quantize_onnx", "export_int8", "cached_int8",
           "int8_cache_dir"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationSpec:
    """Where the calibration frames come from: a dataset folder and a split (or a split file)."""

    data: str
    split: str = "train"
    split_file: str | None = None
    frames: int = CALIB_FRAMES
    seed: int = 0  #: seeds the deterministic choice of frames
    exclude: tuple[str, ...] = field(default_factory=tuple)  #: further test lists (files of stems) to refuse

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description stored in the quantised file (paths as given, never a test list's stems)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def _stems(path: Path) -> set[str]:
    return {ln.strip() for ln in path.read_text().splitlines() if ln.strip()}


def _known_test_lists(spec: CalibrationSpec) -> list[Path]:
    """Test lists the calibration frames must stay out of (see the module docstring)."""
    lists = [Path(p).expanduser() for p in spec.exclude]
    if spec.split_file is not None:
        beside = Path(spec.split_file).expanduser().with_name("test.txt")
        if beside.is_file():
            lists.append(beside)
    else:
        layout = detect_layout(spec.data)
        if "test" in layout.splits:
            lists += [s.list_file for s in layout.resolve("test") if s.list_file is not None]
    return lists


def _refuse_test_split(spec: CalibrationSpec) -> None:
    split_name = Path(spec.split_file).stem if spec.split_file is not None else spec.split.rsplit("/", 1)[-1]
    if split_name.lower() == "test":
        what = spec.split_file if spec.split_file is not None else f"split {spec.split!r}"
        raise DataError(f"{spec.data}: calibration refuses the test split ({what}); calibrate on training frames")


def calibration_frames(
    spec: CalibrationSpec, normalization: tuple[float, float] | None, stride: int
) -> list[np.ndarray]:
    """The calibration inputs: ``spec.frames`` frames chosen deterministically (by ``spec.seed``) from the
    sorted stems of the split, each normalised by ``normalization`` (default: the dataset's) and padded with
    zeros to a multiple of ``stride``: float32 arrays (1, 1, H', W') at the frames' native sizes."""
    if spec.frames < 1:
        raise ConfigError(f"calibration needs at least one frame, got --calib-frames {spec.frames}")
    _refuse_test_split(spec)
    dataset = open_dataset(spec.data, spec.split, split_file=spec.split_file, normalization=normalization)
    if len(dataset) == 0:  # open_dataset refuses an empty split itself; kept for datasets built otherwise
        raise DataError(f"{spec.data}: the calibration set is empty")
    names = dataset.names
    order = sorted(range(len(names)), key=lambda i: names[i])
    rng = np.random.default_rng(spec.seed)
    chosen = sorted(rng.choice(order, size=min(spec.frames, len(order)), replace=False).tolist(),
                    key=lambda i: names[i])
    for test_list in _known_test_lists(spec):
        leaked = sorted({names[i] for i in chosen} & _stems(test_list))
        if leaked:
            raise DataError(f"{test_list}: {len(leaked)} calibration frame(s) are on this test list "
                            f"(first: {leaked[0]}); calibrate on frames outside it")
    norm = normalization if normalization is not None else dataset.normalization
    out = []
    for i in chosen:
        image, _ = dataset.load_raw(i)  # (H, W) native range
        x = torch.from_numpy(normalize(image, norm))[None, None]  # (1, 1, H, W)
        out.append(np.ascontiguousarray(pad_to_multiple(x, stride)[0].numpy()))
    log.info("calibration: %d frame(s) of %s [%s]", len(out), spec.data, spec.split_file or spec.split)
    return out


class _QuietOrt(logging.Filter):
    """Moves onnxruntime.quantization's root-logger notices (per-tensor remarks) to this module's debug log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "onnxruntime" in record.pathname:
            log.debug("onnxruntime: %s", record.getMessage())
            return False
        return True


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over a list of input arrays."""

    def __init__(self, input_name: str, frames: Sequence[np.ndarray]) -> None:
        self._it: Iterator[np.ndarray] = iter(frames)
        self.input_name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self.input_name: x}


def quantize_onnx(
    fp32_path: str | Path,
    out_path: str | Path,
    frames: Sequence[np.ndarray],
    *,
    calibration: dict[str, Any] | None = None,
    per_channel: bool = True,
    reduce_range: bool = True,
) -> Path:
    """Write the static QDQ int8 version of the fp32 ONNX file ``fp32_path`` to ``out_path``.

    ``frames`` are model inputs (1, C, H, W) float32 for the activation ranges (min/max). The
    ``irstd`` metadata entry is carried over with ``precision: int8``, the quantisation settings and
    ``calibration`` (a description of where the frames came from).
    """
    if not frames:
        raise DataError("the calibration set is empty: no frame to calibrate the activation ranges on")
    require_onnxruntime()
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    proto = onnx.load(str(fp32_path))
    raw = {p.key: p.value for p in proto.metadata_props}.get("irstd")
    meta = json.loads(raw) if raw else {}
    input_name = proto.graph.input[0].name
    settings = {"format": "QDQ", "activations": "uint8", "weights": "int8", "per_channel": per_channel,
                "reduce_range": reduce_range, "calibrate_method": "minmax"}

    def write(tmp: str) -> None:
        with tempfile.TemporaryDirectory(prefix="irstd-int8-") as work:
            pre, q = os.path.join(work, "pre.onnx"), os.path.join(work, "q.onnx")
            # ONNX Runtime's pre-processing folds the exporter's Constant nodes (conv biases among them)
            # into initializers and infers shapes: without it biases stay fp32 and convs stay unfused
            quiet, root = _QuietOrt(), logging.getLogger()
            root.addFilter(quiet)
            try:
                quant_pre_process(str(fp32_path), pre, skip_symbolic_shape=True)
                quantize_static(
                    pre, q, _Reader(input_name, frames), quant_format=QuantFormat.QDQ,
                    per_channel=per_channel, reduce_range=reduce_range, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                )
            finally:
                root.removeFilter(quiet)
            qproto = onnx.load(q)
        del qproto.metadata_props[:]
        entry = qproto.metadata_props.add()
        entry.key = "irstd"
        entry.value = json.dumps({**meta, "precision": "int8", "quantization": settings,
                                  "calibration": calibration or {"frames": len(frames)}})
        onnx.save(qproto, tmp)

    try:
        atomic_write(out_path, write)
    except IRSTDError:
        raise
    except Exception as exc:  # noqa: BLE001 — onnxruntime's quantiser raises plain Exceptions
        raise IRSTDError(f"{fp32_path}: int8 quantisation failed: {first_line(exc)}") from exc
    log.info("wrote %s (%.1f MB, int8 QDQ)", out_path, out_path.stat().st_size / 2**20)
    return out_path


def export_int8(
    model: nn.Module,
    path: str | Path,
    calib: CalibrationSpec,
    *,
    example_size: tuple[int, int] = (256, 256),
    opset: int = OPSET,
    per_channel: bool = True,
    reduce_range: bool = True,
) -> Path:
    """Export ``model`` as fp32 ONNX (in a temporary folder), calibrate on ``calib`` and write the int8 file."""
    meta = model_metadata(model)
    frames = calibration_frames(calib, getattr(model, "normalization", None), int(getattr(model, "stride", 1)))
    with tempfile.TemporaryDirectory(prefix="irstd-int8-") as work:
        fp32 = export_onnx(model, Path(work) / "fp32.onnx", example_size=example_size, opset=opset, metadata=meta)
        return quantize_onnx(fp32, path, frames, calibration=calib.describe(), per_channel=per_channel,
                             reduce_range=reduce_range)


def int8_cache_dir() -> Path:
    """Where :func:`cached_int8` keeps quantised files: ``int8/`` beside the weights cache."""
    return weights_cache_dir().parent / "int8"


def cached_int8(checkpoint: str | Path, calib: CalibrationSpec, *, reduce_range: bool = True) -> Path:
    """The int8 ONNX file of a checkpoint file, quantised once and cached, keyed by the checkpoint's
    SHA-256 and the calibration spec (and the quantisation settings)."""
    parsed = resolve_model_spec(checkpoint)
    ckpt = parsed.path
    if parsed.kind != "file" or not ckpt.is_file():
        raise ConfigError(f"{checkpoint}: --precision int8 needs a checkpoint file or an int8 .onnx file")
    key_src = json.dumps({"sha256": file_sha256(ckpt), "calib": calib.describe(), "reduce_range": reduce_range,
                          "data": str(Path(calib.data).expanduser().resolve())}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:20]
    dest = int8_cache_dir() / f"{ckpt.stem}-{key}.int8.onnx"
    if dest.is_file():
        log.info("using cached int8 model %s", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    return export_int8(load_model(ckpt, "cpu"), dest, calib, reduce_range=reduce_range)
