"""Compile a resolved pipeline into a Triton model repository (pure: no I/O).

Every config is a `model_config_pb2.ModelConfig` message, serialized with protobuf text_format.
The result says which files each model directory holds and where they come from (inline text,
or an artifact URI the runtime fetches); `runtime.repository` writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from ..api import names
from ..api.common import Device, InputTensor, OutputTensor
from ..api.model import Accelerator, ModelFormat, ModelSpec, TreeModelType
from ..api.resolve import ResolvedPipeline, ResolvedStep
from .artifacts import resolve_uri
from .manifest import RepoFile

VERSION_DIR = "1"

# Native serving: (platform, backend, default_model_filename).
_NATIVE: dict[ModelFormat, tuple[str, str, str]] = {
    ModelFormat.PYTHON: ("", "python", "model.py"),
    ModelFormat.PYTORCH: ("pytorch_libtorch", "pytorch", "model.pt"),
    ModelFormat.ONNX: ("onnxruntime_onnx", "onnxruntime", "model.onnx"),
    ModelFormat.TENSORRT: ("tensorrt_plan", "tensorrt", "model.plan"),
    ModelFormat.TENSORFLOW: ("tensorflow_savedmodel", "tensorflow", "model.savedmodel"),
    ModelFormat.FIL: ("", "fil", ""),  # file name depends on tree.modelType
}

FIL_FILENAMES: dict[TreeModelType, str] = {
    TreeModelType.XGBOOST: "xgboost.model",
    TreeModelType.XGBOOST_JSON: "xgboost.json",
    TreeModelType.XGBOOST_UBJ: "xgboost.ubj",
    TreeModelType.LIGHTGBM: "model.txt",
    TreeModelType.TREELITE_CHECKPOINT: "checkpoint.tl",
}

# Which adapter serves a format the backend lacks, and the parameter naming it.
ADAPTER_KIND: dict[ModelFormat, str] = {
    ModelFormat.FIL: "trees",
    ModelFormat.PYTORCH: "torchscript",
    ModelFormat.ONNX: "onnx",
}


@dataclass
class RenderedModel:
    name: str
    config: mc.ModelConfig
    files: list[RepoFile] = field(default_factory=list)
    step: str | None = None  # None for the ensemble
    served_as: str = "ensemble"
    device: str = ""

    @property
    def config_text(self) -> str:
        return text_format.MessageToString(self.config)

    def repository_files(self) -> list[RepoFile]:
        """Every file of this model's directory, its config.pbtxt first."""
        return [RepoFile(path=f"{self.name}/config.pbtxt", text=self.config_text), *self.files]


@dataclass
class RenderedRepository:
    pipeline: str
    models: list[RenderedModel]

    @property
    def ensemble(self) -> RenderedModel:
        return next(m for m in self.models if m.step is None)

    def model(self, name: str) -> RenderedModel:
        return next(m for m in self.models if m.name == name)


def step_model_name(pipeline: str, step: str) -> str:
    """The Triton model name of a step (`<pipeline>-<step>`; see api.names)."""
    return names.step_model(pipeline, step)


def render_repository(rp: ResolvedPipeline) -> RenderedRepository:
    base = rp.base_dir
    models = [render_step(rp, rs, base) for rs in rp.steps]
    models.append(render_ensemble(rp))
    return RenderedRepository(rp.name, models)


# ---- tensors --------------------------------------------------------------------------------


def _inputs(tensors: list[InputTensor]) -> list[mc.ModelInput]:
    return [
        mc.ModelInput(
            name=t.name,
            data_type=mc.DataType.Value(t.dtype.triton_config_name),
            dims=t.dims,
            optional=t.optional,
        )
        for t in tensors
    ]


def _outputs(tensors: list[OutputTensor]) -> list[mc.ModelOutput]:
    return [
        mc.ModelOutput(
            name=t.name,
            data_type=mc.DataType.Value(t.dtype.triton_config_name),
            dims=t.dims,
            label_filename=labels_filename(t) if t.labels_uri else "",
        )
        for t in tensors
    ]


def labels_filename(t: OutputTensor) -> str:
    """Where an output's labels file lands in its model's directory (Triton's label_filename)."""
    return f"labels_{t.name}.txt"


def _labels_files(
    model: str, tensors: list[OutputTensor], base: Path | None, spec: ModelSpec | None = None
) -> list[RepoFile]:
    """Labels files, fetched with the model's credentials and storage options (if a model)."""
    return [
        RepoFile(
            path=f"{model}/{labels_filename(t)}",
            source=resolve_uri(t.labels_uri, base),
            credentials_secret=spec.credentials_secret if spec else None,
            storage=spec.storage if spec else None,
        )
        for t in tensors
        if t.labels_uri
    ]


