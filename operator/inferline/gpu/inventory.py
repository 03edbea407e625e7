"""The cluster's GPUs as placement sees them, read from Node objects.

`node_gpus(node)` turns one Node (a plain dict, as the API returns it) into a compact `NodeGpus`:
what the NVIDIA device plugin advertises in `status.allocatable` (`nvidia.com/gpu`,
`nvidia.com/mig-<profile>`), what GPU Feature Discovery (GFD) says about it in labels (product,
memory per device, MIG strategy), the taints that keep pods off, and whether the node takes pods at
all. The operator calls it once per Node event and keeps the result in a kopf index
(`index_entry`), so a reconcile never lists Nodes and never re-parses them; `Inventory` is the set
of those views that `placement.place` reads.

Each kind of device a node advertises is one `Offer`, tagged with how it is exposed:
- "none": whole GPUs, `nvidia.com/gpu` (also the un-MIGed GPUs of a "mixed" node);
- "mixed": MIG slices as their own resource, `nvidia.com/mig-1g.10gb`;
- "single": MIG slices that stay `nvidia.com/gpu`; only GFD's product label says what they are
  (`NVIDIA-A100-SXM4-40GB-MIG-1g.5gb`).

Messages count devices with an ASCII x (greppable, and what a terminal shows everywhere):
"mig-1g.10gb x44 on 2 nodes".
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from . import mig

GPU_RESOURCE = "nvidia.com/gpu"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
PRODUCT_LABEL = "nvidia.com/gpu.product"
MEMORY_LABEL = "nvidia.com/gpu.memory"  # MiB per device (per slice on a "single" node)
COUNT_LABEL = "nvidia.com/gpu.count"
STRATEGY_LABEL = "nvidia.com/mig.strategy"
# The taint GPU node pools commonly carry (GKE, many GPU-operator installs).
GPU_TAINT_KEY = "nvidia.com/gpu"

_MIG_PRODUCT_SUFFIX = re.compile(r"-MIG-(\S+)$")
# Per-profile GFD labels: nvidia.com/mig-1g.10gb.memory, .count, .multiprocessors, .slices.gi ...
_MIG_LABEL = re.compile(r"^nvidia\.com/mig-(\d+g\.\d+gb(?:\.me)?)\.")
_BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")  # PreferNoSchedule never keeps a pod off
_SI = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9}


class Strategy(StrEnum):
    """How a device is exposed to pods (the status field `gpuResource.strategy`)."""

    NONE = "none"
    SINGLE = "single"
    MIXED = "mixed"


@dataclass(frozen=True, slots=True)
class Offer:
    """One kind of device a node advertises: whole GPUs, or MIG slices of one profile."""

    resource: str  # the extended resource a pod requests, as the node advertises it
    count: int  # allocatable (static capacity, not what is free)
    strategy: Strategy
    profile: str | None  # the MIG profile (1g.10gb, 1g.10gb+me); None for a whole GPU
    memory_mib: int | None  # per device; None when neither GFD nor the MIG table says

    @property
    def is_mig(self) -> bool:
        return self.profile is not None

    @property
    def size(self) -> tuple[int, int, str]:
        """Orders MIG profiles smallest first (memory, then compute slices)."""
        return mig.profile_size_key(self.profile or "")


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str

    def __str__(self) -> str:
        return (
            f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"
        )


class _Schedulable:
    """Whether a node takes new pods, for the views below (each has `ready` and `schedulable`)."""

    __slots__ = ()
    ready: bool
    schedulable: bool

    @property
    def usable(self) -> bool:
        """Whether the scheduler may put a new pod here (Ready and not cordoned)."""
        return self.ready and self.schedulable

    @property
    def why_unusable(self) -> str:
        return ", ".join(
            w
            for w, bad in (("NotReady", not self.ready), ("cordoned", not self.schedulable))
            if bad
        )


@dataclass(frozen=True, slots=True)
class Host(_Schedulable):
    """The scheduling facts of any node: the labels a nodeSelector may name, the taints that
    keep pods off, whether it takes pods. Nodes whose GPUs come through DRA need these too (their
    devices are in ResourceSlices, see `gpu.slices`)."""

    name: str
    taints: tuple[Taint, ...]  # only those that keep pods off (NoSchedule, NoExecute)
    # Every label except GFD's per-MIG-profile ones (parsed into offers): a user's nodeSelector
    # may name any label. Strings are interned: thousands of nodes share the same keys.
    labels: Mapping[str, str]
    ready: bool
    schedulable: bool


@dataclass(frozen=True, slots=True)
class NodeGpus(_Schedulable):
    """What placement needs to know about one device-plugin GPU node, and nothing more."""

    name: str
    product: str | None  # GFD's nvidia.com/gpu.product
    gpu_count: int | None  # GFD's nvidia.com/gpu.count (physical GPUs; slices when "single")
    offers: tuple[Offer, ...]
    taints: tuple[Taint, ...]  # as Host's
    labels: Mapping[str, str]
    ready: bool
    schedulable: bool


def node_host(node: Mapping[str, Any]) -> Host:
    """The scheduling facts of one Node (any node: DRA devices live on nodes without GPU labels)."""
    metadata = node.get("metadata") or {}
    spec = node.get("spec") or {}
    conditions = (node.get("status") or {}).get("conditions") or []
    labels: Mapping[str, str] = metadata.get("labels") or {}
    return Host(
        name=metadata["name"],
        taints=tuple(
            Taint(t["key"], t.get("value") or "", t["effect"])
            for t in spec.get("taints") or []
            if t.get("effect") in _BLOCKING_EFFECTS
        ),
        labels={
            sys.intern(k): sys.intern(v)
            for k, v in labels.items()
            if not (k.startswith(MIG_RESOURCE_PREFIX) and _MIG_LABEL.match(k))
        },
        # A node without a Ready=True condition (just registered, or lost) takes no pods: the
        # node lifecycle controller taints it not-ready.
        ready=any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
        schedulable=not spec.get("unschedulable", False),
    )


def node_gpus(node: Mapping[str, Any]) -> NodeGpus | None:
    """The GPU view of one Node, or None when it advertises no GPU device at all."""
    labels: Mapping[str, str] = (node.get("metadata") or {}).get("labels") or {}
    allocatable: Mapping[str, Any] = (node.get("status") or {}).get("allocatable") or {}
    offers = _offers(labels, allocatable)
    if not offers:
        return None
    host = node_host(node)
    return NodeGpus(
        name=host.name,
        product=labels.get(PRODUCT_LABEL),
        gpu_count=_int(labels.get(COUNT_LABEL)),
        offers=offers,
        taints=host.taints,
        labels=host.labels,
        ready=host.ready,
        schedulable=host.schedulable,
    )


def index_entry(node: Mapping[str, Any]) -> dict[str, NodeGpus]:
    """What a `kopf.index` handler on Nodes should return: {name: view}, or {} for a non-GPU node.

    Return this rather than None: kopf keeps an object's previous value when its indexer returns
    None, so a node that lost its GPUs would linger; an empty mapping discards it.
    """
    view = node_gpus(node)
    return {view.name: view} if view is not None else {}


def _offers(labels: Mapping[str, str], allocatable: Mapping[str, Any]) -> tuple[Offer, ...]:
    offers = []
    gpus = _count(allocatable.get(GPU_RESOURCE))
    if gpus > 0:
        product = labels.get(PRODUCT_LABEL, "")
        single = _MIG_PRODUCT_SUFFIX.search(product)
        if labels.get(STRATEGY_LABEL) == Strategy.SINGLE and single:
            profile: str | None = single.group(1)
            strategy = Strategy.SINGLE
        else:
            profile, strategy = None, Strategy.NONE
        memory = _int(labels.get(MEMORY_LABEL))
        if memory is None:
            memory = _nominal_mib(profile) if profile else _family_mib(product)
        offers.append(Offer(GPU_RESOURCE, gpus, strategy, profile, memory))
    for resource, quantity in allocatable.items():
        count = _count(quantity)
        if resource.startswith(MIG_RESOURCE_PREFIX) and count > 0:
            suffix = resource.removeprefix(MIG_RESOURCE_PREFIX)
            profile = mig.profile_from_resource_suffix(suffix)
            memory = _int(labels.get(f"{MIG_RESOURCE_PREFIX}{suffix}.memory"))
            offers.append(
                Offer(resource, count, Strategy.MIXED, profile, memory or _nominal_mib(profile))
            )
    return tuple(offers)


def _nominal_mib(profile: str) -> int | None:
    """A MIG slice's memory from its name (NVIDIA names them in GB), when GFD does not say."""
    gb = mig.profile_memory_gb(profile)
    return int(gb * 10**9 / 2**20) if gb is not None else None


