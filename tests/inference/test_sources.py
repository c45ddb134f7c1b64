"""Frame sources: natural order, videos through PyAV, TIFF stacks, unreadable frames, a caller's generator."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from irstd.data.io import load_image
from irstd.inference.sources import ArraySource, FileSource, Frame, expand_inputs, open_source

RNG = np.random.default_rng(0)


def _png_folder(folder: Path, n: int, shape: tuple[int, int] = (24, 32)) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    frames = [RNG.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]
    for i, f in enumerate(frames, 1):
        Image.fromarray(f).save(folder / f"{i}.png")
    return frames


def _write_video(path: Path, frames: list[np.ndarray], rate: int = 10, pix: str = "gray", fmt: str = "gray") -> None:
    """A lossless FFV1 video of grey frames (Matroska or AVI by ``path``'s extension)."""
    av = pytest.importorskip("av")
    h, w = frames[0].shape
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, pix
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format=fmt)))
        container.mux(stream.encode())


def test_folders_and_globs_in_natural_order(tmp_path: Path) -> None:
    _png_folder(tmp_path / "seq", 11)
    names = [p.name for p in expand_inputs([tmp_path / "seq"])]
    assert names == [f"{i}.png" for i in range(1, 12)]  # 10.png after 9.png, not after 1.png
    assert [p.name for p in expand_inputs([str(tmp_path / "seq" / "*.png")])] == names
    frames = list(open_source(str(tmp_path / "seq")))
    assert [f.index for f in frames] == list(range(11))
    assert [Path(f.name).name for f in frames] == names and all(f.time is None for f in frames)


def test_video_reads_back_as_the_folder_it_was_made_from(tmp_path: Path) -> None:
    originals = _png_folder(tmp_path / "seq", 10)
    video = tmp_path / "clip.mkv"
    _write_video(video, [load_image(p).astype(np.uint8) for p in expand_inputs([tmp_path / "seq"])])
    from_video = list(open_source(video))
    from_folder = list(open_source(tmp_path / "seq"))
    assert len(from_video) == len(from_folder) == 10
    for v, f, o in zip(from_video, from_folder, originals):
        assert v.error is None and v.image.dtype == f.image.dtype == np.float32
        np.testing.assert_array_equal(v.image, f.image)
        np.testing.assert_array_equal(v.image, o)
    assert [v.time for v in from_video] == pytest.approx([i / 10 for i in range(10)])
    assert from_video[3].name == f"{video}#3" and from_video[3].stem == "clip_000003"


def test_16_bit_video_keeps_its_depth(tmp_path: Path) -> None:
    frames = [RNG.integers(0, 65536, (16, 24), dtype=np.uint16) for _ in range(3)]
    video = tmp_path / "deep.mkv"
    _write_video(video, frames, pix="gray16le", fmt="gray16le")
    for got, want in zip(open_source(video), frames):
        np.testing.assert_array_equal(got.image, want)


@pytest.mark.parametrize("suffix", [".mkv", ".avi"])
def test_truncated_video_gives_the_frames_before_the_cut_and_one_error(tmp_path: Path, suffix: str) -> None:
    frames = [RNG.integers(0, 256, (24, 32), dtype=np.uint8) for _ in range(12)]
    video = tmp_path / f"clip{suffix}"
    _write_video(video, frames)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 6 // 10])
    after = tmp_path / "after.png"
    Image.fromarray(frames[0]).save(after)
    got = list(open_source([video, after]))
    errors = [f for f in got if f.error is not None]
    assert len(errors) == 1 and str(video) in errors[0].error
    good = got[: errors[0].index]
    assert 3 <= len(good) < 12 and all(f.error is None for f in good)
    for f, o in zip(good, frames):
        np.testing.assert_array_equal(f.image, o)
    assert got[-1].name == str(after) and got[-1].error is None  # the next input goes on
    assert [f.index for f in got] == list(range(len(got)))


