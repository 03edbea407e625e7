"""The readability example's artifacts and python models, without a server.

The artifacts are built once where the manifest reads them (about a minute cold; later runs,
the integration tests included, find them up to date). preprocess.py and postprocess.py run
in the layout Triton gives them — model.py in a version directory, the tokenizer artifacts
next to it — against a small stand-in for triton_python_backend_utils, the only module here
that exists solely inside tritonserver.
The real server is exercised by the integration tests.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import treelite
import xgboost as xgb
import yaml
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2 as mc

from .conftest import EXAMPLES, READABILITY_ARTIFACTS, build_readability_artifacts

EXAMPLE = EXAMPLES / "readability"
SAMPLES = json.loads((EXAMPLE / "requests.json").read_text())
SAMPLE_TEXTS: list[str] = SAMPLES["inputs"][0]["data"]  # three easy texts, then three hard ones
PIPELINE = {
    d["metadata"]["name"]: d for d in yaml.safe_load_all((EXAMPLE / "pipeline.yaml").read_text())
}
pytestmark = pytest.mark.filterwarnings(r"ignore:.*torch\.jit\.load.* is deprecated:FutureWarning")


def load_module(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


features = load_module("readability_features", EXAMPLE / "features.py")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    build_readability_artifacts()
    return READABILITY_ARTIFACTS


# --- features ------------------------------------------------------------------------------


def named_features(text: str) -> dict[str, float]:
    return dict(zip(features.FEATURE_NAMES, features.text_features(text), strict=True))


def test_features_of_a_known_sentence() -> None:
    values = named_features("The cat sat on the mat.")
    assert values == pytest.approx(
        {
            "n_chars": 23,
            "n_words": 6,
            "n_sentences": 1,
            "chars_per_word": 17 / 6,
            "words_per_sentence": 6,
            "syllables_per_word": 1,
            "flesch_reading_ease": 206.835 - 1.015 * 6 - 84.6,  # 116.145
            "flesch_kincaid_grade": 0.39 * 6 + 11.8 - 15.59,  # -1.45
            "gunning_fog": 0.4 * 6,
            "coleman_liau": 0.0588 * 1700 / 6 - 0.296 * 100 / 6 - 15.8,
            "long_word_ratio": 0,
            "polysyllable_ratio": 0,
            "type_token_ratio": 5 / 6,  # "The" and "the" are one type
            "commas_per_sentence": 0,
            "punctuation_ratio": 1 / 23,
            "max_words_per_sentence": 6,
        }
    )


def test_features_count_sentences_syllables_and_commas() -> None:
    text = "Wanted boxes, jumped. Readability is comprehensive! Why"
    values = named_features(text)
    # wanted 2, boxes 2, jumped 1, readability 5, is 1, comprehensive 4, why 1
    assert values["n_sentences"] == 3
    assert values["syllables_per_word"] == pytest.approx(16 / 7)
    assert values["polysyllable_ratio"] == pytest.approx(2 / 7)
    assert values["commas_per_sentence"] == pytest.approx(1 / 3)
    assert values["max_words_per_sentence"] == 3


@pytest.mark.parametrize(
    ("word", "syllables"),
    [("cat", 1), ("make", 1), ("table", 2), ("jumped", 1), ("wanted", 2), ("faces", 2)],
)
def test_syllable_heuristic(word: str, syllables: int) -> None:
    assert features.count_syllables(word) == syllables


def test_features_of_text_without_words_are_zero() -> None:
    assert features.text_features("") == [0.0] * features.N_FEATURES
    assert features.text_features(" ... ")[1:] == [0.0] * (features.N_FEATURES - 1)


def test_feature_count_matches_the_manifest_interface() -> None:
    outputs = {o["name"]: o for o in PIPELINE["readability-preprocess"]["spec"]["outputs"]}
    assert outputs["FEATURES"]["dims"] == [features.N_FEATURES]
    assert outputs["INPUT_IDS"]["dims"] == [128]


# --- artifacts -----------------------------------------------------------------------------


def test_manifest_lists_every_artifact_with_its_sha256(artifacts: Path) -> None:
    manifest = json.loads((artifacts / "manifest.json").read_text())
    listed = manifest["artifacts"]
    on_disk = {
        p.relative_to(artifacts).as_posix()
        for p in artifacts.rglob("*")
        if p.is_file() and p.name not in ("manifest.json", ".build-stamp")
    }
    assert set(listed) == on_disk
    assert {"tokenizer/tokenizer.json", "tokenizer/features.py", "bert/model.pt"} <= on_disk
    assert "trees/xgboost.json" in on_disk
    for rel, entry in listed.items():
        data = (artifacts / rel).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}, rel
    # The fit is honest: the held-out texts are predicted well, by both models.
    assert manifest["bert"]["validation"]["r2"] > 0.9
    assert manifest["trees"]["validation"]["r2"] > 0.9


def test_second_build_is_a_no_op(artifacts: Path) -> None:
    before = (artifacts / "bert" / "model.pt").stat().st_mtime_ns
    started = time.monotonic()
    result = build_readability_artifacts(artifacts)
    assert "up to date" in result.stderr
    assert time.monotonic() - started < 30
    assert (artifacts / "bert" / "model.pt").stat().st_mtime_ns == before


# --- the python models, in the layout Triton serves them from ------------------------------


class FakeTensor:
    """What the models use of pb_utils.Tensor; on_cpu=False makes a model take its DLPack path."""

    def __init__(self, name: str, value: np.ndarray, on_cpu: bool = True) -> None:
        self._name, self._value, self._on_cpu = name, value, on_cpu

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        if not self._on_cpu:
            raise RuntimeError("as_numpy() of a GPU tensor")
        return self._value

    def is_cpu(self) -> bool:
        return self._on_cpu

    def to_dlpack(self) -> Any:
        return torch.utils.dlpack.to_dlpack(torch.from_numpy(np.ascontiguousarray(self._value)))

    @staticmethod
    def from_dlpack(name: str, capsule: Any) -> FakeTensor:
        return FakeTensor(name, torch.utils.dlpack.from_dlpack(capsule).numpy())


class FakeResponse:
    def __init__(self, output_tensors: list[FakeTensor] | None = None, error: Any = None) -> None:
        self.outputs = {t.name(): t.as_numpy() for t in output_tensors or []}
        self.error = error


class FakeRequest:
    def __init__(self, **inputs: FakeTensor) -> None:
        self.inputs = inputs


def fake_pb_utils() -> types.ModuleType:
    pb = types.ModuleType("triton_python_backend_utils")
    vars(pb).update(
        Tensor=FakeTensor,
        InferenceResponse=FakeResponse,
        TritonError=str,  # the models only hand it a message
        get_input_tensor_by_name=lambda request, name: request.inputs.get(name),
    )
    return pb


def model_config(name: str) -> str:
    """The model's config as Triton passes it to initialize(): protobuf JSON of config.pbtxt."""
    spec = PIPELINE[name]["spec"]
    dtype = {"BYTES": mc.TYPE_STRING, "INT64": mc.TYPE_INT64, "FP32": mc.TYPE_FP32}
    config = mc.ModelConfig(
        name=name,
        backend="python",
        max_batch_size=spec["maxBatchSize"],
        input=[
            mc.ModelInput(name=t["name"], data_type=dtype[t["dtype"]], dims=t["dims"])
            for t in spec["inputs"]
        ],
        output=[
            mc.ModelOutput(name=t["name"], data_type=dtype[t["dtype"]], dims=t["dims"])
            for t in spec["outputs"]
        ],
    )
    return json_format.MessageToJson(config, preserving_proto_field_name=True)


