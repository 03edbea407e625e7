"""`inferline serve` and the runtime entrypoint as processes, the way people and pods run them."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferline.runtime.tritonserver import free_port

from ..conftest import EXAMPLES, run_cli
from .conftest import stray_tritonservers

pytestmark = pytest.mark.integration

INFERLINE = str(Path(sys.executable).with_name("inferline"))

TREES = """
apiVersion: inferline.dev/v1alpha1
kind: InferencePipeline
metadata: {name: trees}
spec:
  maxBatchSize: 8
  inputs: [{name: X, dtype: FP32, dims: [4]}]
  outputs: [{name: "Y", dtype: FP32, dims: [1]}]
  steps:
    - name: t
      model:
        format: fil
        storageUri: %(uri)s
        %(sha)s
        tree: {modelType: xgboost_json}
        maxBatchSize: 8
        inputs: [{name: input__0, dtype: FP32, dims: [4]}]
        outputs: [{name: output__0, dtype: FP32, dims: [1]}]
      inputMap: {input__0: X}
      outputMap: {output__0: "Y"}
"""


def ports() -> list[str]:
    return [
        "--http-port",
        str(free_port()),
        "--grpc-port",
        str(free_port()),
        "--metrics-port",
        str(free_port()),
    ]


def trees_manifest(tmp: Path, uri: str, sha: str | None = None) -> Path:
    f = tmp / "trees.yaml"
    f.write_text(TREES % {"uri": uri, "sha": f"sha256: '{sha}'" if sha else ""})
    return f


@pytest.fixture
def no_strays(tmp_path: Path) -> Iterator[None]:
    yield
    deadline = time.monotonic() + 10
    while stray_tritonservers(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stray_tritonservers(tmp_path) == [], "a tritonserver outlived the command"


def serve_fails(*args: str, cwd: Path | None = None) -> str:
    r = subprocess.run(
        [INFERLINE, "serve", *args, *ports(), "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert r.returncode != 0
    assert "Traceback" not in r.stdout + r.stderr
    return r.stderr


def test_unreachable_uri(tmp_path: Path, no_strays: None) -> None:
    closed = free_port()  # nothing listens there
    stderr = serve_fails(
        str(trees_manifest(tmp_path, f"http://127.0.0.1:{closed}/m.json")),
        "--workdir",
        str(tmp_path / "w"),
    )
    assert f"http://127.0.0.1:{closed}/m.json: cannot fetch" in stderr
    # One line says it all (no client library's debug dump after it).
    assert len(stderr.strip().splitlines()) == 1, stderr


def test_checksum_mismatch(tmp_path: Path, no_strays: None) -> None:
    art = tmp_path / "m.json"
    art.write_text('{"not": "checked yet"}')
    stderr = serve_fails(
        str(trees_manifest(tmp_path, f"file://{art}", "0" * 64)), "--workdir", str(tmp_path / "w")
    )
    assert "sha256 mismatch: got " + hashlib.sha256(art.read_bytes()).hexdigest() in stderr


def test_corrupt_artifact(tmp_path: Path, no_strays: None) -> None:
    art = tmp_path / "m.json"
    art.write_text("this is not an xgboost model")
    sha = hashlib.sha256(art.read_bytes()).hexdigest()  # verified, but corrupt inside
    stderr = serve_fails(
        str(trees_manifest(tmp_path, f"file://{art}", sha)), "--workdir", str(tmp_path / "w")
    )
    assert "tritonserver exited with status" in stderr
    assert "model 'trees-t' failed to load: " in stderr  # the model and the reason


def test_busy_port(tmp_path: Path, no_strays: None) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        r = subprocess.run(
            [
                INFERLINE,
                "serve",
                str(EXAMPLES / "minimal"),
                "--http-port",
                str(busy),
                "--workdir",
                str(tmp_path / "w"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert r.returncode == 1
    assert f"port {busy} (http) is already in use" in r.stderr
    assert "Traceback" not in r.stderr


def test_gpu_pipeline_without_a_gpu_says_so() -> None:
    # CUDA_VISIBLE_DEVICES="" hides any GPU, so this holds on GPU machines too.
    r = run_cli("serve", str(EXAMPLES / "readability"), *ports(), env={"CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 1
    assert "no NVIDIA GPU is visible here; add --device cpu" in r.stderr


def wait_for(proc: subprocess.Popen[bytes], out: Path, marker: str, timeout: float) -> str:
    """Poll the process's output file until `marker` shows up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = out.read_text(errors="replace")
        if marker in seen:
            return seen
        if proc.poll() is not None:
            raise AssertionError(f"exited ({proc.returncode}): {seen}")
        time.sleep(0.2)
    raise AssertionError(f"no {marker!r} after {timeout}s: {out.read_text()}")


