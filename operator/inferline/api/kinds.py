"""The one registry of Inferline's kinds: what the loader parses, the CRD generator emits, the
reference documents and the operator watches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .backend import Backend, BackendSpec, ClusterBackend
from .common import GROUP
from .model import Model, ModelSpec
from .pipeline import InferencePipeline, InferencePipelineSpec
from .status import InferencePipelineStatus

Resource = Backend | ClusterBackend | Model | InferencePipeline


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    namespaced: bool
    short_names: list[str]
    resource: type[BaseModel]  # the whole object (apiVersion, kind, metadata, spec, status)
    spec: type[BaseModel]
    status: type[BaseModel] | None = None
    columns: list[dict[str, Any]] = field(default_factory=list)
    scale: bool = False

    @property
    def scope(self) -> str:
        return "Namespaced" if self.namespaced else "Cluster"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
_BACKEND_COLUMNS = [
    {"name": "Image", "type": "string", "jsonPath": ".spec.image"},
    {"name": "Triton", "type": "string", "jsonPath": ".spec.tritonVersion"},
    _AGE,
]

KINDS: dict[str, KindInfo] = {
    k.kind: k
    for k in (
        KindInfo(
            "Backend", "backends", True, ["ilb"], Backend, BackendSpec, columns=_BACKEND_COLUMNS
        ),
        KindInfo(
            "ClusterBackend",
            "clusterbackends",
            False,
            ["ilcb"],
            ClusterBackend,
            BackendSpec,
            columns=_BACKEND_COLUMNS,
        ),
        KindInfo(
            "Model",
            "models",
            True,
            ["ilm"],
            Model,
            ModelSpec,
            columns=[
                {"name": "Format", "type": "string", "jsonPath": ".spec.format"},
                {"name": "Max-Batch", "type": "integer", "jsonPath": ".spec.maxBatchSize"},
                {"name": "URI", "type": "string", "jsonPath": ".spec.storageUri", "priority": 1},
                _AGE,
            ],
        ),
        KindInfo(
            "InferencePipeline",
            "inferencepipelines",
            True,
            ["ipl", "pipeline"],
            InferencePipeline,
            InferencePipelineSpec,
            InferencePipelineStatus,
            columns=[
                {
                    "name": "Ready",
                    "type": "string",
                    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                },
                {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
                {"name": "Device", "type": "string", "jsonPath": ".spec.placement.device"},
                {"name": "GPU", "type": "string", "jsonPath": ".status.gpuResource.resource"},
                {
                    "name": "Reason",
                    "type": "string",
                    "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
                    "priority": 1,
                },
                _AGE,
            ],
            scale=True,
        ),
    )
}
