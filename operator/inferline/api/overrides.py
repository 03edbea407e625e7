"""Command-line overrides applied to parsed documents before validation."""

from __future__ import annotations

from dataclasses import replace

from .common import Device
from .load import Document
from .pipeline import BackendKind, BackendRef, InferencePipeline


def override_device(docs: list[Document], device: Device) -> list[Document]:
    """Move whole pipelines to `device`: placement and every per-step override."""
    out = []
    for d in docs:
        r = d.resource
        if isinstance(r, InferencePipeline):
            spec = r.spec.model_copy(
                update={
                    # On CPU a GPU request means nothing: drop it rather than warn about it.
                    "placement": r.spec.placement.model_copy(
                        update={"device": device} | ({"gpu": None} if device is Device.CPU else {})
                    ),
                    "steps": [s.model_copy(update={"device": None}) for s in r.spec.steps],
                }
            )
            d = replace(d, resource=r.model_copy(update={"spec": spec}))
        out.append(d)
    return out


def override_backend(docs: list[Document], name: str) -> list[Document]:
    """Serve every pipeline with the ClusterBackend `name` (e.g. the local runtime)."""
    out = []
    for d in docs:
        r = d.resource
        if isinstance(r, InferencePipeline):
            ref = BackendRef(kind=BackendKind.CLUSTER_BACKEND, name=name)
            d = replace(
                d,
                resource=r.model_copy(update={"spec": r.spec.model_copy(update={"backend": ref})}),
            )
        out.append(d)
    return out
