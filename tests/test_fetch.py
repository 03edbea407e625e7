"""Artifact fetching through fsspec: a real HTTP server on loopback, local files, mounts."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferline.runtime.fetch import FetchError, fetch


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_http_download_verifies_and_reports_progress(
    http_root: tuple[str, Path], tmp_path: Path
) -> None:
    url, root = http_root
    payload = bytes(range(256)) * 20_000  # 5 MB: several chunks
    (root / "model.bin").write_bytes(payload)
    seen: list[tuple[int, int | None]] = []
    dest = tmp_path / "out" / "model.bin"
    fetch(
        f"{url}/model.bin",
        dest,
        sha256=hashlib.sha256(payload).hexdigest(),
        progress=lambda uri, done, total: seen.append((done, total)),
    )
    assert dest.read_bytes() == payload
    assert seen[-1] == (len(payload), len(payload)) and len(seen) > 1


def test_http_checksum_mismatch_leaves_nothing(http_root: tuple[str, Path], tmp_path: Path) -> None:
    url, root = http_root
    (root / "m.bin").write_bytes(b"abc")
    dest = tmp_path / "m.bin"
    with pytest.raises(FetchError, match="sha256 mismatch"):
        fetch(f"{url}/m.bin", dest, sha256="b" * 64)
    assert not dest.exists() and not list(tmp_path.glob("*.partial"))


def test_http_404_is_not_found(http_root: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = http_root
    with pytest.raises(FetchError, match=r"/missing.bin: not found"):
        fetch(f"{url}/missing.bin", tmp_path / "x")


def test_local_directory_is_copied_whole(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    fetch(f"file://{src}", tmp_path / "dst")
    assert (tmp_path / "dst" / "sub" / "b.txt").read_text() == "b"


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(FetchError, match="is empty"):
        fetch(f"file://{tmp_path / 'empty'}", tmp_path / "out")


def test_pvc_and_configmap_uris_read_their_mounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pvc" / "models-claim" / "bert").mkdir(parents=True)
    (tmp_path / "pvc" / "models-claim" / "bert" / "model.pt").write_bytes(b"weights")
    (tmp_path / "cm" / "pre-code").mkdir(parents=True)
    (tmp_path / "cm" / "pre-code" / "model.py").write_text("code")
    monkeypatch.setenv("INFERLINE_PVC_ROOT", str(tmp_path / "pvc"))
    monkeypatch.setenv("INFERLINE_CONFIGMAP_ROOT", str(tmp_path / "cm"))
    fetch("pvc://models-claim/bert/model.pt", tmp_path / "o1")
    fetch("configmap://pre-code/model.py", tmp_path / "o2")
    assert (tmp_path / "o1").read_bytes() == b"weights"
    assert (tmp_path / "o2").read_text() == "code"


def test_pvc_without_a_mount_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INFERLINE_PVC_ROOT", raising=False)
    with pytest.raises(FetchError, match=r"need the object mounted .* set INFERLINE_PVC_ROOT"):
        fetch("pvc://claim/m.pt", tmp_path / "x")
