"""A real tritonserver serves a pipeline under its servedName and answers classification
requests with the labels files Inferline fetched into each model's directory."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tritonclient.http as thttp

from inferline.runtime.tritonserver import TritonProcess

from ..conftest import EXAMPLES
from .conftest import Serve

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def classifier(serve: Serve, tmp_path_factory: pytest.TempPathFactory) -> TritonProcess:
    d = tmp_path_factory.mktemp("classify")
    shutil.copy(EXAMPLES / "minimal/scale.py", d / "scale.py")
    (d / "pipeline-labels.txt").write_text("cat\ndog\nbird\n")
    (d / "step-labels.txt").write_text("zero\none\ntwo\n")
    text = (EXAMPLES / "minimal/pipeline.yaml").read_text()
    text = text.replace("spec:\n", "spec:\n  servedName: ensemble_all\n", 1)
    text = text.replace(
        '    - {name: "Y", dtype: FP32, dims: [-1]}',
        '    - {name: "Y", dtype: FP32, dims: [-1], labelsUri: "file://pipeline-labels.txt"}',
    )
    text = text.replace(
        "          - {name: OUTPUT, dtype: FP32, dims: [-1]}",
        '          - {name: OUTPUT, dtype: FP32, dims: [-1], labelsUri: "file://step-labels.txt"}',
    )
    assert text.count("labelsUri") == 2
    (d / "pipeline.yaml").write_text(text)
    return serve([d / "pipeline.yaml"])


def _top(server: TritonProcess, model: str, output: str) -> list[str]:
    client = thttp.InferenceServerClient(server.url)
    x = np.array([[0.5, 3.0, 1.0]], dtype=np.float32)
    i = thttp.InferInput("X" if model == "ensemble_all" else "INPUT", list(x.shape), "FP32")
    i.set_data_from_numpy(x)
    res = client.infer(model, [i], outputs=[thttp.InferRequestedOutput(output, class_count=2)])
    return [b.decode() for b in res.as_numpy(output).reshape(-1)]


def test_the_ensemble_is_served_under_its_served_name_with_its_labels(
    classifier: TritonProcess,
) -> None:
    # Scaled by 2: [1, 6, 2]; the top two are index 1 (6.0) and index 2 (2.0).
    assert _top(classifier, "ensemble_all", "Y") == ["6.000000:1:dog", "2.000000:2:bird"]


def test_a_step_answers_with_its_own_labels(classifier: TritonProcess) -> None:
    assert _top(classifier, "minimal-scale", "OUTPUT") == ["6.000000:1:one", "2.000000:2:two"]
