"""Semantic validation and the MIG table, on in-memory manifests."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferline.api.common import dims_compatible
from inferline.api.load import load_paths, load_text
from inferline.api.problems import Problem
from inferline.api.validate import validate_documents
from inferline.gpu import mig

from .conftest import EXAMPLES

PIPE = """
apiVersion: inferline.dev/v1alpha1
kind: InferencePipeline
metadata: {name: p}
spec:
  backend: {name: inferline-cpu}
  placement: {device: CPU}
  maxBatchSize: %(mbs)d
  inputs: [{name: X, dtype: FP32, dims: [4]}]
  outputs: [{name: "Y", dtype: FP32, dims: [4]}]
  steps:
%(steps)s
"""


def _tensors(names: dict[str, str], dtype: str) -> str:
    return ", ".join(f'{{name: "{k}", dtype: {dtype}, dims: [4]}}' for k in names)


def _map(pairs: dict[str, str]) -> str:
    """A flow mapping with quoted values (a bare Y would be a boolean to kubectl)."""
    return "{" + ", ".join(f'{k}: "{v}"' for k, v in pairs.items()) + "}"


def step(
    name: str,
    ins: dict[str, str],
    outs: dict[str, str],
    mbs: int = 0,
    dtype: str = "FP32",
    ref: str | None = None,
) -> str:
    model = (
        f"      modelRef: {{name: {ref}}}\n"
        if ref
        else "      model:\n"
        "        format: python\n"
        "        python: {file: m.py}\n"
        f"        maxBatchSize: {mbs}\n"
        f"        inputs: [{_tensors(ins, dtype)}]\n"
        f"        outputs: [{_tensors(outs, dtype)}]\n"
    )
    return (
        f"    - name: {name}\n{model}      inputMap: {_map(ins)}\n      outputMap: {_map(outs)}\n"
    )


def check(text: str) -> tuple[list[Problem], int]:
    loaded = load_text(text, Path("t.yaml"))
    problems, resolved = validate_documents(loaded.documents)
    return loaded.problems + problems, len(resolved)


def errors(problems: list[Problem]) -> list[str]:
    return [f"{p.path}: {p.message}" for p in problems if p.severity == "error"]


def test_diamond_dag_is_valid() -> None:
    steps = (
        step("pre", {"A": "X"}, {"B": "left", "C": "right"})
        + step("l", {"A": "left"}, {"B": "l_out"})
        + step("r", {"A": "right"}, {"B": "r_out"})
        + step("post", {"L": "l_out", "R": "r_out"}, {"B": "Y"})
    )
    problems, n = check(PIPE % {"mbs": 0, "steps": steps})
    assert errors(problems) == [] and n == 1


def test_tensor_produced_twice() -> None:
    steps = step("a", {"A": "X"}, {"B": "Y"}) + step("b", {"A": "X"}, {"B": "Y"})
    errs = errors(check(PIPE % {"mbs": 0, "steps": steps})[0])
    assert any("tensor 'Y' is already produced by spec.steps[0] (a)" in e for e in errs)


def test_unmapped_model_input() -> None:
    steps = step("a", {"A": "X"}, {"B": "Y"}).replace(
        'inputs: [{name: "A"', 'inputs: [{name: EXTRA, dtype: FP32, dims: [4]}, {name: "A"'
    )
    errs = errors(check(PIPE % {"mbs": 0, "steps": steps})[0])
    assert errs == [
        "spec.steps[0].inputMap: model inputs ['EXTRA'] of 'a' are not mapped; "
        "map each to a pipeline tensor"
    ]


def test_batching_must_agree() -> None:
    errs = errors(check(PIPE % {"mbs": 0, "steps": step("a", {"A": "X"}, {"B": "Y"}, mbs=8)})[0])
    assert any("the pipeline does not batch" in e for e in errs)
    errs = errors(check(PIPE % {"mbs": 8, "steps": step("a", {"A": "X"}, {"B": "Y"})})[0])
    assert any("does not batch (maxBatchSize 0) but the pipeline does" in e for e in errs)
    assert (
        errors(check(PIPE % {"mbs": 8, "steps": step("a", {"A": "X"}, {"B": "Y"}, mbs=8)})[0]) == []
    )


def test_model_refs_resolve_across_files_and_warn_when_absent() -> None:
    text = PIPE % {"mbs": 0, "steps": step("a", {"A": "X"}, {"B": "Y"}, ref="shared")}
    problems, n = check(text)
    assert errors(problems) == [] and n == 0
    assert any(
        p.severity == "warning" and "Model 'shared' not given" in p.message for p in problems
    )
    model = """
apiVersion: inferline.dev/v1alpha1
kind: Model
metadata: {name: shared}
spec:
  format: python
  python: {file: m.py}
  inputs: [{name: A, dtype: INT32, dims: [4]}]
  outputs: [{name: B, dtype: FP32, dims: [4]}]
