"""Code blocks of README.md and docs/*.md marked runnable run as written (issue 37).

A block is runnable when the line before its opening fence is ``<!-- runnable -->`` (an HTML comment:
GitHub shows nothing). ``bash`` blocks run in ``bash -e -o pipefail`` with this interpreter's ``irstd`` on
``PATH``, ``python`` blocks in this interpreter, each on its own, in a fresh folder that stands for the
clone's root: the repository's read-only folders (``configs/``, ``docs/``, ...) are linked into it and
``../shared/datasets`` points at the shared datasets (``$IRSTD_DATASETS`` or ``<repo>/../shared/datasets``),
so what a block writes lands in a temporary folder. Without the shared datasets a block that names
``../shared`` skips and says why; the others still run. The convention is described in docs/architecture.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MARKER = "<!-- runnable -->"
#: fence languages a runnable block may have, and how each runs
LANGUAGES = {"bash": "bash", "sh": "bash", "python": "python"}
#: repository folders a block may read (linked into the stand-in clone)
LINKED = ("configs", "docs", "benchmarks", "scripts", "src")
#: a block that takes longer is a hang, not a slow machine
BLOCK_TIMEOUT_S = 600
_FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, its code, whether it is marked runnable."""

    file: str
    line: int  #: 1-based line of the opening fence
    lang: str
    code: str
    runnable: bool

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def code_blocks(text: str, file: str = "<text>") -> list[Block]:
    """Every fenced block of a markdown text, in order (fences of three backticks at the line start)."""
    lines, blocks, i = text.splitlines(), [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        marked = start > 0 and lines[start - 1].strip() == MARKER
        blocks.append(Block(file, start + 1, m.group(1).lower(), "\n".join(body) + "\n", marked))
        i += 1
    return blocks


def runnable_blocks(paths: list[Path]) -> list[Block]:
    """The marked blocks of ``paths`` (file names relative to the repository)."""
    out = []
    for path in paths:
        name = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
        out += [b for b in code_blocks(path.read_text(encoding="utf-8"), name) if b.runnable]
    return out


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def shared_datasets() -> Path:
    env = os.environ.get("IRSTD_DATASETS")
    return Path(env) if env else REPO.parent / "shared" / "datasets"


def stand_in_clone(tmp: Path, datasets: Path) -> Path:
    """A folder to run blocks in: the repository's read-only folders linked in, ``../shared/datasets`` linked
    to ``datasets``."""
    clone = tmp / "clone"
    clone.mkdir()
    (tmp / "shared").mkdir()
    (tmp / "shared" / "datasets").symlink_to(datasets.resolve(), target_is_directory=True)
    for name in LINKED:
        if (REPO / name).exists():
            (clone / name).symlink_to(REPO / name, target_is_directory=True)
    return clone


def block_env() -> dict[str, str]:
    """This interpreter's ``irstd`` first on PATH; this checkout's sources first on PYTHONPATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p)
    return env


def run_block(block: Block, cwd: Path, env: dict[str, str] | None = None,
              timeout: float = BLOCK_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run ``block`` in ``cwd``: bash with ``-e -o pipefail``, python in this interpreter."""
    kind = LANGUAGES.get(block.lang)
    if kind is None:
        raise AssertionError(f"{block.id}: a runnable block must be one of {sorted(LANGUAGES)}, not {block.lang!r}")
    argv = ["bash", "-e", "-o", "pipefail", "-c", block.code] if kind == "bash" else [sys.executable, "-c", block.code]
    return subprocess.run(argv, cwd=cwd, env=env or block_env(), capture_output=True, text=True, timeout=timeout)


def check_ran(block: Block, result: subprocess.CompletedProcess) -> None:
    """Fail with the block's place and the end of its stderr unless it exited 0."""
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise AssertionError(f"{block.id} ({block.lang}) exited {result.returncode}:\n{tail}")


BLOCKS = runnable_blocks(doc_files())


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_runnable_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    datasets = shared_datasets()
    if not datasets.is_dir():
        if "../shared" in block.code:
            pytest.skip(f"shared datasets not found at {datasets} (set IRSTD_DATASETS): {block.id} not run")
        datasets = tmp_path / "no-datasets"  # the block reads none: it runs anyway
        datasets.mkdir()
    start = time.perf_counter()
    result = run_block(block, stand_in_clone(tmp_path, datasets))
    check_ran(block, result)
    print(f"{block.id}: {time.perf_counter() - start:.1f} s")


# --- the extractor and the runner themselves (no shared data needed) ---

FAKE = f"""# title

```bash
echo not marked
```

{MARKER}
```bash
echo marked
```

{MARKER}

```python
print("a blank line between marker and fence: not marked")
```

{MARKER}
```python
raise SystemExit(3)
```
"""


def test_extractor_finds_marked_blocks_only() -> None:
    blocks = code_blocks(FAKE, "fake.md")
    assert [(b.lang, b.runnable) for b in blocks] == [("bash", False), ("bash", True), ("python", False),
                                                      ("python", True)]
    assert blocks[1].code == "echo marked\n" and blocks[1].line == 8


def test_a_failing_block_fails(tmp_path: Path) -> None:
    bash_ok, python_bad = [b for b in code_blocks(FAKE, "fake.md") if b.runnable]
    check_ran(bash_ok, run_block(bash_ok, tmp_path))
    with pytest.raises(AssertionError, match="fake.md:19 \\(python\\) exited 3"):
        check_ran(python_bad, run_block(python_bad, tmp_path))
    failing_step = Block("fake.md", 1, "bash", "false\necho after\n", True)  # -e: the first failure ends it
    result = run_block(failing_step, tmp_path)
    assert result.returncode != 0 and "after" not in result.stdout
    with pytest.raises(AssertionError, match="must be one of"):
        run_block(Block("fake.md", 1, "yaml", "a: 1\n", True), tmp_path)


def test_blocks_see_this_checkouts_irstd(tmp_path: Path) -> None:
    block = Block("fake.md", 1, "bash", "irstd --help >/dev/null\npython -c 'import irstd; print(irstd.__file__)'\n", True)
    result = run_block(block, tmp_path)
    check_ran(block, result)
    assert result.stdout.strip().startswith(str(REPO / "src"))


def test_the_readme_quick_start_is_marked() -> None:
    readme = [b for b in BLOCKS if b.file == "README.md"]
    bash = "".join(b.code for b in readme if b.lang == "bash")
    for command in ("irstd detect sgem_unet_t.sirst", "irstd evaluate sgem_unet_t.sirst", "--mask-dir ../shared/datasets/SIRST-corrections/masks",
                    "irstd track sgem_unet_t.sirst"):
        assert command in bash
    assert sum(b.lang == "python" for b in readme) >= 2
    assert all(b.lang in LANGUAGES for b in BLOCKS), [b.id for b in BLOCKS if b.lang not in LANGUAGES]
