"""A shipped tag's test figures read the same in README.md, docs/ and ``irstd models --pretrained``
(issue 37, item 7): two decimals, the digits of ``irstd.models.pretrained.metric_text``, equal to
``tags.json``.

Figures are found where the docs quote them, in three forms:

* running text: `` `TAG` (test IoU 61.57, Pd 92.76 %, Fa 54.63×10⁻⁶) ``;
* a tag card table (a header of backticked tags), its ``test …`` row: ``IoU …, nIoU …, Pd … %, Fa …×10⁻⁶``
  per tag column;
* a metric table (``IoU`` … ``Fa (×10⁻⁶)`` columns) whose first cell is a backticked tag, or with one row
  after a line naming ``irstd evaluate TAG``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from irstd.cli.main import main
from irstd.models import get_pretrained, list_pretrained
from irstd.models.pretrained import metric_text

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TAGS = list_pretrained()
_TAG = "|".join(re.escape(t) for t in sorted(TAGS, key=len, reverse=True))
#: `TAG` (test …) in running text
_INLINE = re.compile(rf"`({_TAG})`\s+\(test\s([^()]*)\)")
#: a figure in text: IoU 67.93, nIoU 71.57, Pd 95.82 %, Fa 97.55×10⁻⁶
_FIGURE = re.compile(r"(?<![\w])(IoU|nIoU|Pd|Fa)\s+([0-9][0-9.]*)")
_TEXT_KEYS = {"IoU": "iou", "nIoU": "niou", "Pd": "pd", "Fa": "fa"}
#: metric table headers → tags.json keys
_COLUMNS = {"IoU": "iou", "nIoU": "niou", "P": "precision", "R": "recall", "F1": "f1", "Pd": "pd",
            "Fa (×10⁻⁶)": "fa", "target P": "target_precision", "target F1": "target_f1"}


def text_figures(text: str) -> list[tuple[str, str]]:
    """(tags.json key, figure as written) of every figure in a piece of text."""
    return [(_TEXT_KEYS[name], value.rstrip(".")) for name, value in _FIGURE.findall(text)]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _first_number(cell: str) -> str | None:
    m = re.search(r"[0-9][0-9.]*", cell.replace("*", ""))
    return m.group(0).rstrip(".") if m else None


def quoted_figures(text: str, file: str) -> list[tuple[str, str, str, str]]:
    """(where, tag, key, figure as written) of every tag figure quoted in a markdown text."""
    out = []
    for m in _INLINE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        out += [(f"{file}:{line}", m.group(1), k, v) for k, v in text_figures(m.group(2))]
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not (lines[i].startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\|[\s|:-]+\|?", lines[i + 1].strip())):
            i += 1
            continue
        header, start = _cells(lines[i]), i
        rows = []
        i += 2
        while i < len(lines) and lines[i].startswith("|"):
            rows.append((i + 1, _cells(lines[i])))
            i += 1
        column_tags = [c.strip("`") if re.fullmatch(rf"`({_TAG})`", c) else None for c in header]
        if any(column_tags):  # a tag card: the test row, one tag per column
            for line, cells in rows:
                if cells[0].startswith("test"):
                    for tag, cell in zip(column_tags, cells):
                        if tag:
                            out += [(f"{file}:{line}", tag, k, v) for k, v in text_figures(cell)]
        elif "IoU" in header and "Fa (×10⁻⁶)" in header:  # a metric table
            before = "\n".join(lines[max(0, start - 3):start])
            named = re.findall(rf"irstd evaluate ({_TAG})\b", before)
            for line, cells in rows:
                tag = cells[0].strip("`") if re.fullmatch(rf"`({_TAG})`", cells[0]) else None
                if tag is None and len(rows) == 1 and named:
                    tag = named[-1]
                if tag is None:
                    continue
                for title, cell in zip(header, cells):
                    if title in _COLUMNS and (value := _first_number(cell)) is not None:
                        out.append((f"{file}:{line}", tag, _COLUMNS[title], value))
    return out


def _all_quoted() -> list[tuple[str, str, str, str]]:
    return [q for path in DOCS for q in quoted_figures(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))]


def test_quoted_tag_figures_match_the_table() -> None:
    quoted = _all_quoted()
    wrong = [f"{where}: {tag} {key} {value}, the table says {metric_text(get_pretrained(tag).metrics.get(key))}"
             for where, tag, key, value in quoted if value != metric_text(get_pretrained(tag).metrics.get(key))]
    assert not wrong, "\n".join(wrong)


def test_every_tag_is_quoted_in_weights_md_and_the_readme_quotes_some() -> None:
    quoted = _all_quoted()
    in_card = {tag for where, tag, key, _ in quoted if where.startswith("docs/weights.md") and key == "iou"}
    assert in_card == set(TAGS)
    in_readme = {tag for where, tag, _, _ in quoted if where.startswith("README.md")}
    assert {"sgem_unet_s.synth_d2560", "sgem_unet.sirst", "unet.sirst"} <= in_readme


def test_models_pretrained_prints_the_same_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--pretrained"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:] if line.split()
            and line.split()[0] in TAGS}
    assert set(rows) == set(TAGS)
    for tag, cells in rows.items():
        m = get_pretrained(tag).metrics
        assert cells[2:5] == [metric_text(m["iou"]), metric_text(m["pd"]), metric_text(m["fa"])], tag


def test_the_finder_sees_a_wrong_figure() -> None:
    tag = "sgem_unet_t.sirst"
    m = get_pretrained(tag).metrics
    right = f"`{tag}` (test IoU {metric_text(m['iou'])}, Pd {metric_text(m['pd'])} %, Fa {metric_text(m['fa'])}×10⁻⁶)"
    assert [(k, v) for _, _, k, v in quoted_figures(right, "x.md")] == [
        ("iou", metric_text(m["iou"])), ("pd", metric_text(m["pd"])), ("fa", metric_text(m["fa"]))]
    rounded = f"`{tag}` (test IoU {m['iou']:.1f}, Fa {m['fa']:.1f}×10⁻⁶)"
    assert all(v != metric_text(m[k]) for _, _, k, v in quoted_figures(rounded, "x.md"))
    table = (f"Test metrics (`irstd evaluate {tag}`):\n\n| IoU | nIoU | Pd | Fa (×10⁻⁶) |\n|---|---|---|---|\n"
             f"| {m['iou']} | {m['niou']} | **{m['pd']}** (252/263) | 97.6 |\n")
    found = {k: v for _, t, k, v in quoted_figures(table, "x.md") if t == tag}
    assert found["fa"] == "97.6" and found["iou"] == str(m["iou"])
    card = (f"| | `{tag}` | `unet_t.sirst` |\n|---|---|---|\n| test (214 frames) | IoU 1.00, Pd 2.00 % | IoU 3.00 |\n")
    assert [(t, k, v) for _, t, k, v in quoted_figures(card, "x.md")] == [
        (tag, "iou", "1.00"), (tag, "pd", "2.00"), ("unet_t.sirst", "iou", "3.00")]


def test_metric_text_is_two_decimals() -> None:
    assert metric_text(97.55) == "97.55" and metric_text(96.2) == "96.20" and metric_text(None) == "-"