"""
    problems, n = check(text + "---" + model)
    assert errors(problems) == [
        "spec.steps[0].inputMap.A: dtype mismatch on tensor 'X': produced as FP32, consumed as "
        "INT32"
    ]


def test_unknown_backend_is_reported() -> None:
    text = (PIPE % {"mbs": 0, "steps": step("a", {"A": "X"}, {"B": "Y"})}).replace(
        "inferline-cpu", "nope"
    )
    errs = errors(check(text)[0])
    assert errs == [
        "spec.backend.name: ClusterBackend 'nope' not found; known: inferline-cpu, triton"
    ]


def test_gpu_on_a_cpu_only_backend() -> None:
    text = (PIPE % {"mbs": 0, "steps": step("a", {"A": "X"}, {"B": "Y"})}).replace(
        "device: CPU", "device: GPU"
    )
    errs = errors(check(text)[0])
    assert errs == ["spec.placement.device: backend 'inferline-cpu' runs on CPU only, not GPU"]


def test_duplicate_objects_across_files() -> None:
    text = PIPE % {"mbs": 0, "steps": step("a", {"A": "X"}, {"B": "Y"})}
    problems, _ = check(text + "---" + text)
    assert any("duplicate object; first defined at t.yaml:2" in p.message for p in problems)


def test_examples_load_with_line_numbers() -> None:
    loaded = load_paths([EXAMPLES / "readability"])
    assert [d.ref for d in loaded.documents][-1] == "InferencePipeline/readability"
    lines = [int(d.where.rsplit(":", 1)[1]) for d in loaded.documents]
    assert lines[0] > 1 and lines[1] > lines[0]


@given(st.lists(st.integers(-1, 8).filter(bool), min_size=1, max_size=4))
def test_dims_compatible_is_reflexive_and_wildcards_match(dims: list[int]) -> None:
    assert dims_compatible(dims, dims)
    assert dims_compatible(dims, [-1] * len(dims))
    assert not dims_compatible(dims, [*dims, 1])


@pytest.mark.parametrize(
    "label,family",
    [
        ("NVIDIA-A100-SXM4-40GB", "A100-40GB"),
        ("NVIDIA-A100-SXM4-80GB", "A100-80GB"),
        ("NVIDIA-A100-80GB-PCIe", "A100-80GB"),
        ("NVIDIA-H100-80GB-HBM3", "H100-80GB"),
        ("NVIDIA-H100-NVL", "H100-94GB"),
        ("NVIDIA-H200", "H200-141GB"),
        ("NVIDIA-H200-NVL", "H200-141GB"),
        ("NVIDIA-H100-PCIe", "H100-80GB"),
        ("nvidia-h100-80gb-hbm3", "H100-80GB"),
        ("NVIDIA-A30", "A30"),
        ("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "A100-40GB"),
        ("A100-80GB", "A100-80GB"),
    ],
)
def test_gpu_product_labels_map_to_families(label: str, family: str) -> None:
    f = mig.family_for_product(label)
    assert f is not None and f.name == family


@pytest.mark.parametrize(
    "label",
    [
        "NVIDIA-GeForce-RTX-4090",
        "NVIDIA-GH200-480GB",  # Grace Hopper: not an H200 (regression: matching was unanchored)
        "NVIDIA-A100X",
        "NVIDIA-A300",
        "NVIDIA-A100",  # which A100? its memory decides the MIG profiles
    ],
)
def test_unknown_product(label: str) -> None:
    assert mig.family_for_product(label) is None


def test_smallest_profile_for_memory() -> None:
    a100 = mig.family_for_product("A100-80GB")
    assert a100 is not None
    assert mig.smallest_profile_for_memory(a100, 9).name == "1g.10gb"  # type: ignore[union-attr]
    assert mig.smallest_profile_for_memory(a100, 15).name == "1g.20gb"  # type: ignore[union-attr]
    assert mig.smallest_profile_for_memory(a100, 30).name == "3g.40gb"  # type: ignore[union-attr]
    assert mig.smallest_profile_for_memory(a100, 81) is None
    assert a100.profile("1g.10gb").resource_name == "nvidia.com/mig-1g.10gb"  # type: ignore[union-attr]


def test_every_profile_fits_its_gpu() -> None:
    for f in mig.GPU_FAMILIES:
        for p in f.profiles:
            assert p.memory_gb <= f.memory_gb and p.compute_slices * p.max_per_gpu <= 7


def test_output_that_also_feeds_a_step_is_warned_about() -> None:
    steps = step("a", {"A": "X"}, {"B": "Y"}) + step("b", {"A": "Y"}, {"B": "Z"})
    text = (PIPE % {"mbs": 0, "steps": steps}).replace(
        'outputs: [{name: "Y", dtype: FP32, dims: [4]}]',
        'outputs: [{name: "Y", dtype: FP32, dims: [4]}, {name: Z, dtype: FP32, dims: [4]}]',
    )
    problems, n = check(text)
    assert errors(problems) == [] and n == 1
    assert any(
        p.severity == "warning"
        and p.path == "spec.outputs[0]"
        and "also read by step(s) ['b']" in p.message
        for p in problems
    )
