"""Where a pipeline's pods can run: a placement request + the GPU inventory -> what to render.

`place(request, inventory)` is pure. It returns `Placed` (the container limits, node selector,
node affinity and tolerations to render, and the `gpuResource` status), or `Unplaceable` with the
exact reason when no node in the cluster could host one replica, so status can say why before the
scheduler is even asked.

"Can host" means static capacity: a node's allocatable devices, not what running pods leave free.
Free capacity changes with every pod and is the scheduler's business; when it leaves pods Pending
the operator surfaces the scheduler's own reason. So a request is unplaceable only when it could
not run even on an empty cluster: no usable (Ready, uncordoned) node offers the device, the
product, enough devices on one node (a pod cannot span nodes), or admits the pod's nodeSelector
and tolerations.

The steps, each narrowing the (node, offer) pairs and each with its own reason when it empties them:
1. product: an exact `nvidia.com/gpu.product` label (a "single" node's label also matches without
   its `-MIG-<profile>` suffix), a family from the MIG table (`A100-80GB`, `H200-141GB`), or else
   '-'-separated tokens that all appear in the label (`L4`, `H100`);
2. the device: `migProfile` -> slices of that profile; `memory` -> any MIG slice or whole GPU with
   at least that much memory (GFD's per-device MiB, else the profile's name); neither -> whole GPUs;
3. count: that many devices on one node;
4. the user's nodeSelector; 5. taints the user's tolerations (plus NVIDIA's, added when needed)
   tolerate.
Then the choice: for `memory`, the smallest MIG profile left (by memory, then compute slices) or,
only when no MIG slice fits, the whole GPU product with the least memory that fits; a profile
offered both as its own resource ("mixed") and as nvidia.com/gpu ("single") goes to "mixed".

The result pins nodes only as far as the resource name does not: a "single" slice and a product
request select `nvidia.com/gpu.product` (one value: nodeSelector; several, e.g. a family name:
required node affinity `In`), and a whole-GPU request keeps off "single" nodes (whose
nvidia.com/gpu are slices) with `nvidia.com/mig.strategy NotIn [single]`.

Allocation modes: this module places through the device plugin (`Allocation.DEVICE_PLUGIN`,
extended resources in `limits`). `claims.place` places through Dynamic Resource Allocation
(`Allocation.DRA`: `limits` empty, the device request in `Placed.claim`), and `allocation.place`
chooses between the two by `Request.allocation` and what the cluster has.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from . import mig
from .inventory import (
    GPU_RESOURCE,
    GPU_TAINT_KEY,
    PRODUCT_LABEL,
    STRATEGY_LABEL,
    Host,
    Inventory,
    NodeGpus,
    Offer,
    Strategy,
    Taint,
    describe,
    describe_products,
    names,
)

Pair = tuple[NodeGpus, Offer]
_UNITS = {"": 2**-20, "k": 1e3 / 2**20, "M": 1e6 / 2**20, "G": 1e9 / 2**20, "T": 1e12 / 2**20}
_UNITS |= {"Ki": 2**-10, "Mi": 1, "Gi": 2**10, "Ti": 2**20}


class Device(StrEnum):
    GPU = "GPU"
    CPU = "CPU"


class Allocation(StrEnum):
    """How the pod gets its accelerator."""

    NONE = "none"  # a CPU pipeline
    DEVICE_PLUGIN = "devicePlugin"  # extended resources in the container's limits
    DRA = "dra"  # a ResourceClaim per pod, from a ResourceClaimTemplate


class Mode(StrEnum):
    """How a pipeline asks to get its GPUs (`placement.gpu.allocation`)."""

    AUTO = "auto"  # DRA where the cluster has NVIDIA's DRA driver, else the device plugin
    DEVICE_PLUGIN = "devicePlugin"
    DRA = "dra"


@dataclass(frozen=True)
class GpuRequest:
    """The placement's `gpu` fields, as plain values (the api layer adapts its own type)."""

    count: int = 1
    mig_profile: str | None = None
    memory: str | None = None  # a Kubernetes quantity: "10Gi", "20G"
    product: str | None = None
    allocation: Mode = Mode.AUTO


@dataclass(frozen=True)
class Request:
    device: Device = Device.GPU
    gpu: GpuRequest = field(default_factory=GpuRequest)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()  # Kubernetes toleration dicts


