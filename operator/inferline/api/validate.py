"""Semantic validation: what a schema cannot say about a pipeline.

The DAG is acyclic, every tensor is produced exactly once and consumed with the dtype and dims
it was produced with, pipeline outputs are all produced, references resolve (when the objects
they name are given), batch sizes agree, replica bounds hold, GPU requests make sense, and each
step's format is served by the chosen backend natively or through an adapter.

Each problem names the field path and says what is wrong and what would be right.
"""

from __future__ import annotations

import re

from ..gpu import mig
from . import names
from .backend import BackendSpec
from .common import Device, TensorSpec, dims_compatible
from .load import Document, ObjectKey
from .model import Accelerator, ModelFormat
from .pipeline import InferencePipeline
from .problems import Check, Checker, Problem
from .resolve import (
    ADAPTER_LIBRARIES,
    Catalog,
    ResolvedPipeline,
    ResolvedStep,
    resolve_pipeline,
)


def validate_documents(
    docs: list[Document],
    extra_backends: dict[str, BackendSpec] | None = None,
    *,
    invalid: set[ObjectKey] | None = None,
    require_refs: bool = False,
) -> tuple[list[Problem], list[ResolvedPipeline]]:
    """Check every pipeline among docs against the rest; return problems and resolved pipelines.

    A pipeline is returned resolved only when it has no errors. `extra_backends` adds
    ClusterBackends that are not objects (the local runtime of `inferline serve`); `invalid`
    names objects that were given but failed to parse, so references to them say so.
    """
    problems: list[Problem] = []
    problems += _duplicates(docs)
    catalog = Catalog.from_documents(docs, extra_backends, invalid)
    resolved: list[ResolvedPipeline] = []
    for d in docs:
        if isinstance(d.resource, InferencePipeline):
            p_problems, rp = check_pipeline(d, catalog, require_refs=require_refs)
            problems += p_problems
            if rp is not None:
                resolved.append(rp)
    problems += _model_name_clashes(docs, served_together=require_refs)
    return problems, resolved


def _model_name_clashes(docs: list[Document], *, served_together: bool) -> list[Problem]:
    """Pipelines rendered or served together must not name two Triton models alike.

    In a cluster each pipeline has its own server, so `validate` only warns; `render` and
    `serve` put them in one repository, where it is an error.
    """
    seen: dict[str, str] = {}
    out = []
    for d in docs:
        pipe = d.resource
        if not isinstance(pipe, InferencePipeline):
            continue
        name = pipe.metadata.name
        models = [names.ensemble_model(name, pipe.spec.served_name)]
        models += [names.step_model(name, s.name) for s in pipe.spec.steps]
        for m in models:
            if m in seen and seen[m] != d.ref:
                out.append(
                    Problem(
                        d.where,
                        f"renders a Triton model named {m!r}, as {seen[m]} does; one server "
                        "cannot serve both: rename a pipeline or step (or set servedName)",
                        d.ref,
                        severity="error" if served_together else "warning",
                        check=Check.MODEL_NAMES,
                    )
                )
            seen.setdefault(m, d.ref)
    return out


def _duplicates(docs: list[Document]) -> list[Problem]:
    seen: dict[tuple[str, str, str], Document] = {}
    out = []
    for d in docs:
        r = d.resource
        key = (r.kind, r.metadata.namespace or "default", r.metadata.name)
        if key in seen:
            out.append(
                Problem(
                    d.where,
                    f"duplicate object; first defined at {seen[key].where}",
                    d.ref,
                    check=Check.DUPLICATE_OBJECT,
                )
            )
        else:
            seen[key] = d
    return out


def check_pipeline(
    doc: Document, catalog: Catalog, *, require_refs: bool = False
) -> tuple[list[Problem], ResolvedPipeline | None]:
    """Resolve and check one pipeline: its problems, and the pipeline when it has no errors."""
    res = resolve_pipeline(doc, catalog, require_refs=require_refs)
    pipe = doc.resource
    assert isinstance(pipe, InferencePipeline)
    c = res.checker

    _check_placement(c, pipe)
    if res.backend is not None:
        for i, rs in res.steps.items():
            _check_step(c, i, rs, pipe, res.backend)
    if not res.complete:
        return c.problems, None
    rp = res.pipeline()
    _check_dataflow(c, pipe, rp.steps)
    _check_batching(c, pipe, rp.steps)
    return c.problems, (None if c.failed else rp)


