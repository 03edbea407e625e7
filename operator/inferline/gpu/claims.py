"""Placement through Dynamic Resource Allocation: a request + the ResourceSlice inventory -> the
device request of each pod's ResourceClaim.

`place(request, dra)` is the DRA twin of `placement.place`, pure and with the same contract: a
`Placed` (allocation DRA, no limits, the claim's `DeviceClaim`: DeviceClass, count and CEL
selectors; the user's nodeSelector, NVIDIA's toleration where the candidate nodes are tainted) or
an `Unplaceable` saying why no node could host one replica even on an empty cluster, in the same
words as the device-plugin path ("no device of class mig.nvidia.com with profile 3g.40gb; the
cluster has 1g.10gb x14 on 2 nodes, ...").

The steps are the device plugin's, on devices instead of extended resources:
1. product: the device's `productName` in GFD's spelling (spaces as dashes) matches
   `placement.gpu.product` exactly as a node label would (exact, family, or tokens);
2. the device: `migProfile` -> MIG devices (class mig.nvidia.com) of that profile; `memory` ->
   any GPU or MIG device with at least that capacity `memory`; neither -> whole GPUs;
3. count: that many on one node (and MIG devices of one parent GPU: a pod's slices share a
   board); 4. the user's nodeSelector; 5. taints.
Then the choice for `memory`: the smallest MIG profile left, else the whole-GPU product with the
least memory that fits. Unlike extended resources, the claim's selectors say exactly which
devices qualify, so no node is pinned: the scheduler finds the devices itself.

The selectors name attributes of NVIDIA's driver and guard each with `in` (a CEL error on one
device would fail the claim's allocation on that node rather than skip the device).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import mig
from .inventory import names
from .placement import (
    ADDABLE,
    Allocation,
    DeviceClaim,
    GpuRequest,
    GpuStatus,
    Placed,
    Request,
    Unplaceable,
    describe_selector,
    memory_mib,
    product_matches,
    selects,
    tolerance,
    with_nvidia_tolerations,
)
from .slices import (
    DRIVER,
    GPU_CLASS,
    MIG_CLASS,
    Device,
    DraInventory,
    DraNode,
    Kind,
    describe,
    describe_products,
)

ATTRIBUTES = f"device.attributes['{DRIVER}']"
CAPACITY = f"device.capacity['{DRIVER}']"
SAME_PARENT = f"{DRIVER}/parentUUID"


@dataclass(frozen=True)
class Group:
    """Devices of one node that count together toward a request: all whole GPUs (or those of one
    product and size, when memory picks the size), or all MIG devices of one profile."""

    kind: Kind
    profile: str | None
    devices: tuple[Device, ...]

    @property
    def count(self) -> int:
        return len(self.devices)

    @property
    def per_parent(self) -> int:
        """The most MIG devices of this group cut from one GPU (whole GPUs: the count)."""
        if self.kind is Kind.GPU:
            return self.count
        parents: dict[str, int] = {}
        for d in self.devices:
            parents[d.parent or d.name] = parents.get(d.parent or d.name, 0) + 1
        return max(parents.values(), default=0)

    @property
    def memory_mib(self) -> int:
        return min((d.memory_mib or 0) for d in self.devices)

    @property
    def product(self) -> str | None:
        products = {d.product for d in self.devices}
        return products.pop() if len(products) == 1 else None


Pair = tuple[DraNode, Group]


def place(request: Request, dra: DraInventory) -> Placed | Unplaceable:
    """Decide the claim's device request and the pod's node constraints on this inventory."""
    gpu = request.gpu
    if gpu.mig_profile and gpu.memory:
        raise ValueError("set gpu.migProfile or gpu.memory, not both")
    need = memory_mib(gpu.memory) if gpu.memory else None
    usable = dra.usable

    def fail(reason: str) -> Unplaceable:
        return Unplaceable(reason + dra.not_counted())

    if not usable:
        return fail(
            f"the cluster has no GPUs through DRA: no Ready, schedulable node has a device of "
            f"driver {DRIVER} in its ResourceSlices"
        )
    devices = [(n, d) for n in usable for d in n.devices]
    # 1. product
    where = "the cluster has"
    if gpu.product:
        wanted = gpu.product
        devices = [(n, d) for n, d in devices if product_matches(wanted, d.product_label)]
        if not devices:
            return fail(
                f"no device has GPU product {wanted}; the cluster has {describe_products(usable)}"
            )
        where = f"devices of GPU product {wanted} are"
    # 2. the device
    unit = _unit(gpu)
    kept = [(n, d) for n, d in devices if _fits(d, gpu, need)]
    if not kept:
        return fail(f"{_no_device(devices, gpu, need)}; {where} {describe(devices)}")
    pairs = _groups(kept, need is not None)
    # 3. count: a pod's devices come from one node (MIG devices from one GPU)
    same_parent = gpu.count > 1 and any(g.kind is Kind.MIG for _, g in pairs)
    counted = [p for p in pairs if p[1].count >= gpu.count]
    if not counted:
        node, most = max(pairs, key=lambda p: (p[1].count, p[0].name))
        return fail(
            f"no single node has {gpu.count} x {unit} (a pod cannot span nodes); the most on one "
            f"node is {most.count} on {node.name}"
        )
    kept_pairs = [p for p in counted if p[1].kind is Kind.GPU or p[1].per_parent >= gpu.count]
    if not kept_pairs:
        node, most = max(counted, key=lambda p: (p[1].per_parent, p[0].name))
        return fail(
            f"no GPU has {gpu.count} x {unit} cut from it (a pod's MIG devices come from one "
            f"GPU); the most on one GPU is {most.per_parent} on {node.name}"
        )
    pairs = kept_pairs
    # 4. the user's nodeSelector (a node without its Node object was not counted as usable)
    selected = [p for p in pairs if p[0].host and selects(request.node_selector, p[0].host)]
    if not selected:
        return fail(
            f"no node that has {gpu.count} x {unit} matches nodeSelector "
            f"{describe_selector(request.node_selector)}; those that have them: "
            f"{_node_names(pairs)}"
        )
    pairs = selected
    # 5. taints: the user's tolerations, and NVIDIA's, which placement adds where needed
    admits = tolerance((*request.tolerations, ADDABLE))
    tolerated = [p for p in pairs if p[0].host and admits(p[0].host.taints)]
    if not tolerated:
        blocking = sorted({str(t) for n, _ in pairs if n.host for t in n.host.taints})
        return fail(
            f"every node that has {gpu.count} x {unit} has a taint the pipeline does not "
            f"tolerate ({', '.join(blocking)}): {_node_names(pairs)}"
        )
    chosen, note = _choose(tolerated, gpu)
    return _placed(request, chosen, note, same_parent)


def _unit(gpu: GpuRequest) -> str:
    """How messages name one device of the request."""
    if gpu.mig_profile:
        return f"device of class {MIG_CLASS} with profile {gpu.mig_profile}"
    if gpu.memory:
        return f"device of class {GPU_CLASS} or {MIG_CLASS} with {gpu.memory}"
    return f"device of class {GPU_CLASS}"


def _fits(d: Device, gpu: GpuRequest, need: float | None) -> bool:
    if gpu.mig_profile:
        return d.kind is Kind.MIG and d.profile == gpu.mig_profile
    if need is not None:
        return (d.memory_mib or 0) >= need
    return d.kind is Kind.GPU


def _no_device(devices: list[tuple[DraNode, Device]], gpu: GpuRequest, need: float | None) -> str:
    if gpu.mig_profile:
        return f"no device of class {MIG_CLASS} with profile {gpu.mig_profile}"
    if need is not None:
        _, largest = max(devices, key=lambda p: (p[1].memory_mib or 0, p[0].name))
        product = largest.product or "GPU"
        what = (
            f"a {largest.profile} MIG device of {product}"
            if largest.kind is Kind.MIG
            else f"a whole {product}"
        )
        return (
            f"no device of class {GPU_CLASS} or {MIG_CLASS} has {gpu.memory} ({need:.0f} MiB) of "
            f"memory; the largest is {what} ({largest.memory_mib or 'unknown'} MiB)"
        )
    return f"no device of class {GPU_CLASS} (whole GPUs)"


def _groups(kept: list[tuple[DraNode, Device]], by_size: bool) -> list[Pair]:
    """Per node: whole GPUs together (by product and memory when memory picks the size), MIG
    devices by profile."""
    groups: dict[tuple[str, Kind, object], list[Device]] = {}
    nodes: dict[str, DraNode] = {}
    for node, d in kept:
        if d.kind is Kind.MIG:
            key: object = d.profile
        else:
            key = (d.product, d.memory_mib) if by_size else None
        groups.setdefault((node.name, d.kind, key), []).append(d)
        nodes[node.name] = node
    return [
        (nodes[name], Group(kind, devs[0].profile if kind is Kind.MIG else None, tuple(devs)))
        for (name, kind, _), devs in groups.items()
    ]


def _choose(pairs: list[Pair], gpu: GpuRequest) -> tuple[list[Pair], str]:
    """The one kind of device to claim, from groups that all could host the request."""
    if gpu.memory is None:
        return pairs, ""
    migs = [p for p in pairs if p[1].kind is Kind.MIG]
    if migs:
        best = min(mig.profile_size_key(p[1].profile or "") for p in migs)
        chosen = [p for p in migs if mig.profile_size_key(p[1].profile or "") == best]
        profile = chosen[0][1].profile
        mib = min(g.memory_mib for _, g in chosen)
        return chosen, (
            f"memory {gpu.memory}: {profile} is the smallest MIG device that fits ({mib} MiB)"
        )
    _, smallest = min(pairs, key=lambda p: (p[1].memory_mib, p[1].product or ""))
    size = (smallest.product, smallest.memory_mib)
    chosen = [p for p in pairs if (p[1].product, p[1].memory_mib) == size]
    return chosen, (
        f"memory {gpu.memory}: no MIG device fits; a whole {smallest.product or 'GPU'} "
        f"({smallest.memory_mib} MiB) does"
    )


def _placed(request: Request, chosen: list[Pair], note: str, same_parent: bool) -> Placed:
    gpu = request.gpu
    kinds = {g.kind for _, g in chosen}
    kind = Kind.MIG if kinds == {Kind.MIG} else Kind.GPU
    products = sorted({d.product for _, g in chosen for d in g.devices if d.product})
    profiles = sorted({g.profile for _, g in chosen if g.profile})
    selectors: list[str] = []
    # Pin the product when asked, and when memory picked a whole GPU's size (else the scheduler
    # may hand out a bigger GPU than the smallest that fits).
    if products and (gpu.product or (gpu.memory and kind is Kind.GPU)):
        selectors.append(_product_selector(products))
    if kind is Kind.MIG and len(profiles) == 1:
        profile = _cel(profiles[0])
        selectors.append(f"'profile' in {ATTRIBUTES} && {ATTRIBUTES}.profile == {profile}")
    if gpu.memory:
        selectors.append(
            f"'memory' in {CAPACITY} && "
            f"{CAPACITY}.memory.compareTo(quantity({_cel(gpu.memory)})) >= 0"
        )
    claim = DeviceClaim(
        device_class=kind.device_class,
        count=gpu.count,
        selectors=tuple(selectors),
        match_attribute=SAME_PARENT if same_parent and kind is Kind.MIG else None,
    )
    hosts = {n.name: n.host for n, _ in chosen if n.host is not None}
    status = GpuStatus(
        resource=kind.device_class,
        count=gpu.count,
        strategy=None,
        product=products[0] if len(products) == 1 else gpu.product,
        allocation=Allocation.DRA,
        profile=profiles[0] if len(profiles) == 1 else None,
    )
    return Placed(
        Allocation.DRA,
        {},
        dict(request.node_selector),
        None,
        with_nvidia_tolerations(request.tolerations, hosts.values()),
        status,
        tuple(sorted(hosts)),
        note,
        claim,
    )


def _product_selector(products: Sequence[str]) -> str:
    attr = f"{ATTRIBUTES}.productName"
    test = (
        f"{attr} == {_cel(products[0])}"
        if len(products) == 1
        else f"{attr} in [{', '.join(_cel(p) for p in products)}]"
    )
    return f"'productName' in {ATTRIBUTES} && {test}"


def _cel(text: str) -> str:
    """A CEL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _node_names(pairs: Iterable[Pair]) -> str:
    return names(sorted({n.name for n, _ in pairs}))
