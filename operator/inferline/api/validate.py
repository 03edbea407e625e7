"""Semantic validation: what a schema cannot say about a pipeline.

The DAG is acyclic, every tensor is produced exactly once and consumed with the dtype and dims
it was produced with, pipeline outputs are all produced, references resolve (when the objects
they name are given), batch sizes agree, replica bounds hold, GPU requests make sense, and each
step's format is served by the chosen backend natively or through an adapter.

Each problem names the field path and says what is wrong and what would be right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..gpu import mig
from .backend import BUILTIN_BACKENDS, Backend, BackendSpec, ClusterBackend
from .common import Device, TensorSpec, dims_compatible
from .load import Document, Problem
from .model import Accelerator, Model, ModelFormat, ModelSpec
from .pipeline import BackendKind, InferencePipeline, Step

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
    source: Document | None = None

    @property
    def name(self) -> str:
        return self.pipeline.metadata.name


@dataclass
class Catalog:
    """The objects a pipeline may reference, keyed by (namespace, name)."""

    models: dict[tuple[str, str], Document] = field(default_factory=dict)
    backends: dict[tuple[str, str], Document] = field(default_factory=dict)
    cluster_backends: dict[str, BackendSpec] = field(default_factory=dict)

    @classmethod
    def from_documents(
        cls, docs: list[Document], extra_backends: dict[str, BackendSpec] | None = None
    ) -> Catalog:
        cat = cls(cluster_backends={**BUILTIN_BACKENDS, **(extra_backends or {})})
        for d in docs:
            r = d.resource
            ns = r.metadata.namespace or "default"
            if isinstance(r, Model):
                cat.models[(ns, r.metadata.name)] = d
            elif isinstance(r, Backend):
                cat.backends[(ns, r.metadata.name)] = d
            elif isinstance(r, ClusterBackend):
                cat.cluster_backends[r.metadata.name] = r.spec
        return cat


def validate_documents(
    docs: list[Document], extra_backends: dict[str, BackendSpec] | None = None
) -> tuple[list[Problem], list[ResolvedPipeline]]:
    """Check every pipeline among docs against the rest; return problems and resolved pipelines.

    A pipeline is returned resolved only when it has no errors. `extra_backends` adds
    ClusterBackends that are not objects (the local runtime of `inferline serve`).
    """
    problems: list[Problem] = []
    problems += _duplicates(docs)
    catalog = Catalog.from_documents(docs, extra_backends)
    resolved: list[ResolvedPipeline] = []
    for d in docs:
        if isinstance(d.resource, InferencePipeline):
            p_problems, rp = check_pipeline(d, catalog)
            problems += p_problems
            if rp is not None and not any(p.severity == "error" for p in p_problems):
                resolved.append(rp)
    return problems, resolved


def _duplicates(docs: list[Document]) -> list[Problem]:
    seen: dict[tuple[str, str, str], Document] = {}
    out = []
    for d in docs:
        r = d.resource
        key = (r.kind, r.metadata.namespace or "default", r.metadata.name)
        if key in seen:
            out.append(
                Problem(d.where, f"duplicate object; first defined at {seen[key].where}", d.ref)
            )
        else:
            seen[key] = d
    return out


class _Checker:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def error(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.doc.where, message, self.doc.ref, path))

    def warn(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.doc.where, message, self.doc.ref, path, "warning"))


def check_pipeline(
    doc: Document, catalog: Catalog
) -> tuple[list[Problem], ResolvedPipeline | None]:
    pipe = doc.resource
    assert isinstance(pipe, InferencePipeline)
    spec = pipe.spec
    c = _Checker(doc)
    ns = pipe.metadata.namespace or "default"

    backend_name, backend = _resolve_backend(c, pipe, catalog, ns)
    _check_io_names(c, spec.inputs, "spec.inputs")
    _check_io_names(c, spec.outputs, "spec.outputs")
    _check_placement(c, pipe)

    step_names = [s.name for s in spec.steps]
    for i, s in enumerate(spec.steps):
        if step_names.index(s.name) != i:
            c.error(
                f"spec.steps[{i}].name",
                f"duplicate step name {s.name!r}; step names "
                "must be unique (each becomes a Triton model)",
            )
        if s.name == pipe.metadata.name:
            c.error(
                f"spec.steps[{i}].name",
                f"step name {s.name!r} is the pipeline's own name, "
                "which the ensemble model uses; rename the step",
            )

    steps: list[ResolvedStep] = []
    all_resolved = True
    for i, s in enumerate(spec.steps):
        rs = _resolve_step(c, i, s, catalog, ns, pipe, backend)
        if rs is None:
            all_resolved = False
        else:
            steps.append(rs)

    if all_resolved:
        _check_dataflow(c, pipe, steps)
        _check_batching(c, pipe, steps)
    rp = ResolvedPipeline(pipe, backend_name, backend, steps, doc) if backend else None
    return c.problems, (rp if all_resolved else None)


def _resolve_backend(
    c: _Checker, pipe: InferencePipeline, catalog: Catalog, ns: str
) -> tuple[str, BackendSpec]:
    ref = pipe.spec.backend
    if ref.kind is BackendKind.CLUSTER_BACKEND:
        found = catalog.cluster_backends.get(ref.name)
        known = sorted(catalog.cluster_backends)
    else:
        doc = catalog.backends.get((ns, ref.name))
        found = doc.resource.spec if doc and isinstance(doc.resource, Backend) else None
        known = sorted(n for (bns, n) in catalog.backends if bns == ns)
    if found is None:
        c.error(
            "spec.backend.name",
            f"{ref.kind.value} {ref.name!r} not found; known: {', '.join(known) or 'none'}",
        )
        return ref.name, BUILTIN_BACKENDS["triton"]
    return ref.name, found


def _check_io_names(c: _Checker, tensors: list[TensorSpec], path: str) -> None:
    names = [t.name for t in tensors]
    for i, n in enumerate(names):
        if names.index(n) != i:
            c.error(f"{path}[{i}].name", f"duplicate tensor name {n!r}")


def _check_placement(c: _Checker, pipe: InferencePipeline) -> None:
    p = pipe.spec.placement
    gpu = p.gpu
    if gpu is None:
        return
    family = mig.family_for_product(gpu.product) if gpu.product else None
    if gpu.product and family is None and (gpu.mig_profile or gpu.memory):
        c.error(
            "spec.placement.gpu.product",
            f"unknown GPU product {gpu.product!r} for MIG; known families: "
            f"{', '.join(f.name for f in mig.GPU_FAMILIES)}",
        )
    if gpu.mig_profile:
        if family is not None and family.profile(gpu.mig_profile) is None:
            c.error(
                "spec.placement.gpu.migProfile",
                f"{gpu.mig_profile!r} is not a MIG profile of {family.name} ({gpu.product}); "
                f"it offers {', '.join(p.name for p in family.profiles)}",
            )
        elif family is None and not mig.families_with_profile(gpu.mig_profile):
            c.error(
                "spec.placement.gpu.migProfile",
                f"{gpu.mig_profile!r} is not a known MIG profile; known profiles: "
                f"{', '.join(mig.known_profile_names())}",
            )
    if gpu.memory:
        need = _gib(gpu.memory)
        families = [family] if family else list(mig.GPU_FAMILIES)
        if not any(mig.smallest_profile_for_memory(f, need) for f in families if f):
            c.error("spec.placement.gpu.memory", f"no known MIG profile has {gpu.memory} of memory")
    if p.device is Device.CPU and all(s.device in (None, Device.CPU) for s in pipe.spec.steps):
        c.warn("spec.placement.gpu", "ignored: every step runs on CPU")


def _gib(q: str) -> float:
    m = re.match(r"^([0-9.]+)(Gi?)$", q)
    assert m
    value = float(m.group(1))
    # Profiles are named in GB as NVIDIA rounds them; 1Gi = 1.074 GB.
    return value * 1.073741824 if m.group(2) == "Gi" else value


def _resolve_step(
    c: _Checker,
    i: int,
    s: Step,
    catalog: Catalog,
    ns: str,
    pipe: InferencePipeline,
    backend: BackendSpec,
) -> ResolvedStep | None:
    path = f"spec.steps[{i}]"
    if s.model is not None:
        spec, model_name = s.model, s.name
    else:
        assert s.model_ref is not None
        mdoc = catalog.models.get((ns, s.model_ref.name))
        if mdoc is None:
            c.warn(
                f"{path}.modelRef.name",
                f"Model {s.model_ref.name!r} not given, so this step's tensors were not checked "
                f"(pass the file that defines it to check them)",
            )
            return None
        assert isinstance(mdoc.resource, Model)
        spec, model_name = mdoc.resource.spec, mdoc.resource.metadata.name

    device = s.device or pipe.spec.placement.device
    if device not in backend.devices:
        c.error(
            f"{path}.device" if s.device else "spec.placement.device",
            f"backend {pipe.spec.backend.name!r} runs on "
            f"{', '.join(d.value for d in backend.devices)} only, not {device.value}",
        )
    fmt_path = f"{path}.model" if s.model else f"{path}.modelRef"
    if spec.format is ModelFormat.TENSORRT and device is Device.CPU:
        c.error(fmt_path, "a TensorRT engine runs on GPU only; set device: GPU for this step")
    opt = spec.optimization
    if opt is not None:
        if opt.accelerator is Accelerator.TENSORRT and (
            spec.format is not ModelFormat.ONNX or device is not Device.GPU
        ):
            c.error(
                f"{fmt_path}.optimization.accelerator" if s.model else fmt_path,
                "the tensorrt execution accelerator applies to onnx models on GPU only",
            )
        if opt.accelerator is Accelerator.OPENVINO and (
            spec.format is not ModelFormat.ONNX or device is not Device.CPU
        ):
            c.error(
                f"{fmt_path}.optimization.accelerator" if s.model else fmt_path,
                "the openvino execution accelerator applies to onnx models on CPU only",
            )
        if opt.cuda_graphs and spec.format is not ModelFormat.TENSORRT:
            c.error(
                f"{fmt_path}.optimization.cudaGraphs" if s.model else fmt_path,
                "Triton supports CUDA graphs for tensorrt models only",
            )
        if opt.inference_mode is not None and spec.format is not ModelFormat.PYTORCH:
            c.error(
                f"{fmt_path}.optimization.inferenceMode" if s.model else fmt_path,
                "inferenceMode applies to pytorch models only",
            )
    native = spec.format in backend.formats
    if not native and spec.format not in ADAPTER_LIBRARIES:
        adaptable = ", ".join(f.value for f in ADAPTER_LIBRARIES)
        c.error(
            f"{path}.model.format" if s.model else f"{path}.modelRef",
            f"format {spec.format.value!r} is not served by backend {pipe.spec.backend.name!r} "
            f"(it serves {', '.join(f.value for f in backend.formats)}) and has no adapter "
            f"(adapters exist for {adaptable}); choose a backend that serves it, e.g. triton",
        )
    return ResolvedStep(s, model_name, spec, device, native)


def _check_dataflow(c: _Checker, pipe: InferencePipeline, steps: list[ResolvedStep]) -> None:
    spec = pipe.spec
    producers: dict[str, tuple[str, TensorSpec]] = {}  # pipeline tensor -> (who, spec)
    for j, t in enumerate(spec.inputs):
        producers[t.name] = (f"spec.inputs[{j}]", t)

    for i, rs in enumerate(steps):
        path = f"spec.steps[{i}]"
        outs = {t.name: t for t in rs.spec.outputs}
        for model_out, tensor in rs.step.output_map.items():
            if model_out not in outs:
                c.error(
                    f"{path}.outputMap.{model_out}",
                    f"model {rs.model_name!r} has no output {model_out!r}; its outputs are "
                    f"{', '.join(outs)}",
                )
                continue
            if tensor in producers:
                c.error(
                    f"{path}.outputMap.{model_out}",
                    f"tensor {tensor!r} is already produced by {producers[tensor][0]}; every "
                    f"tensor must be produced exactly once — give this output another name",
                )
                continue
            producers[tensor] = (f"{path} ({rs.step.name})", outs[model_out])

    consumers: dict[str, list[int]] = {}
    for i, rs in enumerate(steps):
        path = f"spec.steps[{i}]"
        ins = {t.name: t for t in rs.spec.inputs}
        for model_in, tensor in rs.step.input_map.items():
            here = f"{path}.inputMap.{model_in}"
            if model_in not in ins:
                c.error(
                    here,
                    f"model {rs.model_name!r} has no input {model_in!r}; its inputs "
                    f"are {', '.join(ins)}",
                )
                continue
            consumers.setdefault(tensor, []).append(i)
            if tensor not in producers:
                c.error(
                    here,
                    f"tensor {tensor!r} is not produced by any step or pipeline input; "
                    f"available: {', '.join(sorted(producers)) or 'none'}",
                )
                continue
            _check_match(c, here, tensor, producers[tensor][1], ins[model_in])
        missing = [
            t.name for t in rs.spec.inputs if t.name not in rs.step.input_map and not t.optional
        ]
        if missing:
            c.error(
                f"{path}.inputMap",
                f"model inputs {missing} of {rs.model_name!r} are not "
                f"mapped; map each to a pipeline tensor",
            )

    for j, t in enumerate(spec.outputs):
        here = f"spec.outputs[{j}]"
        if t.name not in producers or producers[t.name][0].startswith("spec.inputs"):
            c.error(
                here,
                f"pipeline output {t.name!r} is not produced by any step; step outputs: "
                f"{', '.join(sorted(k for k, v in producers.items() if 'steps' in v[0]))}",
            )
        else:
            _check_match(c, here, t.name, producers[t.name][1], t)

    for j, t in enumerate(spec.outputs):
        if t.name in consumers:
            c.warn(
                f"spec.outputs[{j}]",
                f"pipeline output {t.name!r} is also read by step(s) "
                f"{sorted(steps[i].step.name for i in consumers[t.name])}; Triton 2.51 then "
                "fails requests that ask for only some outputs — request all of them",
            )

    for j, t in enumerate(spec.inputs):
        if t.name not in consumers:
            c.warn(f"spec.inputs[{j}]", f"pipeline input {t.name!r} is not read by any step")

    _check_acyclic(c, steps, producers)


def _check_match(
    c: _Checker, path: str, tensor: str, produced: TensorSpec, consumed: TensorSpec
) -> None:
    if produced.dtype is not consumed.dtype:
        c.error(
            path,
            f"dtype mismatch on tensor {tensor!r}: produced as "
            f"{produced.dtype.value}, consumed as {consumed.dtype.value}",
        )
    elif not dims_compatible(produced.dims, consumed.dims):
        c.error(
            path,
            f"dims mismatch on tensor {tensor!r}: produced as {produced.dims}, "
            f"consumed as {consumed.dims} (same rank needed; -1 matches any size)",
        )


def _check_acyclic(
    c: _Checker, steps: list[ResolvedStep], producers: dict[str, tuple[str, TensorSpec]]
) -> None:
    producer_step: dict[str, int] = {}
    for i, rs in enumerate(steps):
        for tensor in rs.step.output_map.values():
            producer_step.setdefault(tensor, i)
    deps = {
        i: {producer_step[t] for t in rs.step.input_map.values() if t in producer_step}
        for i, rs in enumerate(steps)
    }
    state: dict[int, int] = {}  # 1 = on the stack, 2 = done

    def visit(i: int, stack: list[int]) -> list[int] | None:
        state[i] = 1
        for d in sorted(deps[i]):
            if state.get(d) == 1:
                return [*stack[stack.index(d) :], i, d] if d in stack else [i, d]
            if d not in state:
                cycle = visit(d, [*stack, i])
                if cycle:
                    return cycle
        state[i] = 2
        return None

    for i in range(len(steps)):
        if i not in state:
            cycle = visit(i, [])
            if cycle:
                names = " -> ".join(steps[k].step.name for k in cycle)
                c.error(
                    "spec.steps",
                    f"the steps form a cycle ({names}); a pipeline must be a "
                    "DAG — break the cycle by renaming one of the tensors",
                )
                return


def _check_batching(c: _Checker, pipe: InferencePipeline, steps: list[ResolvedStep]) -> None:
    mbs = pipe.spec.max_batch_size
    if mbs == 0:
        batching = [rs.step.name for rs in steps if rs.spec.max_batch_size > 0]
        if batching:
            c.error(
                "spec.maxBatchSize",
                f"the pipeline does not batch (maxBatchSize 0) but steps "
                f"{batching} do; Triton requires an ensemble's batching to match its steps — "
                "set spec.maxBatchSize",
            )
        return
    for i, rs in enumerate(steps):
        if rs.spec.max_batch_size == 0:
            c.error(
                f"spec.steps[{i}]",
                f"model {rs.model_name!r} does not batch (maxBatchSize "
                f"0) but the pipeline does (maxBatchSize {mbs}); set the model's maxBatchSize",
            )
        elif rs.spec.max_batch_size < mbs:
            c.error(
                "spec.maxBatchSize",
                f"{mbs} exceeds the maxBatchSize "
                f"{rs.spec.max_batch_size} of step {rs.step.name!r}; the ensemble's "
                f"maxBatchSize must be at most every step's (at most "
                f"{min(r.spec.max_batch_size for r in steps)})",
            )
