"""Rendered repositories served by a real tritonserver, queried with tritonclient.

Each answer is checked against the same computation done directly in Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp

from inferline.runtime.tritonserver import TritonProcess

from ..conftest import EXAMPLES, REPO
from .conftest import Serve

pytestmark = pytest.mark.integration

DIAMOND = REPO / "tests" / "data" / "pipelines" / "diamond" / "pipeline.yaml"


def _infer(
    protocol: Any, url: str, model: str, inputs: dict[str, np.ndarray], outputs: list[str]
) -> dict[str, np.ndarray]:
    """One request through tritonclient's http or grpc module (same API, other transport)."""
    client = protocol.InferenceServerClient(url)
    reqs = []
    for name, arr in inputs.items():
        i = protocol.InferInput(name, list(arr.shape), _dtype(arr))
        i.set_data_from_numpy(arr)
        reqs.append(i)
    res = client.infer(model, reqs, outputs=[protocol.InferRequestedOutput(o) for o in outputs])
    return {o: res.as_numpy(o) for o in outputs}


def infer_http(
    server: TritonProcess, model: str, inputs: dict[str, np.ndarray], outputs: list[str]
) -> dict[str, np.ndarray]:
    return _infer(thttp, server.url, model, inputs, outputs)


def infer_grpc(
    server: TritonProcess, model: str, inputs: dict[str, np.ndarray], outputs: list[str]
) -> dict[str, np.ndarray]:
    return _infer(tgrpc, f"127.0.0.1:{server.opts.ports.grpc}", model, inputs, outputs)


def _dtype(arr: np.ndarray) -> str:
    return {np.float32: "FP32", np.int64: "INT64", np.int32: "INT32", np.object_: "BYTES"}[
        arr.dtype.type
    ]


@pytest.fixture(scope="module")
def python_server(serve: Serve) -> TritonProcess:
    return serve([EXAMPLES / "minimal", DIAMOND])


@pytest.mark.parametrize("infer", [infer_http, infer_grpc], ids=["http", "grpc"])
def test_python_only_pipeline(python_server: TritonProcess, infer) -> None:  # type: ignore[no-untyped-def]
    x = np.array([[1.5, -2.0, 3.25], [0.0, 4.0, 8.0]], dtype=np.float32)
    y = infer(python_server, "minimal", {"X": x}, ["Y"])["Y"]
    np.testing.assert_array_equal(y, x * 2.0)


@pytest.mark.parametrize("infer", [infer_http, infer_grpc], ids=["http", "grpc"])
def test_diamond_ensemble_with_parallel_branches(python_server: TritonProcess, infer) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    got = infer(python_server, "diamond", {"X": x}, ["SUM", "NEGATIVE"])
    np.testing.assert_allclose(got["SUM"], np.sqrt(np.abs(x)) + np.square(x), rtol=1e-6)
    np.testing.assert_array_equal(got["NEGATIVE"][:, 0], (x < 0).sum(axis=1))


def test_server_reports_every_model_ready(python_server: TritonProcess) -> None:
    client = thttp.InferenceServerClient(python_server.url)
    index = {m["name"]: m.get("state") for m in client.get_model_repository_index()}
    assert index == {
        n: "READY"
        for n in [
            "minimal",
            "minimal-scale",
            "diamond",
            "diamond-split",
            "diamond-left",
            "diamond-right",
            "diamond-merge",
        ]
    }


# ---- adapted models: trees (xgboost, treelite checkpoint), TorchScript, ONNX -------------------