def test_runtime_entrypoint_serves_a_rendered_pipeline_and_stops_on_sigterm(
    tmp_path: Path, no_strays: None
) -> None:
    r = run_cli("render", str(EXAMPLES / "minimal"), "-o", str(tmp_path / "rendered"))
    assert r.returncode == 0, r.stderr
    http, grpc, metrics = free_port(), free_port(), free_port()
    out = tmp_path / "runtime.out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inferline.runtime",
            "--rendered",
            str(tmp_path / "rendered"),
            "--repository",
            str(tmp_path / "models"),
            "--address",
            "127.0.0.1",
            "--http-port",
            str(http),
            "--grpc-port",
            str(grpc),
            "--metrics-port",
            str(metrics),
            "--server-log",
            str(tmp_path / "server.log"),
        ],
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        log = wait_for(proc, out, "serving on http", 120)
        # The python code is an artifact the runtime fetched, then the repository was swapped in.
        assert f"fetching file://{EXAMPLES}/minimal/scale.py" in log
        assert f"repository ready at {tmp_path / 'models'} (pipelines: minimal)" in log
        body = json.dumps(
            {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.5]}]}
        ).encode()
        with urllib.request.urlopen(
            f"http://127.0.0.1:{http}/v2/models/minimal/infer", data=body, timeout=30
        ) as resp:
            out = json.loads(resp.read())
        assert out["outputs"][0]["data"] == [2.0, 5.0]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_infer_with_the_example_comment_then_ctrl_c(tmp_path: Path, no_strays: None) -> None:
    """The minimal example's own comment: `inferline serve ...` then `inferline infer minimal
    --input X=1,2,3`; Ctrl-C then stops the server and every python stub."""
    http, grpc, metrics = free_port(), free_port(), free_port()
    out = tmp_path / "serve.out"
    proc = subprocess.Popen(
        [
            INFERLINE,
            "serve",
            str(EXAMPLES / "minimal"),
            "--http-port",
            str(http),
            "--grpc-port",
            str(grpc),
            "--metrics-port",
            str(metrics),
            "--workdir",
            str(tmp_path / "w"),
        ],
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(proc, out, "Press Ctrl-C", 120)
        for value in ("1,2,3", "[1,2,3]", "[[1,2,3]]"):
            r = run_cli("infer", "minimal", "--input", f"X={value}", "--url", f"127.0.0.1:{http}")
            assert r.returncode == 0, r.stderr
            assert json.loads(r.stdout)["outputs"]["Y"] == [[2.0, 4.0, 6.0]]
        r = run_cli("infer", "minimal", "--input", "X=a,b", "--url", f"127.0.0.1:{http}")
        assert r.returncode == 1 and r.stderr.startswith("error: input X: cannot be read as FP32")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_runtime_entrypoint_rejects_a_directory_that_is_not_rendered(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "inferline.runtime",
            "--rendered",
            str(tmp_path),
            "--repository",
            str(tmp_path / "m"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert "not a rendered pipeline" in r.stderr and "Traceback" not in r.stderr
