"""`validate` agrees with a real apiserver: every manifest of the corpora, mutations of the
valid ones, and YAML probes go through `kubectl apply --server-side --dry-run=server` with the
CRDs of crds/ installed, and the objects kubectl gets admitted are exactly those whose
admission-class checks `validate` passes (its semantic-only checks are listed in
tests/api/test_parity.py).

This module imports inferline's loader to get a per-object verdict (the CLI prints one per
file); it is the only e2e module that does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from e2e.workloads import Kubectl
from inferline.api.load import load_text
from inferline.api.problems import ADMISSION_CHECKS, Check
from tests.api.corpus import REPO, corpus, random_mutations

pytestmark = pytest.mark.e2e

_APPLIED = re.compile(r"^(\w+)\.inferline\.dev/(\S+) serverside-applied", re.M)


@pytest.fixture(scope="module")
def crds_installed(kubectl: Kubectl) -> None:
    for f in sorted((REPO / "crds").glob("*.yaml")):
        proc = kubectl("apply", "--server-side", "-f", str(f))
        assert proc.returncode == 0, proc.stderr
    proc = kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l",
        "app.kubernetes.io/part-of=inferline",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def kubectl_admits(kubectl: Kubectl, path: Path, namespace: str) -> tuple[set[str], str]:
    """(kind/name of every object the apiserver admitted, kubectl's stderr)."""
    proc = kubectl("apply", "--server-side", "--dry-run=server", "-n", namespace, "-f", str(path))
    admitted = {f"{kind.lower()}/{name}" for kind, name in _APPLIED.findall(proc.stdout)}
    return admitted, proc.stderr


def validate_admits(path: Path) -> tuple[set[str], bool, list[str]]:
    """(kind/name of the objects validate passes at admission level, whether the YAML itself
    failed, the admission-class problems)."""
    loaded = load_text(path.read_text(), path)
    problems = [p for p in loaded.problems if p.is_error and p.check in ADMISSION_CHECKS]
    yaml_failed = any(p.check is Check.YAML and not p.obj for p in problems)
    rejected = {p.obj for p in problems}
    admitted = {
        f"{d.resource.kind.lower()}/{d.resource.metadata.name}"
        for d in loaded.documents
        if f"{d.resource.kind}/{d.resource.metadata.name}" not in rejected
    }
    return (set() if yaml_failed else admitted), yaml_failed, [str(p) for p in problems]


def _agree(kubectl: Kubectl, path: Path, namespace: str) -> None:
    theirs, stderr = kubectl_admits(kubectl, path, namespace)
    ours, yaml_failed, problems = validate_admits(path)
    if yaml_failed:
        assert stderr, f"{path.name}: validate finds the YAML broken ({problems}); kubectl not"
    assert theirs == ours, (
        f"{path.name}: the apiserver admitted {sorted(theirs)}, validate {sorted(ours)}\n"
        f"kubectl: {stderr}\nvalidate: {problems}\n{path.read_text()[:2000]}"
    )


@pytest.mark.parametrize("path", corpus(), ids=lambda p: str(p.relative_to(REPO)))
def test_corpus_gets_the_same_verdict(
    path: Path, crds_installed: None, kubectl: Kubectl, namespace: str
) -> None:
    _agree(kubectl, path, namespace)


MUTATIONS = random_mutations(80, seed=8)


@pytest.mark.parametrize("index", range(len(MUTATIONS)))
def test_mutations_get_the_same_verdict(
    index: int, crds_installed: None, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    path = tmp_path / f"mutation-{index}.yaml"
    path.write_text(json.dumps(MUTATIONS[index], indent=1))
    _agree(kubectl, path, namespace)


def _pipeline(**spec_changes: Any) -> str:
    """The minimal example with `spec` fields replaced by raw YAML snippets."""
    text = (REPO / "examples/minimal/pipeline.yaml").read_text()
    for key, raw in spec_changes.items():
        text = re.sub(rf"^  {key}:.*$", f"  {key}: {raw}", text, count=1, flags=re.M)
    return text


# YAML as people write it: how kubectl turns it into JSON decides, not PyYAML.
PROBES: dict[str, str] = {
    "float-for-integer": _pipeline(maxBatchSize="8.0"),
    "fraction-for-integer": _pipeline(maxBatchSize="8.5"),
    "quoted-integer": _pipeline(maxBatchSize='"8"'),
    "octal-integer": _pipeline(maxBatchSize="010"),
    "hex-integer": _pipeline(maxBatchSize="0x8"),
    "exponent-integer": _pipeline(maxBatchSize="8e0"),
    "underscore-integer": _pipeline(maxBatchSize="1_6"),
    "null-field": _pipeline(maxBatchSize="~"),
    "empty-field": _pipeline(maxBatchSize=""),
    "infinity": _pipeline(maxBatchSize=".inf"),
    "bool-yes-for-integer": _pipeline(maxBatchSize="yes"),
    "bare-y-string": _pipeline(inputs="[{name: y, dtype: FP32, dims: [-1]}]"),
    "bare-on-string": _pipeline(inputs="[{name: on, dtype: FP32, dims: [-1]}]"),
    "timestamp-string": _pipeline(inputs="[{name: 2024-01-01, dtype: FP32, dims: [-1]}]"),
    "number-for-string": _pipeline(inputs="[{name: 12, dtype: FP32, dims: [-1]}]"),
    "snake-case-field": _pipeline(maxBatchSize="8\n  max_batch_size: 8"),
    "duplicate-key": _pipeline(maxBatchSize="8\n  maxBatchSize: 8"),
    "duplicate-key-different-value": _pipeline(maxBatchSize="8\n  maxBatchSize: 4"),
    "anchor-and-alias": _pipeline(
        inputs="&t [{name: X, dtype: FP32, dims: [-1]}]\n  outputs: *t"
    ).replace('  outputs:\n    - {name: "Y", dtype: FP32, dims: [-1]}\n', ""),
    "merge-key": _pipeline(placement="{<<: {device: CPU}}"),
    "status-is-typed": _pipeline() + "status: {replicas: notanumber}\n",
    "unknown-metadata-field": _pipeline().replace("  name: minimal", "  name: minimal\n  nmae: x"),
    "label-value-too-long": _pipeline().replace(
        "  name: minimal", f"  name: minimal\n  labels: {{a: {'x' * 64}}}"
    ),
    "pipeline-name-starts-with-digit": _pipeline().replace("name: minimal", "name: 9minimal"),
    "pipeline-name-54-characters": _pipeline().replace("name: minimal", f"name: {'p' * 54}"),
    "pipeline-name-53-characters": _pipeline().replace("name: minimal", f"name: {'p' * 53}"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PROBES))
def test_yaml_probes_get_the_same_verdict(
    name: str, crds_installed: None, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(PROBES[name])
    _agree(kubectl, path, namespace)


BIG_BACKEND = """apiVersion: inferline.dev/v1alpha1
kind: Backend
metadata:
  name: big
spec:
  image: nvcr.io/nvidia/tritonserver:24.10-py3
  formats: [python]
  env:
""" + "".join(f"    - {{name: V{i}, value: {'v' * 30000}}}\n" for i in range(60))


def test_the_size_limit_is_etcds(
    crds_installed: None, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    """An object between etcd's 1.5 MiB and the apiserver's 3 MiB body limit: a dry run admits
    it (it never reaches etcd), a real apply fails, and validate refuses it with both numbers."""
    path = tmp_path / "big.yaml"
    path.write_text(BIG_BACKEND)
    loaded = load_text(BIG_BACKEND, path)
    (problem,) = [p for p in loaded.problems if p.is_error]
    assert problem.check is Check.SIZE
    size = int(problem.message.split(" is ", 1)[1].split()[0])
    assert 1536 * 1024 < size < 3 << 20
    assert "at most 1572864 bytes" in problem.message
    theirs, stderr = kubectl_admits(kubectl, path, namespace)
    assert theirs == {"backend/big"}, stderr
    proc = kubectl("apply", "--server-side", "-n", namespace, "-f", str(path))
    assert proc.returncode != 0 and "too large" in proc.stderr, proc.stderr