@dataclass(frozen=True)
class GpuStatus:
    """The InferencePipeline's `status.gpuResource`."""

    resource: str  # the extended resource, or with DRA the DeviceClass
    count: int
    strategy: Strategy | None  # the device plugin's MIG strategy; None with DRA
    # The product the pods get: the one label the chosen nodes share, else what was asked
    # (a family name), else None (e.g. mig-1g.10gb on both A100 and H100 nodes).
    product: str | None
    allocation: Allocation = Allocation.DEVICE_PLUGIN
    profile: str | None = None  # the MIG profile, for a MIG slice


@dataclass(frozen=True)
class DeviceClaim:
    """The one device request of a pod's ResourceClaim (DRA): `count` devices of a DeviceClass
    for which every CEL selector holds."""

    device_class: str
    count: int
    selectors: tuple[str, ...]
    # An attribute all the request's devices must share (parentUUID: MIG slices of one GPU).
    match_attribute: str | None = None


@dataclass(frozen=True)
class Placed:
    """What to render into the pod template for one replica."""

    allocation: Allocation
    limits: Mapping[str, str]  # container resources.limits (requests default to them)
    node_selector: Mapping[str, str]  # the user's, plus the product when pinned
    affinity: Mapping[str, Any] | None  # pod spec `affinity`, or None
    tolerations: tuple[Mapping[str, Any], ...]  # the user's, plus NVIDIA's when needed
    gpu: GpuStatus | None  # None for a CPU pipeline
    nodes: tuple[str, ...] = ()  # the nodes that could host a replica (static capacity)
    note: str = ""  # why this device, when a choice was made (memory -> profile)
    claim: DeviceClaim | None = None  # with DRA: what each pod's ResourceClaim requests


@dataclass(frozen=True)
class Unplaceable:
    """No node in the cluster could host one replica, and why (one line, for status)."""

    reason: str


NVIDIA_TOLERATION = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
# What placement may add: NVIDIA's toleration, for each effect the hosting nodes' taint has.
ADDABLE = {"key": GPU_TAINT_KEY, "operator": "Exists"}


def place(request: Request, inventory: Inventory) -> Placed | Unplaceable:
    """Decide the GPU resources and node constraints for a request on this inventory."""
    user_tolerations = tuple(request.tolerations)
    if request.device is Device.CPU:
        return Placed(
            Allocation.NONE, {}, dict(request.node_selector), None, user_tolerations, None
        )
    gpu = request.gpu
    if gpu.mig_profile and gpu.memory:
        raise ValueError("set gpu.migProfile or gpu.memory, not both")
    need_mib = memory_mib(gpu.memory) if gpu.memory else None
    usable = inventory.usable
    if not usable:
        return Unplaceable(
            "the cluster has no GPUs: no Ready, schedulable node offers nvidia.com/gpu or "
            f"nvidia.com/mig-*{inventory.not_counted()}"
        )
    pairs: list[Pair] = [(n, o) for n in usable for o in n.offers]

    def fail(reason: str) -> Unplaceable:
        return Unplaceable(reason + inventory.not_counted())

    # 1. product
    where = "the cluster has"
    if gpu.product:
        wanted = gpu.product
        pairs = [p for p in pairs if product_matches(wanted, p[0].product)]
        if not pairs:
            return fail(
                f"no node has GPU product {wanted}; the cluster has {describe_products(usable)}"
            )
        where = f"nodes with GPU product {wanted} have"
    # 2. the device
    kept, unit = _devices(pairs, gpu, need_mib)
    if not kept:
        return fail(f"{_no_device(pairs, gpu, need_mib)}; {where} {describe(pairs)}")
    pairs = kept
    # 3. count: a pod's devices all come from one node
    kept = [p for p in pairs if p[1].count >= gpu.count]
    if not kept:
        most = max(pairs, key=lambda p: p[1].count)
        return fail(
            f"no single node offers {gpu.count} x {unit} (a pod cannot span nodes); the most on "
            f"one node is {most[1].count} x {most[1].resource} on {most[0].name}"
        )
    pairs = kept
    # 4. the user's nodeSelector
    kept = [p for p in pairs if selects(request.node_selector, p[0])]
    if not kept:
        return fail(
            f"no node that offers {gpu.count} x {unit} matches nodeSelector "
            f"{describe_selector(request.node_selector)}; those that offer it: {_node_names(pairs)}"
        )
    pairs = kept
    # 5. taints: the user's tolerations, and NVIDIA's, which placement adds where needed
    admits = tolerance((*user_tolerations, ADDABLE))
    kept = [p for p in pairs if admits(p[0].taints)]
    if not kept:
        blocking = sorted({str(t) for n, _ in pairs for t in n.taints})
        return fail(
            f"every node that offers {gpu.count} x {unit} has a taint the pipeline does not "
            f"tolerate ({', '.join(blocking)}): {_node_names(pairs)}"
        )
    chosen, note = _choose(kept, gpu, need_mib)
    return _placed(request, inventory, chosen, note, admits)


