"""The fake nodes declared in nodes.yaml, as Node manifests for kwok to manage, and for the DRA
nodes the ResourceSlices and DeviceClasses NVIDIA's DRA driver would publish."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NODES_FILE = Path(__file__).resolve().parent / "nodes.yaml"
# kwok (started with --manage-nodes-with-annotation-selector) takes over nodes carrying this.
KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
_BASE_CAPACITY = {"pods": "110", "ephemeral-storage": "1Ti"}
DRA_DRIVER = "gpu.nvidia.com"


@dataclass(frozen=True)
class FakeNode:
    name: str
    internal_ip: str
    capacity: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)
    dra: dict[str, Any] | None = None  # the GPUs NVIDIA's DRA driver publishes for this node

    def offers(self, resource: str) -> int:
        return int(self.capacity.get(resource, "0"))

    def manifest(self) -> dict[str, Any]:
        capacity = _BASE_CAPACITY | self.capacity
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "annotations": {KWOK_ANNOTATION[0]: KWOK_ANNOTATION[1]},
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                    **self.labels,
                },
            },
            "spec": {"taints": self.taints} if self.taints else {},
            # Nodes keep the status they are created with; kwok then fills in conditions.
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "addresses": [
                    {"type": "InternalIP", "address": self.internal_ip},
                    {"type": "Hostname", "address": self.name},
                ],
            },
        }

    def resource_slice(self) -> dict[str, Any] | None:
        """The ResourceSlice NVIDIA's DRA driver publishes for this node (its pool is the node):
        whole GPUs, or the static MIG devices of a GPU cut into them."""
        if self.dra is None:
            return None
        d = self.dra
        devices = []
        for gpu in range(int(d["gpus"])):
            parent = _uuid("GPU", self.name, gpu)
            common = {
                "productName": {"string": d["product"]},
                "brand": {"string": "Nvidia"},
                "architecture": {"string": d["architecture"]},
                "cudaComputeCapability": {"version": "9.0.0"},
                "driverVersion": {"version": "570.124.6"},
                "cudaDriverVersion": {"version": "12.8.0"},
            }
            cut = (d.get("mig") or {}).get(gpu)
            if not cut:
                devices.append(
                    {
                        "name": f"gpu-{gpu}",
                        "attributes": {
                            "type": {"string": "gpu"},
                            "uuid": {"string": parent},
                            **common,
                        },
                        "capacity": {"memory": {"value": d["memory"]}},
                    }
                )
                continue
            for i, profile in enumerate(cut):
                devices.append(
                    {
                        "name": f"gpu-{gpu}-mig-{profile.replace('.', '')}-{i}",
                        "attributes": {
                            "type": {"string": "mig"},
                            "uuid": {"string": _uuid("MIG", self.name, gpu, i)},
                            "parentUUID": {"string": parent},
                            "profile": {"string": profile},
                            **common,
                        },
                        "capacity": {"memory": {"value": d["migMemory"][profile]}},
                    }
                )
        return {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceSlice",
            "metadata": {"name": f"{self.name}-{DRA_DRIVER}"},
            "spec": {
                "driver": DRA_DRIVER,
                "nodeName": self.name,
                "pool": {"name": self.name, "generation": 1, "resourceSliceCount": 1},
                "devices": devices,
            },
        }


def _uuid(prefix: str, *parts: object) -> str:
    """A stable device UUID in NVIDIA's format (GPU-..., MIG-...)."""
    return f"{prefix}-{uuid.uuid5(uuid.NAMESPACE_DNS, '/'.join(map(str, parts)))}"


def load(path: Path = NODES_FILE) -> list[FakeNode]:
    data = yaml.safe_load(path.read_text())
    return [
        FakeNode(
            name=n["name"],
            internal_ip=f"10.240.0.{i + 1}",  # made up: nothing connects to a kwok node
            capacity={k: str(v) for k, v in n["capacity"].items()},
            labels={k: str(v) for k, v in n.get("labels", {}).items()},
            taints=list(n.get("taints", [])),
            dra=n.get("dra"),
        )
        for i, n in enumerate(data["nodes"])
    ]


def device_classes(path: Path = NODES_FILE) -> list[dict[str, Any]]:
    """NVIDIA's DeviceClasses, as its DRA driver's chart installs them."""
    return [
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "DeviceClass",
            "metadata": {"name": c["name"]},
            "spec": {"selectors": [{"cel": {"expression": c["expression"]}}]},
        }
        for c in yaml.safe_load(path.read_text()).get("deviceClasses", [])
    ]


def dra_objects(fakes: list[FakeNode]) -> list[dict[str, Any]]:
    """What NVIDIA's DRA driver would have created for these nodes: DeviceClasses and slices."""
    slices = [s for s in (n.resource_slice() for n in fakes) if s is not None]
    return [*device_classes(), *slices] if slices else []
