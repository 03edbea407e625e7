"""Triton python model: SCORE = BERT_WEIGHT * BERT_SCORE + (1 - BERT_WEIGHT) * TREE_SCORE.

All tensors are FP32 [B, 1]. CPU inputs are blended in numpy; on a GPU pipeline the scores
arrive as CUDA tensors (DLPack) and are blended in torch on the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

INPUTS = ("BERT_SCORE", "TREE_SCORE", "BERT_WEIGHT")


class TritonPythonModel:
    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            tensors = [pb_utils.get_input_tensor_by_name(request, n) for n in INPUTS]
            if all(t.is_cpu() for t in tensors):
                bert, tree, weight = (t.as_numpy().astype(np.float32) for t in tensors)
                score = pb_utils.Tensor("SCORE", weight * bert + (1 - weight) * tree)
            else:
                score = self._on_device(tensors)
            responses.append(pb_utils.InferenceResponse(output_tensors=[score]))
        return responses

    def _on_device(self, tensors: list[Any]) -> Any:
        import torch
        from torch.utils.dlpack import from_dlpack

        values = [from_dlpack(t.to_dlpack()) for t in tensors]
        device = next(v.device for v in values if v.device.type != "cpu")
        bert, tree, weight = (v.to(device=device, dtype=torch.float32) for v in values)
        # Pass the tensor (not a capsule) so that the stub syncs with the producing stream.
        return pb_utils.Tensor.from_dlpack("SCORE", (weight * bert + (1 - weight) * tree))
