"""The render manifest (render.json): the compiler's whole output, typed and versioned.

It is the one contract between the compiler and everything that serves its output: every file
of the Triton model repository is listed, either inline (configs, python code) or as an
artifact URI to fetch (with its sha256 and the Secret holding its credentials). The runtime
assembles a repository from the manifest alone; the operator ships it in a ConfigMap and hashes
it to roll pods when it changes. `to_json` is its one writer and `from_json` its one reader.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from .. import __version__
from ..api.common import ApiModel, InputTensor, OutputTensor
from ..api.model import StorageOptions
from ..errors import UserError

MANIFEST_FILE = "render.json"
MANIFEST_VERSION = 1


class ManifestError(UserError):
    """A render.json that this version cannot read (corrupt, foreign, or from another version)."""


class RepoFile(ApiModel):
    """One file (or directory, for a path ending in '/') of the model repository.

    `text` is its content; otherwise `source` is an absolute URI (file://, s3://, gs://,
    http(s)://, pvc://, configmap://) the runtime fetches, verified against `sha256` when given,
    with credentials from the Secret `credentialsSecret`.
    """

    path: Annotated[str, Field(min_length=1, max_length=4096)]
    text: str | None = None
    source: str | None = None
    sha256: str | None = None
    credentials_secret: str | None = None
    storage: StorageOptions | None = None  # endpoint, region, addressing for S3/GCS-compatibles

    @field_validator("path")
    @classmethod
    def _relative(cls, path: str) -> str:
        p = PurePosixPath(path)
        if p.is_absolute() or ".." in p.parts:
            raise ValueError(f"{path!r} must be relative to the repository, without '..'")
        return path

    @model_validator(mode="after")
    def _one_source(self) -> RepoFile:
        if (self.text is None) == (self.source is None):
            raise ValueError(f"{self.path}: exactly one of text and source")
        return self

    @property
    def is_artifact(self) -> bool:
        return self.source is not None


class StepEntry(ApiModel):
    step: str
    model: str  # the Triton model serving it
    format: str
    served_as: str  # native:<backend> or adapter:<library>
    device: str
    model_ref: str | None = None  # namespace/name of the Model, for a modelRef step


class PipelineEntry(ApiModel):
    name: str  # the InferencePipeline's name
    namespace: str | None = None
    served_name: str  # the ensemble's Triton model name: what clients call
    backend: str
    max_batch_size: int
    inputs: list[InputTensor]
    outputs: list[OutputTensor]
    steps: list[StepEntry]

    def signature(self, which: Literal["inputs", "outputs"]) -> list[str]:
        """`NAME DTYPE [dims]`, the batch dimension shown as -1 when the pipeline batches."""
        batching = self.max_batch_size > 0
        return [
            f"{t.name} {t.dtype.value} {[-1, *t.dims] if batching else t.dims}"
            for t in getattr(self, which)
        ]


class RenderManifest(ApiModel):
    kind: Literal["InferlineRender"] = "InferlineRender"
    version: Literal[1] = 1  # MANIFEST_VERSION
    generator: str = f"inferline {__version__}"
    pipelines: list[PipelineEntry]
    files: list[RepoFile]

    @property
    def artifacts(self) -> list[RepoFile]:
        return [f for f in self.files if f.is_artifact]

    def to_json(self) -> str:
        return json.dumps(self.to_wire(), indent=1, sort_keys=True) + "\n"

    def digest(self) -> str:
        """sha256 of the manifest: changes exactly when what a pod would serve changes."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str, where: str = MANIFEST_FILE) -> RenderManifest:
        """Parse a manifest, or raise ManifestError with one line saying what is wrong."""
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ManifestError(f"{where}: not JSON ({e}); run `inferline render` again") from None
        if not isinstance(data, dict) or data.get("kind") != "InferlineRender":
            raise ManifestError(
                f"{where}: not an Inferline render manifest (written by an older inferline, or "
                "not by inferline at all); run `inferline render` again"
            )
        if data.get("version") != MANIFEST_VERSION:
            raise ManifestError(
                f"{where}: manifest version {data.get('version')!r}, but this inferline "
                f"({__version__}) reads version {MANIFEST_VERSION}; render it again with this "
                "version"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            loc = ".".join(str(x) for x in first["loc"])
            raise ManifestError(
                f"{where}: {loc}: {first['msg']} (corrupt manifest; run `inferline render` again)"
            ) from None
