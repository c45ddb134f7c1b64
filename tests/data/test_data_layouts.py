"""Every supported layout, built as a small fixture, is recognised and split correctly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from irstd.data import detect_layout, open_dataset, read_split_file
from irstd.errors import DataError

STEMS = [f"img_{i}" for i in range(6)]
TRAIN, TEST = STEMS[:4], STEMS[4:]


@pytest.mark.parametrize("name", ["sirst", "dnanet", "basicirstd", "plain", "folders"])
def test_layout_detected_and_split(layout_root, name: str) -> None:
    root = layout_root(name)
    assert detect_layout(root).name == name
    train = open_dataset(root, "train")
    test = open_dataset(root, "test", normalization=train.normalization)
    assert sorted(train.names) == TRAIN
    assert sorted(test.names) == TEST
    assert train.layout.name == name and train.problems == [] and train.skipped == 0
    item = test[0]
    assert item["image"].dtype == torch.float32 and item["image"].shape == (1, 24, 32)
    assert item["mask"].shape == (1, 24, 32)
    assert set(item["mask"].unique().tolist()) == {0.0, 1.0}
    assert item["mask"].sum() == 9  # the 3×3 target
    assert item["name"] in TEST and Path(item["path"]).is_file()


@pytest.mark.parametrize("name", ["sirst", "dnanet", "plain", "folders"])
def test_all_split_holds_every_frame(layout_root, name: str) -> None:
    ds = open_dataset(layout_root(name), "all", normalization=(0.0, 1.0))
    assert sorted(ds.names) == STEMS


def test_sirst_train_means_trainval(layout_root) -> None:
    root = layout_root("sirst")
    assert len(open_dataset(root, "train", normalization=(0, 1))) == 4  # trainval.txt
    assert len(open_dataset(root, "idx_427/train", normalization=(0, 1))) == 3  # train.txt, by exact key


def test_unknown_split_lists_available(layout_root) -> None:
    with pytest.raises(DataError, match=r"split 'val' not found.*available: all, .*train"):
        open_dataset(layout_root("dnanet"), "val")


def test_plain_without_lists_offers_all(tmp_path: Path, write_pair) -> None:
    for s in ("a", "b"):
        write_pair(tmp_path / "images", tmp_path / "masks", s)
    assert detect_layout(tmp_path).name == "plain"
    assert sorted(open_dataset(tmp_path, "all", normalization=(0, 1)).names) == ["a", "b"]
    with pytest.raises(DataError, match="split 'train' not found"):
        open_dataset(tmp_path, "train")


def test_unrecognised_folder_names_what_it_found(tmp_path: Path) -> None:
    (tmp_path / "pictures").mkdir()
    with pytest.raises(DataError, match=r"no dataset layout recognised.*pictures/"):
        detect_layout(tmp_path)
    with pytest.raises(DataError, match="not found"):
        detect_layout(tmp_path / "nope")


def test_split_file_over_any_layout(layout_root, write_list, tmp_path: Path) -> None:
    root = layout_root("sirst")
    # CRLF, no final newline, a blank line, an entry written as a file name
    f = write_list(tmp_path / "mine.txt", ["img_5.png", "", "img_0"], "\r\n", final_newline=False)
    ds = open_dataset(root, split_file=f, normalization=(0, 1))
    assert ds.names == ["img_5", "img_0"]


@pytest.mark.parametrize("newline,final", [("\r\n", True), ("\r\n", False), ("\n", False), ("\r", True)])
def test_split_file_line_ends(tmp_path: Path, write_list, newline: str, final: bool) -> None:
    f = write_list(tmp_path / "s.txt", ["a", "b", " c "], newline, final_newline=final)
    assert read_split_file(f) == ["a", "b", "c"]


def test_split_file_duplicates_and_comments(tmp_path: Path) -> None:
    f = tmp_path / "s.txt"
    f.write_text("# header\na\nimages/b.png\na\n")
    assert read_split_file(f) == ["a", "b"]
    with pytest.raises(DataError, match="split file not found"):
        read_split_file(tmp_path / "missing.txt")


def test_irstd1k_folder_names(tmp_path: Path, write_pair, write_list) -> None:
    root = tmp_path / "IRSTD-1k"
    for s in ("XDU0", "XDU1", "XDU2"):
        write_pair(root / "IRSTD1k_Img", root / "IRSTD1k_Label", s)
    write_list(root / "trainval.txt", ["XDU0", "XDU1"], "\r\n")
    write_list(root / "test.txt", ["XDU2"], "\r\n")
    assert detect_layout(root).name == "plain"
    assert open_dataset(root, "train", normalization=(0, 1)).names == ["XDU0", "XDU1"]
    assert open_dataset(root, "test", normalization=(0, 1)).names == ["XDU2"]


def test_split_file_over_folder_layout(layout_root, write_list, tmp_path: Path) -> None:
    f = write_list(tmp_path / "mix.txt", ["img_5", "img_0"])  # one stem from each folder
    ds = open_dataset(layout_root("folders"), split_file=f, normalization=(0, 1))
    assert ds.names == ["img_5", "img_0"] and ds.problems == []
