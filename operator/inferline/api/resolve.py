"""Resolve a pipeline's references: its Backend and the Models its steps name.

The catalog is built from whatever objects are at hand — the files a user passed, or what the
operator's indexes hold — so resolution never assumes a file on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .backend import BUILTIN_BACKENDS, Backend, BackendSpec, ClusterBackend
from .common import Device
from .load import Document, ObjectKey
from .model import Model, ModelFormat, ModelSpec
from .pipeline import BackendKind, InferencePipeline, Step
from .problems import MISSING_REFERENCE, Check, Checker

# Formats the runtime can serve through a python adapter model when the backend lacks them.
ADAPTER_LIBRARIES: dict[ModelFormat, str] = {
    ModelFormat.FIL: "treelite/xgboost",
    ModelFormat.PYTORCH: "torch",
    ModelFormat.ONNX: "onnxruntime",
}


@dataclass
class ResolvedStep:
    step: Step
    model_name: str  # the Model's name, or the step's name for an inline model
    spec: ModelSpec
    device: Device
    native: bool  # served by the backend natively; else through an adapter
    model_ref: str | None = None  # "namespace/name" of the Model, for a modelRef step

    @property
    def served_as(self) -> str:
        if self.native:
            return f"native:{self.spec.format.value}"
        return f"adapter:{ADAPTER_LIBRARIES[self.spec.format]}"


@dataclass
class ResolvedPipeline:
    """A pipeline with its references looked up: what the renderer works from."""

    pipeline: InferencePipeline
    backend_name: str
    backend: BackendSpec
    steps: list[ResolvedStep] = field(default_factory=list)
    where: str = ""
    base_dir: Path | None = None  # relative file URIs resolve here; None in a cluster

    @property
    def name(self) -> str:
        return self.pipeline.metadata.name

    @property
    def namespace(self) -> str:
        return self.pipeline.metadata.namespace or "default"


@dataclass
class Catalog:
    """The objects a pipeline may reference, keyed by (namespace, name)."""

    models: dict[tuple[str, str], Model] = field(default_factory=dict)
    backends: dict[tuple[str, str], BackendSpec] = field(default_factory=dict)
    cluster_backends: dict[str, BackendSpec] = field(default_factory=dict)
    invalid: set[ObjectKey] = field(default_factory=set)  # there, but failed validation

    @classmethod
    def from_documents(
        cls,
        docs: list[Document],
        extra_backends: dict[str, BackendSpec] | None = None,
        invalid: set[ObjectKey] | None = None,
    ) -> Catalog:
        """The built-in ClusterBackends, `extra_backends`, and every object among `docs`."""
        cat = cls(
            cluster_backends={**BUILTIN_BACKENDS, **(extra_backends or {})},
            invalid=set(invalid or ()),
        )
        for d in docs:
            cat.add(d.resource)
        return cat

    def add(self, r: object) -> None:
        if isinstance(r, Model):
            self.models[(r.metadata.namespace or "default", r.metadata.name)] = r
        elif isinstance(r, Backend):
            self.backends[(r.metadata.namespace or "default", r.metadata.name)] = r.spec
        elif isinstance(r, ClusterBackend):
            self.cluster_backends[r.metadata.name] = r.spec


@dataclass
class Resolution:
    """What resolving one pipeline found: its problems so far, and what did resolve."""

    doc: Document
    checker: Checker
    backend_name: str
    backend: BackendSpec | None
    steps: dict[int, ResolvedStep]  # by step index; a step whose Model is missing is absent

    @property
    def complete(self) -> bool:
        pipe = self.doc.resource
        assert isinstance(pipe, InferencePipeline)
        return self.backend is not None and len(self.steps) == len(pipe.spec.steps)

    def pipeline(self) -> ResolvedPipeline:
        assert self.complete and self.backend is not None
        pipe = self.doc.resource
        assert isinstance(pipe, InferencePipeline)
        return ResolvedPipeline(
            pipe,
            self.backend_name,
            self.backend,
            [self.steps[i] for i in sorted(self.steps)],
            self.doc.where,
            self.doc.base_dir,
        )


def resolve_pipeline(doc: Document, catalog: Catalog, *, require_refs: bool = False) -> Resolution:
    """Look up the backend and every step's model.

    A Model that is not in the catalog is an error when `require_refs` (render, serve, the
    operator) and a warning otherwise (`validate` of a pipeline file alone).
    """
    pipe = doc.resource
    assert isinstance(pipe, InferencePipeline)
    c = Checker(doc.where, doc.ref)
    ns = pipe.metadata.namespace or "default"
    backend_name, backend = _resolve_backend(c, pipe, catalog, ns)
    steps: dict[int, ResolvedStep] = {}
    for i, s in enumerate(pipe.spec.steps):
        rs = _resolve_step(c, i, s, catalog, ns, pipe, backend, require_refs)
        if rs is not None:
            steps[i] = rs
    return Resolution(doc, c, backend_name, backend, steps)


def _resolve_backend(
    c: Checker, pipe: InferencePipeline, catalog: Catalog, ns: str
) -> tuple[str, BackendSpec | None]:
    ref = pipe.spec.backend
    if ref.kind is BackendKind.CLUSTER_BACKEND:
        found = catalog.cluster_backends.get(ref.name)
        known = sorted(catalog.cluster_backends)
        key: ObjectKey = ("ClusterBackend", "", ref.name)
    else:
        found = catalog.backends.get((ns, ref.name))
        known = sorted(n for (bns, n) in catalog.backends if bns == ns)
        key = ("Backend", ns, ref.name)
    if found is None:
        if key in catalog.invalid:
            c.error(
                "spec.backend.name",
                f"{ref.kind.value} {ref.name!r} is invalid (see its errors)",
                Check.REFERENCES,
            )
        else:
            c.error(
                "spec.backend.name",
                f"{ref.kind.value} {ref.name!r} not found; known: {', '.join(known) or 'none'}",
                Check.REFERENCES,
                MISSING_REFERENCE,
            )
    return ref.name, found


def _resolve_step(
    c: Checker,
    i: int,
    s: Step,
    catalog: Catalog,
    ns: str,
    pipe: InferencePipeline,
    backend: BackendSpec | None,
    require_refs: bool,
) -> ResolvedStep | None:
    path = f"spec.steps[{i}]"
    model_ref = None
    if s.model is not None:
        spec, model_name = s.model, s.name
    else:
        assert s.model_ref is not None
        name = s.model_ref.name
        model = catalog.models.get((ns, name))
        if model is None:
            here = f"{path}.modelRef.name"
            if ("Model", ns, name) in catalog.invalid:
                c.error(
                    here,
                    f"Model {name!r} is invalid (see its errors); fix it first",
                    Check.REFERENCES,
                )
            elif require_refs:
                c.error(
                    here,
                    f"Model {name!r} not found in namespace {ns!r}; pass the file that "
                    "defines it (or create it)",
                    Check.REFERENCES,
                    MISSING_REFERENCE,
                )
            else:
                c.warn(
                    here,
                    f"Model {name!r} not given, so this step's tensors were not checked "
                    "(pass the file that defines it to check them)",
                    Check.REFERENCES,
                )
            return None
        spec, model_name, model_ref = model.spec, model.metadata.name, f"{ns}/{name}"
    device = s.device or pipe.spec.placement.device
    native = backend is not None and spec.format in backend.formats
    return ResolvedStep(s, model_name, spec, device, native, model_ref)