def _check_placement(c: Checker, pipe: InferencePipeline) -> None:
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
            Check.PLACEMENT,
        )
    if gpu.mig_profile:
        if family is not None and family.profile(gpu.mig_profile) is None:
            c.error(
                "spec.placement.gpu.migProfile",
                f"{gpu.mig_profile!r} is not a MIG profile of {family.name} ({gpu.product}); "
                f"it offers {', '.join(p.name for p in family.profiles)}",
                Check.PLACEMENT,
            )
        elif family is None and not mig.families_with_profile(gpu.mig_profile):
            c.error(
                "spec.placement.gpu.migProfile",
                f"{gpu.mig_profile!r} is not a known MIG profile; known profiles: "
                f"{', '.join(mig.known_profile_names())}",
                Check.PLACEMENT,
            )
    if gpu.memory:
        need = _gib(gpu.memory)
        families = [family] if family else list(mig.GPU_FAMILIES)
        if not any(mig.smallest_profile_for_memory(f, need) for f in families if f):
            c.error(
                "spec.placement.gpu.memory",
                f"no known MIG profile has {gpu.memory} of memory",
                Check.PLACEMENT,
            )
    if p.device is Device.CPU and all(s.device in (None, Device.CPU) for s in pipe.spec.steps):
        c.warn("spec.placement.gpu", "ignored: every step runs on CPU", Check.PLACEMENT)


def _gib(q: str) -> float:
    m = re.match(r"^([0-9.]+)(Gi?)$", q)
    assert m
    value = float(m.group(1))
    # Profiles are named in GB as NVIDIA rounds them; 1Gi = 1.074 GB.
    return value * 1.073741824 if m.group(2) == "Gi" else value


def _check_step(
    c: Checker, i: int, rs: ResolvedStep, pipe: InferencePipeline, backend: BackendSpec
) -> None:
    """What one step asks of its device and backend."""
    path = f"spec.steps[{i}]"
    s, spec, device = rs.step, rs.spec, rs.device
    if device not in backend.devices:
        c.error(
            f"{path}.device" if s.device else "spec.placement.device",
            f"backend {pipe.spec.backend.name!r} runs on "
            f"{', '.join(d.value for d in backend.devices)} only, not {device.value}",
            Check.BACKEND,
        )
    fmt_path = f"{path}.model" if s.model else f"{path}.modelRef"
    if spec.format is ModelFormat.TENSORRT and device is Device.CPU:
        c.error(
            fmt_path,
            "a TensorRT engine runs on GPU only; set device: GPU for this step",
            Check.BACKEND,
        )
    opt = spec.optimization
    if opt is not None:
        if opt.accelerator is Accelerator.TENSORRT and (
            spec.format is not ModelFormat.ONNX or device is not Device.GPU
        ):
            c.error(
                f"{fmt_path}.optimization.accelerator" if s.model else fmt_path,
                "the tensorrt execution accelerator applies to onnx models on GPU only",
                Check.BACKEND,
            )
        if opt.accelerator is Accelerator.OPENVINO and (
            spec.format is not ModelFormat.ONNX or device is not Device.CPU
        ):
            c.error(
                f"{fmt_path}.optimization.accelerator" if s.model else fmt_path,
                "the openvino execution accelerator applies to onnx models on CPU only",
                Check.BACKEND,
            )
        if opt.cuda_graphs and spec.format is not ModelFormat.TENSORRT:
            c.error(
                f"{fmt_path}.optimization.cudaGraphs" if s.model else fmt_path,
                "Triton supports CUDA graphs for tensorrt models only",
                Check.BACKEND,
            )
        if opt.inference_mode is not None and spec.format is not ModelFormat.PYTORCH:
            c.error(
                f"{fmt_path}.optimization.inferenceMode" if s.model else fmt_path,
                "inferenceMode applies to pytorch models only",
                Check.BACKEND,
            )
    if not rs.native and spec.format not in ADAPTER_LIBRARIES:
        adaptable = ", ".join(f.value for f in ADAPTER_LIBRARIES)
        c.error(
            f"{path}.model.format" if s.model else f"{path}.modelRef",
            f"format {spec.format.value!r} is not served by backend {pipe.spec.backend.name!r} "
            f"(it serves {', '.join(f.value for f in backend.formats)}) and has no adapter "
            f"(adapters exist for {adaptable}); choose a backend that serves it, e.g. triton",
            Check.BACKEND,
        )


