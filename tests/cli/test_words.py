"""Words a user reads right (issue 37, item 7): the int8 check, what serve serves, the shipped weights' test data."""

from __future__ import annotations

from pathlib import Path

import pytest

from irstd.cli.main import main


def test_int8_check_does_not_read_as_a_failure() -> None:
    from irstd.export.onnx import ParityResult

    r = ParityResult([(2, 1, 256, 256), (2, 1, 320, 480)], [13.4, 9.0], [20.0, 18.0], 1e-4, 1e-4, "1.0")
    first, second = r.int8_summary().splitlines()
    assert "OK" in first and "runs" in first and "256x256, 320x480" in first
    assert "OK" not in second and "13.4" in second and "random" in second and "not an accuracy figure" in second


def test_serve_help_and_docs_name_onnx(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert ".onnx" in capsys.readouterr().out
    doc = (Path(__file__).resolve().parents[2] / "docs" / "serve.md").read_text()
    assert "`.onnx`" in doc.split("## Endpoints")[0]


def test_pretrained_test_data_names_no_local_paths(capsys: pytest.CaptureFixture) -> None:
    from irstd.models import get_pretrained, list_pretrained

    for name in list_pretrained():
        text = get_pretrained(name).test_data
        assert "../" not in text and "shared/" not in text, text
    assert main(["models", "--pretrained"]) == 0
    assert "../shared" not in capsys.readouterr().out
