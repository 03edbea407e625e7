import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "IN").as_numpy()
            neg = (x < 0).sum(axis=1, keepdims=True).astype(np.int32)
            out.append(
                pb_utils.InferenceResponse(
                    [
                        pb_utils.Tensor("ABS", np.abs(x)),
                        pb_utils.Tensor("SIGNED", x),
                        pb_utils.Tensor("NEGATIVE", neg),
                    ]
                )
            )
        return out