@pytest.fixture
def served(
    artifacts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """Both python models, initialized from <repo>/<model>/1/model.py as Triton would."""
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", fake_pb_utils())
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "features", raising=False)
    models = {}
    for step, source, artifact_dir in [
        ("preprocess", "preprocess.py", artifacts / "tokenizer"),
        ("postprocess", "postprocess.py", None),
    ]:
        version_dir = tmp_path / f"readability-{step}" / "1"
        if artifact_dir is not None:
            shutil.copytree(artifact_dir, version_dir)
        version_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(EXAMPLE / source, version_dir / "model.py")
        model = load_module(
            f"readability_{step}_model", version_dir / "model.py"
        ).TritonPythonModel()
        if hasattr(model, "initialize"):
            model.initialize({"model_config": model_config(f"readability-{step}")})
        models[step] = model
    yield models
    sys.modules.pop("features", None)


def text_tensor(texts: list[str]) -> FakeTensor:
    return FakeTensor("TEXT", np.array([[t.encode()] for t in texts], dtype=np.object_))


def test_preprocess_tokenizes_and_computes_features_per_request(served: dict[str, Any]) -> None:
    batch = ["The cat sat on the mat.", "A rather longer sentence, with a comma.", "Hi"]
    responses = served["preprocess"].execute(
        [FakeRequest(TEXT=text_tensor(batch)), FakeRequest(TEXT=text_tensor(["One more."]))]
    )
    assert [r.error for r in responses] == [None, None]
    first, second = (r.outputs for r in responses)
    assert first["INPUT_IDS"].shape == (3, 128) and first["INPUT_IDS"].dtype == np.int64
    assert first["ATTENTION_MASK"].dtype == np.int64
    assert first["FEATURES"].shape == (3, 16) and first["FEATURES"].dtype == np.float32
    assert second["INPUT_IDS"].shape == (1, 128) and second["FEATURES"].shape == (1, 16)
    # [CLS] the cat sat on the mat . [SEP], then padding that the mask excludes.
    assert first["INPUT_IDS"][0, :9].tolist() == [
        101,
        1996,
        4937,
        2938,
        2006,
        1996,
        13523,
        1012,
        102,
    ]
    assert first["ATTENTION_MASK"][0].sum() == 9
    assert not first["INPUT_IDS"][0, 9:].any() and not first["ATTENTION_MASK"][0, 9:].any()
    expected = np.array([features.text_features(t) for t in batch], dtype=np.float32)
    np.testing.assert_array_equal(first["FEATURES"], expected)


