"""The GPU view of Nodes: what the device plugin and GFD advertise, read from e2e/nodes.yaml."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from inferline.gpu import mig
from inferline.gpu.inventory import (
    Inventory,
    NodeGpus,
    Offer,
    Strategy,
    Taint,
    index_entry,
    node_gpus,
)
from tests.gpu.cluster import cluster_nodes, gpu_node_names

NODES = cluster_nodes()
GPU_TAINT = Taint("nvidia.com/gpu", "present", "NoSchedule")


def view(name: str, node: dict[str, Any] | None = None) -> NodeGpus:
    v = node_gpus(node or NODES[name])
    assert v is not None, name
    return v


def changed(name: str, change: Any) -> dict[str, Any]:
    node = copy.deepcopy(NODES[name])
    change(node)
    return node


def test_whole_gpu_node() -> None:
    h100 = view("gpu-h100-0")
    assert h100.name == "gpu-h100-0"
    assert h100.product == "NVIDIA-H100-80GB-HBM3"
    assert h100.gpu_count == 8
    assert h100.offers == (Offer("nvidia.com/gpu", 8, Strategy.NONE, None, 81559),)
    assert h100.taints == (GPU_TAINT,)
    assert h100.ready and h100.schedulable and h100.usable


def test_untainted_node_has_no_taints() -> None:
    l4 = view("gpu-l4-0")
    assert l4.offers == (Offer("nvidia.com/gpu", 4, Strategy.NONE, None, 23034),)
    assert l4.taints == ()


def test_mixed_mig_node_offers_each_profile_with_gfd_memory() -> None:
    a100 = view("mig-a100-80gb-0")
    assert sorted(a100.offers, key=lambda o: o.resource) == [
        Offer("nvidia.com/mig-1g.10gb", 16, Strategy.MIXED, "1g.10gb", 9728),
        Offer("nvidia.com/mig-2g.20gb", 8, Strategy.MIXED, "2g.20gb", 19968),
        Offer("nvidia.com/mig-3g.40gb", 8, Strategy.MIXED, "3g.40gb", 40192),
    ]
    assert a100.product == "NVIDIA-A100-SXM4-80GB"


def test_unmigged_gpus_of_a_mixed_node_are_whole_gpus() -> None:
    node = changed(
        "mig-h100-80gb-0", lambda n: n["status"]["allocatable"].update({"nvidia.com/gpu": "2"})
    )
    whole = [o for o in view("x", node).offers if not o.is_mig]
    assert whole == [Offer("nvidia.com/gpu", 2, Strategy.NONE, None, 81559)]


def test_single_mig_node_offers_slices_as_nvidia_gpu() -> None:
    single = view("mig-a100-40gb-single-0")
    assert single.offers == (Offer("nvidia.com/gpu", 56, Strategy.SINGLE, "1g.5gb", 4864),)
    assert single.offers[0].is_mig


def test_labels_keep_what_a_node_selector_may_name_but_not_per_profile_mig_labels() -> None:
    labels = view("mig-h100-80gb-0").labels
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert labels["kubernetes.io/hostname"] == "mig-h100-80gb-0"
    assert labels["nvidia.com/mig.strategy"] == "mixed"
    assert not [k for k in labels if k.startswith("nvidia.com/mig-")]


def test_nodes_without_gpus_are_not_kept() -> None:
    assert node_gpus(NODES["cpu-0"]) is None
    assert {n.name for n in Inventory.from_nodes(NODES.values()).nodes} == gpu_node_names()


def test_zero_allocatable_is_no_offer() -> None:
    node = changed("gpu-l4-0", lambda n: n["status"]["allocatable"].update({"nvidia.com/gpu": "0"}))
    assert node_gpus(node) is None


def test_index_entry_is_empty_for_a_cpu_node_so_kopf_discards_it() -> None:
    assert index_entry(NODES["cpu-0"]) == {}
    assert index_entry(NODES["gpu-l4-0"]) == {"gpu-l4-0": view("gpu-l4-0")}


@pytest.mark.parametrize(
    ("change", "ready", "schedulable"),
    [
        (lambda n: n["spec"].update(unschedulable=True), True, False),
        (lambda n: n["status"]["conditions"][0].update(status="False"), False, True),
        (lambda n: n["status"]["conditions"][0].update(status="Unknown"), False, True),
        (lambda n: n["status"].pop("conditions"), False, True),
    ],
    ids=["cordoned", "NotReady", "Unknown", "no conditions yet"],
)
def test_ready_and_schedulable(change: Any, ready: bool, schedulable: bool) -> None:
    v = view("gpu-l4-0", changed("gpu-l4-0", change))
    assert (v.ready, v.schedulable, v.usable) == (ready, schedulable, False)


def test_only_taints_that_keep_pods_off_are_kept() -> None:
    taints = [
        {"key": "soft", "effect": "PreferNoSchedule"},
        {"key": "evict", "value": "yes", "effect": "NoExecute"},
        {"key": "dedicated", "effect": "NoSchedule"},
    ]
    node = changed("gpu-l4-0", lambda n: n["spec"].update(taints=taints))
    assert view("gpu-l4-0", node).taints == (
        Taint("evict", "yes", "NoExecute"),
        Taint("dedicated", "", "NoSchedule"),
    )


def test_memory_falls_back_to_the_profile_name_and_the_family_table() -> None:
    node = changed(
        "mig-a100-80gb-0", lambda n: n["metadata"]["labels"].pop("nvidia.com/mig-2g.20gb.memory")
    )
    offers = {o.profile: o for o in view("x", node).offers}
    assert offers["2g.20gb"].memory_mib == 19073  # 20 GB
    assert offers["1g.10gb"].memory_mib == 9728  # still GFD's

    whole = changed("gpu-h100-0", lambda n: n["metadata"]["labels"].pop("nvidia.com/gpu.memory"))
    assert view("x", whole).offers[0].memory_mib == 76293  # the H100-80GB family: 80 GB

    unknown = changed("gpu-l4-0", lambda n: n["metadata"]["labels"].pop("nvidia.com/gpu.memory"))
    assert view("x", unknown).offers[0].memory_mib is None  # L4 is in no MIG family


def test_media_extension_profile_resource_name() -> None:
    node = changed(
        "mig-h100-80gb-0",
        lambda n: n["status"]["allocatable"].update({"nvidia.com/mig-1g.10gb.me": "1"}),
    )
    me = [o for o in view("x", node).offers if o.resource == "nvidia.com/mig-1g.10gb.me"]
    assert [(o.profile, o.memory_mib) for o in me] == [("1g.10gb+me", 9536)]
    assert mig.resource_name("1g.10gb+me") == "nvidia.com/mig-1g.10gb.me"
    family = mig.family_for_product("A100-40GB")
    assert family is not None
    assert family.profile("1g.5gb+me") == mig.MigProfile("1g.5gb+me", 1, 5, 1)
    assert mig.MigProfile("1g.5gb+me", 1, 5, 1).resource_name == "nvidia.com/mig-1g.5gb.me"


def test_quantities_in_canonical_form() -> None:
    node = changed(
        "gpu-l4-0", lambda n: n["status"]["allocatable"].update({"nvidia.com/gpu": "2k"})
    )
    assert view("x", node).offers[0].count == 2000


def test_summary_counts_usable_nodes_and_says_what_is_not_counted() -> None:
    inv = Inventory.from_nodes(NODES.values())
    assert inv.summary() == (
        "mig-1g.5gb x56 on 1 node (single strategy), mig-1g.10gb x44 on 2 nodes, "
        "mig-2g.20gb x8 on 1 node, mig-3g.40gb x12 on 2 nodes, mig-4g.40gb x4 on 1 node, "
        "NVIDIA-H100-80GB-HBM3 x8 on 1 node, NVIDIA-L4 x4 on 1 node"
    )
    cordoned = changed("mig-h100-80gb-0", lambda n: n["spec"].update(unschedulable=True))
    inv = Inventory.from_nodes({**NODES, "mig-h100-80gb-0": cordoned}.values())
    assert inv.summary() == (
        "mig-1g.5gb x56 on 1 node (single strategy), mig-1g.10gb x16 on 1 node, "
        "mig-2g.20gb x8 on 1 node, mig-3g.40gb x8 on 1 node, "
        "NVIDIA-H100-80GB-HBM3 x8 on 1 node, NVIDIA-L4 x4 on 1 node"
        "; not counted: mig-h100-80gb-0 (cordoned)"
    )


def test_summary_without_gpus() -> None:
    assert Inventory.from_nodes([NODES["cpu-0"]]).summary() == "no GPUs"


def test_inventory_is_sorted_by_name_whatever_the_event_order() -> None:
    names = [n.name for n in Inventory.from_nodes(reversed(list(NODES.values()))).nodes]
    assert names == sorted(gpu_node_names())