def _check_dataflow(c: Checker, pipe: InferencePipeline, steps: list[ResolvedStep]) -> None:
    spec = pipe.spec
    producers: dict[str, tuple[str, TensorSpec]] = {}  # pipeline tensor -> (who, spec)
    t: TensorSpec
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
                    Check.DATAFLOW,
                )
                continue
            if tensor in producers:
                c.error(
                    f"{path}.outputMap.{model_out}",
                    f"tensor {tensor!r} is already produced by {producers[tensor][0]}; every "
                    f"tensor must be produced exactly once — give this output another name",
                    Check.DATAFLOW,
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
                    Check.DATAFLOW,
                )
                continue
            consumers.setdefault(tensor, []).append(i)
            if tensor not in producers:
                c.error(
                    here,
                    f"tensor {tensor!r} is not produced by any step or pipeline input; "
                    f"available: {', '.join(sorted(producers)) or 'none'}",
                    Check.DATAFLOW,
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
                Check.DATAFLOW,
            )

    for j, t in enumerate(spec.outputs):
        here = f"spec.outputs[{j}]"
        if t.name not in producers or producers[t.name][0].startswith("spec.inputs"):
            c.error(
                here,
                f"pipeline output {t.name!r} is not produced by any step; step outputs: "
                f"{', '.join(sorted(k for k, v in producers.items() if 'steps' in v[0]))}",
                Check.DATAFLOW,
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
                Check.DATAFLOW,
            )

    for j, t in enumerate(spec.inputs):
        if t.name not in consumers:
            c.warn(
                f"spec.inputs[{j}]",
                f"pipeline input {t.name!r} is not read by any step",
                Check.DATAFLOW,
            )

    _check_acyclic(c, steps, producers)


def _check_match(
    c: Checker, path: str, tensor: str, produced: TensorSpec, consumed: TensorSpec
) -> None:
    if produced.dtype is not consumed.dtype:
        c.error(
            path,
            f"dtype mismatch on tensor {tensor!r}: produced as "
            f"{produced.dtype.value}, consumed as {consumed.dtype.value}",
            Check.DATAFLOW,
        )
    elif not dims_compatible(produced.dims, consumed.dims):
        c.error(
            path,
            f"dims mismatch on tensor {tensor!r}: produced as {produced.dims}, "
            f"consumed as {consumed.dims} (same rank needed; -1 matches any size)",
            Check.DATAFLOW,
        )


def _check_acyclic(
    c: Checker, steps: list[ResolvedStep], producers: dict[str, tuple[str, TensorSpec]]
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
                    Check.DAG,
                )
                return


def _check_batching(c: Checker, pipe: InferencePipeline, steps: list[ResolvedStep]) -> None:
    mbs = pipe.spec.max_batch_size
    if mbs == 0:
        batching = [rs.step.name for rs in steps if rs.spec.max_batch_size > 0]
        if batching:
            c.error(
                "spec.maxBatchSize",
                f"the pipeline does not batch (maxBatchSize 0) but steps "
                f"{batching} do; Triton requires an ensemble's batching to match its steps — "
                "set spec.maxBatchSize",
                Check.BATCHING,
            )
        return
    for i, rs in enumerate(steps):
        if rs.spec.max_batch_size == 0:
            c.error(
                f"spec.steps[{i}]",
                f"model {rs.model_name!r} does not batch (maxBatchSize "
                f"0) but the pipeline does (maxBatchSize {mbs}); set the model's maxBatchSize",
                Check.BATCHING,
            )
        elif rs.spec.max_batch_size < mbs:
            c.error(
                "spec.maxBatchSize",
                f"{mbs} exceeds the maxBatchSize "
                f"{rs.spec.max_batch_size} of step {rs.step.name!r}; the ensemble's "
                f"maxBatchSize must be at most every step's (at most "
                f"{min(r.spec.max_batch_size for r in steps)})",
                Check.BATCHING,
            )
