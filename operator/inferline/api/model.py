"""The Model kind: a reusable model declaration (artifact, format, signature, batching)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .common import (
    MAX_TENSORS,
    ApiModel,
    DnsSubdomain,
    LocalObjectRef,
    ObjectMeta,
    TensorSpec,
    cel_rules,
)

STORAGE_URI_PATTERN = (
    r"^(s3|gs|https?|pvc|file)://.+$|^configmap://[a-z0-9]([-a-z0-9.]*[a-z0-9])?/.+$"
)
SHA256_PATTERN = r"^[a-f0-9]{64}$"


class ModelFormat(StrEnum):
    """How a model artifact is stored, i.e. which Triton backend serves it natively."""

    PYTHON = "python"
    PYTORCH = "pytorch"  # TorchScript, served by Triton's libtorch backend
    ONNX = "onnx"  # served by Triton's onnxruntime backend
    TENSORRT = "tensorrt"  # a serialized TensorRT engine (tensorrt_plan)
    TENSORFLOW = "tensorflow"  # a SavedModel directory
    FIL = "fil"  # tree models (xgboost, lightgbm, treelite) on Triton's FIL backend


class TreeModelType(StrEnum):
    """The `model_type` parameter of Triton's FIL backend."""

    XGBOOST = "xgboost"
    XGBOOST_JSON = "xgboost_json"
    XGBOOST_UBJ = "xgboost_ubj"
    LIGHTGBM = "lightgbm"
    TREELITE_CHECKPOINT = "treelite_checkpoint"


class Accelerator(StrEnum):
    NONE = "none"
    TENSORRT = "tensorrt"
    OPENVINO = "openvino"


class Precision(StrEnum):
    FP32 = "FP32"
    FP16 = "FP16"
    INT8 = "INT8"


class DynamicBatching(ApiModel):
    preferred_batch_sizes: Annotated[list[Annotated[int, Field(ge=1)]], Field(max_length=16)] = (
        Field(default_factory=list)
    )
    max_queue_delay_microseconds: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    preserve_ordering: bool = False


class Optimization(ApiModel):
    """How the backend may accelerate the model.

    For ONNX models, `accelerator` picks a TensorRT (GPU) or OpenVINO (CPU) execution
    accelerator with `precision` and `maxWorkspaceBytes`. For PyTorch models,
    `inferenceMode` and `cudaGraphs` become the libtorch backend's parameters.
    """

    accelerator: Accelerator = Accelerator.NONE
    precision: Precision = Precision.FP32
    max_workspace_bytes: Annotated[int, Field(ge=1 << 20)] | None = None
    inference_mode: bool | None = None
    cuda_graphs: bool = False


class TreeModel(ApiModel):
    """Settings for tree models (format `fil`)."""

    model_type: TreeModelType
    output_class: bool = Field(
        default=False, description="Classifier: return a class (or probabilities); else a score."
    )
    threshold: Annotated[float, Field(ge=0, le=1)] | None = None


class VersionPolicy(ApiModel):
    """Which versions of the model Triton serves: the latest N, all, or specific ones."""

    latest: Annotated[int, Field(ge=1)] | None = None
    all: bool | None = None
    specific: Annotated[list[Annotated[int, Field(ge=1)]], Field(max_length=16)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> VersionPolicy:
        chosen = [k for k in ("latest", "all", "specific") if getattr(self, k) not in (None, False)]
        if len(chosen) != 1:
            raise ValueError("set exactly one of latest, all, specific")
        return self


class AddressingStyle(StrEnum):
    PATH = "path"  # https://endpoint/bucket/key: MinIO, Ceph and most S3-compatible stores
    VIRTUAL = "virtual"  # https://bucket.endpoint/key


class StorageOptions(ApiModel):
    """How to reach the object store of `storageUri` (S3- or GCS-compatible endpoints).

    Without it, s3:// goes to AWS (region us-east-1 unless the credentials Secret names one)
    and gs:// to Google Cloud Storage. The Secret's AWS_ENDPOINT_URL and AWS_REGION keys count
    too; these fields win over them.
    """

    model_config = cel_rules(
        (
            "!has(self.addressingStyle) || has(self.endpoint)",
            "addressingStyle applies to a custom endpoint",
        ),
    )

    endpoint: (
        Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s/]+(/\S*)?$")] | None
    ) = Field(
        default=None,
        description="Endpoint URL of an S3-compatible store (MinIO, Ceph, R2, ...) or a "
        "GCS base URL, e.g. http://minio.storage:9000.",
    )
    region: Annotated[str, Field(max_length=64, pattern=r"^[a-z0-9-]+$")] | None = Field(
        default=None, description="S3 region, e.g. eu-west-1."
    )
    addressing_style: AddressingStyle | None = Field(
        default=None,
        description="S3 request style: path (bucket in the path) or virtual (bucket in the "
        "host name). Default: path for a custom endpoint.",
    )

    @model_validator(mode="after")
    def _style_needs_endpoint(self) -> StorageOptions:
        if self.addressing_style is not None and self.endpoint is None:
            raise ValueError("addressingStyle applies to a custom endpoint")
        return self