@functools.lru_cache(maxsize=4096)  # called per node; a cluster has a handful of labels
def product_matches(wanted: str, label: str | None) -> bool:
    """Whether a node's `nvidia.com/gpu.product` label is the product a placement asks for."""
    if label is None:
        return False
    w = wanted.lower()
    if w == label.lower():
        return True
    family = next((f for f in mig.GPU_FAMILIES if f.name.lower() == w), None)
    if family is not None:
        return mig.family_for_product(label) is family
    # Tokens: "L4" is NVIDIA-L4, not NVIDIA-L40S; "NVIDIA-A100-SXM4-40GB" is also its "single"
    # MIG label NVIDIA-A100-SXM4-40GB-MIG-1g.5gb.
    return set(w.split("-")) <= set(label.lower().split("-"))


def memory_mib(quantity: str) -> float:
    """A Kubernetes memory quantity in MiB: "10Gi" -> 10240, "20G" -> 19073.5."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([kMGT]i?|Ki)?", quantity.strip())
    if not m or (m.group(2) or "") not in _UNITS:
        raise ValueError(f"gpu.memory: {quantity!r} is not a memory quantity such as 10Gi")
    return float(m.group(1)) * _UNITS[m.group(2) or ""]


def _devices(pairs: list[Pair], gpu: GpuRequest, need_mib: float | None) -> tuple[list[Pair], str]:
    """The pairs of the device kind asked for, and how messages name it."""
    if gpu.mig_profile:
        unit = mig.resource_name(gpu.mig_profile)
        return [p for p in pairs if p[1].profile == gpu.mig_profile], unit
    if need_mib is not None:
        unit = f"GPU or MIG slice with {gpu.memory}"
        return [p for p in pairs if (p[1].memory_mib or 0) >= need_mib], unit
    return [p for p in pairs if not p[1].is_mig], GPU_RESOURCE


def _no_device(pairs: list[Pair], gpu: GpuRequest, need_mib: float | None) -> str:
    if gpu.mig_profile:
        return f"no node offers {mig.resource_name(gpu.mig_profile)}"
    if need_mib is not None:
        node, offer = max(pairs, key=lambda p: (p[1].memory_mib or 0, p[0].name))
        largest = f"mig-{offer.profile}" if offer.profile else f"a whole {node.product or 'GPU'}"
        return (
            f"no MIG slice or GPU has {gpu.memory} ({need_mib:.0f} MiB) of memory; the largest is "
            f"{largest} ({offer.memory_mib or 'unknown'} MiB)"
        )
    return f"no node offers whole GPUs ({GPU_RESOURCE})"


def _choose(pairs: list[Pair], gpu: GpuRequest, need_mib: float | None) -> tuple[list[Pair], str]:
    """The one device kind to render, from pairs that all could host the request."""
    migs = [p for p in pairs if p[1].is_mig]
    if migs:
        # The smallest profile; for the same profile its own resource ("mixed") before "single".
        best = min(migs, key=lambda p: (p[1].size, p[1].strategy is Strategy.SINGLE))[1]
        chosen = [p for p in migs if (p[1].profile, p[1].strategy) == (best.profile, best.strategy)]
        if need_mib is None:
            return chosen, ""
        mib = min(p[1].memory_mib or 0 for p in chosen)
        return chosen, (
            f"memory {gpu.memory}: {best.profile} is the smallest MIG slice that fits ({mib} MiB)"
        )
    if need_mib is None:
        return pairs, ""
    # No MIG slice fits the memory need: the whole GPU product with the least memory that does.
    smallest = min(pairs, key=lambda p: (p[1].memory_mib or 0, p[0].product or ""))
    product, memory = smallest[0].product, smallest[1].memory_mib
    chosen = [p for p in pairs if (p[0].product, p[1].memory_mib) == (product, memory)]
    return chosen, (
        f"memory {gpu.memory}: no MIG slice fits; a whole {product or 'GPU'} ({memory} MiB) does"
    )


def _placed(
    request: Request,
    inventory: Inventory,
    chosen: list[Pair],
    note: str,
    admits: Callable[[tuple[Taint, ...]], bool],
) -> Placed:
    gpu = request.gpu
    offer = chosen[0][1]
    hosts = {n.name for n, _ in chosen}
    products = sorted({n.product for n, _ in chosen if n.product})
    node_selector = dict(request.node_selector)
    expressions: list[dict[str, Any]] = []
    # Pin the product where the resource name does not say enough. Explicit requests, "single"
    # slices and a whole GPU picked by memory always pin, so what is rendered does not change
    # when unrelated nodes come and go; a MIG profile picked by memory pins only when the same
    # profile elsewhere has too little memory (GFD reports slightly different sizes per product).
    pin = (
        bool(gpu.product)
        or offer.strategy is Strategy.SINGLE
        or (
            gpu.memory is not None
            and (not offer.is_mig or _admits_others(request, inventory, offer, hosts, admits))
        )
    )
    if pin and products and all(n.product for n, _ in chosen):
        if len(products) == 1:
            node_selector[PRODUCT_LABEL] = products[0]
        else:
            expressions.append({"key": PRODUCT_LABEL, "operator": "In", "values": products})
    elif not offer.is_mig:
        # Whole GPUs: on a "single" node nvidia.com/gpu are MIG slices, so keep off those (a
        # node without the label is no MIG node, and NotIn admits it).
        expressions.append(
            {"key": STRATEGY_LABEL, "operator": "NotIn", "values": [str(Strategy.SINGLE)]}
        )
    affinity = (
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": expressions}]
                }
            }
        }
        if expressions
        else None
    )
    tolerations = with_nvidia_tolerations(request.tolerations, (n for n, _ in chosen))
    status = GpuStatus(
        resource=offer.resource,
        count=gpu.count,
        strategy=offer.strategy,
        product=products[0] if len(products) == 1 else gpu.product,
        profile=offer.profile,
    )
    return Placed(
        Allocation.DEVICE_PLUGIN,
        {offer.resource: str(gpu.count)},
        node_selector,
        affinity,
        tolerations,
        status,
        tuple(sorted(hosts)),
        note,
    )


def _admits_others(
    request: Request,
    inventory: Inventory,
    offer: Offer,
    hosts: set[str],
    admits: Callable[[tuple[Taint, ...]], bool],
) -> bool:
    """Whether the resource name alone would also admit nodes that cannot host the request."""
    return any(
        n.name not in hosts
        and any(o.resource == offer.resource and o.count >= request.gpu.count for o in n.offers)
        and selects(request.node_selector, n)
        and admits(n.taints)
        for n in inventory.usable
    )


def tolerance(tolerations: tuple[Mapping[str, Any], ...]) -> Callable[[tuple[Taint, ...]], bool]:
    """Whether tolerations cover a node's taints, memoized: nodes share a few taint sets."""
    return functools.cache(lambda taints: tolerated(taints, tolerations))


