"""Triton python model: SCORE = BERT_WEIGHT * BERT_SCORE + (1 - BERT_WEIGHT) * TREE_SCORE.

All tensors are FP32 [B, 1]. BERT_WEIGHT is a pipeline input, so each request chooses how much
to trust the encoder against the trees.

CPU tensors are blended in numpy. A GPU pipeline keeps tensors on the device between steps
(FORCE_CPU_ONLY_INPUT_TENSORS "no"), so the scores may arrive on the GPU: those are blended in
torch through DLPack, and SCORE stays on the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

INPUTS = ("BERT_SCORE", "TREE_SCORE", "BERT_WEIGHT")


def blend(bert: Any, tree: Any, weight: Any) -> Any:
    """The weighted average, for numpy arrays and torch tensors alike."""
    return weight * bert + (1 - weight) * tree


def _blend_on_device(tensors: list[Any]) -> Any:
    try:
        import torch
        from torch.utils.dlpack import from_dlpack, to_dlpack
    except ImportError as exc:
        raise RuntimeError(
            "postprocess received GPU tensors but torch is missing from its Python environment; "
            "install torch there or set FORCE_CPU_ONLY_INPUT_TENSORS to yes"
        ) from exc
    values = [from_dlpack(t.to_dlpack()) for t in tensors]
    # BERT_WEIGHT comes from the client, so it may be on the CPU while the scores are not.
    devices = [v.device for v in values if v.device.type != "cpu"]
    device = devices[0] if devices else torch.device("cpu")
    bert, tree, weight = (v.to(device=device, dtype=torch.float32) for v in values)
    return pb_utils.Tensor.from_dlpack("SCORE", to_dlpack(blend(bert, tree, weight)))


class TritonPythonModel:
    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            try:
                tensors = [pb_utils.get_input_tensor_by_name(request, n) for n in INPUTS]
                if all(t.is_cpu() for t in tensors):
                    bert, tree, weight = (t.as_numpy().astype(np.float32) for t in tensors)
                    score = pb_utils.Tensor("SCORE", blend(bert, tree, weight))
                else:
                    score = _blend_on_device(tensors)
            except Exception as exc:  # one bad request must not fail the others in the batch
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))))
                continue
            responses.append(pb_utils.InferenceResponse(output_tensors=[score]))
        return responses
