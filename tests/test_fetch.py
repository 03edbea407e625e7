"""Artifact fetching: a real HTTP server on loopback, local files, mounts."""

from __future__ import annotations

import functools
import hashlib
import http.server
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferline.render.manifest import RenderManifest, RepoFile
from inferline.runtime.credentials import CredentialSource
from inferline.runtime.download import Retry
from inferline.runtime.fetch import Artifact, FetchError, FetchOptions, fetch, fetch_all
from inferline.runtime.repository import artifact

from .integration.objectstores import Proxy


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


class TokenHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files only to requests carrying `Authorization: Bearer t0ken`; no Range support."""

    def do_HEAD(self) -> None:
        if self.headers.get("Authorization") != "Bearer t0ken":
            self.send_error(401)
            return
        super().do_HEAD()

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != "Bearer t0ken":
            self.send_error(401)
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "private"
    root.mkdir()
    handler = functools.partial(TokenHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def secrets_dir(tmp_path: Path, name: str, **keys: str) -> CredentialSource:
    d = tmp_path / "secrets" / name
    d.mkdir(parents=True)
    for k, v in keys.items():
        (d / k).write_text(v)
    return CredentialSource(tmp_path / "secrets", ambient=False)


def test_http_header_secret(token_server: tuple[str, Path], tmp_path: Path) -> None:
    url, root = token_server
    (root / "m.bin").write_bytes(b"weights")
    creds = secrets_dir(tmp_path, "hf-token", **{"header.Authorization": "Bearer t0ken\n"})
    opts = FetchOptions(credentials=creds)
    with pytest.raises(FetchError, match=r"m.bin: access denied to anonymous requests"):
        fetch_all([Artifact(f"{url}/m.bin", tmp_path / "a")], opts)
    fetch_all([Artifact(f"{url}/m.bin", tmp_path / "b", credentials_secret="hf-token")], opts)
    assert (tmp_path / "b").read_bytes() == b"weights"


def test_a_secret_without_the_keys_a_scheme_needs(tmp_path: Path) -> None:
    creds = secrets_dir(tmp_path, "s3", AWS_ACCESS_KEY_ID="AKIA")
    with pytest.raises(
        FetchError,
        match=r"^credentialsSecret 's3': s3:// needs keys AWS_ACCESS_KEY_ID and "
        r"AWS_SECRET_ACCESS_KEY \(it has: AWS_ACCESS_KEY_ID\)$",
    ):
        fetch_all(
            [Artifact("s3://b/m.bin", tmp_path / "x", credentials_secret="s3")],
            FetchOptions(credentials=creds),
        )


def test_a_cut_download_from_a_server_without_ranges_starts_over(
    http_root: tuple[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, root = http_root  # SimpleHTTPRequestHandler ignores Range
    payload = bytes(range(256)) * 16_000  # 4 MB
    (root / "m.bin").write_bytes(payload)
    host, port = url.removeprefix("http://").split(":")
    proxy = Proxy((host, int(port))).start()
    proxy.cut(after_bytes=(5 << 20) // 2, path_contains="m.bin", times=6)  # past obstore retries
    try:
        with caplog.at_level(logging.WARNING):
            fetch_all(
                [Artifact(f"{proxy.endpoint}/m.bin", tmp_path / "m.bin")],
                FetchOptions(retry=Retry(attempts=10, backoff_s=0.01)),
            )
    finally:
        proxy.close()
    assert (tmp_path / "m.bin").read_bytes() == payload
    assert "restarting the download (the server ignores ranges)" in caplog.text


class BarrierHandler(http.server.SimpleHTTPRequestHandler):
    """Answers a GET only once another GET is in flight too: proves downloads overlap."""

    barrier = threading.Barrier(2, timeout=5)

    def do_GET(self) -> None:
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            self.send_error(503)
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


def test_files_download_in_parallel(tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    for name in ("a.bin", "b.bin"):
        (root / name).write_bytes(name.encode() * 1000)
    handler = functools.partial(BarrierHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        arts = [Artifact(f"{url}/{n}", tmp_path / "out" / n) for n in ("a.bin", "b.bin")]
        fetch_all(arts, FetchOptions(parallel=2))
        assert (tmp_path / "out" / "b.bin").read_bytes() == b"b.bin" * 1000
    finally:
        server.shutdown()
        server.server_close()


def test_manifest_entries_become_artifacts(tmp_path: Path) -> None:
    entry = RepoFile.model_validate(
        {
            "path": "m/1/",
            "source": "s3://b/tok.json",
            "credentialsSecret": "s3-reader",
            "storage": {"endpoint": "http://minio:9000", "addressingStyle": "path"},
        }
    )
    # What render.json carries survives its one writer and one reader.
    manifest = RenderManifest(pipelines=[], files=[entry])
    (again,) = RenderManifest.from_json(manifest.to_json()).files
    a = artifact(again, tmp_path)
    assert a.into_dir and a.dest == tmp_path / "m" / "1"
    assert a.credentials_secret == "s3-reader"
    assert a.storage.endpoint == "http://minio:9000" and a.storage.addressing_style == "path"
