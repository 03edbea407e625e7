"""The cluster's GPUs as NVIDIA's DRA driver publishes them: ResourceSlices and DeviceClasses.

With Dynamic Resource Allocation (`resource.k8s.io/v1`, GA in Kubernetes 1.34) a GPU node
advertises no extended resources: the driver `gpu.nvidia.com` publishes each device in a
ResourceSlice, and the scheduler allocates devices to ResourceClaims by the CEL selectors of the
claim and of its DeviceClass (`gpu.nvidia.com` for whole GPUs, `mig.nvidia.com` for MIG devices).
The driver's attributes (unqualified in the slice, so in its own domain): `type` (gpu | mig),
`productName` (NVML's name, "NVIDIA H100 80GB HBM3"), `architecture`, `uuid`, and on MIG devices
`profile` and `parentUUID`; capacity `memory` in bytes.

`slice_view(obj)` turns one ResourceSlice into the compact `SliceView` the operator keeps per
watch event (the counterpart of `inventory.node_gpus`); `DraInventory.of` joins the slices with
the DeviceClasses present and each node's scheduling facts (`inventory.Host`) into what
`claims.place` reads. Only MIG devices that exist ("static" MIG) are modelled: partitionable
devices, which the scheduler carves on demand, need an alpha feature gate in 1.34.

The device-plugin view (`inventory.py`) and this one are independent: NVIDIA's DRA driver and
its device plugin do not serve the same GPUs, and a cluster may run both on different nodes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from . import mig
from .inventory import Host, names

DRIVER = "gpu.nvidia.com"
GPU_CLASS = "gpu.nvidia.com"
MIG_CLASS = "mig.nvidia.com"
CLASSES = (GPU_CLASS, MIG_CLASS)

_SUFFIX = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
}
_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)")


class Kind(StrEnum):
    """The driver's `type` attribute, and so the DeviceClass that selects a device."""

    GPU = "gpu"
    MIG = "mig"

    @property
    def device_class(self) -> str:
        return MIG_CLASS if self is Kind.MIG else GPU_CLASS


@dataclass(frozen=True, slots=True)
class Device:
    """One device of a ResourceSlice, as placement needs it."""

    name: str  # unique within its pool (for NVIDIA's driver the pool is the node)
    kind: Kind
    product: str | None  # productName, NVML's spelling: "NVIDIA H100 80GB HBM3"
    architecture: str | None
    profile: str | None  # MIG devices: 1g.10gb
    parent: str | None  # MIG devices: the parentUUID of the GPU they are cut from
    memory_mib: int | None  # capacity `memory`

    @property
    def product_label(self) -> str | None:
        """The product as GPU Feature Discovery spells it (`NVIDIA-H100-80GB-HBM3`), so one
        `placement.gpu.product` matches on either kind of cluster."""
        return self.product.replace(" ", "-") if self.product else None


@dataclass(frozen=True, slots=True)
class SliceView:
    """One ResourceSlice of NVIDIA's driver, reduced to what placement reads."""

    name: str
    pool: str
    generation: int
    node: str | None  # spec.nodeName; None for slices shared by several nodes (not counted)
    devices: tuple[Device, ...]


def slice_view(obj: Mapping[str, Any]) -> SliceView | None:
    """The view of one ResourceSlice, or None when it is not NVIDIA's GPU driver's."""
    spec = obj.get("spec") or {}
    if spec.get("driver") != DRIVER:
        return None
    pool = spec.get("pool") or {}
    devices = tuple(d for d in map(_device, spec.get("devices") or []) if d is not None)
    return SliceView(
        name=str((obj.get("metadata") or {}).get("name")),
        pool=str(pool.get("name") or ""),
        generation=int(pool.get("generation") or 0),
        node=spec.get("nodeName") or None,
        devices=devices,
    )


def _device(d: Mapping[str, Any]) -> Device | None:
    attributes = _attributes(d.get("attributes") or {})
    try:
        kind = Kind(attributes.get("type", ""))
    except ValueError:
        return None  # a device type placement does not request (e.g. vfio)
    capacity = {_local(k): v for k, v in (d.get("capacity") or {}).items()}
    memory = quantity_bytes(str((capacity.get("memory") or {}).get("value") or ""))
    profile = attributes.get("profile")
    return Device(
        name=str(d.get("name")),
        kind=kind,
        product=attributes.get("productName"),
        architecture=attributes.get("architecture"),
        profile=str(profile) if profile and kind is Kind.MIG else None,
        parent=attributes.get("parentUUID"),
        memory_mib=memory // 2**20 if memory is not None else None,
    )


def _attributes(raw: Mapping[str, Any]) -> dict[str, str]:
    """The attributes by name, the driver's own unqualified, as strings (the ones read are)."""
    out = {}
    for key, value in raw.items():  # another domain's (resource.kubernetes.io/...) stay qualified
        for kind in ("string", "version", "int", "bool"):
            if isinstance(value, Mapping) and kind in value:
                out[_local(key)] = str(value[kind])
                break
    return out


def _local(key: str) -> str:
    return key.removeprefix(f"{DRIVER}/")


