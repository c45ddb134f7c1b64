"""Run modes: how a network is executed for a given precision and device (``docs/speed.md``).

* ``fp32``: the network as trained, eager, full precision — the reference and the default;
* ``fast``: the fastest mode that stays exact enough for the device. A copy of the network gets its
  BatchNorms folded into the preceding convolutions and a channels-last layout (on CPUs also the
  up-sampling + 3×3 conv fold and weights stored in the compute dtype: :mod:`irstd.inference.rewrites`);
  it runs under bf16 autocast on CPUs with bf16 instructions (fp32 otherwise), and under bf16 (or
  fp16) autocast with ``cudnn.benchmark`` (switched on for its own calls only) on CUDA, optionally
  replayed from CUDA graphs captured per input shape.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..core.device import cpu_supports_bf16, resolve_amp
from ..core.errors import ConfigError
from .precisions import COMMAND_PRECISIONS, INT8, PRECISIONS, RUN_PRECISIONS

__all__ = ["COMMAND_PRECISIONS", "INT8", "PRECISIONS", "RUN_PRECISIONS", "RunMode", "resolve_mode"]


@dataclass(frozen=True)
class RunMode:
    """How a PyTorch network is executed; :func:`resolve_mode` picks one per precision and device."""

    precision: str  #: "fp32" or "fast"
    amp_dtype: torch.dtype | None = None  #: autocast dtype (None: fp32 math)
    channels_last: bool = False
    fuse_bn: bool = False  #: fold eval-mode BatchNorms into the preceding convolutions (on a copy)
    fold_upsample: bool = False  #: nearest ×2 up-sampling + 3×3 conv → one 2×2 conv on the coarse grid
    cast_weights: bool = False  #: store conv/linear weights in ``amp_dtype`` once, not per call
    cudnn_benchmark: bool = False
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        if self.precision not in RUN_PRECISIONS:
            raise ConfigError(f"a run mode's precision is fp32 or fast, got {self.precision!r}")

    def as_dict(self) -> dict:
        """JSON-friendly fields (dtype as its short name)."""
        d = asdict(self)
        d["amp_dtype"] = str(self.amp_dtype).replace("torch.", "") if self.amp_dtype is not None else "float32"
        return d

    def label(self) -> str:
        """Short description, e.g. ``fast (bfloat16, channels_last, BN folded)``."""
        if self.precision == "fp32":
            return "fp32 eager"
        parts = [self.as_dict()["amp_dtype"]]
        parts += [name for name, on in (("channels_last", self.channels_last), ("BN folded", self.fuse_bn),
                                        ("up-conv folded", self.fold_upsample), ("weights pre-cast", self.cast_weights),
                                        ("cudnn.benchmark", self.cudnn_benchmark), ("CUDA graphs", self.cuda_graphs)) if on]
        return f"fast ({', '.join(parts)})"


def resolve_mode(
    precision: str, device: torch.device, *, amp: str | None = None, cuda_graphs: bool = False
) -> RunMode:
    """The :class:`RunMode` for ``precision`` on ``device``.

    ``precision``: ``fp32`` (eager, full precision), ``fast`` (see the module docstring) or ``auto``,
    which means ``fast`` unless ``amp="none"`` asks for full precision (the behaviour of callers that
    only know ``amp``). ``amp`` refines the fast mode's dtype: ``None``/``auto`` = the device's best
    (bf16 on a bf16-capable CPU, bf16 or fp16 on CUDA), ``bf16``/``fp16`` = that dtype, ``none`` = fp32
    math with the fast layout. ``cuda_graphs`` only applies on CUDA.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        precision = "fp32" if amp == "none" else "fast"
    if precision == "fp32":
        if amp not in (None, "none", "auto"):
            raise ConfigError(f"precision='fp32' contradicts amp={amp!r}; drop one of them")
        return RunMode("fp32")
    cuda = device.type == "cuda"
    if amp in (None, "auto"):
        dtype = resolve_amp("auto", device) if cuda else (torch.bfloat16 if cpu_supports_bf16() else None)
    else:
        dtype = resolve_amp(amp, device)
    if device.type not in ("cpu", "cuda"):  # other backends: reduced precision only, no layout tricks
        return RunMode("fast", dtype)
    # the up-conv fold and the weight pre-cast were measured on CPUs only (docs/speed.md): CUDA keeps the
    # fast mode that was timed on the GPU (cuDNN's 3×3 kernels may well beat the folded 2×2 there)
    return RunMode("fast", dtype, channels_last=True, fuse_bn=True, fold_upsample=not cuda,
                   cast_weights=dtype is not None and not cuda, cudnn_benchmark=cuda, cuda_graphs=cuda and cuda_graphs)
