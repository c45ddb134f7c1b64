"""The README's commands, run as a user types them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from irstd.apps.demo import DEMO_WEIGHTS
from irstd.cli.main import main
from irstd.models import get_pretrained

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["bash scripts/demo.sh", "bash scripts/test.sh"]


def test_readme_opens_with_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    first_block = text.split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in first_block.strip().splitlines()]
    assert lines == COMMANDS


def test_ci_runs_the_readme_test_command() -> None:
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()


def test_ci_runs_the_readme_main_job() -> None:
    # the full main job takes minutes: CI runs it as typed after the suite; here, a one-epoch version
    assert "bash scripts/demo.sh" in (REPO / ".ci" / "run").read_text()


def test_main_job_script_runs_quickly(tmp_path: Path) -> None:
    # the test command (scripts/test.sh) has already set up .venv, so setup.sh returns at once;
    # the main job runs the shipped demo weights (CI runs it in full, as typed)
    cmd = f"{COMMANDS[0]} --test-scenes 4 --frames 1 --track-frames 12 --out {tmp_path}"
    out = subprocess.run(cmd, shell=True, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    for needle in (f"model {get_pretrained(DEMO_WEIGHTS).model} (weights {DEMO_WEIGHTS})", "## Test: 4 unseen synthetic scenes",
                   "## Fresh frame 0:", "| # | x | y |", "overlay      :", "## Tracking: 12 generated",
                   "| 9 | 3 |", "scene cut: tracks restart", "tracks       :"):
        assert needle in out.stdout, out.stdout
    overlay = Path(out.stdout.split("overlay      :", 1)[1].split()[0])
    assert overlay.is_file() and overlay.stat().st_size > 1000


def test_demo_trains_one_flag_away(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["demo", "--train", "--model", "sgem_unet_t", "--epochs", "1", "--scenes", "4", "--test-scenes", "2",
            "--frames", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "model sgem_unet_t: 0.547 M params" in out and "training 1 epoch(s) on 4 synthetic scenes" in out
    checkpoint = Path(out.split("weights      :", 1)[1].split()[0])
    assert checkpoint.is_file() and checkpoint.is_relative_to(tmp_path)


def test_training_flags_without_train_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--epochs", "3"]) == 2
    assert "--epochs only apply with --train" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["models", "--help"]])
def test_help_exits_zero(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0


def test_unknown_model_is_one_line_no_traceback() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "irstd"), "demo", "--train", "--model", "nope"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "unknown model 'nope'" in out.stderr
    assert "Traceback" not in out.stderr


def test_readme_python_example_runs(tmp_path: Path) -> None:
    # the snippet reads a SIRST frame from ../shared (tests/docs runs it as written); here it runs on a
    # generated frame, so it is checked without the shared data too
    import numpy as np

    from irstd.data.io import save_image

    text = (REPO / "README.md").read_text()
    code = text.split("## Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    frame = tmp_path / "frame.png"
    save_image(frame, np.random.default_rng(0).uniform(0, 255, (70, 90)))
    shared_frame = '"../shared/datasets/SIRST/images/Misc_1.png"'
    assert shared_frame in code and 'load_model("sgem_unet_t.sirst")' in code
    assert "from irstd.models import" in code and "irstd.engine import" not in code
    code = code.replace(shared_frame, f'"{frame}"')
    exec(compile(code, "README.md", "exec"), {})
