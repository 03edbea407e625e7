"""Adapt the GPU placement decision (gpu/placement.py, pure) to what the operator renders:
the pod's limits, node selection and tolerations, and the status it reports."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..api.common import Device
from ..api.pipeline import InferencePipeline
from ..api.status import GpuResourceStatus, Reason
from ..gpu import placement as gpu
from ..gpu.inventory import Inventory
from ..render.kube import PodPlacement
from .reconcile import PlacementOutcome
from .state import ClusterState

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


def request_of(pipe: InferencePipeline) -> gpu.Request:
    """The placement request of a pipeline: one pod serves every step, so it needs a GPU when
    any step runs on one."""
    p = pipe.spec.placement
    on_gpu = p.device is Device.GPU or any(s.device is Device.GPU for s in pipe.spec.steps)
    g = p.gpu
    return gpu.Request(
        device=gpu.Device.GPU if on_gpu else gpu.Device.CPU,
        gpu=gpu.GpuRequest(g.count, g.mig_profile, g.memory, g.product) if g else gpu.GpuRequest(),
        node_selector=dict(p.node_selector),
        tolerations=tuple(t.to_wire() for t in p.tolerations),
    )


def place_pipeline(pipe: InferencePipeline, state: ClusterState) -> PlacementOutcome:
    request = request_of(pipe)
    result = gpu.place(request, Inventory.of(state.nodes.values()))
    if isinstance(result, gpu.Unplaceable):
        return PlacementOutcome(Reason.NO_CAPACITY, result.reason, PodPlacement())
    on_gpu = request.device is gpu.Device.GPU
    affinity = dict(result.affinity) if result.affinity else None
    if not on_gpu and affinity is None:
        affinity = AVOID_GPU_NODES
    status = GpuResourceStatus(**asdict(result.gpu)) if result.gpu else None
    if on_gpu and status is not None:
        message = f"{status.count} x {status.resource}" + (
            f" ({status.product})" if status.product else ""
        )
        if result.nodes:
            message += f" on {len(result.nodes)} candidate node{'s' * (len(result.nodes) != 1)}"
        if result.note:
            message += f"; {result.note}"
    else:
        message = "CPU only"
    return PlacementOutcome(
        Reason.PLACED,
        message,
        PodPlacement(
            limits=dict(result.limits),
            node_selector=dict(result.node_selector),
            tolerations=[dict(t) for t in result.tolerations],
            affinity=affinity,
        ),
        status,
    )
