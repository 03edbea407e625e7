"""A Triton python model that copies its input after sleeping `sleep_ms` per batch.

One instance executes one batch at a time, so its capacity is maxBatchSize / sleep_ms
inferences per millisecond: a stand-in for a GPU model with a fixed per-batch cost.
"""

import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        self.sleep_s = float(params.get("sleep_ms", {}).get("string_value", "20")) / 1000.0

    def execute(self, requests):
        time.sleep(self.sleep_s)
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy().astype(np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", x)]))
        return responses