def quantity_bytes(text: str) -> int | None:
    """A Kubernetes quantity as published in capacities ("80Gi", "85899345920"), in bytes."""
    m = _QUANTITY.fullmatch(text.strip())
    return int(float(m.group(1)) * _SUFFIX[m.group(2)]) if m else None


# ---- the inventory ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DraNode:
    """One node's devices, with its scheduling facts (None when no Node of that name is known)."""

    name: str
    host: Host | None
    devices: tuple[Device, ...]

    @property
    def usable(self) -> bool:
        return self.host is not None and self.host.usable

    @property
    def why_unusable(self) -> str:
        return self.host.why_unusable if self.host is not None else "no such Node"


@dataclass(frozen=True)
class DraInventory:
    """NVIDIA's DeviceClasses present, and every node's published devices, by node name."""

    classes: frozenset[str]
    nodes: tuple[DraNode, ...]

    @classmethod
    def of(
        cls, slices: Iterable[SliceView], classes: Iterable[str], hosts: Mapping[str, Host]
    ) -> DraInventory:
        """Join the slices with the Nodes they name. A pool's slices count only in its newest
        generation: a driver that republishes bumps the generation, and the scheduler ignores
        the stale slices left over (as it does here)."""
        slices = list(slices)
        newest: dict[str, int] = {}
        for s in slices:
            newest[s.pool] = max(newest.get(s.pool, 0), s.generation)
        devices: dict[str, list[Device]] = {}
        for s in sorted(slices, key=lambda s: s.name):
            if s.node is not None and s.generation == newest[s.pool]:
                devices.setdefault(s.node, []).extend(s.devices)
        return cls(
            frozenset(c for c in classes if c in CLASSES),
            tuple(
                DraNode(name, hosts.get(name), tuple(devs))
                for name, devs in sorted(devices.items())
                if devs
            ),
        )

    @property
    def available(self) -> bool:
        """Whether the cluster allocates NVIDIA GPUs through DRA: the driver's DeviceClasses
        exist and it has published devices."""
        return bool(self.classes) and any(n.devices for n in self.nodes)

    @functools.cached_property
    def usable(self) -> tuple[DraNode, ...]:
        """The nodes that take new pods, with only the devices whose DeviceClass exists (a
        claim can only name a class that does)."""
        return tuple(
            DraNode(n.name, n.host, kept)
            for n in self.nodes
            if n.usable and (kept := tuple(d for d in n.devices if self.has_class(d.kind)))
        )

    def has_class(self, kind: Kind) -> bool:
        return kind.device_class in self.classes

    def summary(self) -> str:
        """ "1g.10gb x14 on 2 nodes, NVIDIA H100 NVL x4 on 1 node", plus what is not counted."""
        offers = describe((n, d) for n in self.usable for d in n.devices)
        return (offers or "no devices") + self.not_counted()

    def not_counted(self) -> str:
        """ "; not counted: dra-h100-0 (cordoned); no DeviceClass mig.nvidia.com" or ""."""
        parts = []
        down = [f"{n.name} ({n.why_unusable})" for n in self.nodes if not n.usable]
        if down:
            parts.append(f"not counted: {names(down)}")
        kinds = {d.kind for n in self.nodes for d in n.devices}
        missing = sorted(k.device_class for k in kinds if not self.has_class(k))
        if missing:
            parts.append(f"no DeviceClass {' or '.join(missing)}, so its devices cannot be claimed")
        return "".join(f"; {p}" for p in parts)


def describe(pairs: Iterable[tuple[DraNode, Device]]) -> str:
    """What some devices add up to: MIG devices by profile (smallest first), then GPUs by product:
    "1g.10gb x14 on 2 nodes, 3g.40gb x2 on 1 node, NVIDIA H100 NVL x4 on 1 node"."""
    counts: dict[tuple[Any, ...], int] = {}
    nodes: dict[tuple[Any, ...], set[str]] = {}
    for node, device in pairs:
        if device.kind is Kind.MIG:
            profile = device.profile or "unknown profile"
            key: tuple[Any, ...] = (0, mig.profile_size_key(profile), profile)
        else:
            key = (1, (), device.product or "unnamed GPU")
        counts[key] = counts.get(key, 0) + 1
        nodes.setdefault(key, set()).add(node.name)
    return ", ".join(
        f"{key[2]} x{count} on {_nodes(len(nodes[key]))}" for key, count in sorted(counts.items())
    )


def describe_products(nodes: Iterable[DraNode]) -> str:
    """ "NVIDIA H100 NVL x4 on 1 node, NVIDIA H200 (MIG) x2 on 1 node": physical GPUs per
    product; GPUs cut into MIG devices are counted by their parents."""
    gpus: dict[str, set[str]] = {}
    where: dict[str, set[str]] = {}
    for n in nodes:
        for d in n.devices:
            product = (d.product or "unnamed") + (" (MIG)" if d.kind is Kind.MIG else "")
            one = f"{n.name}/{d.parent or d.name}" if d.kind is Kind.MIG else f"{n.name}/{d.name}"
            gpus.setdefault(product, set()).add(one)
            where.setdefault(product, set()).add(n.name)
    return ", ".join(f"{p} x{len(g)} on {_nodes(len(where[p]))}" for p, g in sorted(gpus.items()))


def _nodes(k: int) -> str:
    return f"{k} node" if k == 1 else f"{k} nodes"
