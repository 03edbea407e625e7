"""The compiler's output, field by field, as Triton's own protobuf types."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from inferline.api.common import Device
from inferline.api.load import load_text
from inferline.api.resolve import ResolvedPipeline
from inferline.compile import Overrides, check_loaded, check_paths
from inferline.render.triton import RenderedRepository, adapter_source, render_repository

from .conftest import EXAMPLES

GPU = mc.ModelInstanceGroup.KIND_GPU
CPU = mc.ModelInstanceGroup.KIND_CPU


def resolve(text: str, base: Path = Path("/m")) -> ResolvedPipeline:
    checked = check_loaded(load_text(text, base / "p.yaml"), require_refs=True)
    assert checked.errors == [], checked.errors
    assert len(checked.pipelines) == 1
    return checked.pipelines[0]


def readability(device: Device | None = None, backend: str | None = None) -> RenderedRepository:
    checked = check_paths([EXAMPLES / "readability"], Overrides(device, backend))
    assert checked.ok, checked.errors
    return render_repository(checked.pipelines[0])


def roundtrip(config: mc.ModelConfig) -> mc.ModelConfig:
    parsed = text_format.Parse(text_format.MessageToString(config), mc.ModelConfig())
    assert parsed == config
    return parsed


def params(config: mc.ModelConfig) -> dict[str, str]:
    return {k: v.string_value for k, v in config.parameters.items()}


def test_gpu_pipeline_keeps_gpu_settings_through_text_format() -> None:
    repo = readability()
    for m in repo.models:
        cfg = roundtrip(m.config)
        if m.step is not None:
            assert [g.kind for g in cfg.instance_group] == [GPU], m.name
    pre = repo.model("readability-preprocess").config
    assert pre.backend == "python"
    assert params(pre)["FORCE_CPU_ONLY_INPUT_TENSORS"] == "no"
    bert = repo.model("readability-bert").config
    assert (bert.platform, bert.backend, bert.default_model_filename) == (
        "pytorch_libtorch",
        "pytorch",
        "model.pt",
    )
    assert params(bert)["INFERENCE_MODE"] == "true"
    assert list(bert.dynamic_batching.preferred_batch_size) == [16, 32, 64]
    assert bert.dynamic_batching.max_queue_delay_microseconds == 2000
    trees = repo.model("readability-trees").config
    assert trees.backend == "fil" and trees.default_model_filename == "xgboost.json"
    assert params(trees) == {
        "model_type": "xgboost_json",
        "output_class": "false",
        "storage_type": "AUTO",
    }


def test_switching_the_whole_pipeline_to_cpu_is_one_field() -> None:
    repo = readability(Device.CPU)
    for m in repo.models:
        if m.step is not None:
            assert [g.kind for g in m.config.instance_group] == [CPU]
            assert "FORCE_CPU_ONLY_INPUT_TENSORS" not in params(m.config)


def test_per_step_override_puts_pre_and_post_on_cpu() -> None:
    text = (EXAMPLES / "readability" / "pipeline.yaml").read_text()
    text = text.replace(
        "      modelRef: {name: readability-preprocess}",
        "      modelRef: {name: readability-preprocess}\n      device: CPU",
    )
    text = text.replace(
        "      modelRef: {name: readability-postprocess}",
        "      modelRef: {name: readability-postprocess}\n      device: CPU",
    )
    repo = render_repository(resolve(text, EXAMPLES / "readability"))
    kinds = {m.step: m.config.instance_group[0].kind for m in repo.models if m.step}
    assert kinds == {"preprocess": CPU, "bert": GPU, "trees": GPU, "postprocess": CPU}


def test_ensemble_maps_steps_and_batching() -> None:
    ens = readability().ensemble.config
    assert ens.platform == "ensemble" and ens.max_batch_size == 64
    steps = {
        s.model_name: (dict(s.input_map), dict(s.output_map)) for s in ens.ensemble_scheduling.step
    }
    assert steps["readability-trees"] == ({"input__0": "features"}, {"output__0": "tree_score"})
    assert steps["readability-postprocess"][0] == {
        "BERT_SCORE": "bert_score",
        "TREE_SCORE": "tree_score",
        "BERT_WEIGHT": "BERT_WEIGHT",
    }
    assert [i.data_type for i in ens.input] == [mc.TYPE_STRING, mc.TYPE_FP32]
    assert all(s.model_version == -1 for s in ens.ensemble_scheduling.step)


def test_cpu_runtime_adapts_trees_and_torchscript() -> None:
    repo = readability(Device.CPU, backend="inferline-cpu")
    served = {m.step: m.served_as for m in repo.models if m.step}
    assert served == {
        "preprocess": "native:python",
        "bert": "adapter:torch",
        "trees": "adapter:treelite/xgboost",
        "postprocess": "native:python",
    }
    bert = repo.model("readability-bert")
    assert bert.config.backend == "python" and not bert.config.platform
    assert params(bert.config)["INFERLINE_ADAPTER"] == "torchscript"
    assert params(bert.config)["INFERLINE_ARTIFACT"] == "model.pt"
    files = {f.path: f for f in bert.files}
    assert files["readability-bert/1/model.py"].text == adapter_source()
    assert files["readability-bert/1/model.pt"].source == (
        f"file://{EXAMPLES}/readability/artifacts/bert/model.pt"
    )
    trees = repo.model("readability-trees").config
    assert params(trees)["INFERLINE_ADAPTER"] == "trees"
    assert params(trees)["model_type"] == "xgboost_json"
    # The adapter keeps the step's signature exactly.
    assert [(o.name, o.data_type, list(o.dims)) for o in trees.output] == [
        ("output__0", mc.TYPE_FP32, [1])
    ]


MODEL = """
apiVersion: inferline.dev/v1alpha1
kind: InferencePipeline
metadata: {name: p}
spec:
  placement: {device: %(device)s}
  maxBatchSize: 8
  inputs: [{name: X, dtype: FP32, dims: [3, -1, -1]}]
  outputs: [{name: "Y", dtype: FP32, dims: [10]}]
  steps:
    - name: m
      model:
