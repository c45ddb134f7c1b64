"""Weights from a URL with their SHA-256, against a loopback HTTP server: good, wrong hash, truncated,
corrupted cache. No outside network."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from irstd.core.errors import CheckpointError
from irstd.models import create_model, load_model, save_checkpoint
from irstd.models.pretrained import cache_dir, file_sha256, resolve_weights


class _Server:
    """Serves ``files`` (name → bytes); ``truncate`` names files sent with half their body only."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                name = self.path.lstrip("/")
                outer.requests.append(name)
                body = outer.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))  # the full length, even when truncated
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if name in outer.truncate else body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, str]:
    """A small checkpoint's bytes and SHA-256; the cache goes to tmp_path/home."""
    monkeypatch.setenv("IRSTD_HOME", str(tmp_path / "home"))
    path = tmp_path / "src.safetensors"
    save_checkpoint(path, create_model("sgem_unet_t"), normalization=(100.0, 20.0))
    return path.read_bytes(), file_sha256(path)


def test_good_download_is_cached_and_loads(server: _Server, weights: tuple[bytes, str], tmp_path: Path) -> None:
    body, sha = weights
    server.files["m.safetensors"] = body
    url = f"{server.url}/m.safetensors#sha256={sha}"
    path = resolve_weights(url)
    assert path.is_relative_to(tmp_path / "home" / "weights") and path.read_bytes() == body
    model = load_model(url)  # second use: from the cache, no request
    assert server.requests == ["m.safetensors"]
    assert model.normalization == (100.0, 20.0) and model.model_name == "sgem_unet_t"
    assert load_model(f"{server.url}/m.safetensors", sha256=sha.upper()).model_name == "sgem_unet_t"
    assert server.requests == ["m.safetensors"]


def test_wrong_hash_fails_and_caches_nothing(server: _Server, weights: tuple[bytes, str]) -> None:
    body, sha = weights
    server.files["m.safetensors"] = body
    wrong = ("0" if sha[0] != "0" else "1") + sha[1:]
    with pytest.raises(CheckpointError, match="does not match") as exc:
        load_model(f"{server.url}/m.safetensors#sha256={wrong}")
    assert "m.safetensors" in str(exc.value) and "\n" not in str(exc.value)
    assert not any(p.is_file() for p in cache_dir().rglob("*"))


def test_truncated_download_fails_and_caches_nothing(server: _Server, weights: tuple[bytes, str]) -> None:
    body, sha = weights
    server.files["m.safetensors"] = body
    server.truncate.add("m.safetensors")
    with pytest.raises(CheckpointError, match="m.safetensors") as exc:
        resolve_weights(f"{server.url}/m.safetensors#sha256={sha}")
    assert "download" in str(exc.value) and "\n" not in str(exc.value)
    assert not any(p.is_file() for p in cache_dir().rglob("*"))


def test_corrupted_cache_entry_is_fetched_again(server: _Server, weights: tuple[bytes, str]) -> None:
    body, sha = weights
    server.files["m.safetensors"] = body
    url = f"{server.url}/m.safetensors#sha256={sha}"
    cached = resolve_weights(url)
    cached.write_bytes(body[:-10] + b"0123456789")  # corrupted after the download
    assert resolve_weights(url) == cached and cached.read_bytes() == body
    assert server.requests == ["m.safetensors", "m.safetensors"]
    # corrupted again while the server is gone: one line naming the URL, and no bad file kept
    cached.write_bytes(b"garbage")
    server.close()
    with pytest.raises(CheckpointError, match="download failed"):
        load_model(url)
    assert not cached.exists()


def test_url_needs_a_valid_sha256(server: _Server, weights: tuple[bytes, str]) -> None:
    with pytest.raises(CheckpointError, match="need their SHA-256"):
        resolve_weights(f"{server.url}/m.safetensors")
    with pytest.raises(CheckpointError, match="not a SHA-256"):
        resolve_weights(f"{server.url}/m.safetensors#sha256=abc")
    with pytest.raises(CheckpointError, match="404|Not Found"):
        resolve_weights(f"{server.url}/absent.safetensors#sha256={'a' * 64}")
    assert server.requests == ["absent.safetensors"]


def test_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IRSTD_HOME", str(tmp_path / "a"))
    assert cache_dir() == tmp_path / "a" / "weights"
    monkeypatch.delenv("IRSTD_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "b"))
    assert cache_dir() == tmp_path / "b" / "irstd" / "weights"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" / ".cache" / "irstd" / "weights"


def test_local_path_with_a_hash_is_checked(weights: tuple[bytes, str], tmp_path: Path) -> None:
    _, sha = weights
    path = tmp_path / "src.safetensors"
    assert resolve_weights(path, sha) == path
    with pytest.raises(CheckpointError, match="src.safetensors"):
        resolve_weights(path, "f" * 64)
    assert load_model(path, sha256=sha).normalization == (100.0, 20.0)
