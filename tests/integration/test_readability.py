"""README command one, for real: serve the readability example on CPU and score texts.

The scores the served ensemble returns are checked against the same computation done directly
in Python (tokenizer + TorchScript encoder, text features + xgboost, weighted average).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from inferline.runtime.tritonserver import free_port

from ..conftest import EXAMPLES, build_readability_artifacts, run_cli
from .conftest import stray_tritonservers

pytestmark = pytest.mark.integration

EXAMPLE = EXAMPLES / "readability"
ARTIFACTS = EXAMPLE / "artifacts"
REQUEST = EXAMPLE / "requests.json"
MODELS = [
    "readability",
    "readability-preprocess",
    "readability-bert",
    "readability-trees",
    "readability-postprocess",
]


@pytest.fixture(scope="module")
def artifacts() -> Path:
    build_readability_artifacts()
    return ARTIFACTS


@pytest.fixture(scope="module")
def served(
    artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, int], Path]]:
    ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
    work = tmp_path_factory.mktemp("serve")
    out = work / "serve.out"
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("inferline")),
            "serve",
            str(EXAMPLE),
            "--device",
            "cpu",
            "--http-port",
            str(ports["http"]),
            "--grpc-port",
            str(ports["grpc"]),
            "--metrics-port",
            str(ports["metrics"]),
            "--workdir",
            str(work / "w"),
        ],
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    while "Press Ctrl-C" not in out.read_text(errors="replace"):
        assert proc.poll() is None, out.read_text()
        assert time.monotonic() < deadline, out.read_text()
        time.sleep(0.5)
    yield proc, ports, work
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while stray_tritonservers(work) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stray_tritonservers(work) == [], "a tritonserver or python stub outlived Ctrl-C"


def expected_scores(texts: list[str], weights: np.ndarray) -> np.ndarray:
    import torch
    import xgboost
    from tokenizers import Tokenizer

    sys.path.insert(0, str(EXAMPLE))
    try:
        from features import text_features
    finally:
        sys.path.remove(str(EXAMPLE))
    tok = Tokenizer.from_file(str(ARTIFACTS / "tokenizer" / "tokenizer.json"))
    tok.enable_truncation(128)
    tok.enable_padding(length=128)
    enc = tok.encode_batch(texts)
    ids = torch.tensor([e.ids for e in enc], dtype=torch.int64)
    mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.int64)
    with torch.no_grad():
        bert = torch.jit.load(str(ARTIFACTS / "bert" / "model.pt"))(ids, mask).numpy()
    booster = xgboost.Booster()
    booster.load_model(str(ARTIFACTS / "trees" / "xgboost.json"))
    feats = np.array([text_features(t) for t in texts], dtype=np.float32)
    trees = booster.inplace_predict(feats).reshape(-1, 1)
    return weights * bert + (1 - weights) * trees


def test_serve_then_infer_scores_every_text(served) -> None:  # type: ignore[no-untyped-def]
    _proc, ports, _work = served
    r = run_cli(
        "infer", "readability", "--data", str(REQUEST), "--url", f"127.0.0.1:{ports['http']}"
    )
    assert r.returncode == 0, r.stderr
    scores = np.array(json.loads(r.stdout)["outputs"]["SCORE"], dtype=np.float32)
    body = json.loads(REQUEST.read_text())
    texts = next(i for i in body["inputs"] if i["name"] == "TEXT")["data"]
    weights = np.array(
        next(i for i in body["inputs"] if i["name"] == "BERT_WEIGHT")["data"], dtype=np.float32
    ).reshape(-1, 1)
    assert scores.shape == (len(texts), 1)
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(scores, expected_scores(texts, weights), rtol=1e-3, atol=1e-2)


def test_the_documented_curl_request_works(served) -> None:  # type: ignore[no-untyped-def]
    _proc, ports, _work = served
    req = urllib.request.Request(
        f"http://127.0.0.1:{ports['http']}/v2/models/readability/infer", data=REQUEST.read_bytes()
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        out = json.loads(resp.read())
    assert out["outputs"][0]["name"] == "SCORE"
    texts = json.loads(REQUEST.read_text())["inputs"][0]["data"]
    assert out["outputs"][0]["shape"][0] == len(texts)


def test_metrics_show_every_model(served) -> None:  # type: ignore[no-untyped-def]
    _proc, ports, _work = served
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=10) as r:
        text = r.read().decode()
    for model in MODELS:
        assert f'nv_inference_request_success{{model="{model}",version="1"}}' in text
        assert f'nv_inference_request_summary_us_count{{model="{model}",version="1"}}' in text
    assert 'quantile="0.5"' in text  # latency summaries are on