def _param(config: mc.ModelConfig, key: str, value: str) -> None:
    config.parameters[key].string_value = value


# ---- steps ----------------------------------------------------------------------------------


def render_step(rp: ResolvedPipeline, rs: ResolvedStep, base: Path | None = None) -> RenderedModel:
    spec = rs.spec
    name = step_model_name(rp.name, rs.step.name)
    config = mc.ModelConfig(
        name=name,
        max_batch_size=spec.max_batch_size,
        input=_inputs(spec.inputs),
        output=_outputs(spec.outputs),
    )
    gpu = rs.device is Device.GPU
    config.instance_group.append(
        mc.ModelInstanceGroup(
            kind=mc.ModelInstanceGroup.KIND_GPU if gpu else mc.ModelInstanceGroup.KIND_CPU,
            count=spec.instances,
        )
    )
    if spec.dynamic_batching is not None:
        db = spec.dynamic_batching
        config.dynamic_batching.CopyFrom(
            mc.ModelDynamicBatching(
                preferred_batch_size=db.preferred_batch_sizes,
                max_queue_delay_microseconds=db.max_queue_delay_microseconds,
                preserve_ordering=db.preserve_ordering,
            )
        )
    if spec.version_policy is not None:
        _version_policy(config, spec)

    files: list[RepoFile] = []
    if rs.native:
        platform, backend, filename = _NATIVE[spec.format]
        if platform:
            config.platform = platform
        config.backend = backend
        _native_format_settings(config, rs)
        if spec.format is ModelFormat.FIL:
            assert spec.tree is not None
            filename = FIL_FILENAMES[spec.tree.model_type]
        if spec.format is ModelFormat.PYTHON:
            files += _python_files(name, spec, base)
            # The Model's own packed environment wins over its Backend's.
            env = spec.python_environment or rp.backend.python_environment
            if env is not None:
                _param(config, "EXECUTION_ENV_PATH", "$$TRITON_MODEL_DIRECTORY/python_env.tar.gz")
                files.append(
                    RepoFile(
                        path=f"{name}/python_env.tar.gz",
                        source=resolve_uri(env.storage_uri, base),
                        sha256=env.sha256,
                        credentials_secret=env.credentials_secret,
                    )
                )
        else:
            config.default_model_filename = filename
            files.append(_artifact(f"{name}/{VERSION_DIR}/{filename}", spec, base))
        if spec.format is ModelFormat.PYTHON and gpu:
            # Let inputs stay on the GPU between steps (DLPack) instead of copying to host.
            _param(config, "FORCE_CPU_ONLY_INPUT_TENSORS", "no")
    else:
        files += _adapter(config, name, rs, base)
    files += _labels_files(name, spec.outputs, base, spec)
    for k, v in sorted(spec.parameters.items()):  # the user's parameters win
        _param(config, k, v)
    return RenderedModel(name, config, files, rs.step.name, rs.served_as, rs.device.value)


def _version_policy(config: mc.ModelConfig, spec: ModelSpec) -> None:
    vp = spec.version_policy
    assert vp is not None
    if vp.latest is not None:
        config.version_policy.latest.num_versions = vp.latest
    elif vp.all:
        config.version_policy.all.SetInParent()
    elif vp.specific:
        config.version_policy.specific.versions.extend(vp.specific)


def _native_format_settings(config: mc.ModelConfig, rs: ResolvedStep) -> None:
    spec = rs.spec
    opt = spec.optimization
    if spec.format is ModelFormat.FIL:
        assert spec.tree is not None
        _param(config, "model_type", spec.tree.model_type.value)
        _param(config, "output_class", "true" if spec.tree.output_class else "false")
        if spec.tree.threshold is not None:
            _param(config, "threshold", repr(spec.tree.threshold))
        _param(config, "storage_type", "AUTO")
    if opt is None:
        return
    if spec.format is ModelFormat.ONNX and opt.accelerator is not Accelerator.NONE:
        acc = mc.ModelOptimizationPolicy.ExecutionAccelerators.Accelerator(
            name=opt.accelerator.value
        )
        if opt.accelerator is Accelerator.TENSORRT:
            acc.parameters["precision_mode"] = opt.precision.value
            if opt.max_workspace_bytes:
                acc.parameters["max_workspace_size_bytes"] = str(opt.max_workspace_bytes)
            config.optimization.execution_accelerators.gpu_execution_accelerator.append(acc)
        else:
            config.optimization.execution_accelerators.cpu_execution_accelerator.append(acc)
    if spec.format is ModelFormat.PYTORCH and opt.inference_mode is not None:
        _param(config, "INFERENCE_MODE", "true" if opt.inference_mode else "false")
    if spec.format is ModelFormat.TENSORRT and opt.cuda_graphs:
        config.optimization.cuda.graphs = True


