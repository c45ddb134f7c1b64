"""A sweep file: models × seeds (× variants) over one training recipe and one test list.

::

    name: sirst_cpu                    # run folders: <out>/<name>/<model>[-<variant>]-seed<seed>/
    recipe: configs/sirst_cpu.yaml     # an `irstd train` config (paths relative to the working folder)
    models: [sgem_unet, unet]
    seeds: [0, 1, 2]
    model_seeds: {acm: [0]}            # optional: other seeds for some models
    out: runs/sweeps
    overrides: {}                      # recipe keys changed for every run
    model_overrides: {acm: {loss: softiou}}   # per model (e.g. a baseline's own published loss)
    variants: {}                       # optional: name → recipe keys; every model × variant × seed
    test: {data: ..., split_file: ..., mask_dir: ...}
    checkpoint: best                   # the reading in the table: best | last | ema
    reference: unet                    # paired comparison of every other model against this one
    bench: {size: 256, runs: 30, warmup: 5}   # Params/MACs/FPS (false: none)

A run's *identity* is its resolved training config without the runtime keys (:data:`RUNTIME_KEYS`) and
the shadow keys (:data:`SHADOW_KEYS`): a folder that holds the same identity is that run (finished when
its state's epoch equals the recipe's), whatever threads, device or folder name it was trained with, and
whether or not it kept a moving average of its weights beside them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import ConfigError
from ..engine.config import TrainConfig, load_config
from ..engine.resume import read_state
from ..engine.run_folder import CHECKPOINTS, RunFolder

__all__ = ["SweepSpec", "RunSpec", "load_sweep", "RUNTIME_KEYS", "SHADOW_KEYS", "CHECKPOINTS", "run_status"]

#: keys that say where and how fast a run is trained, not what is trained
RUNTIME_KEYS = frozenset({"threads", "progress", "num_workers", "name", "out", "device", "device_data",
                          "eval_batch_size", "channels_last"})  # channels_last: a memory layout, like threads
#: keys that add an output without touching the trajectory: ``ema_decay`` keeps a moving average of the
#: weights beside them (a shadow copy; tests/engine/test_device_data.py checks the weights are bit-identical
#: with and without it), so a run trained without it is the same run, only without ``ema.safetensors``
SHADOW_KEYS = frozenset({"ema_decay"})
_KEYS = {"name", "recipe", "models", "seeds", "model_seeds", "out", "overrides", "model_overrides", "variants", "test",
         "checkpoint", "reference", "bench"}


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid."""

    model: str
    seed: int
    variant: str | None
    cfg: TrainConfig

    @property
    def label(self) -> str:
        """The row of the table this run belongs to: the model, or ``model-variant``."""
        return f"{self.model}-{self.variant}" if self.variant else self.model

    @property
    def name(self) -> str:
        return f"{self.label}-seed{self.seed}"

    @property
    def run_dir(self) -> Path:
        return Path(self.cfg.out) / self.name


@dataclass
class SweepSpec:
    """A parsed sweep file."""

    name: str
    recipe: str | None
    models: list[str]
    seeds: list[int]
    out: str = "runs/sweeps"
    model_seeds: dict[str, list[int]] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    model_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    test: dict[str, Any] = field(default_factory=dict)
    checkpoint: str = "best"
    reference: str | None = "unet"
    bench: dict[str, Any] | None = field(default_factory=lambda: {"size": 256, "runs": 30, "warmup": 5})
    source: str = "sweep"

    @property
    def folder(self) -> Path:
        return Path(self.out) / self.name

    def runs(self, runtime: dict[str, Any] | None = None) -> list[RunSpec | tuple[str, int, str | None, str]]:
        """Every cell: a :class:`RunSpec`, or (model, seed, variant, error) for a cell whose config is invalid."""
        cells: list[RunSpec | tuple[str, int, str | None, str]] = []
        for model in self.models:
            for variant in (list(self.variants) or [None]):
                for seed in self.model_seeds.get(model, self.seeds):
                    keys = {**self.overrides, **self.model_overrides.get(model, {}),
                            **(self.variants.get(variant, {}) if variant else {}), **(runtime or {}),
                            "model": model, "seed": seed, "out": str(self.folder)}
                    label = f"{model}-{variant}" if variant else model
                    keys["name"] = f"{label}-seed{seed}"
                    try:
                        cells.append(RunSpec(model, seed, variant, load_config(self.recipe, keys)))
                    except ConfigError as exc:
                        cells.append((model, seed, variant, str(exc)))
        return cells


