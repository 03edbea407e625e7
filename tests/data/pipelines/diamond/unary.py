import json

import numpy as np
import triton_python_backend_utils as pb_utils

OPS = {"sqrt": np.sqrt, "square": np.square}


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"])["parameters"]
        self.op = OPS[params["op"]["string_value"]]

    def execute(self, requests):
        return [
            pb_utils.InferenceResponse(
                [
                    pb_utils.Tensor(
                        "OUT", self.op(pb_utils.get_input_tensor_by_name(r, "IN").as_numpy())
                    )
                ]
            )
            for r in requests
        ]
