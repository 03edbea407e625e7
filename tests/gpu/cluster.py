"""The e2e cluster's nodes (e2e/nodes.yaml) as the apiserver returns them, and the DRA nodes'
ResourceSlices and DeviceClasses, for the GPU tests."""

from __future__ import annotations

import copy
from typing import Any

from e2e import nodes

READY = {"type": "Ready", "status": "True", "reason": "KubeletReady"}


def cluster_nodes() -> dict[str, dict[str, Any]]:
    """Every node of nodes.yaml by name, Ready as kwok reports it once it manages the node."""
    out = {}
    for fake in nodes.load():
        node = copy.deepcopy(fake.manifest())
        node["status"]["conditions"] = [dict(READY)]
        out[fake.name] = node
    return out


def gpu_node_names() -> set[str]:
    return {n.name for n in nodes.load() if any(k.startswith("nvidia.com/") for k in n.capacity)}


def cluster_slices() -> list[dict[str, Any]]:
    """The ResourceSlices the e2e harness publishes for the DRA nodes of nodes.yaml."""
    return [s for s in (n.resource_slice() for n in nodes.load()) if s is not None]


def device_class_names() -> list[str]:
    return [c["metadata"]["name"] for c in nodes.device_classes()]
