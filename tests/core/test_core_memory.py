"""The process memory policy helpers (irstd.core.memory): settings made once, no-ops where they cannot apply."""

from __future__ import annotations

import os

import pytest

from irstd.core import memory
from irstd.core.memory import bound_shape_caches


def test_shape_caches_bounded_in_an_empty_environment() -> None:
    env: dict[str, str] = {}
    assert bound_shape_caches(environ=env) == env == {"LRU_CACHE_CAPACITY": "1"}  # oneDNN's: its default
    env = {}
    assert bound_shape_caches(2, 512, environ=env) == env == {"LRU_CACHE_CAPACITY": "2",
                                                               "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "512"}


def test_shape_caches_leave_what_the_user_set() -> None:
    env = {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "1024", "LRU_CACHE_CAPACITY": "64"}
    assert bound_shape_caches(1, 256, environ=env) == {}
    assert env == {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "1024", "LRU_CACHE_CAPACITY": "64"}
    legacy = {"DNNL_PRIMITIVE_CACHE_CAPACITY": "8"}  # oneDNN's older name for the same setting
    assert bound_shape_caches(1, 256, environ=legacy) == {"LRU_CACHE_CAPACITY": "1"}


def test_ideep_cache_never_zero() -> None:
    env: dict[str, str] = {}
    bound_shape_caches(0, 0, environ=env)  # 0 entries in ideep's cache crashes torch 2.13's first convolution
    assert env == {"LRU_CACHE_CAPACITY": "1", "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "0"}


def test_serve_bounds_the_caches_before_the_model_loads(monkeypatch, tmp_path) -> None:
    from irstd.cli.main import main

    calls: list[str] = []
    monkeypatch.setattr(memory, "bound_shape_caches", lambda *a, **k: calls.append("bound") or {})
    assert main(["serve", str(tmp_path / "missing.safetensors"), "--port", "0"]) == 2  # fails loading the model
    assert calls == ["bound"]


def test_glibc_helpers_are_no_ops_without_glibc(monkeypatch) -> None:
    monkeypatch.setattr(memory, "libc_malloc", lambda: None)  # musl, macOS, Windows
    assert memory.single_malloc_arena() is False
    memory.malloc_trim()  # nothing to call, nothing raised


def test_serve_kernel_cache_option_wins_over_the_environment(monkeypatch, tmp_path) -> None:
    from irstd.cli.main import main

    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "7")  # restored after the test
    seen: list[str | None] = []
    monkeypatch.setattr(memory, "bound_shape_caches",
                        lambda *a, **k: seen.append(os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY")) or {})
    assert main(["serve", str(tmp_path / "missing.safetensors"), "--port", "0", "--kernel-cache", "0"]) == 2
    assert seen == ["0"]  # set before the caches are bounded, hence before any convolution


def test_serve_kernel_cache_refuses_negative(capsys) -> None:
    from irstd.cli.main import main

    with pytest.raises(SystemExit):
        main(["serve", "x.safetensors", "--kernel-cache", "-1"])
    assert "--kernel-cache" in capsys.readouterr().err


def _no_cache_settings(monkeypatch) -> None:
    """The caches' variables absent, and whatever the test sets undone afterwards."""
    for var in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
        monkeypatch.setenv(var, "1")  # recorded first, so teardown restores the variable as it was
        monkeypatch.delenv(var)


def test_serve_sets_its_kernel_cache_bound_when_neither_option_nor_environment(monkeypatch, tmp_path) -> None:
    from irstd.cli.main import main

    _no_cache_settings(monkeypatch)
    assert main(["serve", str(tmp_path / "missing.safetensors"), "--port", "0"]) == 2
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(memory.SERVE_KERNEL_CACHE)
    assert os.environ["LRU_CACHE_CAPACITY"] == "1"


def test_serve_leaves_the_environments_kernel_cache(monkeypatch, tmp_path) -> None:
    from irstd.cli.main import main

    _no_cache_settings(monkeypatch)
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "1024")  # e.g. set for every torch process
    assert main(["serve", str(tmp_path / "missing.safetensors"), "--port", "0"]) == 2
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "1024"
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "1024")
    assert main(["serve", str(tmp_path / "missing.safetensors"), "--port", "0", "--kernel-cache", "64"]) == 2
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "64"  # the option wins over both


def test_serve_bound_holds_one_frame_size_at_every_batch_size() -> None:
    # the counts of benchmarks/kernel_counts.py (benchmarks/results/kernel-counts.md) for the shipped sgem
    # models, the largest per frame size: 23 weight reorders + 26 per batch size, five batch sizes (1-16)
    assert 23 + 26 * 5 <= memory.SERVE_KERNEL_CACHE < 1024


def test_serve_runs_batches_as_power_of_two_chunks(monkeypatch, tmp_path) -> None:
    from irstd.cli.main import main
    from irstd.core.errors import ConfigError
    from irstd.inference import Predictor

    seen: dict = {}

    def fake(spec, **kwargs):
        seen.update(kwargs)
        raise ConfigError("stop here")

    _no_cache_settings(monkeypatch)
    monkeypatch.setattr(Predictor, "from_checkpoint", staticmethod(fake))
    assert main(["serve", str(tmp_path / "m.safetensors"), "--port", "0"]) == 2
    assert seen["pow2_batches"] is True
