"""Which way a pipeline gets its GPUs, on the e2e cluster (device-plugin and DRA nodes both)."""

from __future__ import annotations

from typing import Any

from inferline.gpu.allocation import place
from inferline.gpu.inventory import Inventory, node_host
from inferline.gpu.placement import (
    Allocation,
    Device,
    GpuRequest,
    Mode,
    Placed,
    Request,
    Unplaceable,
)
from inferline.gpu.slices import DraInventory, slice_view
from tests.gpu.cluster import cluster_nodes, cluster_slices, device_class_names

NODES = cluster_nodes()
PLUGIN = Inventory.from_nodes(NODES.values())
HOSTS = {name: node_host(n) for name, n in NODES.items()}
DRA = DraInventory.of(
    [v for v in map(slice_view, cluster_slices()) if v], device_class_names(), HOSTS
)
NO_DRA = DraInventory.of([], [], HOSTS)


def gpu(dra: DraInventory = DRA, plugin: Inventory = PLUGIN, **fields: Any) -> Placed | Unplaceable:
    return place(Request(Device.GPU, GpuRequest(**fields)), plugin, dra)


def placed(dra: DraInventory = DRA, plugin: Inventory = PLUGIN, **fields: Any) -> Placed:
    result = gpu(dra, plugin, **fields)
    assert isinstance(result, Placed), result
    return result


def test_auto_uses_dra_where_the_cluster_has_it() -> None:
    p = placed(product="H100")  # DRA's H100 NVL, though the device plugin has H100s too
    assert p.allocation is Allocation.DRA and p.nodes == ("dra-h100-nvl-0",)
    assert p.limits == {} and p.claim is not None


def test_auto_without_dra_is_the_device_plugin() -> None:
    p = placed(NO_DRA, product="H100")
    assert p.allocation is Allocation.DEVICE_PLUGIN
    assert p.limits == {"nvidia.com/gpu": "1"} and p.claim is None


def test_auto_on_a_mixed_cluster_takes_the_device_plugin_for_what_only_it_has() -> None:
    p = placed(product="NVIDIA-H100-80GB-HBM3", count=2)
    assert p.allocation is Allocation.DEVICE_PLUGIN
    assert p.nodes == ("gpu-h100-0",) and p.limits == {"nvidia.com/gpu": "2"}


def test_auto_when_neither_can_host_says_why_for_both() -> None:
    result = gpu(mig_profile="7g.80gb")
    assert isinstance(result, Unplaceable)
    assert result.reason.startswith(
        "DRA: no device of class mig.nvidia.com with profile 7g.80gb; the cluster has "
    )
    assert "; device plugin: no node offers nvidia.com/mig-7g.80gb; the cluster has " in (
        result.reason
    )


def test_device_plugin_is_used_when_asked_even_where_dra_could_host() -> None:
    p = placed(product="H100", allocation=Mode.DEVICE_PLUGIN)
    assert p.allocation is Allocation.DEVICE_PLUGIN and p.nodes == ("gpu-h100-0",)


def test_dra_is_used_when_asked_and_never_falls_back() -> None:
    assert placed(product="H100", allocation=Mode.DRA).allocation is Allocation.DRA
    result = gpu(product="NVIDIA-H100-80GB-HBM3", allocation=Mode.DRA)
    assert isinstance(result, Unplaceable)
    assert result.reason.startswith("no device has GPU product NVIDIA-H100-80GB-HBM3;")


def test_dra_asked_where_the_cluster_has_no_dra_driver() -> None:
    result = gpu(NO_DRA, allocation=Mode.DRA)
    assert isinstance(result, Unplaceable)
    assert result.reason.startswith(
        "allocation dra: the cluster has no NVIDIA DRA driver (DeviceClass gpu.nvidia.com or "
        "mig.nvidia.com and ResourceSlices of driver gpu.nvidia.com)"
    )


def test_a_cpu_pipeline_gets_no_gpu_either_way() -> None:
    for mode in Mode:
        p = place(Request(Device.CPU, GpuRequest(allocation=mode)), PLUGIN, DRA)
        assert isinstance(p, Placed)
        assert (p.allocation, p.limits, p.claim) == (Allocation.NONE, {}, None)
