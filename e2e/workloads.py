"""Small helpers the e2e tests use to create workloads and wait on what the cluster did."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
T = TypeVar("T")
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def deployment(
    name: str,
    *,
    limits: dict[str, str] | None = None,
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A one-replica Deployment; extended resources like nvidia.com/gpu go in `limits`."""
    pod_spec: dict[str, Any] = {
        "containers": [
            {
                "name": "main",
                "image": "registry.k8s.io/pause:3.10",
                "resources": {"limits": limits or {}},
            }
        ],
        "tolerations": tolerations if tolerations is not None else [GPU_TOLERATION],
    }
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def apply(kubectl: Kubectl, namespace: str, obj: dict[str, Any]) -> None:
    proc = kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=json.dumps(obj))
    assert proc.returncode == 0, proc.stderr


def get_json(kubectl: Kubectl, *args: str) -> Any:
    proc = kubectl("get", *args, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def wait_for(
    probe: Callable[[], T | None], what: str, timeout: float = 60, interval: float = 0.5
) -> T:
    """Poll `probe` until it returns something other than None; fail with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        if (value := probe()) is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in obj.get("status", {}).get("conditions", []):
        if c.get("type") == kind:
            return dict(c)
    return None


def is_running(pod: dict[str, Any]) -> bool:
    return bool(pod.get("status", {}).get("phase") == "Running")


def wait_for_pod(
    kubectl: Kubectl,
    namespace: str,
    app: str,
    ready: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 60,
) -> dict[str, Any]:
    """Wait until a pod of Deployment `app` satisfies `ready`; return that pod."""

    def probe() -> dict[str, Any] | None:
        pods = get_json(kubectl, "pods", "-n", namespace, "-l", f"app={app}")["items"]
        return next((p for p in pods if ready(p)), None)

    return wait_for(probe, f"a pod of {app} {what}", timeout)
