"""The render manifest (render.json): written by render, read by the runtime, nothing lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inferline.render.manifest import ManifestError, RenderManifest
from inferline.runtime.repository import write_repository

from .conftest import EXAMPLES, REPO, run_cli


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    r = run_cli("render", str(EXAMPLES / "minimal"), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    return tmp_path / "out"


def test_render_writes_a_manifest_the_runtime_reads_back(rendered: Path) -> None:
    text = (rendered / "render.json").read_text()
    manifest = RenderManifest.from_json(text)
    assert manifest.to_json() == text  # one writer, one reader: a fixed point
    (p,) = manifest.pipelines
    assert (p.name, p.served_name, [s.model for s in p.steps]) == (
        "minimal",
        "minimal",
        ["minimal-scale"],
    )
    paths = {f.path for f in manifest.files}
    assert {"minimal/config.pbtxt", "minimal-scale/config.pbtxt", "minimal-scale/1/model.py"} <= (
        paths
    )
    # The model_repository written beside it holds the same configs.
    for f in manifest.files:
        if f.text is not None:
            assert (rendered / "model_repository" / f.path).read_text() == f.text


def test_render_of_a_relative_path_writes_absolute_uris(tmp_path: Path) -> None:
    # Regression: `inferline render examples/minimal -o out` (the README's command) wrote
    # file://examples/... into render.json, servable only from the directory it ran in.
    r = run_cli("render", "examples/minimal", "-o", str(tmp_path / "out"), cwd=REPO)
    assert r.returncode == 0, r.stderr
    manifest = RenderManifest.from_json((tmp_path / "out" / "render.json").read_text())
    (code,) = manifest.artifacts
    assert code.source == f"file://{REPO}/examples/minimal/scale.py"
    write_repository(manifest, tmp_path / "elsewhere")  # fetches from any directory
    assert (tmp_path / "elsewhere" / "minimal-scale" / "1" / "model.py").is_file()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"pipelines": [], "artifacts": []}), "not an Inferline render manifest"),
        (json.dumps({"kind": "InferlineRender", "version": 99}), "manifest version 99"),
        (
            json.dumps({"kind": "InferlineRender", "version": 1, "pipelines": [], "files": [{}]}),
            "files.0.path",
        ),
        (
            json.dumps(
                {
                    "kind": "InferlineRender",
                    "version": 1,
                    "pipelines": [],
                    "files": [{"path": "../etc/passwd", "text": ""}],
                }
            ),
            "without '..'",
        ),
    ],
)
def test_unreadable_manifests_are_one_line_errors(text: str, says: str) -> None:
    with pytest.raises(ManifestError) as e:
        RenderManifest.from_json(text, "x/render.json")
    message = str(e.value)
    assert says in message and "\n" not in message and message.startswith("x/render.json: ")


def test_runtime_says_one_line_about_an_old_render_json(tmp_path: Path) -> None:
    # Regression: a render.json from before the typed manifest gave the runtime a traceback.
    (tmp_path / "render.json").write_text(json.dumps({"pipelines": [], "artifacts": []}))
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
        timeout=60,
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "not an Inferline render manifest" in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "ERROR" in ln]) == 1


PYTHON_WITH_FILE = """
apiVersion: inferline.dev/v1alpha1
kind: InferencePipeline
metadata: {name: p}
spec:
  backend: {name: inferline-cpu}
  placement: {device: CPU}
  inputs: [{name: X, dtype: FP32, dims: [1]}]
  outputs: [{name: "Y", dtype: FP32, dims: [1]}]
  steps:
    - name: m
      model:
        format: python
        python: {file: m.py}
        storageUri: file://%(weights)s
        inputs: [{name: I, dtype: FP32, dims: [1]}]
        outputs: [{name: O, dtype: FP32, dims: [1]}]
      inputMap: {I: X}
      outputMap: {O: "Y"}
"""


def test_python_model_with_a_single_file_storage_uri(tmp_path: Path) -> None:
    # Regression: a python Model whose storageUri is one file failed with "Is a directory".
    (tmp_path / "m.py").write_text("class TritonPythonModel: pass\n")
    (tmp_path / "weights.bin").write_bytes(b"\x01\x02")
    (tmp_path / "p.yaml").write_text(PYTHON_WITH_FILE % {"weights": "weights.bin"})
    r = run_cli("render", str(tmp_path / "p.yaml"), "-o", str(tmp_path / "out"), "--fetch")
    assert r.returncode == 0, r.stderr
    version_dir = tmp_path / "out" / "model_repository" / "p-m" / "1"
    assert (version_dir / "weights.bin").read_bytes() == b"\x01\x02"
    assert (version_dir / "model.py").is_file()


def test_python_model_with_a_directory_storage_uri(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("class TritonPythonModel: pass\n")
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "vocab.txt").write_text("a\nb\n")
    (tmp_path / "p.yaml").write_text(PYTHON_WITH_FILE % {"weights": "extra"})
    r = run_cli("render", str(tmp_path / "p.yaml"), "-o", str(tmp_path / "out"), "--fetch")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out/model_repository/p-m/1/vocab.txt").read_text() == "a\nb\n"