def load_sweep(path: str | Path) -> SweepSpec:
    """Read a sweep file; unknown keys and bad values raise :class:`ConfigError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})")
    for key in ("models", "seeds"):
        if not isinstance(raw.get(key), list) or not raw[key]:
            raise ConfigError(f"{path}: {key} must be a non-empty list")
    recipe = raw.get("recipe")
    if recipe is not None and not Path(recipe).is_file() and (path.parent / recipe).is_file():
        recipe = str(path.parent / recipe)  # relative to the sweep file when not to the working folder
    spec = SweepSpec(
        name=str(raw.get("name") or path.stem), recipe=recipe, models=[str(m) for m in raw["models"]],
        seeds=[int(s) for s in raw["seeds"]],
        model_seeds={str(m): [int(s) for s in v] for m, v in (raw.get("model_seeds") or {}).items()}, out=str(raw.get("out", "runs/sweeps")),
        overrides=dict(raw.get("overrides") or {}), model_overrides=dict(raw.get("model_overrides") or {}),
        variants=dict(raw.get("variants") or {}), test=dict(raw.get("test") or {}),
        checkpoint=str(raw.get("checkpoint", "best")), reference=raw.get("reference", "unet"),
        bench=raw["bench"] if "bench" in raw and not raw["bench"] else {**{"size": 256, "runs": 30, "warmup": 5},
                                                                        **(raw.get("bench") or {})},
        source=str(path),
    )
    if spec.checkpoint not in CHECKPOINTS:
        raise ConfigError(f"{path}: checkpoint must be one of {', '.join(CHECKPOINTS)}, got {spec.checkpoint!r}")
    if spec.recipe is not None and not Path(spec.recipe).is_file():
        raise ConfigError(f"{path}: recipe not found: {spec.recipe}")
    return spec


def identity(cfg: TrainConfig) -> dict[str, Any]:
    """What makes two runs the same run: the config without :data:`RUNTIME_KEYS` and :data:`SHADOW_KEYS`."""
    return {k: v for k, v in cfg.to_dict().items() if k not in RUNTIME_KEYS and k not in SHADOW_KEYS}


def run_status(run: RunSpec) -> tuple[str, str]:
    """(status, detail) of a run's folder: ``new``, ``partial`` (resumable), ``finished`` or ``conflict``."""
    folder = RunFolder(run.run_dir)
    if not folder.config.is_file():
        return "new", ""
    saved = folder.read_config()
    mine, theirs = identity(run.cfg), identity(saved)
    differ = sorted(k for k in mine if mine[k] != theirs.get(k))
    if differ:
        detail = ", ".join(f"{k}={theirs.get(k)!r} (sweep: {mine[k]!r})" for k in differ[:4])
        return "conflict", f"{folder.path} holds another recipe: {detail}"
    if not folder.state.is_file() or not folder.last.is_file():
        return "new", "started, no finished epoch"
    epoch = int(read_state(folder)["epoch"])
    if epoch >= run.cfg.epochs:
        return "finished", f"{epoch} epochs"
    return "partial", f"{epoch} of {run.cfg.epochs} epochs"


def with_runtime(cfg: TrainConfig, **keys: Any) -> TrainConfig:
    """``cfg`` with runtime keys changed (never the identity)."""
    bad = set(keys) - RUNTIME_KEYS
    if bad:
        raise ConfigError(f"not runtime keys: {', '.join(sorted(bad))}")
    return dataclasses.replace(cfg, **keys)
