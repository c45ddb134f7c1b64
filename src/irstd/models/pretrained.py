"""Shipped weights by name (``sgem_unet.sirst``): their table, and the loader for local files and URLs.

Shipped weights live in the package (``irstd/weights/``): fp16 safetensors checkpoints in the format of
:mod:`irstd.models.checkpoint`, described by the table ``irstd/weights/tags.json`` (file, SHA-256,
normalisation, input range, training recipe and command, test metrics and the command that measured
them). Every load re-hashes the file, so a corrupted or replaced file fails with one line naming it.

:func:`resolve_weights` turns any weights specification into a verified local file:

* a path to an existing file → that file (no hash to check against);
* ``model.tag`` → the shipped file, checked against the table's SHA-256;
* ``https://…/file.safetensors#sha256=<hex>`` (or ``sha256=`` given apart) → downloaded once into the
  cache folder (``$IRSTD_HOME/weights``, else ``$XDG_CACHE_HOME/irstd/weights``, else
  ``~/.cache/irstd/weights``), checked on download and on every later use; a cache entry that no
  longer matches its hash is fetched again.

This module needs no network for shipped weights; only a URL specification opens a connection. Which
form a text is comes from :func:`irstd.models.spec.resolve_model_spec`; writing a new row of the table is
:mod:`irstd.models.publishing`.
"""

from __future__ import annotations

import difflib
import hashlib
import http.client
import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.errors import CheckpointError, UnknownModelError
from ..core.files import atomic_write
from ._registry import split_name_tag
from .spec import resolve_model_spec

__all__ = [
    "PretrainedTag",
    "WEIGHTS_DIR",
    "cache_dir",
    "default_tag",
    "fetch_url",
    "file_sha256",
    "get_pretrained",
    "list_pretrained",
    "METRIC_DIGITS",
    "metric_text",
    "pretrained_tags",
    "reload_table",
    "resolve_weights",
]

log = logging.getLogger(__name__)

#: the shipped weight files and their table (package data)
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
TABLE_FILE = WEIGHTS_DIR / "tags.json"
_CHUNK = 1 << 20  # download and hashing block (1 MiB)
#: decimals of a tag's test figures, wherever they are shown: the table stores them so (publishing rounds
#: to it), ``irstd evaluate`` prints them so, and ``irstd models --pretrained`` and the docs quote them so
METRIC_DIGITS = 2


def metric_text(value: float | None) -> str:
    """A tag's test figure (``metrics``: % or Fa in 1e-6) as shown everywhere: :data:`METRIC_DIGITS`
    decimals; ``-`` when the table has none."""
    return "-" if value is None or value != value else f"{value:.{METRIC_DIGITS}f}"


@dataclass(frozen=True)
class PretrainedTag:
    """One row of the weights table: a trained checkpoint shipped under ``model.tag``."""

    model: str
    tag: str
    file: str  #: file name under :data:`WEIGHTS_DIR`
    sha256: str
    dtype: str  #: storage dtype of the floating-point tensors (loaded into fp32)
    normalization: tuple[float, float]  #: (mean, std) in input units, applied by the predictor
    input_range: tuple[float, float]  #: the raw pixel range the model was trained on
    data: str  #: training data, split and licence note
    train_command: str  #: the command that trained the source checkpoint
    train_config: dict[str, Any] = field(default_factory=dict)
    #: test metrics of the shipped (fp16) file: % (``fa``: per 10⁶ pixels), rounded to METRIC_DIGITS
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_command: str = ""  #: the command that re-measures ``metrics``
    test_data: str = ""
    agreement: dict[str, Any] = field(default_factory=dict)  #: fp16 → fp32 masks vs the fp32 source
    source_sha256: str = ""  #: SHA-256 of the fp32 checkpoint it was converted from
    default: bool = False  #: the tag ``pretrained=True`` picks for this model
    note: str = ""

    @property
    def name(self) -> str:
        """``model.tag``."""
        return f"{self.model}.{self.tag}"

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.file


def _row(entry: dict[str, Any]) -> PretrainedTag:
    values = dict(entry)
    values["normalization"] = tuple(float(v) for v in values["normalization"])
    values["input_range"] = tuple(float(v) for v in values["input_range"])
    return PretrainedTag(**values)


