"""Backend and ClusterBackend: a serving runtime (image, native formats, defaults)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import ApiModel, Device, ObjectMeta, words_for
from .images import CPU_RUNTIME_IMAGE, GPU_RUNTIME_IMAGE
from .model import ModelFormat, PythonEnvironment

TRITON_VERSION = "2.51.0"  # the tritonserver nvidia-pytriton 0.7.0 ships; NGC release 24.10


ENV_NAME = words_for(
    r"^[A-Za-z_][A-Za-z0-9_.\-]*$",
    "letters, digits, '_', '.' and '-', starting with a letter or '_'",
)
SEMVER = words_for(r"^\d+\.\d+\.\d+$", "a version MAJOR.MINOR.PATCH such as 2.51.0")


class ResourceList(ApiModel):
    cpu: Annotated[str, Field(max_length=64)] | None = None
    memory: Annotated[str, Field(max_length=64)] | None = None


class Resources(ApiModel):
    requests: ResourceList | None = None
    limits: ResourceList | None = None


class EnvVar(ApiModel):
    name: Annotated[str, Field(pattern=ENV_NAME, max_length=256)]
    value: Annotated[str, Field(max_length=32768)]


class BackendSpec(ApiModel):
    image: Annotated[str, Field(min_length=1, max_length=1024)]
    triton_version: Annotated[str, Field(pattern=SEMVER)] = TRITON_VERSION
    formats: Annotated[list[ModelFormat], Field(min_length=1, max_length=8)] = Field(
        description="Model formats this runtime serves natively; others go through python "
        "adapter models where one exists."
    )
    devices: Annotated[list[Device], Field(min_length=1, max_length=2)] = Field(
        default_factory=lambda: [Device.CPU, Device.GPU]
    )
    resources: Resources | None = None
    args: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=64)] = Field(
        default_factory=list, description="Extra tritonserver arguments."
    )
    env: Annotated[list[EnvVar], Field(max_length=64)] = Field(default_factory=list)
    python_environment: PythonEnvironment | None = Field(
        default=None,
        description="A packed Python environment for every python model this backend serves "
        "(a Model's own pythonEnvironment wins).",
    )


class Backend(ApiModel):
    api_version: Literal["inferline.dev/v1alpha1"]
    kind: Literal["Backend"]
    metadata: ObjectMeta
    spec: BackendSpec


class ClusterBackend(ApiModel):
    api_version: Literal["inferline.dev/v1alpha1"]
    kind: Literal["ClusterBackend"]
    metadata: ObjectMeta
    spec: BackendSpec


# The two ClusterBackends the chart installs. `inferline serve` uses them as well, so a pipeline
# that names one of them resolves without the cluster.
BUILTIN_BACKENDS: dict[str, BackendSpec] = {
    "triton": BackendSpec(
        image=GPU_RUNTIME_IMAGE,
        formats=[
            ModelFormat.PYTHON,
            ModelFormat.PYTORCH,
            ModelFormat.ONNX,
            ModelFormat.TENSORRT,
            ModelFormat.TENSORFLOW,
            ModelFormat.FIL,
        ],
        devices=[Device.GPU, Device.CPU],
    ),
    "inferline-cpu": BackendSpec(
        image=CPU_RUNTIME_IMAGE,
        formats=[ModelFormat.PYTHON],
        devices=[Device.CPU],
    ),
}
