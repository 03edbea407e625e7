"""What a render produced, for people (a table) and tools (render.json)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..api.common import TensorSpec
from ..api.validate import ResolvedPipeline
from ..errors import UserError
from .triton import RenderedRepository, RepoFile


@dataclass
class StepSummary:
    step: str
    model: str
    format: str
    served_as: str
    device: str


@dataclass
class PipelineSummary:
    name: str
    backend: str
    ensemble: str
    inputs: list[str]
    outputs: list[str]
    steps: list[StepSummary] = field(default_factory=list)


@dataclass
class RenderSummary:
    pipelines: list[PipelineSummary]
    # Not fetched: path in the repository, source, sha256, credentials_secret, storage.
    artifacts: list[dict[str, Any]]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    def table(self) -> str:
        rows = [("pipeline", "step", "triton model", "format", "served as", "device")]
        for p in self.pipelines:
            for s in p.steps:
                rows.append((p.name, s.step, s.model, s.format, s.served_as, s.device))
            rows.append((p.name, "(ensemble)", p.ensemble, "ensemble", "native:ensemble", ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        )


def signature(tensors: list[TensorSpec], batching: bool) -> list[str]:
    """`NAME DTYPE [dims]`, with the batch dimension shown as -1 when the pipeline batches."""
    return [f"{t.name} {t.dtype.value} {[-1, *t.dims] if batching else t.dims}" for t in tensors]


def render_summary(
    resolved: list[ResolvedPipeline], repos: list[RenderedRepository], unfetched: list[RepoFile]
) -> RenderSummary:
    pipelines = []
    for rp, repo in zip(resolved, repos, strict=True):
        spec = rp.pipeline.spec
        ps = PipelineSummary(
            rp.name,
            rp.backend_name,
            repo.ensemble.name,
            signature(spec.inputs, spec.max_batch_size > 0),
            signature(spec.outputs, spec.max_batch_size > 0),
        )
        for m in repo.models:
            if m.step is not None:
                rs = next(s for s in rp.steps if s.step.name == m.step)
                ps.steps.append(
                    StepSummary(m.step, m.name, rs.spec.format.value, m.served_as, m.device)
                )
        pipelines.append(ps)
    artifacts = [
        {
            "path": f.path,
            "source": f.source,
            "sha256": f.sha256,
            "credentials_secret": f.credentials_secret,
            "storage": f.storage.model_dump(mode="json", exclude_none=True) if f.storage else None,
        }
        for f in unfetched
    ]
    return RenderSummary(pipelines, artifacts)


def check_unique_model_names(repos: list[RenderedRepository]) -> None:
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
