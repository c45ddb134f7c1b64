"""Atomic file writes: a crash or a failed write never leaves a half-written file in place, and
sets of files replaced together (:class:`FileSet`).

The result gets the permissions a plain ``open(path, "w")`` would give it: a new file
``0o666 & ~umask``, a replaced file keeps its own mode (``tempfile.mkstemp`` makes 0600 files,
which other users could not read).
"""

from __future__ import annotations

import errno
import glob
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

__all__ = ["atomic_write", "atomic_write_text", "check_writable", "current_umask", "FileSet", "recover_file_set",
           "remove_stale_temps"]


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows.

    Linux reports it in ``/proc/self/status``; elsewhere it is read by setting and restoring it,
    which is racy only against another thread creating a file in that instant.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _target_mode(path: Path) -> int:
    """Mode for the file about to land at ``path``: the existing file's, else what ``open`` gives."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path`` (same folder, so the rename is atomic).

    On any failure the temporary file is removed and ``path`` keeps its previous content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _target_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        # after the write: a writer may have re-created the file with its own mode
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(folder: str | Path, probe_bytes: int = 1 << 16) -> None:
    """Create ``folder`` if needed and prove that files can be written there: a probe of ``probe_bytes``
    is written, synced to the disk and removed. Raises the ``OSError`` of the first step that fails
    (``EROFS``, ``EACCES``, ``ENOSPC``, …) with ``filename`` set to ``folder``. A file system that reserves
    no space before the sync (delayed allocation) reports a full disk at the sync; a run that starts
    must still expect the disk to fill later."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".irstd-write-test.", dir=folder)
    except OSError as exc:
        exc.filename = str(folder)
        raise
    try:
        data = memoryview(b"\0" * probe_bytes)
        while data:
            data = data[os.write(fd, data):]
        try:
            os.fsync(fd)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
                raise
            # a file system that cannot sync (some FUSE mounts): the write above is what it can prove
    except OSError as exc:
        exc.filename = str(folder)
        raise
    finally:
        os.close(fd)
        os.unlink(tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


class FileSet:
    """Files that are replaced together: staged under temporary names, then committed as one.

    :meth:`stage` writes each file to a temporary name beside its target (``.<name>.XXXX.tmp``); a
    failure there leaves every target as it was (:meth:`discard` removes the staged files).
    :meth:`commit` first writes a small journal (``journal``, atomically) naming every staged file and
    its target, then renames them and removes the journal. A process killed during the renames leaves
    the journal, and :func:`recover_file_set` finishes the renames on the next start: a reader that
    recovers first always sees one whole set, the old or the new.
    """

    def __init__(self, journal: str | Path, label: Any = None) -> None:
        self.journal = Path(journal)
        self.label = label  #: recorded in the journal (e.g. the epoch), for the log
        self.staged: list[tuple[Path, Path]] = []  #: (temporary, target) in commit order
        self._journal_written = False

    def stage(self, path: str | Path, write: Callable[[str], None]) -> None:
        """Call ``write(tmp_path)`` for ``path``'s future content; nothing visible changes yet."""
        path = Path(path)
        mode = _target_mode(path)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as exc:  # a read-only folder: name the file that could not be written
            exc.filename = str(path)
            raise
        os.close(fd)
        self.staged.append((Path(tmp), path))
        write(tmp)
        os.chmod(tmp, mode)

    def commit(self) -> None:
        """Journal the set, rename every staged file onto its target, drop the journal."""
        entries = {tmp.name: target.name for tmp, target in self.staged}
        atomic_write_text(self.journal, json.dumps({"label": self.label, "files": entries}))
        self._journal_written = True
        for tmp, target in self.staged:  # renames need no space: once journalled the set always completes
            os.replace(tmp, target)
        self.journal.unlink()

    def discard(self) -> None:
        """Remove the staged files (before :meth:`commit` wrote its journal; after, they belong to it)."""
        if self._journal_written:
            return
        for tmp, _ in self.staged:
            tmp.unlink(missing_ok=True)


def recover_file_set(journal: str | Path) -> Any:
    """Finish the renames of a :class:`FileSet` whose commit was cut short; returns its label (None if none).

    A journal that cannot be read was never complete (it is written atomically), so none of its renames
    began: it is removed and the previous files stand.
    """
    journal = Path(journal)
    try:
        doc = json.loads(journal.read_text())
        entries = dict(doc["files"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        journal.unlink(missing_ok=True)
        return None
    for tmp, target in entries.items():
        src = journal.parent / tmp
        if src.exists():
            os.replace(src, journal.parent / target)
    journal.unlink()
    return doc.get("label")


def remove_stale_temps(folder: str | Path, names: Iterable[str]) -> list[Path]:
    """Remove the temporary files a killed writer left in ``folder`` for the files ``names``
    (``.<name>.XXXX`` of :func:`atomic_write`, ``.<name>.XXXX.tmp`` of :class:`FileSet`); returns them."""
    folder = Path(folder)
    removed = []
    for name in names:
        for stale in folder.glob(f".{glob.escape(name)}.*"):
            if stale.is_file():
                stale.unlink(missing_ok=True)
                removed.append(stale)
    return removed