def test_preprocess_truncates_long_texts_and_survives_bad_bytes(served: dict[str, Any]) -> None:
    long_text = "word " * 500
    tensor = FakeTensor("TEXT", np.array([[long_text.encode()], [b"caf\xff"]], dtype=np.object_))
    (response,) = served["preprocess"].execute([FakeRequest(TEXT=tensor)])
    assert response.error is None
    assert response.outputs["ATTENTION_MASK"][0].sum() == 128
    assert response.outputs["INPUT_IDS"][0, -1] == 102  # [SEP] closes a truncated text too


def test_one_bad_request_does_not_fail_the_batch(served: dict[str, Any]) -> None:
    responses = served["preprocess"].execute(
        [FakeRequest(), FakeRequest(TEXT=text_tensor(["Fine."]))]
    )
    assert responses[0].error is not None
    assert responses[1].error is None and responses[1].outputs["FEATURES"].shape == (1, 16)


@pytest.mark.parametrize("on_cpu", [True, False], ids=["numpy", "dlpack"])
def test_postprocess_blends_with_the_request_weight(served: dict[str, Any], on_cpu: bool) -> None:
    def tensor(name: str, values: list[float]) -> FakeTensor:
        return FakeTensor(name, np.array(values, dtype=np.float32).reshape(-1, 1), on_cpu)

    request = FakeRequest(
        BERT_SCORE=tensor("BERT_SCORE", [10.0, 10.0, 10.0]),
        TREE_SCORE=tensor("TREE_SCORE", [50.0, 50.0, 50.0]),
        BERT_WEIGHT=tensor("BERT_WEIGHT", [1.0, 0.0, 0.25]),
    )
    (response,) = served["postprocess"].execute([request])
    assert response.error is None
    score = response.outputs["SCORE"]
    assert score.dtype == np.float32 and score.shape == (3, 1)
    np.testing.assert_allclose(score.ravel(), [10.0, 50.0, 40.0])


# --- the models, fed by preprocess ----------------------------------------------------------


def preprocessed(served: dict[str, Any], texts: list[str]) -> dict[str, np.ndarray]:
    (response,) = served["preprocess"].execute([FakeRequest(TEXT=text_tensor(texts))])
    assert response.error is None
    return response.outputs


