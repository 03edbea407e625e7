"""Types shared by every Inferline kind: metadata, tensors, dtypes, names, CEL rules."""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError, PydanticUndefined

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
SHA256 = r"^[a-f0-9]{64}$"
STORAGE_URI_PATTERN = (
    r"^(s3|gs|https?|pvc|file)://.+$|^configmap://[a-z0-9]([-a-z0-9.]*[a-z0-9])?/.+$"
)

# Every pattern a field may carry, said in words: users read these, not the regex.
PATTERN_WORDS: dict[str, str] = {
    DNS1123_LABEL: "lowercase letters, digits and '-', starting and ending with a letter or digit",
    DNS1123_SUBDOMAIN: "lowercase letters, digits, '-' and '.', starting and ending with a "
    "letter or digit",
    TENSOR_NAME: "letters, digits, '_', '.' and '-', starting with a letter or '_'",
    SHA256: "64 lowercase hexadecimal digits (a sha256 digest)",
    STORAGE_URI_PATTERN: "a URI starting with s3://, gs://, http://, https://, pvc://, file:// "
    "or configmap://NAME/",
}


def words_for(pattern: str, words: str) -> str:
    """Register what `pattern` means in words (for messages); returns the pattern."""
    PATTERN_WORDS[pattern] = words
    return pattern


DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS1123_LABEL)]
DnsSubdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)]
TensorName = Annotated[str, Field(min_length=1, max_length=128, pattern=TENSOR_NAME)]
Sha256 = Annotated[str, Field(pattern=SHA256)]

MAX_TENSORS = 64
MAX_DIMS = 8


@dataclass(frozen=True)
class CelRule:
    """A CEL rule the CRD carries (x-kubernetes-validations) and its Python twin.

    The apiserver evaluates `rule` at admission; `validate` evaluates `holds` on the parsed
    object and reports the very same `message`. Tests evaluate both (the CEL with cel-python)
    on the corpora and on mutations of them, so the two cannot drift apart unseen. Write rules
    over fields that have a schema default or are optional: the apiserver applies defaults
    before it evaluates CEL, as pydantic does before `holds` runs.
    """

    rule: str
    message: str
    holds: Callable[[Any], bool]


