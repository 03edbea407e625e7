"""Triton python model: TEXT -> tokens for the encoder, and the 16 text features for the trees.

    TEXT            BYTES [B, 1]   UTF-8 text, one per row
    INPUT_IDS       INT64 [B, 128] MiniLM-L6 word pieces, truncated and padded to 128
    ATTENTION_MASK  INT64 [B, 128]
    FEATURES        FP32  [B, 16]  features.text_features, the function the trees were trained on

At serving time this file is model.py in <repository>/<model>/1/, and the artifacts of
build_artifacts.py's tokenizer/ directory (tokenizer.json, features.py) lie next to it.
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
from features import N_FEATURES, text_features  # noqa: E402


def _last_dim(model_config: dict[str, Any], name: str) -> int:
    for tensor in model_config.get("output", []):
        if tensor["name"] == name:
            return int(tensor["dims"][-1])
    raise ValueError(f"the model configuration has no output {name}")


def _decode(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        self.max_length = _last_dim(config, "INPUT_IDS")
        if _last_dim(config, "FEATURES") != N_FEATURES:
            raise ValueError(f"FEATURES must have {N_FEATURES} values per text")
        self.tokenizer = Tokenizer.from_file(os.path.join(HERE, "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        pad_id = self.tokenizer.token_to_id("[PAD]")
        self.tokenizer.enable_padding(length=self.max_length, pad_id=pad_id, pad_token="[PAD]")

    def preprocess(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The outputs for a batch of texts (any number, zero included)."""
        encodings = self.tokenizer.encode_batch(texts)
        shape = (len(texts), self.max_length)
        ids = np.array([e.ids for e in encodings], dtype=np.int64).reshape(shape)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64).reshape(shape)
        feats = np.array([text_features(t) for t in texts], dtype=np.float32)
        return {
            "INPUT_IDS": ids,
            "ATTENTION_MASK": mask,
            "FEATURES": feats.reshape(len(texts), N_FEATURES),
        }

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            try:
                text = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()
                outputs = self.preprocess([_decode(v) for v in text.reshape(-1)])
            except Exception as exc:  # one bad request must not fail the others in the batch
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))))
                continue
            tensors = [pb_utils.Tensor(name, value) for name, value in outputs.items()]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
