"""The one path from manifests to a render manifest: load -> resolve -> validate -> render.

The CLI (`validate`, `render`, `serve`), the tests, the benchmarks and the operator all come
through here. Loading takes files (the CLI) or plain objects (what the operator reads from the
apiserver); everything after loading is pure.

`validate` must start fast and never needs the Triton protobufs, so the renderer is imported
only when something is rendered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .api.backend import BackendSpec
from .api.common import Device
from .api.load import Document, LoadResult, load_object, load_paths
from .api.overrides import override_backend, override_device
from .api.problems import Problem
from .api.resolve import Catalog, ResolvedPipeline
from .api.validate import check_pipeline, validate_documents
from .errors import UserError

if TYPE_CHECKING:
    from .render.manifest import RenderManifest
    from .render.triton import RenderedRepository


@dataclass(frozen=True)
class Overrides:
    """What the command line can change before validation."""

    device: Device | None = None  # every step of every pipeline on this device
    backend: str | None = None  # serve with this ClusterBackend
    extra_backends: dict[str, BackendSpec] = field(default_factory=dict)  # not objects


@dataclass
class Checked:
    """The outcome of load -> resolve -> validate."""

    problems: list[Problem]
    pipelines: list[ResolvedPipeline]  # those without errors
    objects: int  # how many Inferline objects were read
    others: int = 0  # objects of other APIs beside them (not checked)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors


def check_loaded(
    loaded: LoadResult, overrides: Overrides | None = None, *, require_refs: bool = False
) -> Checked:
    """Resolve and validate what was loaded.

    `require_refs`: a Model a pipeline names must be among the objects (render, serve and the
    operator need it); `validate` only warns, so a pipeline file can be checked on its own.
    """
    o = overrides or Overrides()
    docs: list[Document] = loaded.documents
    if o.device is not None:
        docs = override_device(docs, o.device)
    if o.backend is not None:
        docs = override_backend(docs, o.backend)
    problems, resolved = validate_documents(
        docs, o.extra_backends, invalid=loaded.invalid, require_refs=require_refs
    )
    return Checked(loaded.problems + problems, resolved, len(loaded.documents), loaded.others)


def check_paths(
    paths: Iterable[Path], overrides: Overrides | None = None, *, require_refs: bool = False
) -> Checked:
    """Load YAML files or directories and check them."""
    return check_loaded(load_paths(paths), overrides, require_refs=require_refs)


def check_objects(
    objects: Iterable[tuple[Any, str]], overrides: Overrides | None = None
) -> Checked:
    """Check plain objects (as read from an apiserver), each with where it came from."""
    loaded = LoadResult()
    for data, where in objects:
        loaded.extend(load_object(data, where))
    return check_loaded(loaded, overrides, require_refs=True)


def check_cluster_object(
    body: Any, catalog: Catalog
) -> tuple[list[Problem], ResolvedPipeline | None]:
    """Check one InferencePipeline as read from the apiserver against what the cluster has."""
    meta = body.get("metadata") or {} if isinstance(body, dict) else {}
    where = f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"
    loaded = load_object(body, where)
    if loaded.problems:
        return loaded.problems, None
    return check_pipeline(loaded.documents[0], catalog, require_refs=True)


def render_repositories(pipelines: list[ResolvedPipeline]) -> list[RenderedRepository]:
    """Each pipeline as Triton models (protobuf configs and the files they need)."""
    from .render.triton import render_repository

    repos = [render_repository(rp) for rp in pipelines]
    _check_unique_model_names(repos)
    return repos


def render_manifest(pipelines: list[ResolvedPipeline]) -> RenderManifest:
    """The render manifest of pipelines that one server serves together."""
    from .render.manifest import PipelineEntry, RenderManifest, StepEntry

    if not pipelines:
        raise UserError("no InferencePipeline to render (pass the files that define them)")
    entries = []
    files = []
    for rp, repo in zip(pipelines, render_repositories(pipelines), strict=True):
        spec = rp.pipeline.spec
        by_step = {rs.step.name: rs for rs in rp.steps}
        steps = [
            StepEntry(
                step=m.step,
                model=m.name,
                format=by_step[m.step].spec.format.value,
                served_as=m.served_as,
                device=m.device,
                model_ref=by_step[m.step].model_ref,
            )
            for m in repo.models
            if m.step is not None
        ]
        entries.append(
            PipelineEntry(
                name=rp.name,
                namespace=rp.pipeline.metadata.namespace,
                served_name=repo.ensemble.name,
                backend=rp.backend_name,
                max_batch_size=spec.max_batch_size,
                inputs=spec.inputs,
                outputs=spec.outputs,
                steps=steps,
            )
        )
        for m in repo.models:
            files += m.repository_files()
    return RenderManifest(pipelines=entries, files=files)


def _check_unique_model_names(repos: list[RenderedRepository]) -> None:
    """Pipelines served by one server must not render two models of the same name."""
    seen: dict[str, str] = {}
    for repo in repos:
        for m in repo.models:
            if m.name in seen:
                raise UserError(
                    f"pipelines {seen[m.name]!r} and {repo.pipeline!r} both render a "
                    f"Triton model named {m.name!r}; rename a pipeline or step"
                )
            seen[m.name] = repo.pipeline