def _family_mib(product: str) -> int | None:
    family = mig.family_for_product(product) if product else None
    return int(family.memory_gb * 10**9 / 2**20) if family else None


def _count(quantity: Any) -> int:
    """An extended resource's quantity: an integer, canonically "8" (or "1k" from 1000 up)."""
    m = re.fullmatch(r"(\d+)([kMG]?)", str(quantity or "0"))
    return int(m.group(1)) * _SI[m.group(2)] if m else 0


def _int(label: str | None) -> int | None:
    return int(label) if label is not None and label.isdigit() else None


# ---- the inventory ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Inventory:
    """Every GPU node the operator knows of (usable or not), by name."""

    nodes: tuple[NodeGpus, ...]

    @classmethod
    def of(cls, views: Iterable[NodeGpus]) -> Inventory:
        """From the index's values; sorted by name so messages and choices are deterministic."""
        return cls(tuple(sorted(views, key=lambda n: n.name)))

    @classmethod
    def from_nodes(cls, nodes: Iterable[Mapping[str, Any]]) -> Inventory:
        return cls.of(v for v in map(node_gpus, nodes) if v is not None)

    @functools.cached_property
    def usable(self) -> tuple[NodeGpus, ...]:
        """The nodes that take new pods: what placement counts."""
        return tuple(n for n in self.nodes if n.usable)

    def summary(self) -> str:
        """ "mig-1g.10gb x44 on 2 nodes, ..., NVIDIA-L4 x4 on 1 node", plus what is not counted."""
        offers = describe((n, o) for n in self.usable for o in n.offers)
        return (offers or "no GPUs") + self.not_counted()

    def not_counted(self) -> str:
        """ "; not counted: gpu-h100-0 (cordoned)" for GPU nodes that take no pods, else ""."""
        down = [f"{n.name} ({n.why_unusable})" for n in self.nodes if not n.usable]
        return f"; not counted: {names(down)}" if down else ""