def with_nvidia_tolerations(
    tolerations: Iterable[Mapping[str, Any]], hosts: Iterable[Host | NodeGpus]
) -> tuple[Mapping[str, Any], ...]:
    """The user's tolerations, plus NVIDIA's for each effect of its taint on the hosts chosen."""
    out = tuple(tolerations)
    effects = sorted({t.effect for n in hosts for t in n.taints if t.key == GPU_TAINT_KEY})
    for effect in effects:
        if not tolerated((Taint(GPU_TAINT_KEY, "", effect),), out):
            out += ({**NVIDIA_TOLERATION, "effect": effect},)
    return out


def selects(selector: Mapping[str, str], node: Host | NodeGpus) -> bool:
    return all(node.labels.get(k) == v for k, v in selector.items())


def tolerated(taints: Iterable[Taint], tolerations: Iterable[Mapping[str, Any]]) -> bool:
    tolerations = tuple(tolerations)
    return all(any(_tolerates(tol, t) for tol in tolerations) for t in taints)


def _tolerates(tol: Mapping[str, Any], taint: Taint) -> bool:
    """Kubernetes' rule: an empty effect matches every effect; an empty key with Exists, every
    taint; Exists ignores the value; Equal (the default) compares it."""
    if tol.get("effect") and tol["effect"] != taint.effect:
        return False
    exists = tol.get("operator", "Equal") == "Exists"
    if not tol.get("key"):
        return exists
    return tol["key"] == taint.key and (exists or (tol.get("value") or "") == taint.value)


def describe_selector(selector: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(selector.items()))


def _node_names(pairs: Iterable[Pair]) -> str:
    return names(sorted({n.name for n, _ in pairs}))