def bert_scores(artifacts: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    model = torch.jit.load(str(artifacts / "bert" / "model.pt"), map_location="cpu").eval()
    ids, mask = (torch.from_numpy(inputs[k]) for k in ("INPUT_IDS", "ATTENTION_MASK"))
    with torch.inference_mode():
        out = model(ids, mask)
    assert out.dtype == torch.float32 and tuple(out.shape) == (len(ids), 1)
    return out.numpy()


def tree_scores(artifacts: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    booster = xgb.Booster(model_file=str(artifacts / "trees" / "xgboost.json"))
    return booster.predict(xgb.DMatrix(inputs["FEATURES"])).reshape(-1, 1).astype(np.float32)


def test_torchscript_model_scores_easy_texts_as_easier(
    artifacts: Path, served: dict[str, Any]
) -> None:
    inputs = preprocessed(served, SAMPLE_TEXTS)
    scores = bert_scores(artifacts, inputs).ravel()
    assert scores[:3].min() > scores[3:].max() + 20, scores  # Flesch scale: higher is easier
    # A batch size it was not traced with, and one text alone, give the same scores.
    alone = bert_scores(artifacts, {k: v[:1] for k, v in inputs.items()}).ravel()
    np.testing.assert_allclose(alone, scores[:1], rtol=1e-4, atol=1e-3)


def test_trees_predict_from_the_features(artifacts: Path, served: dict[str, Any]) -> None:
    inputs = preprocessed(served, SAMPLE_TEXTS)
    scores = tree_scores(artifacts, inputs).ravel()
    assert scores[:3].min() > scores[3:].max() + 20, scores
    # Treelite (what Triton's FIL backend builds on) reads the file and agrees with XGBoost.
    model = treelite.frontend.load_xgboost_model(str(artifacts / "trees" / "xgboost.json"))
    np.testing.assert_allclose(
        treelite.gtil.predict(model, inputs["FEATURES"]).ravel(), scores, rtol=1e-5, atol=1e-3
    )


def test_tree_json_is_in_the_form_older_treelite_reads(artifacts: Path) -> None:
    learner = json.loads((artifacts / "trees" / "xgboost.json").read_text())["learner"]
    float(learner["learner_model_param"]["base_score"])  # a number, not "[...]"
    assert "cats" not in learner["gradient_booster"]["model"]
    assert learner["learner_model_param"]["num_feature"] == str(features.N_FEATURES)


def test_the_whole_pipeline_in_process(artifacts: Path, served: dict[str, Any]) -> None:
    """requests.json through preprocess -> bert, trees -> postprocess, as the ensemble does."""
    weight_input = SAMPLES["inputs"][1]
    assert weight_input["name"] == "BERT_WEIGHT" and weight_input["shape"] == [6, 1]
    inputs = preprocessed(served, SAMPLE_TEXTS)
    weight = np.array(weight_input["data"], dtype=np.float32).reshape(-1, 1)
    request = FakeRequest(
        BERT_SCORE=FakeTensor("BERT_SCORE", bert_scores(artifacts, inputs)),
        TREE_SCORE=FakeTensor("TREE_SCORE", tree_scores(artifacts, inputs)),
        BERT_WEIGHT=FakeTensor("BERT_WEIGHT", weight),
    )
    (response,) = served["postprocess"].execute([request])
    score = response.outputs["SCORE"].ravel()
    assert score[:3].min() > score[3:].max() + 20, score
    flesch = np.array([features.flesch_target(t) for t in SAMPLE_TEXTS])
    assert np.corrcoef(score, flesch)[0, 1] > 0.9


def test_requests_json_is_a_v2_request_for_the_pipeline() -> None:
    declared = {i["name"]: i["dtype"] for i in PIPELINE["readability"]["spec"]["inputs"]}
    sent = {i["name"]: i for i in SAMPLES["inputs"]}
    assert {name: i["datatype"] for name, i in sent.items()} == declared
    for tensor in sent.values():
        assert int(np.prod(tensor["shape"])) == len(tensor["data"])
    assert [o["name"] for o in SAMPLES["outputs"]] == ["SCORE"]