def build_adapted_artifacts(d: Path) -> dict[str, object]:
    import torch
    import treelite
    import xgboost

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4)).astype(np.float32)
    y = x[:, 0] * 2 - x[:, 1] + np.sin(x[:, 2]) + 0.1 * rng.normal(size=400)
    booster = xgboost.train(
        {"max_depth": 3, "eta": 0.3, "seed": 0}, xgboost.DMatrix(x, label=y), num_boost_round=20
    )
    booster.save_model(str(d / "xgb.json"))
    tl = treelite.frontend.load_xgboost_model(str(d / "xgb.json"))
    tl.serialize(str(d / "checkpoint.tl"))

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    torch.jit.script(net).save(str(d / "net.pt"))
    torch.onnx.export(
        net,
        (torch.zeros(1, 4),),
        str(d / "net.onnx"),
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "b"}, "output": {0: "b"}},
        dynamo=False,
    )
    return {"booster": booster, "net": net}


ADAPTED = """
apiVersion: inferline.dev/v1alpha1
kind: InferencePipeline
metadata: {name: adapted}
spec:
  backend: {name: triton}
  maxBatchSize: 32
  inputs: [{name: X, dtype: FP32, dims: [4]}]
  outputs:
    - {name: XGB, dtype: FP32, dims: [1]}
    - {name: TL, dtype: FP32, dims: [1]}
    - {name: TORCH, dtype: FP32, dims: [3]}
    - {name: ONNX, dtype: FP32, dims: [3]}
  steps:
    - name: xgb
      model:
        format: fil
        storageUri: file://%(d)s/xgb.json
        tree: {modelType: xgboost_json}
        maxBatchSize: 32
        inputs: [{name: input__0, dtype: FP32, dims: [4]}]
        outputs: [{name: output__0, dtype: FP32, dims: [1]}]
      inputMap: {input__0: X}
      outputMap: {output__0: XGB}
    - name: treelite
      model:
        format: fil
        storageUri: file://%(d)s/checkpoint.tl
        tree: {modelType: treelite_checkpoint}
        maxBatchSize: 32
        inputs: [{name: input__0, dtype: FP32, dims: [4]}]
        outputs: [{name: output__0, dtype: FP32, dims: [1]}]
      inputMap: {input__0: X}
      outputMap: {output__0: TL}
    - name: torch
      model:
        format: pytorch
        storageUri: file://%(d)s/net.pt
        maxBatchSize: 32
        dynamicBatching: {maxQueueDelayMicroseconds: 1000}
        inputs: [{name: INPUT__0, dtype: FP32, dims: [4]}]
        outputs: [{name: OUTPUT__0, dtype: FP32, dims: [3]}]
      inputMap: {INPUT__0: X}
      outputMap: {OUTPUT__0: TORCH}
    - name: onnx
      model:
        format: onnx
        storageUri: file://%(d)s/net.onnx
        maxBatchSize: 32
        inputs: [{name: input, dtype: FP32, dims: [4]}]
        outputs: [{name: output, dtype: FP32, dims: [3]}]
      inputMap: {input: X}
      outputMap: {output: ONNX}
"""


@pytest.fixture(scope="module")
def adapted(
    serve: Serve, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TritonProcess, dict[str, object]]:
    d = tmp_path_factory.mktemp("artifacts")
    refs = build_adapted_artifacts(d)
    manifest = d / "adapted.yaml"
    manifest.write_text(ADAPTED % {"d": d})
    return serve([manifest]), refs


@pytest.mark.parametrize("infer", [infer_http, infer_grpc], ids=["http", "grpc"])
def test_adapted_trees_torchscript_and_onnx(adapted, infer) -> None:  # type: ignore[no-untyped-def]
    import torch
    import xgboost

    server, refs = adapted
    x = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    got = infer(server, "adapted", {"X": x}, ["XGB", "TL", "TORCH", "ONNX"])
    want_trees = refs["booster"].predict(xgboost.DMatrix(x)).reshape(-1, 1)
    np.testing.assert_allclose(got["XGB"], want_trees, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["TL"], want_trees, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        want_net = refs["net"](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got["TORCH"], want_net, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["ONNX"], want_net, rtol=1e-4, atol=1e-5)
    assert got["XGB"].dtype == np.float32 and got["TORCH"].shape == (6, 3)
