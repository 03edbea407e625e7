"""Real object-store servers on loopback for the artifact tests, and a proxy that watches them.

- S3: moto's server (from the dev extra) with IAM authentication switched on after setup, so
  every request's SigV4 signature, access key and policy are checked as AWS would.
- GCS: fake-gcs-server, built once from its pinned Go module (tests/toolchain/fake-gcs-server)
  into ~/.cache/inferline-test-tools, like the e2e control plane.
- Proxy: a TCP relay in front of either, counting the requests that pass, keeping their
  Authorization headers, and able to cut a response after N bytes (once) to test resumes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from inferline.runtime.tritonserver import free_port

from ..conftest import REPO

FAKE_GCS_MODULE = REPO / "tests" / "toolchain" / "fake-gcs-server"


def _wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---- S3: moto ---------------------------------------------------------------------------------


@dataclass
class S3Keys:
    access_key_id: str
    secret_access_key: str


@dataclass
class MotoS3:
    endpoint: str
    proc: subprocess.Popen[bytes]
    admin: S3Keys = field(default_factory=lambda: S3Keys("admin", "admin"))

    def client(self, service: str = "s3"):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.admin.access_key_id,
            aws_secret_access_key=self.admin.secret_access_key,
        )

    def reader(self, name: str, buckets: list[str]) -> S3Keys:
        """An IAM user that may read (only) `buckets`, and its access key."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        resources = [f"arn:aws:s3:::{b}{s}" for b in buckets for s in ("", "/*")]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": resources,
                }
            ],
        }
        iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return S3Keys(key["AccessKeyId"], key["SecretAccessKey"])

    def require_auth(self) -> None:
        """From now on every request is authenticated and authorized (IAM, SigV4)."""
        req = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(req, timeout=10).close()


MOTO_SERVER = [sys.executable, "-m", "tests.integration.moto_server"]  # moto.server, patched


@contextmanager
def moto_s3(log: Path) -> Iterator[MotoS3]:
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_http(f"{endpoint}/moto-api/")
        yield MotoS3(endpoint, proc)
    finally:
        _stop(proc)


# ---- GCS: fake-gcs-server ---------------------------------------------------------------------


def fake_gcs_binary() -> Path:
    """Build fake-gcs-server from the pinned module unless the cache has this pin's build."""
    key = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        key.update((FAKE_GCS_MODULE / name).read_bytes())
    root = Path(os.environ.get("INFERLINE_TEST_TOOLS", Path.home() / ".cache/inferline-test-tools"))
    out = root / f"fake-gcs-server-{key.hexdigest()[:16]}"
    if out.is_file():
        return out
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build when sessions start together
        if out.is_file():
            return out
        env = {
            **os.environ,
            "CGO_ENABLED": "0",
            "GOTOOLCHAIN": "local",
            "GOFLAGS": "-mod=readonly -buildvcs=false",
        }
        tmp = out.with_suffix(".tmp")
        cmd = ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(tmp)]
        try:
            subprocess.run(
                [*cmd, "github.com/fsouza/fake-gcs-server"],
                cwd=FAKE_GCS_MODULE,
                env=env,
                check=True,
                capture_output=True,
                text=True,
                timeout=1200,
            )
        except FileNotFoundError:
            raise RuntimeError("the GCS tests build fake-gcs-server with Go >= 1.26") from None
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"building fake-gcs-server failed:\n{e.stderr}") from None
        tmp.replace(out)
    return out


@dataclass
class FakeGcs:
    endpoint: str
    proc: subprocess.Popen[bytes]

    def upload(self, bucket: str, name: str, data: bytes) -> None:
        url = f"{self.endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}"
        req = urllib.request.Request(
            url, data=data, method="POST", headers={"Content-Type": "application/octet-stream"}
        )
        urllib.request.urlopen(req, timeout=30).close()

    def create_bucket(self, bucket: str) -> None:
        req = urllib.request.Request(
            f"{self.endpoint}/storage/v1/b",
            data=json.dumps({"name": bucket}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=10).close()


@contextmanager
def fake_gcs(log: Path, proxy: Proxy) -> Iterator[FakeGcs]:
    """fake-gcs-server reached through `proxy`: it serves path-style requests only for the host
    it calls public, so that is the proxy's address, and every request goes through it."""
    binary = fake_gcs_binary()
    port = free_port()
    proxy.upstream = ("127.0.0.1", port)
    endpoint = proxy.endpoint
    args = ["-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory"]
    public = endpoint.removeprefix("http://")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(binary), *args, "-public-host", public, "-log-level", "warn"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_http(f"http://127.0.0.1:{port}/storage/v1/b")
        yield FakeGcs(endpoint, proc)
    finally:
        _stop(proc)


# ---- the proxy --------------------------------------------------------------------------------

_REQUEST = re.compile(rb"^(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/1\.1\r\n(.*?)\r\n\r\n", re.S | re.M)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Proxy:
    """A loopback TCP relay to `upstream` ("host:port") that records each request it carries.

    Requests are parsed from the client's bytes, so this suits bodiless requests (GET, HEAD,
    LIST): what artifact downloads send.
    """

    upstream: tuple[str, int]
    requests: list[Request] = field(default_factory=list)
    cut_after: int = 0  # cut responses to matching GETs after this many bytes...
    cut_path: str = ""
    cuts_left: int = 0  # ...this many times
    cuts: int = 0
    delay_per_chunk_s: float = 0.0  # slow responses down (64 KiB chunks) to make runs overlap
    _server: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def start(self) -> Proxy:
        self._server = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    def cut(self, after_bytes: int, path_contains: str, times: int = 1) -> None:
        """Cut the next `times` responses to GETs of `path_contains` after `after_bytes`."""
        self.cut_after, self.cut_path, self.cuts_left = after_bytes, path_contains, times

    def count(self, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if method in (None, r.method))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                client.close()  # as a dead server would look
                continue
            state = {"cut": None}
            threading.Thread(
                target=self._pump_requests, args=(client, upstream, state), daemon=True
            ).start()
            threading.Thread(
                target=self._pump_responses, args=(upstream, client, state), daemon=True
            ).start()

    def _pump_requests(self, src: socket.socket, dst: socket.socket, state: dict) -> None:
        buf = b""
        try:
            while data := src.recv(65536):
                buf += data
                while m := _REQUEST.search(buf):
                    headers = {}
                    for line in m.group(3).split(b"\r\n"):
                        k, _, v = line.decode("latin-1").partition(":")
                        headers[k.strip().lower()] = v.strip()
                    req = Request(m.group(1).decode(), m.group(2).decode(), headers)
                    with self._lock:
                        self.requests.append(req)
                        if self.cuts_left and req.method == "GET" and self.cut_path in req.path:
                            state["cut"] = self.cut_after
                            self.cuts_left -= 1
                    buf = buf[m.end() :]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src, dst)

    def _pump_responses(self, src: socket.socket, dst: socket.socket, state: dict) -> None:
        try:
            while data := src.recv(65536):
                room = state["cut"]
                if room is not None:
                    if len(data) >= room:
                        dst.sendall(data[:room])
                        self.cuts += 1
                        break  # the connection dies mid-body
                    state["cut"] = room - len(data)
                if self.delay_per_chunk_s:
                    time.sleep(self.delay_per_chunk_s)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src, dst)


def _close(*socks: socket.socket) -> None:
    for s in socks:
        with suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()
