"""The Model kind: a reusable model declaration (artifact, format, signature, batching)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from .common import (
    MAX_TENSORS,
    SHA256,
    STORAGE_URI_PATTERN,
    ApiModel,
    CelRule,
    DnsSubdomain,
    InputTensor,
    LocalObjectRef,
    ObjectMeta,
    OutputTensor,
    Sha256,
    words_for,
)

SHA256_PATTERN = SHA256
# Triton's FIL backend serves exactly these tensor names.
FIL_INPUT, FIL_OUTPUT = "input__0", "output__0"


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

    cel_rules = (
        CelRule(
            "(has(self.latest) ? 1 : 0) + (has(self.all) && self.all ? 1 : 0) + "
            "(has(self.specific) ? 1 : 0) == 1",
            "set exactly one of latest, all, specific",
            lambda v: [v.latest is not None, bool(v.all), v.specific is not None].count(True) == 1,
        ),
    )

    latest: Annotated[int, Field(ge=1)] | None = None
    all: bool | None = None
    specific: Annotated[list[Annotated[int, Field(ge=1)]], Field(max_length=16)] | None = None


class AddressingStyle(StrEnum):
    PATH = "path"  # https://endpoint/bucket/key: MinIO, Ceph and most S3-compatible stores
    VIRTUAL = "virtual"  # https://bucket.endpoint/key


ENDPOINT_URL = words_for(r"^https?://[^\s/]+(/\S*)?$", "an http:// or https:// URL without spaces")
REGION = words_for(r"^[a-z0-9-]+$", "lowercase letters, digits and '-' (e.g. eu-west-1)")


class StorageOptions(ApiModel):
    """How to reach the object store of `storageUri` (S3- or GCS-compatible endpoints).

    Without it, s3:// goes to AWS (region us-east-1 unless the credentials Secret names one)
    and gs:// to Google Cloud Storage. The Secret's AWS_ENDPOINT_URL and AWS_REGION keys count
    too; these fields win over them.
    """

    cel_rules = (
        CelRule(
            "!has(self.addressingStyle) || has(self.endpoint)",
            "addressingStyle applies to a custom endpoint",
            lambda s: s.addressing_style is None or s.endpoint is not None,
        ),
    )

    endpoint: Annotated[str, Field(max_length=2048, pattern=ENDPOINT_URL)] | None = Field(
        default=None,
        description="Endpoint URL of an S3-compatible store (MinIO, Ceph, R2, ...) or a "
        "GCS base URL, e.g. http://minio.storage:9000.",
    )
    region: Annotated[str, Field(max_length=64, pattern=REGION)] | None = Field(
        default=None, description="S3 region, e.g. eu-west-1."
    )
    addressing_style: AddressingStyle | None = Field(
        default=None,
        description="S3 request style: path (bucket in the path) or virtual (bucket in the "
        "host name). Default: path for a custom endpoint.",
    )


class PythonCode(ApiModel):
    """Where a python model's code comes from: a ConfigMap key, or a file next to the manifest."""

    cel_rules = (
        CelRule(
            "has(self.configMap) != has(self.file)",
            "set exactly one of configMap, file",
            lambda p: (p.config_map is None) != (p.file is None),
        ),
    )

    config_map: LocalObjectRef | None = None
    key: Annotated[str, Field(max_length=253)] = "model.py"
    file: Annotated[str, Field(max_length=4096)] | None = Field(
        default=None, description="Path to model.py, relative to the manifest (local use)."
    )
    include: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=32)] = Field(
        default_factory=list,
        description="Helper modules copied next to the code (paths relative to the manifest).",
    )


class PythonEnvironment(ApiModel):
    """A packed Python environment (a conda-pack tarball) for python models.

    Fetched into the model's directory and named by Triton's EXECUTION_ENV_PATH parameter.
    """

    storage_uri: Annotated[str, Field(max_length=4096, pattern=STORAGE_URI_PATTERN)] = Field(
        description="Where the tarball lives (same schemes as a Model's storageUri)."
    )
    sha256: Sha256 | None = None
    credentials_secret: DnsSubdomain | None = Field(
        default=None, description="A Secret holding credentials for storageUri."
    )


_REMOTE_URI = r"^[A-Za-z][A-Za-z0-9+.-]*://"


