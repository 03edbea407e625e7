"""Placement through DRA against the e2e cluster's DRA nodes (e2e/nodes.yaml), per field that
matters: the DeviceClass, the CEL selectors, the count, and the words of every refusal."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from inferline.gpu.claims import place
from inferline.gpu.inventory import Host, Taint, node_host
from inferline.gpu.placement import (
    NVIDIA_TOLERATION,
    Allocation,
    Device,
    DeviceClaim,
    GpuRequest,
    GpuStatus,
    Placed,
    Request,
    Unplaceable,
)
from inferline.gpu.slices import DraInventory, SliceView, slice_view
from tests.gpu.cluster import cluster_nodes, cluster_slices, device_class_names

SLICES = cluster_slices()
HOSTS = {name: node_host(n) for name, n in cluster_nodes().items()}


def views(*slices: dict[str, Any]) -> list[SliceView]:
    return [v for v in map(slice_view, slices or SLICES) if v is not None]


CLUSTER = DraInventory.of(views(), device_class_names(), HOSTS)

ATTR = "device.attributes['gpu.nvidia.com']"
CAP = "device.capacity['gpu.nvidia.com']"
NVL = f"'productName' in {ATTR} && {ATTR}.productName == 'NVIDIA H100 NVL'"
H200 = f"'productName' in {ATTR} && {ATTR}.productName == 'NVIDIA H200'"


def profile(p: str) -> str:
    return f"'profile' in {ATTR} && {ATTR}.profile == '{p}'"


def memory(q: str) -> str:
    return f"'memory' in {CAP} && {CAP}.memory.compareTo(quantity('{q}')) >= 0"


def gpu(inventory: DraInventory = CLUSTER, **fields: Any) -> Placed | Unplaceable:
    selector = fields.pop("node_selector", {})
    tolerations = tuple(fields.pop("tolerations", ()))
    return place(Request(Device.GPU, GpuRequest(**fields), selector, tolerations), inventory)


def placed(inventory: DraInventory = CLUSTER, **fields: Any) -> Placed:
    result = gpu(inventory, **fields)
    assert isinstance(result, Placed), result
    return result


def reason(inventory: DraInventory = CLUSTER, **fields: Any) -> str:
    result = gpu(inventory, **fields)
    assert isinstance(result, Unplaceable), result
    return result.reason


def with_hosts(**hosts: Host) -> DraInventory:
    return DraInventory.of(views(), device_class_names(), HOSTS | hosts)


def retainted(name: str, *taints: Taint) -> Host:
    h = HOSTS[name]
    return Host(h.name, taints, h.labels, h.ready, h.schedulable)


# ---- whole GPUs ---------------------------------------------------------------------------------


def test_a_product_is_a_productname_selector_on_the_gpu_class() -> None:
    p = placed(product="H100")
    assert p.allocation is Allocation.DRA
    assert p.claim == DeviceClaim("gpu.nvidia.com", 1, (NVL,))
    assert p.limits == {}  # no extended resources with DRA
    assert (p.node_selector, p.affinity) == ({}, None)  # the claim selects the node
    assert p.tolerations == (NVIDIA_TOLERATION,)  # the DRA nodes carry the NVIDIA taint
    assert p.nodes == ("dra-h100-nvl-0",)
    assert p.gpu == GpuStatus(
        "gpu.nvidia.com", 1, None, "NVIDIA H100 NVL", allocation=Allocation.DRA
    )


@pytest.mark.parametrize("product", ["NVIDIA-H100-NVL", "H100-94GB", "NVL", "nvidia-h100-nvl"])
def test_a_product_matches_as_a_gfd_label_would(product: str) -> None:
    assert placed(product=product).claim == DeviceClaim("gpu.nvidia.com", 1, (NVL,))


def test_whole_gpus_without_a_product_select_nothing_but_the_class() -> None:
    p = placed()
    assert p.claim == DeviceClaim("gpu.nvidia.com", 1, ())
    assert p.gpu is not None and p.gpu.product == "NVIDIA H100 NVL"  # the only one there is


def test_count_is_the_requests_count_on_one_node() -> None:
    assert placed(count=4).claim == DeviceClaim("gpu.nvidia.com", 4, ())
    assert reason(count=5) == (
        "no single node has 5 x device of class gpu.nvidia.com (a pod cannot span nodes); "
        "the most on one node is 4 on dra-h100-nvl-0"
    )


def test_whole_gpus_of_a_product_only_cut_into_mig_devices() -> None:
    assert reason(product="H200") == (
        "no device of class gpu.nvidia.com (whole GPUs); devices of GPU product H200 are "
        "1g.18gb x7 on 1 node, 1g.35gb x1 on 1 node, 2g.35gb x1 on 1 node, 3g.71gb x1 on 1 node"
    )


def test_a_product_nobody_has() -> None:
    assert reason(product="NVIDIA-B200") == (
        "no device has GPU product NVIDIA-B200; the cluster has NVIDIA H100 NVL x4 on 1 node, "
        "NVIDIA H200 (MIG) x2 on 1 node"
    )


# ---- MIG ----------------------------------------------------------------------------------------


def test_a_mig_profile_is_a_profile_selector_on_the_mig_class() -> None:
    p = placed(mig_profile="3g.71gb")
    assert p.claim == DeviceClaim("mig.nvidia.com", 1, (profile("3g.71gb"),))
    assert p.gpu == GpuStatus(
        "mig.nvidia.com", 1, None, "NVIDIA H200", allocation=Allocation.DRA, profile="3g.71gb"
    )
    assert p.nodes == ("dra-h200-mig-0",)


def test_a_mig_profile_with_a_product_selects_both() -> None:
    p = placed(mig_profile="1g.18gb", product="H200-141GB")
    assert p.claim == DeviceClaim("mig.nvidia.com", 1, (H200, profile("1g.18gb")))


def test_a_profile_nobody_has_names_what_the_cluster_has() -> None:
    assert reason(mig_profile="3g.40gb") == (
        "no device of class mig.nvidia.com with profile 3g.40gb; the cluster has 1g.18gb x7 on "
        "1 node, 1g.35gb x1 on 1 node, 2g.35gb x1 on 1 node, 3g.71gb x1 on 1 node, "
        "NVIDIA H100 NVL x4 on 1 node"
    )


# ---- memory -------------------------------------------------------------------------------------


def test_memory_picks_the_smallest_mig_device_that_fits() -> None:
    p = placed(memory="20Gi")  # 1g.18gb has 16896 MiB; 1g.35gb and 2g.35gb 33792
    assert p.claim == DeviceClaim("mig.nvidia.com", 1, (profile("1g.35gb"), memory("20Gi")))
    assert p.note == "memory 20Gi: 1g.35gb is the smallest MIG device that fits (33792 MiB)"
    assert p.gpu is not None and p.gpu.profile == "1g.35gb"


def test_memory_that_fits_the_smallest_slice() -> None:
    p = placed(memory="16Gi")
    assert p.claim == DeviceClaim("mig.nvidia.com", 1, (profile("1g.18gb"), memory("16Gi")))


def test_memory_no_mig_device_fits_takes_the_smallest_whole_gpu_and_pins_its_product() -> None:
    p = placed(memory="80Gi")  # 3g.71gb has 70144 MiB
    assert p.claim == DeviceClaim("gpu.nvidia.com", 1, (NVL, memory("80Gi")))
    assert p.note == "memory 80Gi: no MIG device fits; a whole NVIDIA H100 NVL (95830 MiB) does"


def test_memory_nothing_has() -> None:
    assert reason(memory="200Gi") == (
        "no device of class gpu.nvidia.com or mig.nvidia.com has 200Gi (204800 MiB) of memory; "
        "the largest is a whole NVIDIA H100 NVL (95830 MiB); the cluster has 1g.18gb x7 on "
        "1 node, 1g.35gb x1 on 1 node, 2g.35gb x1 on 1 node, 3g.71gb x1 on 1 node, "
        "NVIDIA H100 NVL x4 on 1 node"
    )


def test_several_mig_devices_come_from_one_parent_gpu() -> None:
    p = placed(memory="16Gi", count=2)
    assert p.claim == DeviceClaim(
        "mig.nvidia.com", 2, (profile("1g.18gb"), memory("16Gi")), "gpu.nvidia.com/parentUUID"
    )
    # One 3g.71gb on each of two GPUs: enough on the node, not on one GPU.
    two = copy.deepcopy(next(s for s in SLICES if s["spec"]["nodeName"] == "dra-h200-mig-0"))
    devices = [
        d for d in two["spec"]["devices"] if d["attributes"]["profile"]["string"] == "3g.71gb"
    ]
    other = copy.deepcopy(devices[0])
    other["name"] += "-b"
    other["attributes"]["parentUUID"] = {"string": "GPU-other"}
    two["spec"]["devices"] = [devices[0], other]
    inv = DraInventory.of(views(two), device_class_names(), HOSTS)
    assert reason(inv, memory="60Gi", count=2) == (
        "no GPU has 2 x device of class gpu.nvidia.com or mig.nvidia.com with 60Gi cut from it "
        "(a pod's MIG devices come from one GPU); the most on one GPU is 1 on dra-h200-mig-0"
    )


# ---- where the pod may go -----------------------------------------------------------------------


def test_the_users_node_selector_is_kept_and_must_match() -> None:
    assert placed(node_selector={"nvidia.com/gpu.family": "hopper"}).node_selector == {
        "nvidia.com/gpu.family": "hopper"
    }
    assert reason(node_selector={"zone": "b"}) == (
        "no node that has 1 x device of class gpu.nvidia.com matches nodeSelector zone=b; "
        "those that have them: dra-h100-nvl-0"
    )


def test_an_untainted_dra_node_gets_no_toleration() -> None:
    inv = with_hosts(**{"dra-h100-nvl-0": retainted("dra-h100-nvl-0")})
    assert placed(inv).tolerations == ()


def test_other_taints_must_be_tolerated_by_the_user() -> None:
    team = Taint("team", "a", "NoSchedule")
    inv = with_hosts(**{"dra-h100-nvl-0": retainted("dra-h100-nvl-0", team)})
    assert reason(inv) == (
        "every node that has 1 x device of class gpu.nvidia.com has a taint the pipeline does "
        "not tolerate (team=a:NoSchedule): dra-h100-nvl-0"
    )
    user = {"key": "team", "operator": "Exists"}
    assert placed(inv, tolerations=[user]).tolerations == (user,)


def test_nodes_that_take_no_pods_are_named() -> None:
    down = HOSTS["dra-h200-mig-0"]
    inv = with_hosts(**{"dra-h200-mig-0": Host(down.name, down.taints, down.labels, False, True)})
    assert reason(inv, mig_profile="1g.18gb").endswith(
        "; the cluster has NVIDIA H100 NVL x4 on 1 node; not counted: dra-h200-mig-0 (NotReady)"
    )


def test_without_the_mig_device_class_mig_devices_cannot_be_claimed() -> None:
    inv = DraInventory.of(views(), ["gpu.nvidia.com"], HOSTS)
    assert reason(inv, mig_profile="1g.18gb") == (
        "no device of class mig.nvidia.com with profile 1g.18gb; the cluster has NVIDIA H100 NVL "
        "x4 on 1 node; no DeviceClass mig.nvidia.com, so its devices cannot be claimed"
    )


def test_no_usable_dra_node() -> None:
    assert reason(DraInventory.of([], device_class_names(), HOSTS)) == (
        "the cluster has no GPUs through DRA: no Ready, schedulable node has a device of driver "
        "gpu.nvidia.com in its ResourceSlices"
    )


def test_product_names_are_quoted_as_cel_strings() -> None:
    odd = copy.deepcopy(next(s for s in SLICES if s["spec"]["nodeName"] == "dra-h100-nvl-0"))
    for d in odd["spec"]["devices"]:
        d["attributes"]["productName"] = {"string": "NVIDIA it's-H100"}
    inv = DraInventory.of(views(odd), device_class_names(), HOSTS)
    claim = placed(inv, product="H100").claim
    assert claim is not None
    (selector,) = claim.selectors
    assert selector.endswith(".productName == 'NVIDIA it\\'s-H100'")
