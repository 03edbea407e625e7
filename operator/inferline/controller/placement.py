"""Adapt the GPU placement decision (gpu/allocation.py, pure: the device plugin's extended
resources or a DRA claim) to what the operator renders: the pod's limits or claim, node
selection and tolerations, and the status it reports."""

from __future__ import annotations

from typing import Any

from ..api.common import Device
from ..api.pipeline import InferencePipeline
from ..api.status import GpuResourceStatus, Reason
from ..gpu import allocation
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
        gpu=(
            gpu.GpuRequest(g.count, g.mig_profile, g.memory, g.product, gpu.Mode(g.allocation))
            if g
            else gpu.GpuRequest()
        ),
        node_selector=dict(p.node_selector),
        tolerations=tuple(t.to_wire() for t in p.tolerations),
    )


def place_pipeline(pipe: InferencePipeline, state: ClusterState) -> PlacementOutcome:
    request = request_of(pipe)
    result = allocation.place(request, Inventory.of(state.nodes.values()), state.dra_inventory())
    if isinstance(result, gpu.Unplaceable):
        return PlacementOutcome(Reason.NO_CAPACITY, result.reason, PodPlacement())
    on_gpu = request.device is gpu.Device.GPU
    affinity = dict(result.affinity) if result.affinity else None
    if not on_gpu and affinity is None:
        affinity = AVOID_GPU_NODES
    status = _status(result.gpu) if result.gpu else None
    if on_gpu and result.gpu is not None:
        message = _describe(result.gpu)
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
            claim=result.claim,
        ),
        status,
    )


def _status(g: gpu.GpuStatus) -> GpuResourceStatus:
    return GpuResourceStatus(
        resource=g.resource,
        count=g.count,
        strategy=g.strategy.value if g.strategy else None,
        product=g.product,
        allocation=g.allocation.value,
        profile=g.profile,
    )


def _describe(g: gpu.GpuStatus) -> str:
    """ "1 x nvidia.com/mig-1g.10gb (NVIDIA-A100-SXM4-80GB)", or with DRA "1 x mig.nvidia.com
    device 1g.35gb (NVIDIA H200) through DRA"."""
    if g.allocation is gpu.Allocation.DRA:
        what = f"{g.count} x {g.resource} device" + (f" {g.profile}" if g.profile else "")
        return what + (f" ({g.product})" if g.product else "") + " through DRA"
    return f"{g.count} x {g.resource}" + (f" ({g.product})" if g.product else "")