@lru_cache(maxsize=1)
def _table() -> dict[str, PretrainedTag]:
    """``model.tag`` → row, from the package's ``tags.json`` (empty when the file is absent)."""
    if not TABLE_FILE.is_file():
        return {}
    try:
        rows = [_row(e) for e in json.loads(TABLE_FILE.read_text())["weights"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{TABLE_FILE}: unreadable weights table ({exc})") from None
    return {r.name: r for r in rows}


def reload_table() -> None:
    """Forget the cached table (after a new tag was written)."""
    _table.cache_clear()


def list_pretrained(pattern: str | None = None) -> list[str]:
    """Sorted ``model.tag`` names of the shipped weights (``pattern``: shell-style, e.g. ``'sgem*'``)."""
    import fnmatch

    return [n for n in sorted(_table()) if pattern is None or fnmatch.fnmatch(n, pattern)]


def pretrained_tags(model: str) -> list[str]:
    """The tags shipped for ``model`` (empty list when none)."""
    return sorted(r.tag for r in _table().values() if r.model == model)


def default_tag(model: str) -> str:
    """The tag ``pretrained=True`` loads for ``model`` (the row marked default, else the first tag)."""
    tags = pretrained_tags(model)
    if not tags:
        known = ", ".join(list_pretrained()) or "none"
        raise UnknownModelError(f"no pretrained weights for {model!r} (shipped: {known})")
    marked = [t for t in tags if _table()[f"{model}.{t}"].default]
    return marked[0] if marked else tags[0]


def get_pretrained(name: str, tag: str | None = None) -> PretrainedTag:
    """The table row of ``model.tag`` (or ``name, tag``); unknown names suggest the known ones."""
    model, own_tag = split_name_tag(name)
    tag = tag or own_tag or default_tag(model)
    key = f"{model}.{tag}"
    row = _table().get(key)
    if row is None:
        known = list_pretrained()
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown pretrained weights {key!r}{hint} (shipped: {', '.join(known) or 'none'})")
    return row


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _check_hash(path: Path, want: str, what: str) -> None:
    got = file_sha256(path)
    if got != want.lower():
        raise CheckpointError(f"{path}: SHA-256 {got[:16]}… does not match {want[:16]}… expected for {what} "
                              "(the file is corrupted or was replaced)")


def cache_dir() -> Path:
    """Where downloaded weights are kept: ``$IRSTD_HOME/weights``, ``$XDG_CACHE_HOME/irstd/weights``
    or ``~/.cache/irstd/weights``."""
    if os.environ.get("IRSTD_HOME"):
        return Path(os.environ["IRSTD_HOME"]).expanduser() / "weights"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "irstd" / "weights"


def _split_url(url: str, sha256: str | None) -> tuple[str, str]:
    """(URL without fragment, expected hash): the hash comes from ``sha256`` or ``#sha256=<hex>``."""
    parts = urllib.parse.urlsplit(url)
    fragment = urllib.parse.parse_qs(parts.fragment)
    found = sha256 or (fragment.get("sha256") or [None])[0]
    bare = urllib.parse.urlunsplit(parts._replace(fragment=""))
    if not found:
        raise CheckpointError(f"{bare}: weights from a URL need their SHA-256 (append #sha256=<64 hex digits>)")
    found = found.lower()
    if len(found) != 64 or any(c not in "0123456789abcdef" for c in found):
        raise CheckpointError(f"{bare}: {found!r} is not a SHA-256 (64 hex digits)")
    return bare, found


def _download(url: str, dest: Path, sha256: str, timeout: float) -> None:
    """Fetch ``url`` into ``dest`` atomically; a short read or a wrong hash leaves nothing behind."""

    def write(tmp: str) -> None:
        h, size = hashlib.sha256(), 0
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                expected = response.headers.get("Content-Length")
                for block in iter(lambda: response.read(_CHUNK), b""):
                    out.write(block)
                    h.update(block)
                    size += len(block)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            # IncompleteRead (a short body) is an HTTPException; refused connections are URLErrors
            raise CheckpointError(f"{url}: download failed ({type(exc).__name__}: {exc})") from None
        if expected is not None and size != int(expected):
            raise CheckpointError(f"{url}: download truncated ({size} of {expected} bytes)")
        if h.hexdigest() != sha256:
            raise CheckpointError(f"{url}: SHA-256 {h.hexdigest()[:16]}… of the download does not match "
                                  f"the expected {sha256[:16]}… ({size} bytes; nothing was cached)")

    log.info("downloading %s to %s", url, dest)
    atomic_write(dest, write)


def fetch_url(url: str, sha256: str | None = None, *, timeout: float = 60.0) -> Path:
    """A verified local copy of the weights at ``url`` (cached; see the module docstring)."""
    bare, want = _split_url(url, sha256)
    name = Path(urllib.parse.urlsplit(bare).path).name or "weights.safetensors"
    dest = cache_dir() / want[:16] / name  # one folder per hash: two files of the same name never collide
    if dest.is_file():
        if file_sha256(dest) == want:
            return dest
        log.warning("%s: cached file does not match its SHA-256; fetching it again", dest)
        dest.unlink()
    _download(bare, dest, want, timeout)
    return dest


def resolve_weights(spec: str | Path, sha256: str | None = None) -> Path:
    """A verified local file for ``spec``: an existing path, a shipped ``model.tag``, or a URL.

    ``sha256``, when given, is checked for a local path too; for a URL it may instead be the
    ``#sha256=`` fragment. Raises :class:`~irstd.core.errors.CheckpointError` (one line naming the
    file) or :class:`~irstd.core.errors.UnknownModelError` (unknown tag, with suggestions).
    """
    parsed = resolve_model_spec(spec)
    text = parsed.text
    if parsed.kind == "url":
        return fetch_url(text, sha256)
    path = parsed.path
    if path.is_file():
        if sha256:
            _check_hash(path, sha256, "this file")
        return path
    if parsed.kind == "shipped":
        row = get_pretrained(text)
        if not row.path.is_file():
            raise CheckpointError(f"{row.path}: shipped weights {row.name} are missing from the installed package")
        _check_hash(row.path, row.sha256, row.name)
        return row.path
    if "/" in text or "\\" in text or path.suffix in (".safetensors", ".onnx"):
        return path  # a file path: the checkpoint reader names the missing file
    close = close_pretrained(text)
    if close:
        raise CheckpointError(f"checkpoint not found: {text}; did you mean {', '.join(close)}?")
    raise CheckpointError(f"checkpoint not found: {text} is neither a file nor shipped weights "
                          "(irstd models --pretrained lists the names, e.g. sgem_unet.sirst)")


def close_pretrained(text: str, n: int = 3) -> list[str]:
    """Shipped tags close to ``text``, best first: compared whole (``sgem_unet_tt.sirst``) and by model name
    alone (``sgemunet`` → ``sgem_unet.*``)."""
    def score(tag: str) -> float:
        return max(difflib.SequenceMatcher(None, text, tag).ratio(),
                   difflib.SequenceMatcher(None, text, tag.split(".")[0]).ratio())

    ranked = sorted(((score(t), t) for t in list_pretrained()), key=lambda st: (-st[0], st[1]))
    return [t for sc, t in ranked[:n] if sc >= 0.75]

