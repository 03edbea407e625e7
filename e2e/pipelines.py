"""InferencePipeline manifests and waits for the operator's e2e tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from e2e.workloads import Kubectl, get_json, wait_for

REPO = Path(__file__).resolve().parents[1]
# A ClusterBackend whose image is no runtime image: kwok pretends to run its pods. Tests of what
# the operator writes use it; tests of what serves use inferline-cpu (the e2e pod runner runs
# real tritonservers for it, a few at a time).
KWOK_BACKEND = "e2e-kwok"


def kwok_backend() -> dict[str, Any]:
    return {
        "apiVersion": "inferline.dev/v1alpha1",
        "kind": "ClusterBackend",
        "metadata": {"name": KWOK_BACKEND},
        "spec": {
            "image": "example.com/e2e/kwok-runtime:1",
            "formats": ["python"],
            "devices": ["CPU", "GPU"],
        },
    }


CLUSTER_EXAMPLES = REPO / "examples" / "cluster"
CODE = (REPO / "examples" / "minimal" / "scale.py").read_text()


def example(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((CLUSTER_EXAMPLES / name).read_text()) if d]


def code_config_map(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"scale.py": CODE},
    }


def scale_model(name: str, code: str, factor: str = "2.0") -> dict[str, Any]:
    """A Model: the minimal example's python step, its code in ConfigMap `code`."""
    return {
        "apiVersion": "inferline.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": name},
        "spec": {
            "format": "python",
            "python": {"configMap": {"name": code}, "key": "scale.py"},
            "maxBatchSize": 8,
            "parameters": {"factor": factor},
            "inputs": [{"name": "INPUT", "dtype": "FP32", "dims": [-1]}],
            "outputs": [{"name": "OUTPUT", "dtype": "FP32", "dims": [-1]}],
        },
    }


def pipeline(
    name: str,
    *,
    code: str | None = None,
    model_ref: str | None = None,
    device: str = "CPU",
    gpu: dict[str, Any] | None = None,
    replicas: int = 1,
    backend: str | None = None,
) -> dict[str, Any]:
    """A one-step pipeline Y = 2X: inline (code in ConfigMap `code`) or by `model_ref`.

    CPU pipelines default to the kwok backend (nothing runs); GPU ones to `triton` (its pods ask
    for GPUs, so kwok runs them too); pass backend="inferline-cpu" for real serving.
    """
    step: dict[str, Any] = {
        "name": "scale",
        "inputMap": {"INPUT": "X"},
        "outputMap": {"OUTPUT": "Y"},
    }
    if model_ref:
        step["modelRef"] = {"name": model_ref}
    else:
        assert code, "an inline model needs its code ConfigMap"
        step["model"] = scale_model("unused", code)["spec"]
    placement: dict[str, Any] = {"device": device}
    if gpu is not None:
        placement["gpu"] = gpu
    return {
        "apiVersion": "inferline.dev/v1alpha1",
        "kind": "InferencePipeline",
        "metadata": {"name": name},
        "spec": {
            "backend": {"name": backend or (KWOK_BACKEND if device == "CPU" else "triton")},
            "placement": placement,
            "replicas": replicas,
            "maxBatchSize": 8,
            "inputs": [{"name": "X", "dtype": "FP32", "dims": [-1]}],
            "outputs": [{"name": "Y", "dtype": "FP32", "dims": [-1]}],
            "steps": [step],
        },
    }


def with_spec(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["spec"].update(changes)
    return out


def apply(kubectl: Kubectl, namespace: str, *objs: dict[str, Any]) -> None:
    doc = "\n---\n".join(json.dumps(o) for o in objs)
    proc = kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=doc)
    assert proc.returncode == 0, proc.stderr


def get(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return dict(get_json(kubectl, "inferencepipeline", name, "-n", namespace))


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next(
        (c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None
    )


def wait_condition(
    kubectl: Kubectl,
    namespace: str,
    name: str,
    type_: str,
    status: str = "True",
    reason: str | None = None,
    timeout: float = 90,
) -> dict[str, Any]:
    """Wait until the pipeline's condition `type_` has `status` (and `reason`), for its current
    generation; return the pipeline."""

    def probe() -> dict[str, Any] | None:
        p = get(kubectl, namespace, name)
        c = condition(p, type_)
        gen = p["metadata"].get("generation")
        if (
            c is not None
            and c["status"] == status
            and (reason is None or c.get("reason") == reason)
            and p.get("status", {}).get("observedGeneration") == gen
        ):
            return p
        return None

    def describe() -> str:
        p = get(kubectl, namespace, name)
        return json.dumps(p.get("status", {}), indent=1)

    try:
        return wait_for(probe, f"{name} {type_}={status} {reason or ''}", timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}; status now:\n{describe()}") from None


def children(kubectl: Kubectl, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    """`Kind/name` -> object for everything labelled with the pipeline."""
    kinds = "configmaps,services,deployments,poddisruptionbudgets"
    items = get_json(kubectl, kinds, "-n", namespace, "-l", f"inferline.dev/pipeline={name}")
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in items["items"]}


def pods(kubectl: Kubectl, namespace: str, name: str) -> list[dict[str, Any]]:
    items = get_json(kubectl, "pods", "-n", namespace, "-l", f"inferline.dev/pipeline={name}")
    return list(items["items"])