class ModelSpec(ApiModel):
    cel_rules = (
        CelRule(
            "has(self.tree) == (self.format == 'fil')",
            "tree is required for, and only for, format fil",
            lambda m: (m.tree is not None) == (m.format is ModelFormat.FIL),
        ),
        CelRule(
            "self.format == 'python' || has(self.storageUri)",
            "storageUri is required for this format",
            lambda m: m.format is ModelFormat.PYTHON or m.storage_uri is not None,
        ),
        CelRule(
            "self.format != 'python' || has(self.python) || has(self.storageUri)",
            "a python model needs `python` (its code) or storageUri",
            lambda m: (
                m.format is not ModelFormat.PYTHON
                or m.python is not None
                or m.storage_uri is not None
            ),
        ),
        CelRule(
            "!has(self.python) || self.format == 'python'",
            "`python` applies to format python only",
            lambda m: m.python is None or m.format is ModelFormat.PYTHON,
        ),
        CelRule(
            "!has(self.pythonEnvironment) || self.format == 'python'",
            "pythonEnvironment applies to format python only",
            lambda m: m.python_environment is None or m.format is ModelFormat.PYTHON,
        ),
        CelRule(
            "!has(self.dynamicBatching) || self.maxBatchSize > 0",
            "dynamicBatching needs maxBatchSize > 0",
            lambda m: m.dynamic_batching is None or m.max_batch_size > 0,
        ),
        CelRule(
            "!has(self.storage) || (has(self.storageUri) && "
            "(self.storageUri.startsWith('s3://') || self.storageUri.startsWith('gs://')))",
            "storage applies to s3:// and gs:// storageUri",
            lambda m: m.storage is None or (m.storage_uri or "").startswith(("s3://", "gs://")),
        ),
        CelRule(
            "!has(self.dynamicBatching) || !has(self.dynamicBatching.preferredBatchSizes) || "
            "self.dynamicBatching.preferredBatchSizes.all(s, s <= self.maxBatchSize)",
            "dynamicBatching.preferredBatchSizes must not exceed maxBatchSize",
            lambda m: (
                m.dynamic_batching is None
                or all(s <= m.max_batch_size for s in m.dynamic_batching.preferred_batch_sizes)
            ),
        ),
        CelRule(
            f"self.format != 'fil' || (size(self.inputs) == 1 && "
            f"self.inputs[0].name == '{FIL_INPUT}' && size(self.outputs) == 1 && "
            f"self.outputs[0].name == '{FIL_OUTPUT}')",
            f"a fil model has one input named {FIL_INPUT} and one output named {FIL_OUTPUT} "
            "(the names Triton's FIL backend serves)",
            lambda m: (
                m.format is not ModelFormat.FIL
                or (
                    [t.name for t in m.inputs] == [FIL_INPUT]
                    and [t.name for t in m.outputs] == [FIL_OUTPUT]
                )
            ),
        ),
        CelRule(
            "!has(self.parameters) || !('EXECUTION_ENV_PATH' in self.parameters) || "
            f"!self.parameters['EXECUTION_ENV_PATH'].matches('{_REMOTE_URI}')",
            "parameters.EXECUTION_ENV_PATH is a local path Triton reads, not a URI it fetches: "
            "set pythonEnvironment.storageUri instead, and Inferline fetches the packed "
            "environment into the model directory and points EXECUTION_ENV_PATH at it",
            lambda m: not re.match(_REMOTE_URI, m.parameters.get("EXECUTION_ENV_PATH", "")),
        ),
    )

    storage_uri: Annotated[str, Field(max_length=4096, pattern=STORAGE_URI_PATTERN)] | None = Field(
        default=None,
        description="Where the artifact lives: s3://, gs://, http(s)://, pvc://CLAIM/path, "
        "file://, or configmap://NAME/KEY for small files.",
    )
    sha256: Sha256 | None = Field(
        default=None, description="Expected sha256 of the artifact file; checked after download."
    )
    format: ModelFormat = Field(
        description="How the artifact is stored. A fil model has exactly one input named "
        f"{FIL_INPUT} and one output named {FIL_OUTPUT} (the names Triton's FIL backend "
        "serves) and needs `tree`."
    )
    inputs: Annotated[list[InputTensor], Field(min_length=1, max_length=MAX_TENSORS)]
    outputs: Annotated[list[OutputTensor], Field(min_length=1, max_length=MAX_TENSORS)]
    max_batch_size: Annotated[int, Field(ge=0, le=1 << 20)] = 0
    dynamic_batching: DynamicBatching | None = None
    instances: Annotated[int, Field(ge=1, le=64)] = 1
    parameters: Annotated[
        dict[str, Annotated[str, Field(max_length=4096)]], Field(max_length=64)
    ] = Field(
        default_factory=dict,
        description="Triton model parameters, written into config.pbtxt as given (they win over "
        "what Inferline sets). EXECUTION_ENV_PATH must not be a URI: use pythonEnvironment.",
    )
    optimization: Optimization | None = None
    tree: TreeModel | None = None
    python: PythonCode | None = None
    python_environment: PythonEnvironment | None = Field(
        default=None,
        description="A packed Python environment for this python model (Triton's "
        "EXECUTION_ENV_PATH); wins over the Backend's pythonEnvironment.",
    )
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


class Model(ApiModel):
    api_version: Literal["inferline.dev/v1alpha1"]
    kind: Literal["Model"]
    metadata: ObjectMeta
    spec: ModelSpec