class PythonCode(ApiModel):
    """Where a python model's code comes from: a ConfigMap key, or a file next to the manifest."""

    config_map: LocalObjectRef | None = None
    key: Annotated[str, Field(max_length=253)] = "model.py"
    file: Annotated[str, Field(max_length=4096)] | None = Field(
        default=None, description="Path to model.py, relative to the manifest (local use)."
    )
    include: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=32)] = Field(
        default_factory=list,
        description="Helper modules copied next to the code (paths relative to the manifest).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> PythonCode:
        if (self.config_map is None) == (self.file is None):
            raise ValueError("set exactly one of configMap, file")
        return self


class ModelSpec(ApiModel):
    model_config = cel_rules(
        (
            "has(self.tree) == (self.format == 'fil')",
            "tree is required for, and only for, format fil",
        ),
        (
            "self.format == 'python' || has(self.storageUri)",
            "storageUri is required for this format",
        ),
        (
            "!has(self.dynamicBatching) || self.maxBatchSize > 0",
            "dynamicBatching needs maxBatchSize > 0",
        ),
        (
            "!has(self.storage) || (has(self.storageUri) && "
            "(self.storageUri.startsWith('s3://') || self.storageUri.startsWith('gs://')))",
            "storage applies to s3:// and gs:// storageUri",
        ),
    )

    storage_uri: Annotated[str, Field(max_length=4096, pattern=STORAGE_URI_PATTERN)] | None = Field(
        default=None,
        description="Where the artifact lives: s3://, gs://, http(s)://, pvc://CLAIM/path, "
        "file://, or configmap://NAME/KEY for small files.",
    )
    sha256: Annotated[str, Field(pattern=SHA256_PATTERN)] | None = Field(
        default=None, description="Expected sha256 of the artifact file; checked after download."
    )
    format: ModelFormat
    inputs: Annotated[list[TensorSpec], Field(min_length=1, max_length=MAX_TENSORS)]
    outputs: Annotated[list[TensorSpec], Field(min_length=1, max_length=MAX_TENSORS)]
    max_batch_size: Annotated[int, Field(ge=0, le=1 << 20)] = 0
    dynamic_batching: DynamicBatching | None = None
    instances: Annotated[int, Field(ge=1, le=64)] = 1
    parameters: dict[str, str] = Field(default_factory=dict)
    optimization: Optimization | None = None
    tree: TreeModel | None = None
    python: PythonCode | None = None
    version_policy: VersionPolicy | None = None
    credentials_secret: DnsSubdomain | None = Field(
        default=None,
        description="A Secret holding credentials for storageUri (never put secrets in specs): "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (optional AWS_SESSION_TOKEN, "
        "AWS_ENDPOINT_URL, AWS_REGION) for s3://, service-account.json for gs://, "
        "header.<Name> keys sent as HTTP headers for http(s)://. Without one, requests are "
        "anonymous.",
    )
    storage: StorageOptions | None = Field(
        default=None, description="Endpoint, region and addressing style for storageUri."
    )

    @model_validator(mode="after")
    def _format_fields(self) -> ModelSpec:
        if self.format is ModelFormat.FIL and self.tree is None:
            raise ValueError("format fil needs `tree` (at least tree.modelType)")
        if self.format is not ModelFormat.FIL and self.tree is not None:
            raise ValueError(f"`tree` applies to format fil only, not {self.format.value}")
        if self.format is ModelFormat.PYTHON:
            if self.python is None and self.storage_uri is None:
                raise ValueError("a python model needs `python` (its code) or storageUri")
        elif self.storage_uri is None:
            raise ValueError(f"a {self.format.value} model needs storageUri")
        if self.storage is not None and not (self.storage_uri or "").startswith(("s3:", "gs:")):
            raise ValueError("storage applies to s3:// and gs:// storageUri")
        if self.python is not None and self.format is not ModelFormat.PYTHON:
            raise ValueError(f"`python` applies to format python only, not {self.format.value}")
        if self.dynamic_batching is not None and self.max_batch_size == 0:
            raise ValueError("dynamicBatching needs maxBatchSize > 0")
        if self.dynamic_batching is not None:
            too_big = [
                s for s in self.dynamic_batching.preferred_batch_sizes if s > self.max_batch_size
            ]
            if too_big:
                raise ValueError(
                    f"dynamicBatching.preferredBatchSizes {too_big} exceed maxBatchSize "
                    f"{self.max_batch_size}"
                )
        if self.format is ModelFormat.FIL and (
            [t.name for t in self.inputs] != ["input__0"]
            or [t.name for t in self.outputs] != ["output__0"]
        ):
            raise ValueError(
                "a fil model has one input named input__0 and one output named "
                "output__0 (the names Triton's FIL backend serves)"
            )
        for kind, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            names = [t.name for t in tensors]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{kind}: duplicate tensor names {dup}")
        return self


class Model(ApiModel):
    api_version: Literal["inferline.dev/v1alpha1"]
    kind: Literal["Model"]
    metadata: ObjectMeta
    spec: ModelSpec
