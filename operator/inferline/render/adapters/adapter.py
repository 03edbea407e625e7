"""Inferline adapter model: serves a non-python artifact from Triton's python backend.

Rendered as `model.py` for a step whose format the chosen backend does not serve natively. It
keeps the step's exact signature (names, dtypes, dims from config.pbtxt) and loads the artifact
with the library that reads it:

  INFERLINE_ADAPTER=trees        xgboost (xgboost*, via Booster.inplace_predict) or treelite GTIL
                                 (lightgbm, treelite_checkpoint)
  INFERLINE_ADAPTER=torchscript  torch.jit.load, on the instance's GPU when it has one
  INFERLINE_ADAPTER=onnx         onnxruntime, CUDA provider on GPU instances when available

Requests in one execute() call are concatenated along the batch dimension and run together,
then split, so Triton's dynamic batcher pays off here as it does for native backends.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils


def _param(config: dict[str, Any], key: str, default: str = "") -> str:
    return config.get("parameters", {}).get(key, {}).get("string_value", default)


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        self.config = json.loads(args["model_config"])
        self.kind = _param(self.config, "INFERLINE_ADAPTER")
        self.batching = self.config.get("max_batch_size", 0) > 0
        self.inputs = [i["name"] for i in self.config["input"]]
        self.outputs = [
            (o["name"], pb_utils.triton_string_to_numpy(o["data_type"]), o["dims"])
            for o in self.config["output"]
        ]
        artifact = os.path.join(
            args["model_repository"],
            args["model_version"],
            _param(self.config, "INFERLINE_ARTIFACT"),
        )
        self.gpu = args.get("model_instance_kind") == "GPU"
        self.device_id = int(args.get("model_instance_device_id", "0"))
        loader = {
            "trees": self._load_trees,
            "torchscript": self._load_torch,
            "onnx": self._load_onnx,
        }
        if self.kind not in loader:
            raise pb_utils.TritonModelException(f"unknown INFERLINE_ADAPTER {self.kind!r}")
        loader[self.kind](artifact)

    # ---- loading ------------------------------------------------------------------------

    def _load_trees(self, path: str) -> None:
        model_type = _param(self.config, "model_type")
        self.output_class = _param(self.config, "output_class", "false") == "true"
        self.threshold = float(_param(self.config, "threshold", "0.5") or 0.5)
        # A slim image may ship treelite alone; it reads xgboost JSON/UBJ (and legacy) too.
        if model_type.startswith("xgboost") and importlib.util.find_spec("xgboost"):
            import xgboost

            booster = xgboost.Booster()
            booster.load_model(path)
            self.predict = lambda x: np.asarray(booster.inplace_predict(x))
            return
        import treelite

        loaders = {
            "lightgbm": treelite.frontend.load_lightgbm_model,
            "xgboost_json": treelite.frontend.load_xgboost_model,
            "xgboost_ubj": treelite.frontend.load_xgboost_model,
            "xgboost": treelite.frontend.load_xgboost_model_legacy_binary,
            "treelite_checkpoint": treelite.Model.deserialize,
        }
        model = loaders[model_type](path)
        self.predict = lambda x: np.asarray(treelite.gtil.predict(model, x))

    def _load_torch(self, path: str) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(f"cuda:{self.device_id}" if self.gpu else "cpu")
        self.module = torch.jit.load(path, map_location=self.device).eval()
        self.inference_mode = _param(self.config, "INFERENCE_MODE", "true") != "false"

    def _load_onnx(self, path: str) -> None:
        import onnxruntime as ort

        providers: list[Any] = ["CPUExecutionProvider"]
        if self.gpu and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": self.device_id}))
        self.session = ort.InferenceSession(path, providers=providers)

    # ---- serving ------------------------------------------------------------------------

    def execute(self, requests: list[Any]) -> list[Any]:
        batches = [[self._input(r, name) for name in self.inputs] for r in requests]
        if self.batching and len(requests) > 1:
            sizes = [b[0].shape[0] for b in batches]
            joined = [self._concat([b[i] for b in batches]) for i in range(len(self.inputs))]
            results = self._run(joined)
            offsets = np.cumsum([0, *sizes])
            per_request = [[r[s:e] for r in results] for s, e in itertools.pairwise(offsets)]
        else:
            per_request = [self._run(b) for b in batches]
        return [
            pb_utils.InferenceResponse(
                [self._output(o, r) for o, r in zip(self.outputs, res, strict=True)]
            )
            for res in per_request
        ]

    def _input(self, request: Any, name: str) -> Any:
        t = pb_utils.get_input_tensor_by_name(request, name)
        if t.is_cpu() or self.kind != "torchscript":
            return t.as_numpy() if t.is_cpu() else self._from_dlpack(t).cpu().numpy()
        return self._from_dlpack(t)  # stays on the GPU

    def _from_dlpack(self, t: Any) -> Any:
        import torch.utils.dlpack

        return torch.utils.dlpack.from_dlpack(t.to_dlpack())

    def _concat(self, parts: list[Any]) -> Any:
        if self.kind == "torchscript" and not isinstance(parts[0], np.ndarray):
            return self.torch.cat(parts)
        return np.concatenate(parts)

    def _run(self, inputs: list[Any]) -> list[Any]:
        if self.kind == "trees":
            return [self._trees(inputs[0])]
        if self.kind == "onnx":
            return self.session.run(
                [o[0] for o in self.outputs], dict(zip(self.inputs, inputs, strict=True))
            )
        return self._torch(inputs)

    def _trees(self, x: np.ndarray) -> np.ndarray:
        out = self.predict(np.ascontiguousarray(x, dtype=np.float32))
        out = out.reshape(x.shape[0], -1)
        if self.output_class:
            if out.shape[1] == 1:  # binary: probability of class 1 -> class
                return (out > self.threshold).astype(np.float32)
            want = int(np.prod(self.outputs[0][2]))
            return out if want == out.shape[1] else np.argmax(out, axis=1).reshape(-1, 1)
        return out

    def _torch(self, inputs: list[Any]) -> list[Any]:
        torch = self.torch
        tensors = [
            x.to(self.device)
            if isinstance(x, torch.Tensor)
            else torch.from_numpy(x).to(self.device)
            for x in inputs
        ]
        ctx = torch.inference_mode() if self.inference_mode else torch.no_grad()
        with ctx:
            result = self.module(*tensors)
        return list(result) if isinstance(result, tuple | list) else [result]

    def _output(self, spec: tuple[str, Any, list[int]], value: Any) -> Any:
        name, dtype, _dims = spec
        if self.kind == "torchscript" and value.is_cuda:
            # Pass the tensor itself (it has __dlpack__), not a capsule: only then does the
            # stub synchronize with the producing CUDA stream.
            return pb_utils.Tensor.from_dlpack(name, value.contiguous())
        if self.kind == "torchscript":
            value = value.cpu().numpy()
        return pb_utils.Tensor(name, np.ascontiguousarray(np.asarray(value).astype(dtype)))

    def finalize(self) -> None:
        for attr in ("module", "session", "predict"):
            if hasattr(self, attr):
                delattr(self, attr)
