"""Types shared by every Inferline kind: metadata, tensors, dtypes, names."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

GROUP = "inferline.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# A DNS-1123 label: what Kubernetes accepts for most names, and (being a subset of what Triton
# allows for model directory names) safe as a Triton model name too.
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A DNS-1123 subdomain: metadata.name of namespaced custom resources.
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Tensor names travel through Triton configs, ensemble maps and the HTTP/gRPC protocol:
# keep them to identifiers (letters, digits, '_', '.', '-'; no leading digit or dot).
TENSOR_NAME = r"^[A-Za-z_][A-Za-z0-9_.\-]*$"

DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS1123_LABEL)]
DnsSubdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)]
TensorName = Annotated[str, Field(min_length=1, max_length=128, pattern=TENSOR_NAME)]

MAX_TENSORS = 64
MAX_DIMS = 8


class ApiModel(BaseModel):
    """Base for every spec object: camelCase on the wire, unknown fields are errors."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as it is written in YAML: camelCase, without unset defaults."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def cel_rules(*rules: tuple[str, str]) -> ConfigDict:
    """An ApiModel config that also carries CEL rules into the generated CRD.

    Only rules that are cheap to evaluate at admission belong here; the full semantic checks
    live in `validate`.
    """
    return ConfigDict(
        **ApiModel.model_config,
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]
        },
    )


class DataType(StrEnum):
    """Tensor element types, named as in Triton's inference protocol."""

    BOOL = "BOOL"
    UINT8 = "UINT8"
    UINT16 = "UINT16"
    UINT32 = "UINT32"
    UINT64 = "UINT64"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    FP16 = "FP16"
    FP32 = "FP32"
    FP64 = "FP64"
    BF16 = "BF16"
    BYTES = "BYTES"

    @property
    def triton_config_name(self) -> str:
        """The name in model_config.proto's DataType enum (`TYPE_FP32`, `TYPE_STRING`...)."""
        return "TYPE_STRING" if self is DataType.BYTES else f"TYPE_{self.value}"


class Device(StrEnum):
    GPU = "GPU"
    CPU = "CPU"


class TensorSpec(ApiModel):
    """A named tensor. `dims` exclude the batch dimension when the model batches; -1 is any."""

    name: TensorName
    dtype: DataType
    dims: Annotated[list[Annotated[int, Field(ge=-1)]], Field(min_length=1, max_length=MAX_DIMS)]
    optional: bool = Field(default=False, description="The input may be omitted (inputs only).")

    @field_validator("dims")
    @classmethod
    def _no_zero_dims(cls, dims: list[int]) -> list[int]:
        if 0 in dims:
            raise ValueError(f"dims {dims}: Triton rejects 0; use a size >= 1, or -1 for any size")
        return dims


class ObjectMeta(BaseModel):
    """The parts of Kubernetes ObjectMeta Inferline reads; the rest passes through."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: DnsSubdomain
    namespace: DnsLabel | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None


class LocalObjectRef(ApiModel):
    """A reference to an object by name (namespace defaults to the referrer's)."""

    name: DnsSubdomain


def dims_compatible(a: list[int], b: list[int]) -> bool:
    """Two shapes can hold the same tensor: same rank, each dim equal or one of them -1."""
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b, strict=True))
