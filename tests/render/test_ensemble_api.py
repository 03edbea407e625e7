"""What NVIDIA's own ensembles need from the API: a served name an existing client calls,
classification labels, a packed Python environment per model (tests/data/valid/)."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from inferline.api.load import load_paths, load_text
from inferline.compile import check_loaded, render_manifest
from inferline.render.manifest import RenderManifest

from ..conftest import REPO

RESNET = REPO / "tests/data/valid/resnet50-ensemble.yaml"


def _render(text: str | None = None) -> RenderManifest:
    loaded = load_text(text, RESNET) if text is not None else load_paths([RESNET])
    checked = check_loaded(loaded, require_refs=True)
    assert checked.ok, [str(p) for p in checked.errors]
    return RenderManifest.from_json(render_manifest(checked.pipelines).to_json())


def _config(manifest: RenderManifest, model: str) -> mc.ModelConfig:
    (f,) = [f for f in manifest.files if f.path == f"{model}/config.pbtxt"]
    assert f.text is not None
    return text_format.Parse(f.text, mc.ModelConfig())


def _file(manifest: RenderManifest, path: str) -> object:
    (f,) = [f for f in manifest.files if f.path == path]
    return f


def test_the_ensemble_is_served_under_its_served_name() -> None:
    manifest = _render()
    (entry,) = manifest.pipelines
    assert entry.name == "resnet50" and entry.served_name == "ensemble_python_resnet50"
    ens = _config(manifest, "ensemble_python_resnet50")
    assert ens.platform == "ensemble"
    assert [s.model_name for s in ens.ensemble_scheduling.step] == [
        "resnet50-preprocess",
        "resnet50-classify",
    ]
    assert [s.model for s in entry.steps] == ["resnet50-preprocess", "resnet50-classify"]


def test_labels_land_in_the_model_directory_as_label_filename() -> None:
    manifest = _render()
    out = _config(manifest, "resnet50-classify").output[0]
    assert out.label_filename == "labels_output.txt"
    f = _file(manifest, "resnet50-classify/labels_output.txt")
    assert f.source == "s3://models/resnet50/labels.txt"  # type: ignore[attr-defined]
    assert f.credentials_secret == "s3-credentials"  # type: ignore[attr-defined]
    # The ensemble answers classification requests with its own labels file.
    ens_out = _config(manifest, "ensemble_python_resnet50").output[0]
    assert ens_out.label_filename == "labels_OUTPUT.txt"
    _file(manifest, "ensemble_python_resnet50/labels_OUTPUT.txt")


def test_a_models_python_environment_wins_over_its_backends() -> None:
    manifest = _render()
    config = _config(manifest, "resnet50-preprocess")
    assert (
        config.parameters["EXECUTION_ENV_PATH"].string_value
        == "$$TRITON_MODEL_DIRECTORY/python_env.tar.gz"
    )
    env = _file(manifest, "resnet50-preprocess/python_env.tar.gz")
    assert env.source == "s3://models/envs/preprocess.tar.gz"  # type: ignore[attr-defined]
    assert env.sha256 is not None and env.credentials_secret == "s3-credentials"  # type: ignore[attr-defined]
    # Without its own, the model gets the Backend's.
    text = RESNET.read_text()
    start = text.index("  pythonEnvironment:\n    storageUri: s3://models/envs/preprocess")
    end = text.index("  maxBatchSize: 32", start)
    manifest = _render(text[:start] + text[end:])
    env = _file(manifest, "resnet50-preprocess/python_env.tar.gz")
    assert env.source == "s3://models/envs/base.tar.gz"  # type: ignore[attr-defined]


def _model_problems(spec_lines: str) -> list[str]:
    text = (
        "apiVersion: inferline.dev/v1alpha1\nkind: Model\nmetadata: {name: m}\nspec:\n"
        "  format: python\n  python: {file: m.py}\n"
        "  inputs: [{name: IN, dtype: FP32, dims: [4]}]\n" + spec_lines
    )
    return [f"{p.path}: {p.message}" for p in load_text(text, Path("m.yaml")).problems]


def test_execution_env_path_as_a_uri_points_at_python_environment() -> None:
    problems = _model_problems(
        "  outputs: [{name: OUT, dtype: FP32, dims: [4]}]\n"
        "  parameters: {EXECUTION_ENV_PATH: 's3://models/env.tar.gz'}\n"
    )
    assert len(problems) == 1 and "set pythonEnvironment.storageUri instead" in problems[0]
    # A path inside the model directory is Triton's own business: passed through.
    assert not _model_problems(
        "  outputs: [{name: OUT, dtype: FP32, dims: [4]}]\n"
        "  parameters: {EXECUTION_ENV_PATH: '$$TRITON_MODEL_DIRECTORY/env.tar.gz'}\n"
    )


def test_optional_is_for_inputs_only() -> None:
    # Triton's ModelOutput has no `optional`: an output is returned when it is requested.
    problems = _model_problems("  outputs: [{name: OUT, dtype: FP32, dims: [4], optional: true}]\n")
    assert problems == [
        "spec.outputs[0].optional: unknown field (check its spelling and indentation)"
    ]


def test_a_given_but_invalid_model_is_reported_as_invalid_not_missing() -> None:
    text = RESNET.read_text().replace("  instances: 2\n", "  instances: many\n")
    loaded = load_text(text, RESNET)
    checked = check_loaded(loaded, require_refs=True)
    messages = [f"{p.path}: {p.message}" for p in checked.errors]
    assert "spec.instances: must be an integer; got the string 'many'" in messages
    assert (
        "spec.steps[1].modelRef.name: Model 'resnet50' is invalid (see its errors); fix it first"
        in messages
    )
    assert not any("not found" in m or "not given" in m for m in messages)
