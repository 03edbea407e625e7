"""The GPU view of ResourceSlices: what NVIDIA's DRA driver publishes, read from the slices the
e2e harness publishes for the DRA nodes of e2e/nodes.yaml."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from inferline.gpu.inventory import Host, node_host
from inferline.gpu.slices import (
    Device,
    DraInventory,
    Kind,
    SliceView,
    describe,
    describe_products,
    quantity_bytes,
    slice_view,
)
from tests.gpu.cluster import cluster_nodes, cluster_slices, device_class_names

SLICES = {s["spec"]["nodeName"]: s for s in cluster_slices()}
HOSTS = {name: node_host(n) for name, n in cluster_nodes().items()}
CLASSES = device_class_names()


def view(node: str, obj: dict[str, Any] | None = None) -> SliceView:
    v = slice_view(obj or SLICES[node])
    assert v is not None
    return v


def inventory(
    slices: list[dict[str, Any]] | None = None,
    classes: list[str] = CLASSES,
    hosts: dict[str, Host] | None = None,
) -> DraInventory:
    views = [v for v in map(slice_view, slices or list(SLICES.values())) if v]
    return DraInventory.of(views, classes, HOSTS | (hosts or {}))


def test_whole_gpus_with_the_drivers_attributes() -> None:
    nvl = view("dra-h100-nvl-0")
    assert (nvl.pool, nvl.generation, nvl.node) == ("dra-h100-nvl-0", 1, "dra-h100-nvl-0")
    assert [d.name for d in nvl.devices] == ["gpu-0", "gpu-1", "gpu-2", "gpu-3"]
    assert set(nvl.devices) == {
        Device(f"gpu-{i}", Kind.GPU, "NVIDIA H100 NVL", "Hopper", None, None, 95830)
        for i in range(4)
    }
    assert nvl.devices[0].product_label == "NVIDIA-H100-NVL"  # as GFD spells it


def test_static_mig_devices_name_their_profile_parent_and_memory() -> None:
    h200 = view("dra-h200-mig-0")
    assert {d.kind for d in h200.devices} == {Kind.MIG}  # a GPU cut into MIG is not whole
    by_parent: dict[str | None, list[str | None]] = {}
    for d in h200.devices:
        by_parent.setdefault(d.parent, []).append(d.profile)
    assert sorted(by_parent.values()) == [
        ["1g.18gb"] * 7,
        ["3g.71gb", "2g.35gb", "1g.35gb"],
    ]
    memory = {d.profile: d.memory_mib for d in h200.devices}
    assert memory == {"1g.18gb": 16896, "1g.35gb": 33792, "2g.35gb": 33792, "3g.71gb": 70144}
    assert all(d.product == "NVIDIA H200" and d.architecture == "Hopper" for d in h200.devices)


def test_qualified_attribute_names_are_the_drivers_and_other_domains_are_ignored() -> None:
    obj = copy.deepcopy(SLICES["dra-h100-nvl-0"])
    device = obj["spec"]["devices"][0]
    device["attributes"] = {
        "gpu.nvidia.com/type": {"string": "gpu"},
        "gpu.nvidia.com/productName": {"string": "NVIDIA L40S"},
        "resource.kubernetes.io/productName": {"string": "not the driver's"},
        "resource.kubernetes.io/pcieRoot": {"string": "pci0000:00"},
    }
    device["capacity"] = {"gpu.nvidia.com/memory": {"value": "46068Mi"}}
    d = view("", obj).devices[0]
    assert (d.kind, d.product, d.memory_mib) == (Kind.GPU, "NVIDIA L40S", 46068)


def test_devices_of_another_type_and_slices_of_another_driver_are_not_gpus() -> None:
    obj = copy.deepcopy(SLICES["dra-h100-nvl-0"])
    obj["spec"]["devices"][0]["attributes"]["type"] = {"string": "vfio"}
    assert len(view("", obj).devices) == 3
    obj["spec"]["driver"] = "compute-domain.nvidia.com"
    assert slice_view(obj) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("95830Mi", 95830 * 2**20),
        ("80Gi", 80 * 2**30),
        ("85899345920", 85899345920),
        ("1.5Gi", int(1.5 * 2**30)),
        ("40G", 40 * 10**9),
        ("", None),
        ("lots", None),
    ],
)
def test_capacity_quantities(text: str, expected: int | None) -> None:
    assert quantity_bytes(text) == expected


def test_the_inventory_joins_devices_with_their_nodes() -> None:
    inv = inventory()
    assert inv.available
    assert [n.name for n in inv.usable] == ["dra-h100-nvl-0", "dra-h200-mig-0"]
    assert inv.summary() == (
        "1g.18gb x7 on 1 node, 1g.35gb x1 on 1 node, 2g.35gb x1 on 1 node, "
        "3g.71gb x1 on 1 node, NVIDIA H100 NVL x4 on 1 node"
    )
    assert describe_products(inv.usable) == (
        "NVIDIA H100 NVL x4 on 1 node, NVIDIA H200 (MIG) x2 on 1 node"
    )


def test_only_a_pools_newest_generation_counts() -> None:
    old = copy.deepcopy(SLICES["dra-h100-nvl-0"])
    new = copy.deepcopy(old)
    new["metadata"]["name"] += "-2"
    new["spec"]["pool"]["generation"] = 2
    new["spec"]["devices"] = new["spec"]["devices"][:2]
    inv = inventory([old, new])
    assert [d.name for d in inv.nodes[0].devices] == ["gpu-0", "gpu-1"]


def test_nodes_that_take_no_pods_or_do_not_exist_are_not_counted_and_are_named() -> None:
    h = HOSTS["dra-h100-nvl-0"]
    cordoned = Host(h.name, h.taints, h.labels, h.ready, schedulable=False)
    stray = copy.deepcopy(SLICES["dra-h200-mig-0"])
    stray["spec"]["nodeName"] = stray["spec"]["pool"]["name"] = "gone-0"
    inv = inventory([*SLICES.values(), stray], hosts={"dra-h100-nvl-0": cordoned})
    assert [n.name for n in inv.usable] == ["dra-h200-mig-0"]
    assert inv.not_counted() == "; not counted: dra-h100-nvl-0 (cordoned), gone-0 (no such Node)"


def test_devices_whose_device_class_is_missing_cannot_be_claimed() -> None:
    inv = inventory(classes=["gpu.nvidia.com"])
    assert [n.name for n in inv.usable] == ["dra-h100-nvl-0"]
    assert inv.not_counted() == (
        "; no DeviceClass mig.nvidia.com, so its devices cannot be claimed"
    )
    assert inv.available


def test_dra_is_available_only_with_nvidias_classes_and_devices() -> None:
    assert not inventory(classes=[]).available
    assert not inventory(classes=["other.example.com"]).available
    assert not DraInventory.of([], CLASSES, HOSTS).available


def test_describe_orders_mig_profiles_smallest_first_then_products() -> None:
    inv = inventory()
    pairs = [(n, d) for n in inv.usable for d in reversed(n.devices)]
    assert describe(pairs).startswith("1g.18gb x7 on 1 node, 1g.35gb x1")
