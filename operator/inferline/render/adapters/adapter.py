"""Inferline adapter model: serves a non-python artifact from Triton's python backend.

Rendered as `model.py` for a step whose format the chosen backend does not serve natively. It
keeps the step's exact signature (names, dtypes, dims from config.pbtxt) and loads the artifact
with the library that reads it:

  INFERLINE_ADAPTER=trees        xgboost (xgboost*, via Booster.inplace_predict) or treelite GTIL
                                 (lightgbm, treelite_checkpoint); on a GPU instance, xgboost JSON
                                 forests with a plain regression objective are walked on the GPU
                                 in torch (TorchForest), as Triton's FIL backend would run them
  INFERLINE_ADAPTER=torchscript  torch.jit.load, on the instance's GPU when it has one; with
                                 the parameter CUDA_GRAPHS "true" (Model.parameters), batches up
                                 to 64 replay CUDA graphs captured per power-of-two size (the
                                 rows padded up to it)
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

GRAPH_MAX_BATCH = 64  # CUDA graphs for batches up to this size


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
        self.on_device = self.kind == "torchscript"  # inputs and outputs stay torch tensors
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
        gpu_walkable = self.gpu and model_type == "xgboost_json" and not self.output_class
        if gpu_walkable and importlib.util.find_spec("torch"):
            import torch

            self.torch = torch
            device = torch.device(f"cuda:{self.device_id}")
            forest = TorchForest.from_xgboost_json(path, device)
            if forest is not None:
                self.on_device = True
                self.predict = forest.predict
                return
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
        # Small batches are launch-bound (hundreds of kernels of microseconds each): replaying a
        # captured graph removes the launch cost. Larger batches are compute-bound: run as is.
        self.graph_sizes: list[int] = []
        self.graphs: dict[int, tuple[Any, list[Any], list[Any]]] = {}
        top = min(self.config.get("max_batch_size", 0), GRAPH_MAX_BATCH)
        if self.gpu and self.batching and _param(self.config, "CUDA_GRAPHS") == "true":
            self.graph_sizes = [1 << i for i in range(top.bit_length()) if 1 << i <= top]

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
        if t.is_cpu() or not self.on_device:
            return t.as_numpy() if t.is_cpu() else self._from_dlpack(t).cpu().numpy()
        return self._from_dlpack(t)  # stays on the GPU

    def _from_dlpack(self, t: Any) -> Any:
        import torch.utils.dlpack

        return torch.utils.dlpack.from_dlpack(t.to_dlpack())

    def _concat(self, parts: list[Any]) -> Any:
        if self.on_device and not all(isinstance(p, np.ndarray) for p in parts):
            return self.torch.cat([self._as_torch(p) for p in parts])
        return np.concatenate(parts)

    def _as_torch(self, x: Any) -> Any:
        return x if isinstance(x, self.torch.Tensor) else self.torch.from_numpy(x)

    def _run(self, inputs: list[Any]) -> list[Any]:
        if self.kind == "trees":
            return [self._trees(inputs[0])]
        if self.kind == "onnx":
            return self.session.run(
                [o[0] for o in self.outputs], dict(zip(self.inputs, inputs, strict=True))
            )
        return self._torch(inputs)

    def _trees(self, x: Any) -> Any:
        if self.on_device:
            return self.predict(self._as_torch(x))  # regression only: see TorchForest
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
        if self.graph_sizes and tensors[0].shape[0] <= self.graph_sizes[-1]:
            replayed = self._replay(tensors, ctx)
            if replayed is not None:
                return replayed
        with ctx:
            result = self.module(*tensors)
        return list(result) if isinstance(result, tuple | list) else [result]

    def _replay(self, tensors: list[Any], ctx: Any) -> list[Any] | None:
        """Run through the graph of the smallest captured size that fits (capture on first use);
        None if capturing fails, after which the module runs uncaptured."""
        n = tensors[0].shape[0]
        size = next(s for s in self.graph_sizes if s >= n)
        if size not in self.graphs:
            try:
                self.graphs[size] = self._capture(size, tensors, ctx)
            except Exception as e:
                pb_utils.Logger.log_warn(f"CUDA graph capture failed, running uncaptured: {e}")
                self.graph_sizes = []
                return None
        graph, static_in, static_out = self.graphs[size]
        with ctx:
            for buf, t in zip(static_in, tensors, strict=True):
                buf[:n].copy_(t)  # rows past n keep earlier inputs: computed, then dropped
            graph.replay()
            return [out[:n].clone() for out in static_out]  # the buffers are reused

    def _capture(self, size: int, tensors: list[Any], ctx: Any) -> tuple[Any, list, list]:
        torch = self.torch
        static_in = [t[:1].expand(size, *t.shape[1:]).clone() for t in tensors]
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side), ctx:
            for _ in range(3):  # TorchScript profiles and optimizes on its first runs
                self.module(*static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with ctx, torch.cuda.graph(graph):
            out = self.module(*static_in)
        return graph, static_in, list(out) if isinstance(out, tuple | list) else [out]

    def _output(self, spec: tuple[str, Any, list[int]], value: Any) -> Any:
        name, dtype, _dims = spec
        if self.on_device and value.is_cuda:
            # Pass the tensor itself (it has __dlpack__), not a capsule: only then does the
            # stub synchronize with the producing CUDA stream.
            return pb_utils.Tensor.from_dlpack(name, value.contiguous())
        if self.on_device:
            value = value.cpu().numpy()
        return pb_utils.Tensor(name, np.ascontiguousarray(np.asarray(value).astype(dtype)))

    def finalize(self) -> None:
        for attr in ("module", "session", "predict"):
            if hasattr(self, attr):
                delattr(self, attr)


class TorchForest:
    """An XGBoost tree ensemble walked in torch, on any device (the GPU path of `trees`).

    Every tree is stored as flat node arrays padded to the largest tree; leaves point to
    themselves, so `depth` steps of "go left if x[feature] < threshold (or missing and
    default-left)" bring every row to its leaf in every tree at once. The prediction is the sum
    of the leaf values plus base_score, as XGBoost computes it for regression objectives.
    """

    IDENTITY_OBJECTIVES = ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror")

    def __init__(self, trees: list[dict[str, Any]], base_score: float, device: Any) -> None:
        import torch

        n_nodes = max(len(t["left_children"]) for t in trees)
        shape = (len(trees), n_nodes)
        left = np.zeros(shape, np.int64)
        right = np.zeros(shape, np.int64)
        feature = np.zeros(shape, np.int64)
        threshold = np.zeros(shape, np.float32)
        default_left = np.zeros(shape, np.bool_)
        value = np.zeros(shape, np.float32)
        depth = 0
        for i, t in enumerate(trees):
            n = len(t["left_children"])
            lc, rc = np.asarray(t["left_children"]), np.asarray(t["right_children"])
            leaf = lc < 0
            own = np.arange(n)
            left[i, :n] = np.where(leaf, own, lc)
            right[i, :n] = np.where(leaf, own, rc)
            feature[i, :n] = np.where(leaf, 0, t["split_indices"])
            threshold[i, :n] = t["split_conditions"]
            default_left[i, :n] = np.asarray(t["default_left"], dtype=bool)
            value[i, :n] = np.where(leaf, t["split_conditions"], 0.0)
            depth = max(depth, _tree_depth(lc, rc))
        offset = (np.arange(len(trees), dtype=np.int64) * n_nodes)[None, :]
        self.torch = torch
        self.depth = depth
        self.base_score = base_score
        self.offset = torch.from_numpy(offset).to(device)
        # Children as flat indices, so each step is one gather per array.
        self.left = torch.from_numpy((left + offset.T).reshape(-1)).to(device)
        self.right = torch.from_numpy((right + offset.T).reshape(-1)).to(device)
        self.feature = torch.from_numpy(feature.reshape(-1)).to(device)
        self.threshold = torch.from_numpy(threshold.reshape(-1)).to(device)
        self.default_left = torch.from_numpy(default_left.reshape(-1)).to(device)
        self.value = torch.from_numpy(value.reshape(-1)).to(device)
        self.device = device

    @classmethod
    def from_xgboost_json(cls, path: str, device: Any) -> TorchForest | None:
        """The forest, or None for what it does not walk (classifiers, multi-output, links,
        categorical splits, DART): those stay with xgboost on the CPU."""
        with open(path) as f:
            learner = json.load(f)["learner"]
        params = learner["learner_model_param"]
        booster = learner["gradient_booster"]
        model = booster.get("model", {})
        trees = model.get("trees", [])
        if (
            booster.get("name") != "gbtree"
            or learner["objective"]["name"] not in cls.IDENTITY_OBJECTIVES
            or int(params.get("num_class", "0")) > 1
            or int(params.get("num_target", "1")) != 1
            or not trees
            or any(any(t.get("split_type", [])) for t in trees)
        ):
            return None
        base = params["base_score"].strip("[]").split(",")[0]
        return cls(trees, float(base), device)

    def predict(self, x: Any) -> Any:
        torch = self.torch
        with torch.inference_mode():
            x = x.to(self.device, torch.float32)
            node = self.offset.expand(x.shape[0], -1)  # [rows, trees]: every tree's root
            for _ in range(self.depth):
                v = torch.gather(x, 1, self.feature[node])
                go_left = torch.where(
                    torch.isnan(v), self.default_left[node], v < self.threshold[node]
                )
                node = torch.where(go_left, self.left[node], self.right[node])
            return self.value[node].sum(dim=1, keepdim=True) + self.base_score


def _tree_depth(left: np.ndarray, right: np.ndarray) -> int:
    depth, level = 0, [0]
    while True:
        level = [c for n in level for c in (left[n], right[n]) if c >= 0]
        if not level:
            return depth
        depth += 1
