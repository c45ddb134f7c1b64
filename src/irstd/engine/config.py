"""Training configuration: dataclass defaults ← YAML file ← command-line overrides.

This module's top level loads no torch (``irstd train --help`` shows the defaults of :class:`TrainConfig`):
the checks that need the model registry, the losses or the optimiser table import them when they run.

Keys are flat (``lr``, ``crop_size``, …) so that a YAML recipe, ``--set key=value`` and the run folder's
``config.yaml`` all read the same. Unknown keys are errors with a "did you mean".
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..core.amp import AMP_CHOICES
from ..core.errors import ConfigError, first_line
from ..data.negatives import NEGATIVE_SPLITS, negatives_split

__all__ = ["NegativesConfig", "TrainConfig", "load_config", "parse_overrides", "round_half_up"]

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
    loss: str = "auto"  # auto | softiou | bce | softiou_bce (auto: the recipe's base loss)
    loss_recipe: str = "release"  # release (the model's own training loss, if it declares one) | project
    aux_weight: float | None = None  # deep-supervision side outputs (None: the recipe's, 1)
    edge_weight: float | None = None  # edge head's BCE weight (None: the recipe's; ISNet's release: 10)
    target_weight: float | None = None  # target-balanced BCE on the main logits (None: the recipe's, 0)
    loss_settings: dict[str, Any] = field(default_factory=dict)  # derived: the ModelLoss arguments used
    init_weights: str | None = None  # start from these weights (path, shipped model.tag or URL); not on resume
    # init_weights of a narrower model of the same family: widened to this model with the same logits
    # (irstd.models.widen); the copies' input weights are split unevenly by this much so they can diverge
    widen_split_noise: float = 0.1
    # data (data=None: the built-in synthetic generator)
    data: str | None = None
    split: str = "train"
    split_file: str | None = None
    mask_dir: str | None = None
    skip_invalid: bool = False
    val_fraction: float = 0.1  # carved from the training list; the test split is never used to select
    # the seed that carves the select frames from the list (None: those of the init_weights run when it
    # trained on the same list, so they stay unseen by the start; else seed)
    split_seed: int | None = None
    crop_size: int = 256
    target_crop_prob: float = 0.0  # share of crops centred on a target pixel
    synthetic_train: int = 400  # synthetic scenes (when data is None)
    synthetic_val: int = 40
    synthetic_seed: int = 0
    num_workers: int = 0
    device_data: str = "auto"  # auto | on | off: training frames decoded once and cropped on the device
    negatives: dict[str, Any] = field(default_factory=dict)  # background crops in every batch (NegativesConfig)
    # optimisation
    epochs: int = 400
    batch_size: int = 8
    optimizer: str = "adam"  # a key of optimisation.OPTIMIZERS
    lr: float = 5e-4
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    scheduler: str = "cosine"  # a key of optimisation.SCHEDULERS
    warmup_epochs: int = 0
    min_lr: float = 1e-5  # cosine floor
    milestones: list[int] = field(default_factory=list)  # multistep
    gamma: float = 0.1  # multistep
    grad_clip: float | None = None  # max global grad norm
    grad_accum: int = 1  # micro-batches per optimiser step (global batch = ranks x batch_size x grad_accum)
    ema_decay: float = 0.0  # > 0: also keep an exponential moving average of the weights (ema.safetensors)
    # choosing best.safetensors on the validation frames (irstd.engine.selection)
    select_weights: str = "live"  # live | ema: the weights validated and written as best (ema needs ema_decay > 0)
    select_metric: str = "iou"  # iou | pd_then_iou (highest Pd, ties broken by IoU)
    validate_start: bool = False  # validate the starting weights as epoch 0: a later epoch must beat them
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
    # several processes (torchrun; docs/distributed.md)
    sync_bn: bool = False  # BatchNorm statistics over the global batch instead of each rank's
    dist_backend: str = "auto"  # auto (nccl on CUDA, gloo on CPU) | nccl | gloo
    dist_timeout: float = 1800.0  # seconds a rank waits for the others before the job fails

    def __post_init__(self) -> None:
        self.loss_settings = self.resolve_loss()

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
            if not isinstance(key, str):
                raise ConfigError(f"{source}: keys must be names, got {key!r}")
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
        from .optimisation import OPTIMIZERS, SCHEDULERS, names  # late: torch (module docstring)
        from .selection import SELECT_METRICS

        checks = [
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (0 <= self.val_fraction < 1, "val_fraction must be in [0, 1)"),
            (0 <= self.target_crop_prob <= 1, "target_crop_prob must be in [0, 1]"),
            (self.crop_size >= 16, "crop_size must be >= 16"),
            (self.amp in AMP_CHOICES, f"amp must be one of {', '.join(AMP_CHOICES)}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be {names(OPTIMIZERS)}"),
            (self.scheduler in SCHEDULERS, f"scheduler must be {names(SCHEDULERS)}"),
            (self.val_every >= 1, "val_every must be >= 1"),
            (self.grad_accum >= 1, "grad_accum must be >= 1"),
            (self.threads is None or (type(self.threads) is int and self.threads >= 1),  # optional: YAML's type as given
             "threads must be a whole number >= 1 (leave it out for torch's default)"),
            (self.num_workers >= 0, "num_workers must be >= 0 (0: load in the main process)"),
            (self.dist_backend in ("auto", "nccl", "gloo"), "dist_backend must be auto, nccl or gloo"),
            (self.dist_timeout > 0, "dist_timeout must be > 0 seconds"),
            (self.device_data in ("auto", "on", "off"), "device_data must be auto, on or off (quote on/off in YAML)"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1) (0: no moving average)"),
            (self.select_weights in ("live", "ema"), "select_weights must be live or ema"),
            (self.select_weights != "ema" or self.ema_decay > 0,
             "select_weights: ema needs ema_decay > 0 (the moving average it validates)"),
            (self.select_metric in SELECT_METRICS, f"select_metric must be {names(SELECT_METRICS)}"),
            (0 <= self.widen_split_noise < 1, "widen_split_noise must be in [0, 1) (0: equal copies)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        NegativesConfig.parse(self.negatives, self.batch_size, self.crop_size)
        self.loss_settings = self.resolve_loss()

    @property
    def negatives_config(self) -> "NegativesConfig | None":
        """The parsed ``negatives`` block (None when absent or ``ratio`` is 0)."""
        neg = NegativesConfig.parse(self.negatives, self.batch_size, self.crop_size)
        return neg if neg is not None and neg.per_batch > 0 else None

    def resolve_loss(self) -> dict[str, Any]:
        """The :class:`~irstd.losses.ModelLoss` arguments of this run: the model's declared training loss
        (``release_loss`` on its class) under ``loss_recipe="release"``, the project's otherwise, with
        ``loss``/``aux_weight``/``edge_weight`` overriding. Stored as ``loss_settings`` (so run folders
        and checkpoints record what was trained with); recomputed on every update."""
        from ..losses import model_loss_settings  # late: torch (module docstring)
        from ..models import get_model_entry, is_model

        # a name that is not registered is the trainer's error to report (one line, when the run starts):
        # the config itself stays loadable, so a sweep can list that run as failed and run the others
        release = getattr(get_model_entry(self.model).factory, "release_loss", {}) if is_model(self.model) else {}
        # background crops have empty masks, on which per-image SoftIoU is degenerate: BCE scores those
        # (losses.soft_iou_loss, docs/clutter.md); runs without negatives keep the original term
        empty = "bce" if self.negatives_config is not None else None
        return model_loss_settings(release, self.loss_recipe, self.loss, self.aux_weight, self.edge_weight, empty,
                                   self.target_weight)


def round_half_up(x: float) -> int:
    """``x`` rounded to the nearest integer, halves up (Python's ``round`` sends 0.5 to 0)."""
    return int(math.floor(x + 0.5))


@dataclass(frozen=True)
class NegativesConfig:
    """The ``negatives:`` block of a training config: target-free frames mixed into every batch.

    ``per_batch = round(ratio * batch_size)`` crops of each micro-batch are background (at least 1 when
    ``ratio > 0``), the rest target crops. Every ``mining_every`` epochs the model scores the frames and
    ``mined_per_batch = round(mining_share * per_batch)`` of them are centred on its strongest false alarms.
    """

    root: str
    split: str = "train"
    groups: tuple[str, ...] | None = None
    ratio: float = 0.25
    mining_every: int = 0
    mining_share: float = 0.5
    mining_top: int = 8
    batch_size: int = 8

    @property
    def per_batch(self) -> int:
        """Background crops per micro-batch."""
        if self.ratio <= 0:
            return 0
        return max(1, round_half_up(self.ratio * self.batch_size))

    @property
    def mined_per_batch(self) -> int:
        """Background crops per micro-batch taken from mined locations (once mining has run)."""
        return round_half_up(self.mining_share * self.per_batch) if self.mining_every > 0 else 0

    @classmethod
    def parse(cls, raw: Mapping[str, Any], batch_size: int, crop_size: int) -> "NegativesConfig | None":
        """Check a ``negatives`` mapping; every problem is one :class:`ConfigError` line naming the key."""
        if not raw:
            return None
        unknown = sorted(set(raw) - set(_NEGATIVE_KEYS))
        if unknown:
            close = difflib.get_close_matches(unknown[0], _NEGATIVE_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"negatives: unknown key {unknown[0]!r}{hint} (keys: {', '.join(_NEGATIVE_KEYS)})")
        if not raw.get("root"):
            raise ConfigError("negatives: root is required (a folder of target-free frames)")
        values = {k: raw[k] for k in _NEGATIVE_KEYS if k in raw and raw[k] is not None}
        if "groups" in values and not isinstance(values["groups"], (list, tuple)):
            raise ConfigError(f"negatives: groups must be a list of scene groups, got {values['groups']!r}")
        try:  # keys left out take the dataclass defaults above (their one place)
            kwargs = {k: _NEGATIVE_CASTS[k](v) for k, v in values.items() if k in _NEGATIVE_CASTS}
            if "groups" in values:
                kwargs["groups"] = tuple(str(g) for g in values["groups"])
            neg = cls(root=str(values["root"]), batch_size=int(batch_size), **kwargs)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"negatives: a value has the wrong type ({exc})") from None
        heldout = set(negatives_split()["heldout"])
        checks = [
            (neg.split in NEGATIVE_SPLITS, f"negatives: split must be train (got {neg.split!r})"),
            (neg.split != "heldout", "negatives: split heldout is refused: the held-out scene groups are never "
                                     "trained on (they measure false alarms); use split: train"),
            (not neg.groups or not heldout & set(neg.groups),
             f"negatives: groups names held-out scene group(s) {', '.join(sorted(heldout & set(neg.groups or ())))}; "
             "they are never trained on"),
            (0 <= neg.ratio < 1, f"negatives: ratio must be in [0, 1), got {neg.ratio}"),
            (neg.per_batch < batch_size, f"negatives: ratio {neg.ratio} x batch_size {batch_size} leaves no target "
                                         "crop in a batch; lower ratio or raise batch_size"),
            (neg.mining_every >= 0, f"negatives: mining_every must be >= 0 (0: off), got {neg.mining_every}"),
            (0 <= neg.mining_share <= 1, f"negatives: mining_share must be in [0, 1], got {neg.mining_share}"),
            (neg.mining_top >= 1, f"negatives: mining_top must be >= 1, got {neg.mining_top}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return neg


#: the keys of a ``negatives:`` block (every field but the run's batch size), and how a scalar one is typed
_NEGATIVE_KEYS = tuple(f.name for f in dataclasses.fields(NegativesConfig) if f.name != "batch_size")
_NEGATIVE_CASTS = {"split": str, "ratio": float, "mining_every": int, "mining_share": float, "mining_top": int}


#: the type of an optional key's value, by its annotation (spaces removed)
_OPTIONAL_KINDS: dict[str, type] = {"int|None": int, "float|None": float, "str|None": str}


def _coerce(key: str, value: Any, current: Any, annotation: Any, source: str) -> Any:
    """Turn YAML/CLI values into the field's type (strings from ``--set`` are parsed as YAML)."""
    is_text = str(annotation).replace(" ", "") in ("str", "str|None")
    if isinstance(value, str) and not is_text:
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"{source}: {key}={value!r} is not a valid value") from None
    if value is None and current is not None and "None" not in str(annotation):
        raise ConfigError(f"{source}: {key} needs a value")
    if isinstance(current, (dict, list)) and value is not None and not isinstance(value, type(current)):
        raise ConfigError(f"{source}: {key} must be a {type(current).__name__}, got {value!r}")
    if value is None or isinstance(current, (dict, list)):
        return value
    # an optional field that is None so far takes the type its annotation names ("float | None": float)
    kind = type(current) if current is not None else _OPTIONAL_KINDS.get(str(annotation).replace(" ", ""))
    if kind is None:
        return value
    try:
        if isinstance(value, bool) != (kind is bool):  # YAML's yes/true is no number, and 1 is no switch
            raise ValueError
        if kind is bool:
            return value
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError  # epochs: 2.5 is a mistake, not 2
        return kind(value)
    except (TypeError, ValueError, OverflowError):
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
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError, RecursionError, ValueError) as exc:
            raise ConfigError(f"{path}: not valid YAML ({first_line(exc)})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping of keys to values")
        try:
            cfg.update(values, str(path))
        except ConfigError as exc:  # range checks do not know the file: name it
            raise ConfigError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
    if overrides:
        cfg.update(overrides, "command line")
    return cfg