def test_unreadable_frame_costs_one_error(tmp_path: Path) -> None:
    _png_folder(tmp_path / "seq", 4)
    (tmp_path / "seq" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    got = list(open_source(tmp_path / "seq"))
    assert [f.error is None for f in got] == [True, True, False, True]
    assert "3.png" in got[2].error and got[2].image is None


def test_tiff_stack_pages_are_frames(tmp_path: Path) -> None:
    pages = [RNG.integers(0, 65536, (20, 30), dtype=np.uint16) for _ in range(5)]
    stack = tmp_path / "stack.tif"
    Image.fromarray(pages[0]).save(stack, save_all=True, append_images=[Image.fromarray(p) for p in pages[1:]])
    single = tmp_path / "z.png"
    Image.fromarray(pages[0].astype(np.uint8)).save(single)
    got = list(open_source([stack, single]))
    assert [f.index for f in got] == list(range(6)) and got[5].name == str(single)
    for f, p in zip(got, pages):
        np.testing.assert_array_equal(f.image, p.astype(np.float32))
    assert got[2].name == f"{stack}#2" and got[2].stem == "stack_0002"
    picked = list(FileSource([stack, single]).frames(lambda i: i % 2 == 1))  # skipped pages are not converted
    assert [f.index for f in picked] == [1, 3, 5]
    np.testing.assert_array_equal(picked[1].image, pages[3])


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_tiff_stack_gives_the_pages_before_the_cut_and_one_error(tmp_path: Path, keep: float) -> None:
    pages = [np.full((20, 30), 1000 * (i + 1), np.uint16) for i in range(5)]
    stack = tmp_path / "stack.tif"
    Image.fromarray(pages[0]).save(stack, save_all=True, append_images=[Image.fromarray(p) for p in pages[1:]])
    data = stack.read_bytes()
    cut, other = tmp_path / "cut.tif", tmp_path / "other.tif"
    cut.write_bytes(data[: int(len(data) * keep)])
    other.write_bytes(data[: int(len(data) * keep)])
    got = list(open_source([cut, other]))
    for path in (cut, other):  # the second file goes on after the first one's error
        mine = [f for f in got if f.path == path]
        assert [f.error is None for f in mine] == [True] * (len(mine) - 1) + [False]
        assert str(path) in mine[-1].error
        for f, page in zip(mine[:-1], pages):
            np.testing.assert_array_equal(f.image, page)
    assert [f.index for f in got] == list(range(len(got)))


def test_generator_source_streams_ten_thousand_frames_in_flat_memory() -> None:
    def camera():
        for i in range(10_000):
            yield np.full((32, 32), i % 256, np.uint8)

    tracemalloc.start()
    try:
        n, last = 0, None
        for frame in open_source(camera()):
            n, last = n + 1, frame
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 10_000 and last.index == 9_999 and last.name == "stream#9999"
    assert peak < 1_000_000  # all frames together: 10 MB


def test_array_source_keeps_a_callers_frame_fields() -> None:
    items = [Frame(7, "cam0", np.zeros((4, 4)), time=1.25), np.ones((4, 4))]
    got = list(ArraySource(items, name="cam"))
    assert (got[0].index, got[0].name, got[0].time) == (0, "cam0", 1.25)
    assert (got[1].index, got[1].name, got[1].stem) == (1, "cam#1", "cam_000001")


def test_a_file_that_is_no_video_costs_one_error(tmp_path: Path) -> None:
    pytest.importorskip("av")
    bad, after = tmp_path / "bad.mp4", tmp_path / "after.png"
    bad.write_bytes(b"not a video at all" * 10)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(after)
    got = list(open_source([bad, after]))
    assert [(f.index, f.error is None) for f in got] == [(0, False), (1, True)]
    assert got[0].error.startswith(f"{bad}: cannot open video")


def test_videos_without_pyav_are_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from irstd.core.errors import ConfigError

    (tmp_path / "clip.mp4").write_bytes(b"x")
    monkeypatch.setitem(__import__("sys").modules, "av", None)  # as if PyAV were not installed
    with pytest.raises(ConfigError, match=r"pip install 'sgem-irstd\[video\]'"):
        open_source(tmp_path / "clip.mp4")


def _hostile_entries(folder: Path) -> dict[str, str]:
    """One good frame and every entry a folder walk must name and skip, with the reason it must give."""
    import os

    folder.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "good.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "anim.gif")
    (folder / "loop.png").symlink_to("loop.png")
    (folder / "dangling.png").symlink_to("nowhere.png")
    os.mkfifo(folder / "pipe.png")
    (folder / "x.png").mkdir()
    (folder / "notes.txt").write_text("not a frame: no line for it")
    return {"anim.gif": "unsupported image type .gif", "loop.png": "symbolic link loop",
            "dangling.png": "dangling symbolic link", "pipe.png": "a FIFO", "x.png": "a folder, not an image"}


@pytest.mark.parametrize("as_glob", [False, True])
def test_folder_entries_that_are_not_frames_are_named_once_each(tmp_path: Path, as_glob: bool,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    import logging

    folder = tmp_path / "in"
    expected = _hostile_entries(folder)
    with caplog.at_level(logging.WARNING, logger="irstd"):
        files = expand_inputs([str(folder / "*") if as_glob else str(folder)])  # a FIFO opened would hang here
    assert files == [folder / "good.png"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped ")]
    assert len(lines) == len(expected), lines
    for name, reason in expected.items():
        (line,) = [m for m in lines if m.startswith(f"skipped {folder / name}: ")]
        assert reason in line and line.count(name) == 1, line


@pytest.mark.parametrize(("name", "reason"), [("pipe.png", "a FIFO"), ("loop.png", "symbolic link loop"),
                                              ("dangling.png", "dangling symbolic link")])
def test_a_named_input_that_is_no_file_is_one_clear_error(tmp_path: Path, name: str, reason: str) -> None:
    from irstd.errors import DataError

    _hostile_entries(tmp_path / "in")
    with pytest.raises(DataError, match=f"{name}: {reason}"):
        expand_inputs([str(tmp_path / "in" / name)])