def _artifact(path: str, spec: ModelSpec, base: Path | None) -> RepoFile:
    assert spec.storage_uri is not None
    return RepoFile(
        path=path,
        source=resolve_uri(spec.storage_uri, base),
        sha256=spec.sha256,
        credentials_secret=spec.credentials_secret,
        storage=spec.storage,
    )


def _python_files(name: str, spec: ModelSpec, base: Path | None) -> list[RepoFile]:
    files = []
    vdir = f"{name}/{VERSION_DIR}"
    if spec.python is not None:
        code = spec.python
        if code.config_map is not None:
            files.append(
                RepoFile(
                    path=f"{vdir}/model.py", source=f"configmap://{code.config_map.name}/{code.key}"
                )
            )
        else:
            assert code.file is not None
            files.append(RepoFile(path=f"{vdir}/model.py", source=resolve_uri(code.file, base)))
        for inc in code.include:
            files.append(
                RepoFile(path=f"{vdir}/{PurePosixPath(inc).name}", source=resolve_uri(inc, base))
            )
    if spec.storage_uri is not None:
        # Extra files for the python model (a tokenizer, weights): copied into its version dir.
        files.append(
            RepoFile(
                path=f"{vdir}/",
                source=resolve_uri(spec.storage_uri, base),
                sha256=spec.sha256,
                credentials_secret=spec.credentials_secret,
                storage=spec.storage,
            )
        )
    return files


# ---- adapters -------------------------------------------------------------------------------


@cache
def adapter_source() -> str:
    """The python model that serves adapted artifacts (one file; INFERLINE_ADAPTER picks)."""
    return resources.files("inferline.render.adapters").joinpath("adapter.py").read_text()


def _adapter(
    config: mc.ModelConfig, name: str, rs: ResolvedStep, base: Path | None
) -> list[RepoFile]:
    """Serve a non-native format through a python model with the same signature."""
    spec = rs.spec
    kind = ADAPTER_KIND[spec.format]
    config.backend = "python"
    _param(config, "INFERLINE_ADAPTER", kind)
    if spec.format is ModelFormat.FIL:
        assert spec.tree is not None
        artifact = FIL_FILENAMES[spec.tree.model_type]
        _param(config, "model_type", spec.tree.model_type.value)
        _param(config, "output_class", "true" if spec.tree.output_class else "false")
        if spec.tree.threshold is not None:
            _param(config, "threshold", repr(spec.tree.threshold))
    elif spec.format is ModelFormat.PYTORCH:
        artifact = "model.pt"
        if spec.optimization is not None and spec.optimization.inference_mode is not None:
            _param(
                config, "INFERENCE_MODE", "true" if spec.optimization.inference_mode else "false"
            )
    else:
        artifact = "model.onnx"
    _param(config, "INFERLINE_ARTIFACT", artifact)
    if rs.device is Device.GPU:
        _param(config, "FORCE_CPU_ONLY_INPUT_TENSORS", "no")
    vdir = f"{name}/{VERSION_DIR}"
    return [
        RepoFile(path=f"{vdir}/model.py", text=adapter_source()),
        _artifact(f"{vdir}/{artifact}", spec, base),
    ]


# ---- ensemble -------------------------------------------------------------------------------


def render_ensemble(rp: ResolvedPipeline) -> RenderedModel:
    spec = rp.pipeline.spec
    name = names.ensemble_model(rp.name, spec.served_name)
    config = mc.ModelConfig(
        name=name,
        platform="ensemble",
        max_batch_size=spec.max_batch_size,
        input=_inputs(spec.inputs),
        output=_outputs(spec.outputs),
    )
    for rs in rp.steps:
        config.ensemble_scheduling.step.append(
            mc.ModelEnsembling.Step(
                model_name=step_model_name(rp.name, rs.step.name),
                model_version=-1,
                input_map=rs.step.input_map,
                output_map=rs.step.output_map,
            )
        )
    # Triton wants a version directory even for an ensemble.
    files = [RepoFile(path=f"{name}/{VERSION_DIR}/.keep", text="")]
    files += _labels_files(name, spec.outputs, rp.base_dir)
    return RenderedModel(name, config, files, None, "ensemble", spec.placement.device.value)
