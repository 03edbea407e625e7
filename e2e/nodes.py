"""The fake nodes declared in nodes.yaml, as Node manifests for kwok to manage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NODES_FILE = Path(__file__).resolve().parent / "nodes.yaml"
# kwok (started with --manage-nodes-with-annotation-selector) takes over nodes carrying this.
KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
_BASE_CAPACITY = {"pods": "110", "ephemeral-storage": "1Ti"}


@dataclass(frozen=True)
class FakeNode:
    name: str
    internal_ip: str
    capacity: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)

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


def load(path: Path = NODES_FILE) -> list[FakeNode]:
    data = yaml.safe_load(path.read_text())
    return [
        FakeNode(
            name=n["name"],
            internal_ip=f"10.240.0.{i + 1}",  # made up: nothing connects to a kwok node
            capacity={k: str(v) for k, v in n["capacity"].items()},
            labels={k: str(v) for k, v in n.get("labels", {}).items()},
            taints=list(n.get("taints", [])),
        )
        for i, n in enumerate(data["nodes"])
    ]