def _crd_extras(schema: dict[str, Any], cls: type) -> None:
    rules: tuple[CelRule, ...] = getattr(cls, "cel_rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [{"rule": r.rule, "message": r.message} for r in rules]


MANIFEST = {"manifest": True}  # validation context: the data is a manifest, as a user wrote it


def _is_manifest(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("manifest"))


class ApiModel(BaseModel):
    """Base for every spec object: camelCase on the wire, unknown fields are errors.

    Python code builds models by field name (`BackendSpec(python_environment=...)`); documents
    are read by wire name only (`load.parse_resource` passes by_name=False), so a snake_case key
    in YAML is an unknown field, as it is to the apiserver.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
        use_enum_values=False,
        json_schema_extra=_crd_extras,
    )

    # CEL rules of this object, each with its Python twin (see CelRule).
    cel_rules: ClassVar[tuple[CelRule, ...]] = ()
    # Wire names of the list fields the CRD keys by `name` (x-kubernetes-list-type: map).
    _named_lists: ClassVar[tuple[tuple[str, str], ...]] = ()
    _nulls_dropped: ClassVar[bool] = False  # True: a null field is taken as unset (ObjectMeta)

    # Wire and Python names of the fields whose CRD schema has a default (a plain, non-None
    # default here): a null there is defaulted by the apiserver, not refused.
    _null_means_default: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._null_means_default = frozenset(
            name
            for n, f in cls.model_fields.items()
            if f.default is not None and f.default is not PydanticUndefined
            for name in (n, f.alias or n)
        )
        named = []
        for name, f in cls.model_fields.items():
            wire = f.alias or name
            for arg in _flatten(f.annotation):
                if typing.get_origin(arg) is list:
                    (item,) = typing.get_args(arg)
                    item = next(iter(_flatten(item)))
                    if (
                        isinstance(item, type)
                        and issubclass(item, BaseModel)
                        and "name" in item.model_fields
                        and item.model_fields["name"].is_required()
                    ):
                        named.append((name, wire))
        cls._named_lists = tuple(named)

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any, info: ValidationInfo) -> Any:
        # A null field is taken as unset: in a manifest only where the CRD has a default for
        # it (the apiserver defaults it; see _not_null for the others), and always in ObjectMeta,
        # as the apiserver's typed metadata does.
        if type(data) is not dict or None not in data.values():
            return data
        unset: Collection[str]
        if _is_manifest(info) and not cls._nulls_dropped:
            unset = cls._null_means_default  # the other nulls reach _not_null
        else:
            unset = {f.alias or n for n, f in cls.model_fields.items()} | set(cls.model_fields)
        return {k: v for k, v in data.items() if v is not None or k not in unset}

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        # No field of the CRDs is nullable. Server-side apply (kubectl --server-side, and Argo CD
        # or Flux applying server-side) sends a null as written and the apiserver refuses it
        # ("must be of type string"); a client-side create drops it silently, losing what the
        # author meant. Either way `validate` names it (seen with kubectl --dry-run=server).
        if value is None and _is_manifest(info):
            raise PydanticCustomError(
                "null_value", "must not be null: give it a value or remove the field"
            )
        return value

    @model_validator(mode="after")
    def _admission_rules(self) -> ApiModel:
        failed = [
            f"duplicate name {n!r} in {wire}: each entry needs its own name"
            for field, wire in self._named_lists
            for n in _duplicates([item.name for item in getattr(self, field) or ()])
        ]
        failed += [r.message for r in self.cel_rules if not r.holds(self)]
        if failed:
            raise ValueError("; ".join(failed))
        return self

    def to_wire(self) -> dict[str, Any]:
        """The object as it is written in YAML: camelCase, without unset defaults."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def _flatten(annotation: Any) -> list[Any]:
    """The members of a union / Optional / Annotated annotation."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _flatten(typing.get_args(annotation)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return [a for arg in typing.get_args(annotation) for a in _flatten(arg)]
    return [annotation]


def _duplicates(names: list[str]) -> list[str]:
    seen: set[str] = set()
    dups: list[str] = []
    for n in names:
        if n in seen and n not in dups:
            dups.append(n)
        seen.add(n)
    return dups


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


_NO_ZERO_DIMS = CelRule(
    "!self.dims.exists(d, d == 0)",
    "dims: Triton rejects 0; use a size >= 1, or -1 for any size",
    lambda t: 0 not in t.dims,
)


class TensorSpec(ApiModel):
    """A named tensor. `dims` exclude the batch dimension when the model batches; -1 is any."""

    cel_rules = (_NO_ZERO_DIMS,)

    name: TensorName
    dtype: DataType
    dims: Annotated[list[Annotated[int, Field(ge=-1)]], Field(min_length=1, max_length=MAX_DIMS)]


class InputTensor(TensorSpec):
    """A tensor a model (or the pipeline) takes."""

    optional: bool = Field(default=False, description="The input may be omitted from a request.")


class OutputTensor(TensorSpec):
    """A tensor a model (or the pipeline) returns."""

    labels_uri: Annotated[str, Field(max_length=4096, pattern=STORAGE_URI_PATTERN)] | None = Field(
        default=None,
        description="A labels file (one class name per line) for Triton's classification "
        "extension: fetched into the model's directory and named as this output's "
        "label_filename. Same URI schemes as storageUri.",
    )


# Label keys and values, as the apiserver checks them (k8s.io/apimachinery validation).
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN)
MAX_ANNOTATIONS_BYTES = 256 * 1024


def _key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if "/" in prefix:
        return "has more than one '/'"
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return "prefix must be a DNS subdomain (lowercase letters, digits, '-', '.')"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            "name part must be at most 63 letters, digits, '-', '_' or '.', starting and "
            "ending with a letter or digit"
        )
    return None


class ObjectMeta(ApiModel):
    """Kubernetes ObjectMeta: the fields a manifest may carry, checked as the apiserver does."""

    _nulls_dropped: ClassVar[bool] = True

    name: DnsSubdomain
    generate_name: str | None = None
    namespace: DnsLabel | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None
    resource_version: str | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    owner_references: list[dict[str, Any]] | None = None
    finalizers: list[str] | None = None
    managed_fields: list[dict[str, Any]] | None = None
    self_link: str | None = None

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for k, v in labels.items():
            if (why := _key_problem(k)) is not None:
                raise ValueError(f"label key {k!r}: {why}")
            if len(v) > 63 or not _LABEL_VALUE.match(v):
                raise ValueError(
                    f"label {k}={v!r}: a value is at most 63 letters, digits, '-', '_' or '.', "
                    "starting and ending with a letter or digit (or empty)"
                )
        return labels

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, annotations: dict[str, str]) -> dict[str, str]:
        for k in annotations:
            if (why := _key_problem(k)) is not None:
                raise ValueError(f"annotation key {k!r}: {why}")
        size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
        if size > MAX_ANNOTATIONS_BYTES:
            raise ValueError(
                f"annotations are {size} bytes; the apiserver allows {MAX_ANNOTATIONS_BYTES}"
            )
        return annotations


class LocalObjectRef(ApiModel):
    """A reference to an object by name (namespace defaults to the referrer's)."""

    name: DnsSubdomain


def dims_compatible(a: list[int], b: list[int]) -> bool:
    """Two shapes can hold the same tensor: same rank, each dim equal or one of them -1."""
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b, strict=True))
