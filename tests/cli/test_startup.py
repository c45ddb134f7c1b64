"""Start-up: ``irstd --help`` and every ``irstd <cmd> --help`` load no torch; each command is built only when
named and keeps its options; packages load their public names on first use; ``irstd models`` prints stored
counts that match live ones."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys

import pytest

import irstd.cli
from irstd.cli.main import COMMANDS, main
from irstd.cli.models import measure, stored_counts
from irstd.models import list_models

#: the options (and positionals, and sub-actions) of every command before registration became lazy
OPTIONS = {
    "bench": "--models --kind --modes --sizes --batch-sizes --runs --warmup --device --amp --no-cuda-graphs --budget "
             "--interleave --settle --threads --no-conv-rate --out --name --note",
    "data": "inspect synth",
    "demo": "--weights --train --model --epochs --scenes --out --test-scenes --frames --seed --threads",
    "detect": "checkpoint INPUT --out --threshold --device --precision --amp --calib --calib-split --calib-split-file "
              "--calib-frames --overlay --prob-maps --input-range --tile --tile-overlap --merge-distance --max-pixels",
    "evaluate": "checkpoint --data --split --split-file --mask-dir --skip-invalid --threshold --device --precision --amp "
                "--calib --calib-split --calib-split-file --calib-frames --batch-size --out --save-masks --sweep "
                "--negatives --negatives-split",
    "evaluate-track": "RUN_DIR_OR_TRACKS_JSONL --labels --gate --format --out",
    "export": "checkpoint --format --out --int8 --calib --calib-split --calib-split-file --calib-frames --full-range "
              "--opset --check-sizes --atol --rtol --no-check",
    "models": "pattern --size --no-count --measure --table --pretrained",
    "operating-point": "checkpoint --max-fa --data --split --split-file --mask-dir --scenes --out",
    "serve": "checkpoint --host --port --device --precision --amp --threshold --max-batch --max-wait-ms --max-queue "
             "--max-body-mb --max-pixels --timeout --threads --worker-nice --decode-threads --no-freeze-gc --api-key-file "
             "--api-key --cors-origin",
    "sweep": "config --report --parallel --threads --device --out --rebench --no-progress",
    "track": "checkpoint SOURCE --out --threshold --device --precision --amp --calib --resume --stream --overlay "
             "--offline --labels --max-pixels --gate --birth-hits --birth-window --max-misses --min-displacement "
             "--motion-window --early-step --no-birth-image --hover-frames --release-after --coast --no-compensate --full-every --window",
    "train": "--config --model --data --split --split-file --mask-dir --epochs --batch-size --lr --optimizer --scheduler "
             "--crop-size --device --amp --seed --out --name --threads --num-workers --val-every --loss --init-weights "
             "--skip-invalid --channels-last --no-progress --set --resume",
}

#: prints whether torch was imported by the command line given as arguments (help exits through SystemExit)
RUNNER = """
import sys
from irstd.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("torch loaded" if "torch" in sys.modules else "no torch")
"""


def test_every_command_module_is_listed() -> None:
    modules = {i.name for i in pkgutil.iter_modules(irstd.cli.__path__) if i.name != "main" and not i.name.startswith("_")}
    assert modules == {module for module, _ in COMMANDS.values()}
    assert set(OPTIONS) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_help_lists_every_option(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    missing = [o for o in OPTIONS[command].split() if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text)]
    assert not missing, f"irstd {command} --help lacks {missing}"


def test_main_help_imports_no_torch() -> None:
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "irstd", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "COMMAND" in out.stdout
    loaded = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line]
    assert "irstd.cli.main" in loaded
    assert not [m for m in loaded if m.split(".")[0] in ("torch", "numpy")], "irstd --help imported torch or numpy"


@pytest.mark.parametrize("argv", [["--help"], ["nosuchcommand"], *([c, "--help"] for c in sorted(COMMANDS)),
                                  ["data", "synth", "--help"], ["data", "inspect", "--help"]])
def test_help_imports_no_torch(argv: list[str]) -> None:
    out = subprocess.run([sys.executable, "-c", RUNNER, *argv], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "no torch", out.stdout + out.stderr


#: packages whose ``__init__`` loads its public names on first use (irstd.core.lazy)
LAZY_PACKAGES = ["irstd.bench", "irstd.data", "irstd.engine", "irstd.export", "irstd.inference"]


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_lazy_package_exports_every_public_name(package: str) -> None:
    module = importlib.import_module(package)
    missing = [n for n in module.__all__ if getattr(module, n, None) is None]
    assert not missing, f"{package} lists names it cannot load: {missing}"
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError):
        getattr(module, "no_such_name")


def test_importing_a_lazy_package_loads_no_torch() -> None:
    code = f"import sys; import {', '.join(LAZY_PACKAGES)}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_one_line_error_for_an_unknown_option_of_a_lazy_command() -> None:
    out = subprocess.run([sys.executable, "-m", "irstd", "models", "--bogus"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == "irstd: error: unrecognized arguments: --bogus (see irstd --help)"


def test_stored_model_counts_cover_every_model() -> None:
    assert set(stored_counts()) == set(list_models()), "run scripts/model_counts.py after adding or removing a model"


@pytest.mark.parametrize("name", ["acm", "sgem_unet", "tophat"])
def test_stored_model_counts_match_live_counts(name: str) -> None:
    assert stored_counts()[name] == measure(name, 256), "run scripts/model_counts.py after changing a model"