def describe(pairs: Iterable[tuple[NodeGpus, Offer]]) -> str:
    """What some offers add up to, one entry per device kind: MIG profiles, then whole GPUs.

    MIG slices are named by profile (`mig-1g.10gb`, the device plugin's resource name under the
    "mixed" strategy), whole GPUs by product.
    """
    counts: dict[tuple[Any, ...], int] = {}
    nodes: dict[tuple[Any, ...], set[str]] = {}
    for node, offer in pairs:
        if offer.profile is not None:
            single = offer.strategy is Strategy.SINGLE
            key: tuple[Any, ...] = (0, offer.size, single, f"mig-{offer.profile}", single)
        else:
            key = (1, (), False, node.product or GPU_RESOURCE, False)
        counts[key] = counts.get(key, 0) + offer.count
        nodes.setdefault(key, set()).add(node.name)
    return ", ".join(
        f"{key[3]} x{count} on {_nodes(len(nodes[key]))}{' (single strategy)' if key[4] else ''}"
        for key, count in sorted(counts.items())
    )


def describe_products(nodes: Iterable[NodeGpus]) -> str:
    """ "NVIDIA-H100-80GB-HBM3 x16 on 2 nodes, NVIDIA-L4 x4 on 1 node": devices per product."""
    totals: dict[str, tuple[int, int]] = {}
    for n in nodes:
        devices = n.gpu_count if n.gpu_count is not None else sum(o.count for o in n.offers)
        count, k = totals.get(n.product or "unlabelled", (0, 0))
        totals[n.product or "unlabelled"] = (count + devices, k + 1)
    return ", ".join(f"{p} x{c} on {_nodes(k)}" for p, (c, k) in sorted(totals.items()))


def names(items: list[str], limit: int = 3) -> str:
    """ "a, b, c and 2 more": node names for a message, bounded for clusters of thousands."""
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


def _nodes(k: int) -> str:
    return f"{k} node" if k == 1 else f"{k} nodes"
