"""Options with a range are checked at parse time (exit 2, one line naming the option, the range and the fix);
unknown commands, choices and model names get suggestions (issue 37, item 5)."""

from __future__ import annotations

import argparse

import pytest

from irstd.cli._common import positive_int, probability, ranged
from irstd.cli.main import main


def _error(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("command", ["detect", "evaluate", "track", "serve"])
@pytest.mark.parametrize("value", ["1.5", "0", "1", "-0.1", "half"])
def test_threshold_out_of_range_exits_2(command: str, value: str, capsys: pytest.CaptureFixture) -> None:
    argv = [command, "m.safetensors"] + (["x.png"] if command in ("detect", "track") else [])
    err = _error(argv + ["--threshold", value], capsys)
    assert "--threshold" in err and "(0, 1)" in err and "give a number in (0, 1)" in err


@pytest.mark.parametrize("command", ["detect", "evaluate", "track"])
def test_threshold_help_names_the_range(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "0 < t < 1" in capsys.readouterr().out


@pytest.mark.parametrize("argv,option", [
    (["detect", "m", "x.png", "--tile", "0"], "--tile"),
    (["demo", "--frames", "0"], "--frames"),
    (["demo", "--test-scenes", "-1"], "--test-scenes"),
    (["bench", "--runs", "0"], "--runs"),
    (["serve", "m", "--max-batch", "0"], "--max-batch"),
    (["export", "m", "--calib-frames", "0"], "--calib-frames"),
])
def test_counts_must_be_at_least_one(argv: list[str], option: str, capsys: pytest.CaptureFixture) -> None:
    err = _error(argv, capsys)
    assert option in err and "[1, ∞)" in err


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "near"])
def test_merge_distance_checked_at_parse_time(value: str, capsys: pytest.CaptureFixture) -> None:
    err = _error(["detect", "m", "x.png", "--merge-distance", value], capsys)
    assert "--merge-distance" in err and "[0, ∞)" in err


def test_unknown_command_suggests(capsys: pytest.CaptureFixture) -> None:
    err = _error(["detet"], capsys)
    assert "did you mean 'detect'?" in err and err.startswith("irstd: error:")


def test_unknown_choice_suggests(capsys: pytest.CaptureFixture) -> None:
    assert "did you mean 'fp32'?" in _error(["detect", "m", "x.png", "--precision", "fp23"], capsys)


def test_ranged_types() -> None:
    assert probability("0.3") == 0.3
    assert positive_int("4") == 4
    assert ranged(int, 0, 10)("10") == 10
    for bad in ("0", "1", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            probability(bad)
    with pytest.raises(argparse.ArgumentTypeError, match=r"\[0, 10\]"):
        ranged(int, 0, 10)("11")


@pytest.mark.parametrize("name,close", [("sgem_unet_tt.sirst", "sgem_unet_t.sirst"), ("sgemunet", "sgem_unet.sirst")])
def test_unknown_model_name_suggests(name: str, close: str) -> None:
    from irstd.core.errors import CheckpointError
    from irstd.models.pretrained import resolve_weights

    with pytest.raises(CheckpointError, match="did you mean .*" + close.replace(".", r"\.")):
        resolve_weights(name)


def test_unknown_bare_name_says_where_names_are() -> None:
    from irstd.core.errors import CheckpointError
    from irstd.models.pretrained import resolve_weights

    with pytest.raises(CheckpointError, match="irstd models --pretrained"):
        resolve_weights("qqqq")


@pytest.mark.parametrize("argv,option", [
    (["bench", "--budget", "0"], "--budget"),
    (["bench", "--threads", "0"], "--threads"),
    (["data", "synth", "out", "--test-fraction", "1.5"], "--test-fraction"),
    (["export", "m", "--atol", "-1"], "--atol"),
    (["serve", "m", "--timeout", "0"], "--timeout"),
    (["serve", "m", "--max-wait-ms", "-1"], "--max-wait-ms"),
    (["sweep", "--threads", "0"], "--threads"),
    (["models", "--size", "0"], "--size"),
])
def test_other_ranged_options(argv: list[str], option: str, capsys: pytest.CaptureFixture) -> None:
    assert option in _error(argv, capsys)


@pytest.mark.parametrize("argv,option,span", [
    (["serve", "m", "--worker-nice", "20"], "--worker-nice", "[0, 19]"),
    (["serve", "m", "--worker-nice", "-1"], "--worker-nice", "[0, 19]"),
    (["serve", "m", "--decode-threads", "0"], "--decode-threads", "[1, ∞)"),
    (["serve", "m", "--threads", "0"], "--threads", "[1, ∞)"),
    (["export", "m", "--opset", "12"], "--opset", "[13, 20]"),
    (["export", "m", "--opset", "21"], "--opset", "[13, 20]"),
    (["operating-point", "m", "--max-fa", "0"], "--max-fa", "(0, ∞)"),
    (["demo", "--seed", "-1"], "--seed", "[0, ∞)"),
    (["data", "synth", "out", "--seed", "-1"], "--seed", "[0, ∞)"),
    (["data", "synth", "out", "--size", "8"], "--size", "[16, ∞)"),
    (["data", "synth", "out", "--area", "0,4"], "--area", "[1, ∞)"),
    (["data", "synth", "out", "--targets", "5,1"], "--targets", "LOW <= HIGH"),
])
def test_remaining_ranges_exit_2_in_one_line(argv: list[str], option: str, span: str,
                                              capsys: pytest.CaptureFixture) -> None:
    err = _error(argv, capsys)
    assert option in err and span in err


@pytest.mark.parametrize("argv,text", [
    (["serve", "--help"], "0..19"),
    (["serve", "--help"], "decoded at once, >= 1"),
    (["export", "--help"], "ONNX opset, 13-20"),
    (["operating-point", "--help"], "> 0 (e.g. 50)"),
    (["data", "synth", "--help"], "square frame size, >= 16"),
])
def test_help_names_the_range(argv: list[str], text: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    assert text in " ".join(capsys.readouterr().out.split())  # argparse wraps help lines


@pytest.mark.parametrize("argv,message", [
    (["train", "--threads", "0"], "threads must be a whole number >= 1"),
    (["train", "--num-workers", "-1"], "num_workers must be >= 0"),
])
def test_train_counts_are_refused_before_training(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_synth_pairs_parse() -> None:
    from irstd.cli.data import _pair

    assert _pair(int, 0)("2") == (2, 2) and _pair(float, 0)("2,12") == (2.0, 12.0)
    for bad in ("1,2,3", "-1,2", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            _pair(int, 0)(bad)