%(model)s
        maxBatchSize: 8
        instances: 2
        inputs: [{name: input, dtype: FP32, dims: [3, -1, -1]}]
        outputs: [{name: output, dtype: FP32, dims: [10]}]
      inputMap: {input: X}
      outputMap: {output: "Y"}
"""


def step_config(model: str, device: str = "GPU") -> mc.ModelConfig:
    rp = resolve(MODEL % {"device": device, "model": model})
    cfg = render_repository(rp).model("p-m").config
    return roundtrip(cfg)


def test_onnx_with_tensorrt_fp16() -> None:
    cfg = step_config(
        "        format: onnx\n        storageUri: s3://b/m.onnx\n"
        "        optimization: {accelerator: tensorrt, precision: FP16, "
        "maxWorkspaceBytes: 1073741824}"
    )
    assert (cfg.platform, cfg.backend) == ("onnxruntime_onnx", "onnxruntime")
    acc = cfg.optimization.execution_accelerators.gpu_execution_accelerator
    assert [a.name for a in acc] == ["tensorrt"]
    assert dict(acc[0].parameters) == {
        "precision_mode": "FP16",
        "max_workspace_size_bytes": "1073741824",
    }
    assert cfg.instance_group[0].count == 2 and cfg.instance_group[0].kind == GPU


def test_onnx_with_openvino_on_cpu() -> None:
    cfg = step_config(
        "        format: onnx\n        storageUri: s3://b/m.onnx\n"
        "        optimization: {accelerator: openvino}",
        device="CPU",
    )
    acc = cfg.optimization.execution_accelerators.cpu_execution_accelerator
    assert [a.name for a in acc] == ["openvino"]
    assert cfg.instance_group[0].kind == CPU


def test_tensorrt_plan_with_cuda_graphs_and_version_policy() -> None:
    cfg = step_config(
        "        format: tensorrt\n        storageUri: s3://b/m.plan\n"
        "        optimization: {cudaGraphs: true}\n"
        "        versionPolicy: {latest: 2}"
    )
    assert (cfg.platform, cfg.default_model_filename) == ("tensorrt_plan", "model.plan")
    assert cfg.optimization.cuda.graphs
    assert cfg.version_policy.latest.num_versions == 2


def test_tensorflow_savedmodel_and_specific_versions() -> None:
    cfg = step_config(
        "        format: tensorflow\n        storageUri: gs://b/m\n"
        "        versionPolicy: {specific: [1, 3]}"
    )
    assert (cfg.platform, cfg.default_model_filename) == (
        "tensorflow_savedmodel",
        "model.savedmodel",
    )
    assert list(cfg.version_policy.specific.versions) == [1, 3]


@pytest.mark.parametrize(
    "model_type,filename",
    [
        ("xgboost", "xgboost.model"),
        ("xgboost_json", "xgboost.json"),
        ("lightgbm", "model.txt"),
        ("treelite_checkpoint", "checkpoint.tl"),
        ("xgboost_ubj", "xgboost.ubj"),
    ],
)
def test_fil_model_types(model_type: str, filename: str) -> None:
    rp = resolve(
        (
            MODEL
            % {
                "device": "GPU",
                "model": (
                    "        format: fil\n        storageUri: s3://b/t\n"
                    f"        tree: {{modelType: {model_type}, outputClass: true, threshold: 0.3}}"
                ),
            }
        )
        .replace("name: input,", "name: input__0,")
        .replace("name: output,", "name: output__0,")
        .replace("{input: X}", "{input__0: X}")
        .replace('{output: "Y"}', '{output__0: "Y"}')
    )
    cfg = roundtrip(render_repository(rp).model("p-m").config)
    assert cfg.backend == "fil" and cfg.default_model_filename == filename
    assert params(cfg)["model_type"] == model_type
    assert params(cfg)["output_class"] == "true" and params(cfg)["threshold"] == "0.3"


def test_python_env_and_user_parameters_win() -> None:
    text = MODEL % {
        "device": "GPU",
        "model": (
            "        format: python\n        python: {file: code/m.py, include: [code/util.py]}\n"
            '        parameters: {FORCE_CPU_ONLY_INPUT_TENSORS: "yes", k: v}'
        ),
    }
    text = text.replace("  placement:", "  backend: {kind: Backend, name: mine}\n  placement:")
    text += """---
