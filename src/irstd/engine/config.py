"""Training configuration: dataclass defaults ← YAML file ← command-line overrides.

Keys are flat (``lr``, ``crop_size``, …) so that a YAML recipe, ``--set key=value`` and the run folder's
``config.yaml`` all read the same. Unknown keys are errors with a "did you mean".
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..core.device import AMP_CHOICES
from ..core.errors import ConfigError

__all__ = ["TrainConfig", "load_config", "parse_overrides"]

#: common names from other toolkits, used only to suggest the right key
_SYNONYMS = {"learning_rate": "lr", "bs": "batch_size", "batch": "batch_size",
             "max_epochs": "epochs", "nepochs": "epochs", "arch": "model", "dataset": "data",
             "dataset_dir": "data", "crop": "crop_size", "base_size": "crop_size", "wd": "weight_decay"}


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved in the run folder and in every checkpoint."""

    # model and loss
    model: str = "sgem_unet"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    loss: str = "softiou"  # softiou | bce | softiou_bce
    aux_weight: float = 1.0  # deep-supervision side outputs, for models that declare them
    edge_weight: float = 1.0  # edge head, for models that declare one
    # data (data=None: the built-in synthetic generator)
    data: str | None = None
    split: str = "train"
    split_file: str | None = None
    mask_dir: str | None = None
    skip_invalid: bool = False
    val_fraction: float = 0.1  # carved from the training list; the test split is never used to select
    crop_size: int = 256
    target_crop_prob: float = 0.0  # share of crops centred on a target pixel
    synthetic_train: int = 400  # synthetic scenes (when data is None)
    synthetic_val: int = 40
    synthetic_seed: int = 0
    num_workers: int = 0
    device_data: str = "auto"  # auto | on | off: training frames decoded once and cropped on the device
    # optimisation
    epochs: int = 400
    batch_size: int = 8
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 5e-4
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    scheduler: str = "cosine"  # constant | cosine | multistep
    warmup_epochs: int = 0
    min_lr: float = 1e-5  # cosine floor
    milestones: list[int] = field(default_factory=list)  # multistep
    gamma: float = 0.1  # multistep
    grad_clip: float | None = None  # max global grad norm
    ema_decay: float = 0.0  # > 0: also keep an exponential moving average of the weights (ema.safetensors)
    # runtime
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto | bf16 | fp16 | none (auto: bf16/fp16 on CUDA, none on CPU)
    channels_last: bool = False
    threads: int | None = None  # torch CPU threads (None: torch's default)
    val_every: int = 1
    eval_batch_size: int = 4
    out: str = "runs"
    name: str | None = None  # run folder name (default: <model>-<timestamp>)
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "config") -> "TrainConfig":
        """Build from a mapping; unknown keys raise :class:`ConfigError` naming the closest key."""
        cfg = cls()
        cfg.update(values, source)
        return cfg

    def update(self, values: Mapping[str, Any], source: str = "config") -> None:
        """Set keys in place, checking names and coercing simple types."""
        known = {f.name: f for f in dataclasses.fields(self)}
        for key, value in values.items():
            key = key.replace("-", "_")
            if key not in known:
                # a misspelt synonym ("learning_rat") suggests the key its synonym stands for
                close = difflib.get_close_matches(key, [*known, *_SYNONYMS], n=1)
                hint = f"; did you mean {_SYNONYMS.get(close[0], close[0])!r}?" if close else ""
                raise ConfigError(f"{source}: unknown key {key!r}{hint}")
            setattr(self, key, _coerce(key, value, getattr(self, key), known[key].type, source))
        self.validate()

    def validate(self) -> None:
        """Reject values that would fail later, with the key in the message."""
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (0 <= self.val_fraction < 1, "val_fraction must be in [0, 1)"),
            (0 <= self.target_crop_prob <= 1, "target_crop_prob must be in [0, 1]"),
            (self.crop_size >= 16, "crop_size must be >= 16"),
            (self.amp in AMP_CHOICES, f"amp must be one of {', '.join(AMP_CHOICES)}"),
            (self.optimizer in ("adam", "adamw", "sgd"), "optimizer must be adam, adamw or sgd"),
            (self.scheduler in ("constant", "cosine", "multistep"), "scheduler must be constant, cosine or multistep"),
            (self.val_every >= 1, "val_every must be >= 1"),
            (self.device_data in ("auto", "on", "off"), "device_data must be auto, on or off (quote on/off in YAML)"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1) (0: no moving average)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


def _coerce(key: str, value: Any, current: Any, annotation: Any, source: str) -> Any:
    """Turn YAML/CLI values into the field's type (strings from ``--set`` are parsed as YAML)."""
    is_text = str(annotation).replace(" ", "") in ("str", "str|None")
    if isinstance(value, str) and not is_text:
        value = yaml.safe_load(value)
    if value is None or isinstance(current, (dict, list)):
        return value
    kind = type(current)
    if current is None:  # optional field: accept what YAML gave
        return value
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {key}={value!r} is not a valid {kind.__name__}") from None


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["lr=1e-3", "epochs=5"]`` → ``{"lr": "1e-3", "epochs": "5"}`` (typed later by the config)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value
    return out


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Defaults, then the YAML file at ``path`` (if any), then ``overrides``."""
    cfg = TrainConfig()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping of keys to values")
        cfg.update(values, str(path))
    if overrides:
        cfg.update(overrides, "command line")
    return cfg
