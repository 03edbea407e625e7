"""Triton python model: TEXT -> tokens for the encoder and/or the 207 features for the trees.

    TEXT            BYTES [B, 1]    UTF-8 text, one per row
    INPUT_IDS       INT64 [B, 128]  BERT uncased word pieces, truncated and padded to 128
    ATTENTION_MASK  INT64 [B, 128]
    FEATURES        FP32  [B, 207]  textfeatures.all_features

It computes the outputs its Model declares: all three (one preprocess step), the two token
outputs (a tokenize step) or FEATURES alone (a features step, which the pipeline runs side by
side with tokenize -> encoder: the features are plain Python, ~0.7 ms a passage, and need not
hold up the GPU). All requests of one execute() call (the dynamic batcher's batch) are
processed together and split again. On a GPU instance the outputs are handed on as CUDA
tensors (DLPack), so the steps after it read them from device memory; on a CPU instance they
are numpy arrays.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from textfeatures import N_FEATURES, all_features  # noqa: E402

OUTPUTS = ("INPUT_IDS", "ATTENTION_MASK", "FEATURES")


def _last_dim(model_config: dict[str, Any], name: str) -> int:
    for tensor in model_config.get("output", []):
        if tensor["name"] == name:
            return int(tensor["dims"][-1])
    raise ValueError(f"the model configuration has no output {name}")


def _tokenizer_threads(model_config: dict[str, Any]) -> int:
    """The Model's TOKENIZER_THREADS parameter (default 1). Model.instances runs several
    preprocess processes side by side, so each tokenizing with every core would make them fight
    for the cores; but one 512-text request is tokenized by one instance, and a few threads
    there shorten it while few requests are in flight. The features stay on one thread (Python)."""
    value = model_config.get("parameters", {}).get("TOKENIZER_THREADS", {}).get("string_value")
    return max(1, int(value or 1))


def _decode(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        declared = {t["name"] for t in config.get("output", [])}
        self.outputs = [n for n in OUTPUTS if n in declared]
        if not self.outputs or ("INPUT_IDS" in declared) != ("ATTENTION_MASK" in declared):
            raise ValueError(f"declare INPUT_IDS and ATTENTION_MASK, FEATURES, or all of {OUTPUTS}")
        if "FEATURES" in declared and _last_dim(config, "FEATURES") != N_FEATURES:
            raise ValueError(f"FEATURES must have {N_FEATURES} values per text")
        self.tokenizer = None
        if "INPUT_IDS" in declared:
            self.max_length = _last_dim(config, "INPUT_IDS")
            # Read by the tokenizers library when it first tokenizes (its thread pool is lazy).
            threads = _tokenizer_threads(config)
            os.environ["TOKENIZERS_PARALLELISM"] = "true" if threads > 1 else "false"
            os.environ["RAYON_NUM_THREADS"] = str(threads)
            self.tokenizer = Tokenizer.from_file(os.path.join(HERE, "tokenizer.json"))
            self.tokenizer.enable_truncation(self.max_length)
            pad_id = self.tokenizer.token_to_id("[PAD]")
            self.tokenizer.enable_padding(length=self.max_length, pad_id=pad_id, pad_token="[PAD]")
        self.device = None
        if args.get("model_instance_kind") == "GPU":
            import torch

            self.torch = torch
            self.device = torch.device(f"cuda:{args.get('model_instance_device_id', '0')}")

    def preprocess(self, texts: list[str]) -> dict[str, np.ndarray]:
        out = {}
        if self.tokenizer is not None:
            encodings = self.tokenizer.encode_batch(texts)
            shape = (len(texts), self.max_length)
            out["INPUT_IDS"] = np.array([e.ids for e in encodings], dtype=np.int64).reshape(shape)
            out["ATTENTION_MASK"] = np.array(
                [e.attention_mask for e in encodings], dtype=np.int64
            ).reshape(shape)
        if "FEATURES" in self.outputs:
            feats = np.array([all_features(t) for t in texts], dtype=np.float32)
            out["FEATURES"] = feats.reshape(len(texts), N_FEATURES)
        return out

    def _tensor(self, name: str, value: np.ndarray) -> Any:
        if self.device is None:
            return pb_utils.Tensor(name, value)
        # Pass the torch tensor (not a capsule): the stub then syncs with its stream.
        on_device = self.torch.from_numpy(value).to(self.device, non_blocking=False)
        return pb_utils.Tensor.from_dlpack(name, on_device)

    def execute(self, requests: list[Any]) -> list[Any]:
        texts = [
            pb_utils.get_input_tensor_by_name(r, "TEXT").as_numpy().reshape(-1) for r in requests
        ]
        outputs = self.preprocess([_decode(v) for t in texts for v in t])
        responses = []
        start = 0
        for t in texts:
            end = start + len(t)
            tensors = [
                self._tensor(n, np.ascontiguousarray(outputs[n][start:end])) for n in self.outputs
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start = end
        return responses
