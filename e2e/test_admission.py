"""The generated CRDs on a real apiserver: they install, the examples pass admission, and each
invalid manifest is rejected with the apiserver's own message.

Contracts with the rest of the repository:
- crds/*.yaml define group inferline.dev (v1alpha1) kinds Backend, ClusterBackend, Model and
  InferencePipeline;
- every YAML manifest under examples/ (documents with apiVersion and kind) applies cleanly;
- tests/data/invalid-admission/*.yaml each start with one or more `# expect: <text>` comment
  lines; the apply must fail and stderr must contain every <text>.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.workloads import Kubectl, get_json

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
CRD_DIR = REPO / "crds"
EXAMPLES_DIR = REPO / "examples"
# Overridable only to try new cases before they land in the repository.
INVALID_DIR = Path(
    os.environ.get("INFERLINE_E2E_INVALID_ADMISSION_DIR", REPO / "tests/data/invalid-admission")
)
GROUP = "inferline.dev"
KINDS = {"Backend", "ClusterBackend", "Model", "InferencePipeline"}


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _is_manifest(path: Path) -> bool:
    if "artifacts" in path.relative_to(EXAMPLES_DIR).parts:
        return False
    try:
        docs = _docs(path)
    except yaml.YAMLError:
        return False
    kinds = [d.get("kind") for d in docs if isinstance(d, dict) and "apiVersion" in d]
    # Kustomizations and the like are inputs to tools, not objects for the apiserver.
    return bool(kinds) and len(kinds) == len(docs) and "Kustomization" not in kinds


def _expectations(path: Path) -> list[str]:
    expects = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("# expect:"):
            expects.append(line.removeprefix("# expect:").strip())
    return expects


EXAMPLES = sorted(
    p for p in (*EXAMPLES_DIR.rglob("*.yaml"), *EXAMPLES_DIR.rglob("*.yml")) if _is_manifest(p)
)
INVALID = sorted(INVALID_DIR.glob("*.yaml"))


def test_crds_are_established(crds: list[str], kubectl: Kubectl) -> None:
    served = {}
    for name in crds:
        crd = get_json(kubectl, "crd", name)
        established = next(c for c in crd["status"]["conditions"] if c["type"] == "Established")
        assert established["status"] == "True", name
        if crd["spec"]["group"] == GROUP:
            versions = {v["name"] for v in crd["spec"]["versions"] if v["served"]}
            served[crd["spec"]["names"]["kind"]] = versions
    assert set(served) >= KINDS
    assert all("v1alpha1" in versions for versions in served.values()), served
    # The kinds are usable through discovery, as `kubectl apply` and Argo CD will use them.
    proc = kubectl("api-resources", f"--api-group={GROUP}", "-o", "name")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.split()) >= len(KINDS)


def test_there_are_examples_and_invalid_cases() -> None:
    assert EXAMPLES, f"no example manifests under {EXAMPLES_DIR}"
    assert INVALID, f"no invalid-admission cases in {INVALID_DIR}"


def _apply(kubectl: Kubectl, path: Path, namespace: str) -> Any:
    # Manifests that name their namespace are applied as they are (a -n that disagrees would be
    # an error); the rest land in the test's namespace.
    own = {
        d["metadata"]["namespace"] for d in _docs(path) if d.get("metadata", {}).get("namespace")
    }
    for ns in own:
        kubectl("create", "namespace", ns)
    args = ["apply", "--server-side", "-f", str(path)]
    return kubectl(*args) if own else kubectl(*args, "-n", namespace)


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(REPO)) for p in EXAMPLES])
def test_example_is_accepted(path: Path, crds: list[str], kubectl: Kubectl, namespace: str) -> None:
    proc = _apply(kubectl, path, namespace)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", INVALID, ids=[p.name for p in INVALID])
def test_invalid_manifest_is_rejected_by_the_apiserver(
    path: Path, crds: list[str], kubectl: Kubectl, namespace: str
) -> None:
    expects = _expectations(path)
    assert expects, f"{path} has no leading `# expect: <apiserver message>` line"
    proc = _apply(kubectl, path, namespace)
    assert proc.returncode != 0, f"{path.name} was accepted:\n{proc.stdout}"
    for text in expects:
        assert text in proc.stderr, f"expected {text!r} in:\n{proc.stderr}"