apiVersion: inferline.dev/v1alpha1
kind: Backend
metadata: {name: mine}
spec:
  image: example.com/runtime:1
  formats: [python]
  pythonEnvironment: {storageUri: s3://b/env.tar.gz}
"""
    repo = render_repository(resolve(text))
    m = repo.model("p-m")
    assert params(m.config)["EXECUTION_ENV_PATH"] == "$$TRITON_MODEL_DIRECTORY/python_env.tar.gz"
    assert params(m.config)["FORCE_CPU_ONLY_INPUT_TENSORS"] == "yes"
    assert params(m.config)["k"] == "v"
    assert {f.path: f.source for f in m.files} == {
        "p-m/1/model.py": "file:///m/code/m.py",
        "p-m/1/util.py": "file:///m/code/util.py",
        "p-m/python_env.tar.gz": "s3://b/env.tar.gz",
    }


def test_dynamic_batching_fields() -> None:
    cfg = step_config(
        "        format: python\n        python: {file: m.py}\n"
        "        dynamicBatching: {preferredBatchSizes: [4, 8], "
        "maxQueueDelayMicroseconds: 500, preserveOrdering: true}"
    )
    db = cfg.dynamic_batching
    assert (
        list(db.preferred_batch_size),
        db.max_queue_delay_microseconds,
        db.preserve_ordering,
    ) == ([4, 8], 500, True)
    assert cfg.max_batch_size == 8


def test_matches_the_python_backend_resnet50_trt_example() -> None:
    """The same ensemble as python_backend's examples/resnet50_trt, restated as a pipeline.

    The expectations below are the semantics of the maintainers' three config.pbtxt files
    (ensemble_python_resnet50, preprocess, resnet50_trt): names, dtypes, dims, batching,
    platforms, instance kinds and the ensemble's tensor maps.
    """
    rp = resolve("""
apiVersion: inferline.dev/v1alpha1
kind: InferencePipeline
metadata: {name: ensemble-python-resnet50}
spec:
  placement: {device: GPU}
  maxBatchSize: 256
  inputs: [{name: INPUT, dtype: UINT8, dims: [-1]}]
  outputs: [{name: OUTPUT, dtype: FP32, dims: [1000]}]
  steps:
    - name: preprocess
      device: CPU
      model:
        format: python
        python: {file: model.py}
        maxBatchSize: 256
        inputs: [{name: INPUT_0, dtype: UINT8, dims: [-1]}]
        outputs: [{name: OUTPUT_0, dtype: FP32, dims: [3, 224, 224]}]
      inputMap: {INPUT_0: INPUT}
      outputMap: {OUTPUT_0: preprocessed_image}
    - name: resnet50-trt
      model:
        format: tensorrt
        storageUri: s3://models/resnet50.plan
        maxBatchSize: 256
        inputs: [{name: input, dtype: FP32, dims: [3, -1, -1]}]
        outputs: [{name: output, dtype: FP32, dims: [1000]}]
      inputMap: {input: preprocessed_image}
      outputMap: {output: OUTPUT}
""")
    repo = render_repository(rp)
    ens = roundtrip(repo.ensemble.config)
    assert (ens.platform, ens.max_batch_size) == ("ensemble", 256)
    assert [(t.name, t.data_type, list(t.dims)) for t in ens.input] == [
        ("INPUT", mc.TYPE_UINT8, [-1])
    ]
    assert [(t.name, t.data_type, list(t.dims)) for t in ens.output] == [
        ("OUTPUT", mc.TYPE_FP32, [1000])
    ]
    assert [
        (dict(s.input_map), dict(s.output_map), s.model_version)
        for s in ens.ensemble_scheduling.step
    ] == [
        ({"INPUT_0": "INPUT"}, {"OUTPUT_0": "preprocessed_image"}, -1),
        ({"input": "preprocessed_image"}, {"output": "OUTPUT"}, -1),
    ]
    pre = repo.model("ensemble-python-resnet50-preprocess").config
    assert (pre.backend, pre.max_batch_size) == ("python", 256)
    assert [g.kind for g in pre.instance_group] == [CPU]
    assert [(t.name, t.data_type, list(t.dims)) for t in pre.output] == [
        ("OUTPUT_0", mc.TYPE_FP32, [3, 224, 224])
    ]
    trt = repo.model("ensemble-python-resnet50-resnet50-trt").config
    assert (trt.platform, trt.max_batch_size) == ("tensorrt_plan", 256)
    assert [(t.name, t.data_type, list(t.dims)) for t in trt.input] == [
        ("input", mc.TYPE_FP32, [3, -1, -1])
    ]


ADAPTED = """
apiVersion: inferline.dev/v1alpha1
kind: ClusterBackend
metadata: {name: python-only}
spec: {image: example.com/python-only:1, formats: [python], devices: [GPU, CPU]}
---
apiVersion: inferline.dev/v1alpha1
kind: InferencePipeline
metadata: {name: p}
spec:
  backend: {name: %(backend)s}
  placement: {device: %(device)s}
  maxBatchSize: 8
  inputs: [{name: X, dtype: FP32, dims: [4]}]
  outputs: [{name: "Y", dtype: FP32, dims: [1]}]
  steps:
    - name: m
      model:
        format: fil
        storageUri: s3://bucket/trees.json
        credentialsSecret: bucket-reader
        tree: {modelType: xgboost_json, outputClass: true, threshold: 0.25}
        maxBatchSize: 8
        inputs: [{name: input__0, dtype: FP32, dims: [4]}]
        outputs: [{name: output__0, dtype: FP32, dims: [1]}]
      inputMap: {input__0: X}
      outputMap: {output__0: "Y"}
"""


@pytest.mark.parametrize("device", ["GPU", "CPU"])
def test_adapted_step_keeps_tensors_on_its_device_and_its_tree_settings(device: str) -> None:
    # A backend without the FIL backend: the adapter serves the trees.
    rp = resolve(ADAPTED % {"backend": "python-only", "device": device})
    assert not rp.steps[0].native
    cfg = render_repository(rp).model("p-m").config
    p = params(cfg)
    assert p["INFERLINE_ADAPTER"] == "trees"
    assert p["threshold"] == "0.25" and p["output_class"] == "true"
    assert cfg.instance_group[0].kind == (GPU if device == "GPU" else CPU)
    # On GPU the adapter takes its inputs where the previous step left them (DLPack).
    assert p.get("FORCE_CPU_ONLY_INPUT_TENSORS") == ("no" if device == "GPU" else None)


def test_native_fil_renders_threshold_and_class() -> None:
    rp = resolve(ADAPTED % {"backend": "triton", "device": "GPU"})
    p = params(render_repository(rp).model("p-m").config)
    assert rp.steps[0].native and p["threshold"] == "0.25" and p["output_class"] == "true"


def test_artifacts_carry_their_credentials_secret_into_the_manifest() -> None:
    from inferline.compile import render_manifest
    from inferline.render.manifest import RenderManifest

    manifest = render_manifest([resolve(ADAPTED % {"backend": "triton", "device": "GPU"})])
    (artifact,) = manifest.artifacts
    assert artifact.source == "s3://bucket/trees.json"
    assert artifact.credentials_secret == "bucket-reader"
    again = RenderManifest.from_json(manifest.to_json())
    assert again.artifacts[0].credentials_secret == "bucket-reader"
    assert '"credentialsSecret": "bucket-reader"' in manifest.to_json()
