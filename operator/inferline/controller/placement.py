"""Adapt the GPU placement decision (gpu/) to the pod spec and status the operator renders.

INTERIM: whole GPUs by product only, until gpu.inventory/gpu.placement land.
"""

from __future__ import annotations

from typing import Any

from ..api.common import Device
from ..api.pipeline import InferencePipeline
from ..api.status import GpuResourceStatus, Reason
from ..render.kube import PodPlacement
from .reconcile import PlacementOutcome
from .state import ClusterState

GPU = "nvidia.com/gpu"
# CPU pipelines prefer nodes without GPUs (required would strand them on GPU-only clusters).
AVOID_GPU_NODES: dict[str, Any] = {
    "nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "preference": {
                    "matchExpressions": [
                        {"key": "nvidia.com/gpu.present", "operator": "DoesNotExist"}
                    ]
                },
            }
        ]
    }
}


def node_gpus(node: dict[str, Any]) -> dict[str, Any] | None:
    alloc = (node.get("status") or {}).get("allocatable") or {}
    gpus = {k: v for k, v in alloc.items() if k.startswith("nvidia.com/")}
    if not gpus:
        return None
    return {"allocatable": gpus, "labels": (node.get("metadata") or {}).get("labels") or {}}


def place_pipeline(pipe: InferencePipeline, state: ClusterState) -> PlacementOutcome:
    p = pipe.spec.placement
    tolerations = [t.to_wire() for t in p.tolerations]
    on_gpu = p.device is Device.GPU or any(s.device is Device.GPU for s in pipe.spec.steps)
    if not on_gpu:
        return PlacementOutcome(
            Reason.PLACED,
            "CPU only",
            PodPlacement(
                node_selector=p.node_selector, tolerations=tolerations, affinity=AVOID_GPU_NODES
            ),
        )
    count = p.gpu.count if p.gpu else 1
    selector = dict(p.node_selector)
    if p.gpu and p.gpu.product:
        selector["nvidia.com/gpu.product"] = p.gpu.product
    tolerations.append({"key": GPU, "operator": "Exists", "effect": "NoSchedule"})
    return PlacementOutcome(
        Reason.PLACED,
        f"{count} x {GPU}",
        PodPlacement({GPU: str(count)}, selector, tolerations),
        GpuResourceStatus(resource=GPU, count=count),
    )
