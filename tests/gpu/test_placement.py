"""Placement against the e2e cluster's node shapes (e2e/nodes.yaml), per field that matters."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from inferline.gpu.inventory import Inventory, NodeGpus, Offer, Strategy, Taint
from inferline.gpu.mig import profile_size_key
from inferline.gpu.placement import (
    NVIDIA_TOLERATION,
    Allocation,
    Device,
    GpuRequest,
    GpuStatus,
    Placed,
    Request,
    Unplaceable,
    memory_mib,
    place,
    product_matches,
)
from tests.gpu.cluster import cluster_nodes

NODES = cluster_nodes()
CLUSTER = Inventory.from_nodes(NODES.values())
H100 = "NVIDIA-H100-80GB-HBM3"
A100_80 = "NVIDIA-A100-SXM4-80GB"
SINGLE_1G5 = "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"
NOT_SINGLE = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {
                            "key": "nvidia.com/mig.strategy",
                            "operator": "NotIn",
                            "values": ["single"],
                        }
                    ]
                }
            ]
        }
    }
}


def gpu(inventory: Inventory = CLUSTER, **fields: Any) -> Placed | Unplaceable:
    selector = fields.pop("node_selector", {})
    tolerations = tuple(fields.pop("tolerations", ()))
    return place(Request(Device.GPU, GpuRequest(**fields), selector, tolerations), inventory)


def placed(inventory: Inventory = CLUSTER, **fields: Any) -> Placed:
    result = gpu(inventory, **fields)
    assert isinstance(result, Placed), result
    return result


def reason(inventory: Inventory = CLUSTER, **fields: Any) -> str:
    result = gpu(inventory, **fields)
    assert isinstance(result, Unplaceable), result
    return result.reason


def inventory(nodes: Iterable[dict[str, Any]]) -> Inventory:
    return Inventory.from_nodes(nodes)


def changed(name: str, change: Any) -> dict[str, Any]:
    node = copy.deepcopy(NODES[name])
    change(node)
    return node


def in_affinity(products: list[str]) -> dict[str, Any]:
    expr = {"key": "nvidia.com/gpu.product", "operator": "In", "values": products}
    terms = [{"matchExpressions": [expr]}]
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
        }
    }


# ---- whole GPUs ---------------------------------------------------------------------------------


def test_whole_gpu_by_product_pins_the_product_and_tolerates_the_nvidia_taint() -> None:
    p = placed(product=H100)
    assert p.allocation is Allocation.DEVICE_PLUGIN
    assert p.limits == {"nvidia.com/gpu": "1"}
    assert p.node_selector == {"nvidia.com/gpu.product": H100}
    assert p.affinity is None
    assert p.tolerations == (NVIDIA_TOLERATION,)
    assert p.nodes == ("gpu-h100-0",)  # not mig-h100-80gb-0: same product, but only MIG slices
    assert p.gpu == GpuStatus("nvidia.com/gpu", 1, Strategy.NONE, H100)
    assert p.note == ""


def test_untainted_l4_gets_no_toleration() -> None:
    p = placed(product="NVIDIA-L4")
    assert p.tolerations == ()
    assert p.nodes == ("gpu-l4-0",)
    assert p.node_selector == {"nvidia.com/gpu.product": "NVIDIA-L4"}


def test_a_short_product_name_matches_by_tokens() -> None:
    assert placed(product="L4").node_selector == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert placed(product="L4").gpu == GpuStatus("nvidia.com/gpu", 1, Strategy.NONE, "NVIDIA-L4")


def test_whole_gpu_without_product_keeps_off_single_strategy_slices() -> None:
    p = placed()
    assert p.nodes == ("gpu-h100-0", "gpu-l4-0")  # not the single node's nvidia.com/gpu slices
    assert p.node_selector == {}
    assert p.affinity == NOT_SINGLE
    assert p.tolerations == (NVIDIA_TOLERATION,)  # gpu-h100-0 carries the taint
    assert p.gpu == GpuStatus("nvidia.com/gpu", 1, Strategy.NONE, None)


def test_count_8_fits_on_one_node() -> None:
    p = placed(count=8)
    assert p.limits == {"nvidia.com/gpu": "8"}
    assert p.nodes == ("gpu-h100-0",)
    assert p.gpu is not None and p.gpu.count == 8


def test_count_9_exceeds_every_node() -> None:
    assert reason(count=9) == (
        "no single node offers 9 x nvidia.com/gpu (a pod cannot span nodes); "
        "the most on one node is 8 x nvidia.com/gpu on gpu-h100-0"
    )


def test_count_5_of_l4_exceeds_the_l4_node() -> None:
    assert "the most on one node is 4 x nvidia.com/gpu on gpu-l4-0" in reason(count=5, product="L4")


# ---- MIG --------------------------------------------------------------------------------------


def test_mig_mixed_profile_offered_by_a100_and_h100_nodes() -> None:
    p = placed(mig_profile="1g.10gb")
    assert p.limits == {"nvidia.com/mig-1g.10gb": "1"}
    assert p.nodes == ("mig-a100-80gb-0", "mig-h100-80gb-0")
    assert p.node_selector == {}  # the resource name says it all
    assert p.affinity is None
    assert p.tolerations == (NVIDIA_TOLERATION,)
    assert p.gpu == GpuStatus("nvidia.com/mig-1g.10gb", 1, Strategy.MIXED, None, profile="1g.10gb")


def test_mig_mixed_profile_narrowed_by_product() -> None:
    p = placed(mig_profile="1g.10gb", product="A100-80GB")
    assert p.nodes == ("mig-a100-80gb-0",)
    assert p.node_selector == {"nvidia.com/gpu.product": A100_80}
    assert p.gpu == GpuStatus(
        "nvidia.com/mig-1g.10gb", 1, Strategy.MIXED, A100_80, profile="1g.10gb"
    )


def test_a_product_matching_several_labels_is_required_affinity_in() -> None:
    p = placed(mig_profile="1g.10gb", product="80GB")
    assert p.nodes == ("mig-a100-80gb-0", "mig-h100-80gb-0")
    assert p.node_selector == {}
    assert p.affinity == in_affinity([A100_80, H100])
    assert p.gpu is not None and p.gpu.product == "80GB"  # what was asked: no single label


def test_a_family_name_matches_every_form_factor_of_the_family() -> None:
    pcie = changed(
        "mig-a100-80gb-0",
        lambda n: (
            n["metadata"].update(name="mig-a100-pcie-0"),
            n["metadata"]["labels"].update({"nvidia.com/gpu.product": "NVIDIA-A100-80GB-PCIe"}),
        ),
    )
    p = placed(inventory([*NODES.values(), pcie]), mig_profile="2g.20gb", product="A100-80GB")
    assert p.nodes == ("mig-a100-80gb-0", "mig-a100-pcie-0")
    assert p.affinity == in_affinity(["NVIDIA-A100-80GB-PCIe", A100_80])


def test_mig_single_slices_are_nvidia_gpu_on_the_single_product_label() -> None:
    p = placed(mig_profile="1g.5gb")
    assert p.limits == {"nvidia.com/gpu": "1"}
    assert p.node_selector == {"nvidia.com/gpu.product": SINGLE_1G5}
    assert p.affinity is None
    assert p.nodes == ("mig-a100-40gb-single-0",)
    assert p.gpu == GpuStatus("nvidia.com/gpu", 1, Strategy.SINGLE, SINGLE_1G5, profile="1g.5gb")


def test_single_slices_match_the_product_without_its_mig_suffix() -> None:
    p = placed(mig_profile="1g.5gb", product="NVIDIA-A100-SXM4-40GB")
    assert p.nodes == ("mig-a100-40gb-single-0",)


def test_a_profile_offered_both_ways_goes_to_the_mixed_resource() -> None:
    mixed_5gb = changed(
        "mig-a100-80gb-0",
        lambda n: n["status"]["allocatable"].update({"nvidia.com/mig-1g.5gb": "7"}),
    )
    p = placed(inventory([*NODES.values(), mixed_5gb]), mig_profile="1g.5gb")
    assert p.limits == {"nvidia.com/mig-1g.5gb": "1"}
    assert p.gpu is not None and p.gpu.strategy is Strategy.MIXED


def test_media_extension_profile_renders_the_device_plugins_resource_name() -> None:
    me = changed(
        "mig-h100-80gb-0",
        lambda n: n["status"]["allocatable"].update({"nvidia.com/mig-1g.10gb.me": "1"}),
    )
    p = placed(inventory([me]), mig_profile="1g.10gb+me")
    assert p.limits == {"nvidia.com/mig-1g.10gb.me": "1"}


def test_a_profile_nobody_has() -> None:
    assert reason(mig_profile="7g.80gb") == (
        "no node offers nvidia.com/mig-7g.80gb; the cluster has "
        "mig-1g.5gb x56 on 1 node (single strategy), mig-1g.10gb x44 on 2 nodes, "
        "mig-2g.20gb x8 on 1 node, mig-3g.40gb x12 on 2 nodes, mig-4g.40gb x4 on 1 node, "
        "NVIDIA-H100-80GB-HBM3 x8 on 1 node, NVIDIA-L4 x4 on 1 node"
    )


def test_a_profile_the_product_lacks_names_what_that_product_has() -> None:
    assert reason(mig_profile="4g.40gb", product="A100-80GB") == (
        "no node offers nvidia.com/mig-4g.40gb; nodes with GPU product A100-80GB have "
        "mig-1g.10gb x16 on 1 node, mig-2g.20gb x8 on 1 node, mig-3g.40gb x8 on 1 node"
    )


def test_whole_gpu_of_a_product_only_cut_into_mig_slices() -> None:
    assert reason(product="A100-80GB") == (
        "no node offers whole GPUs (nvidia.com/gpu); nodes with GPU product A100-80GB have "
        "mig-1g.10gb x16 on 1 node, mig-2g.20gb x8 on 1 node, mig-3g.40gb x8 on 1 node"
    )


# ---- memory -> the smallest device that fits ---------------------------------------------------


@pytest.mark.parametrize(
    ("memory", "resource", "nodes", "note"),
    [
        # 2g.20gb has 19968 MiB < 20 GiB: the next size up.
        (
            "20Gi",
            "nvidia.com/mig-3g.40gb",
            ("mig-a100-80gb-0", "mig-h100-80gb-0"),
            "memory 20Gi: 3g.40gb is the smallest MIG slice that fits (40192 MiB)",
        ),
        (
            "19G",
            "nvidia.com/mig-2g.20gb",
            ("mig-a100-80gb-0",),
            "memory 19G: 2g.20gb is the smallest MIG slice that fits (19968 MiB)",
        ),
        (
            "9Gi",
            "nvidia.com/mig-1g.10gb",
            ("mig-a100-80gb-0", "mig-h100-80gb-0"),
            "memory 9Gi: 1g.10gb is the smallest MIG slice that fits (9728 MiB)",
        ),
        (
            "4Gi",
            "nvidia.com/gpu",
            ("mig-a100-40gb-single-0",),
            "memory 4Gi: 1g.5gb is the smallest MIG slice that fits (4864 MiB)",
        ),
    ],
)
def test_memory_picks_the_smallest_mig_profile_that_fits(
    memory: str, resource: str, nodes: tuple[str, ...], note: str
) -> None:
    p = placed(memory=memory)
    assert p.limits == {resource: "1"}
    assert p.nodes == nodes
    assert p.note == note


def test_memory_between_two_products_sizes_of_one_profile_pins_the_product() -> None:
    # 1g.10gb is 9728 MiB on the A100 and 9856 MiB on the H100: 9800 MiB fits the H100 only.
    p = placed(memory="9800Mi")
    assert p.limits == {"nvidia.com/mig-1g.10gb": "1"}
    assert p.nodes == ("mig-h100-80gb-0",)
    assert p.node_selector == {"nvidia.com/gpu.product": H100}


def test_memory_no_mig_slice_fits_takes_a_whole_gpu_and_says_so() -> None:
    p = placed(memory="45Gi")
    assert p.limits == {"nvidia.com/gpu": "1"}
    assert p.nodes == ("gpu-h100-0",)
    assert p.node_selector == {"nvidia.com/gpu.product": H100}
    assert p.affinity is None
    assert (
        p.note == "memory 45Gi: no MIG slice fits; a whole NVIDIA-H100-80GB-HBM3 (81559 MiB) does"
    )
    assert p.gpu == GpuStatus("nvidia.com/gpu", 1, Strategy.NONE, H100)


def test_memory_on_whole_gpus_only_takes_the_smallest_that_fits() -> None:
    whole = inventory([NODES["gpu-h100-0"], NODES["gpu-l4-0"]])
    p = placed(whole, memory="16Gi")
    assert p.nodes == ("gpu-l4-0",)
    assert p.node_selector == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert p.tolerations == ()
    assert placed(whole, memory="23Gi").nodes == ("gpu-h100-0",)  # 23552 MiB > the L4's 23034


def test_memory_nothing_has() -> None:
    assert reason(memory="100Gi").startswith(
        "no MIG slice or GPU has 100Gi (102400 MiB) of memory; the largest is a whole "
        "NVIDIA-H100-80GB-HBM3 (81559 MiB); the cluster has mig-1g.5gb x56"
    )


def test_memory_with_a_product() -> None:
    p = placed(memory="10Gi", product="H100")
    assert p.limits == {"nvidia.com/mig-3g.40gb": "1"}  # 1g.10gb has 9856 MiB < 10 GiB
    assert p.nodes == ("mig-h100-80gb-0",)
    assert p.node_selector == {"nvidia.com/gpu.product": H100}


@pytest.mark.parametrize(
    ("quantity", "mib"),
    [("10Gi", 10240), ("20G", 20e9 / 2**20), ("512Mi", 512), ("1.5Ti", 1.5 * 2**20), ("2048Ki", 2)],
)
def test_memory_quantities(quantity: str, mib: float) -> None:
    assert memory_mib(quantity) == pytest.approx(mib)


@pytest.mark.parametrize("bad", ["ten", "10GB", "10 Gi", ""])
def test_bad_memory_quantity_names_the_field(bad: str) -> None:
    with pytest.raises(ValueError, match=r"^gpu\.memory: "):
        memory_mib(bad)


# ---- products -----------------------------------------------------------------------------------


def test_a_product_nobody_has() -> None:
    assert reason(product="NVIDIA-B200") == (
        "no node has GPU product NVIDIA-B200; the cluster has "
        "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb x56 on 1 node, NVIDIA-A100-SXM4-80GB x8 on 1 node, "
        "NVIDIA-H100-80GB-HBM3 x16 on 2 nodes, NVIDIA-L4 x4 on 1 node"
    )


@pytest.mark.parametrize(
    ("wanted", "label", "matches"),
    [
        (H100, H100, True),
        ("nvidia-h100-80gb-hbm3", H100, True),
        ("H100-80GB", H100, True),  # family name
        ("H100-94GB", "NVIDIA-H100-NVL", True),  # family name, no 94GB token in the label
        ("H100-80GB", "NVIDIA-H100-NVL", False),
        ("H200-141GB", "NVIDIA-H200", True),
        ("H200", "NVIDIA-GH200-480GB", False),
        ("A100-40GB", SINGLE_1G5, True),
        ("NVIDIA-A100-SXM4-40GB", SINGLE_1G5, True),
        ("A100-80GB", SINGLE_1G5, False),
        ("L4", "NVIDIA-L4", True),
        ("L4", "NVIDIA-L40S", False),
        ("B200", H100, False),
        ("L4", None, False),
    ],
)
def test_product_matches(wanted: str, label: str | None, matches: bool) -> None:
    assert product_matches(wanted, label) is matches


# ---- CPU, an empty cluster, nodes that take no pods ----------------------------------------------


def test_cpu_pipeline_gets_no_gpu_and_ignores_gpu_fields() -> None:
    tol = {"key": "dedicated", "operator": "Exists"}
    request = Request(
        Device.CPU, GpuRequest(count=9, product="NVIDIA-B200"), {"pool": "cpu"}, (tol,)
    )
    p = place(request, CLUSTER)
    assert p == Placed(Allocation.NONE, {}, {"pool": "cpu"}, None, (tol,), None)
    assert place(request, inventory([])) == p  # and needs no GPU in the cluster


def test_a_cluster_without_gpus() -> None:
    cpus = inventory([NODES["cpu-0"], NODES["cpu-1"]])
    assert reason(cpus) == (
        "the cluster has no GPUs: no Ready, schedulable node offers nvidia.com/gpu or "
        "nvidia.com/mig-*"
    )


def test_gpu_nodes_that_take_no_pods_are_not_counted_and_are_named() -> None:
    down = inventory(
        [
            changed("gpu-h100-0", lambda n: n["spec"].update(unschedulable=True)),
            changed("gpu-l4-0", lambda n: n["status"]["conditions"][0].update(status="False")),
            NODES["cpu-0"],
        ]
    )
    assert reason(down) == (
        "the cluster has no GPUs: no Ready, schedulable node offers nvidia.com/gpu or "
        "nvidia.com/mig-*; not counted: gpu-h100-0 (cordoned), gpu-l4-0 (NotReady)"
    )
    cordoned = {
        **NODES,
        "gpu-h100-0": changed("gpu-h100-0", lambda n: n["spec"].update(unschedulable=True)),
    }
    assert reason(inventory(cordoned.values()), product=H100) == (
        "no node offers whole GPUs (nvidia.com/gpu); nodes with GPU product "
        "NVIDIA-H100-80GB-HBM3 have mig-1g.10gb x28 on 1 node, mig-3g.40gb x4 on 1 node, "
        "mig-4g.40gb x4 on 1 node; not counted: gpu-h100-0 (cordoned)"
    )


# ---- the user's nodeSelector and tolerations ------------------------------------------------


def test_user_node_selector_narrows_and_is_kept() -> None:
    p = placed(node_selector={"nvidia.com/gpu.machine": "DGX-H100"})
    assert p.nodes == ("gpu-h100-0",)
    assert p.node_selector == {"nvidia.com/gpu.machine": "DGX-H100"}


def test_user_node_selector_nobody_matches() -> None:
    assert reason(node_selector={"disk": "ssd"}) == (
        "no node that offers 1 x nvidia.com/gpu matches nodeSelector disk=ssd; "
        "those that offer it: gpu-h100-0, gpu-l4-0"
    )


def test_user_tolerations_are_kept_and_nvidias_not_duplicated() -> None:
    own = {"key": "nvidia.com/gpu", "operator": "Exists"}
    assert placed(product=H100, tolerations=[own]).tolerations == (own,)
    everything = {"operator": "Exists"}
    assert placed(product=H100, tolerations=[everything]).tolerations == (everything,)
    other = {"key": "team", "operator": "Equal", "value": "a", "effect": "NoSchedule"}
    assert placed(product=H100, tolerations=[other]).tolerations == (other, NVIDIA_TOLERATION)


def test_a_noexecute_gpu_taint_gets_its_own_toleration() -> None:
    node = changed(
        "gpu-l4-0",
        lambda n: n["spec"].update(taints=[{"key": "nvidia.com/gpu", "effect": "NoExecute"}]),
    )
    p = placed(inventory([node]))
    assert p.tolerations == ({**NVIDIA_TOLERATION, "effect": "NoExecute"},)


def test_other_taints_must_be_tolerated_by_the_user() -> None:
    tainted = changed(
        "gpu-l4-0",
        lambda n: n["spec"].update(taints=[{"key": "team", "value": "a", "effect": "NoSchedule"}]),
    )
    nodes = {**NODES, "gpu-l4-0": tainted}
    assert reason(inventory(nodes.values()), product="L4") == (
        "every node that offers 1 x nvidia.com/gpu has a taint the pipeline does not "
        "tolerate (team=a:NoSchedule): gpu-l4-0"
    )
    wrong_value = {"key": "team", "operator": "Equal", "value": "b"}
    assert isinstance(
        gpu(inventory(nodes.values()), product="L4", tolerations=[wrong_value]), Unplaceable
    )
    tol = {"key": "team", "operator": "Equal", "value": "a", "effect": "NoSchedule"}
    p = placed(inventory(nodes.values()), product="L4", tolerations=[tol])
    assert p.nodes == ("gpu-l4-0",)
    assert p.tolerations == (tol,)  # the L4 node has no NVIDIA taint


def test_both_profile_and_memory_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not both"):
        gpu(mig_profile="1g.10gb", memory="10Gi")


# ---- properties over generated clusters --------------------------------------------------------
#
# Nodes shaped as the device plugin and GFD would report them: per product its real memory and
# per-profile MIG memory. An oracle, written independently of placement's steps, says which nodes
# could host a request; placement must agree, pick the smallest device that fits, and render
# constraints under which the scheduler would admit exactly the nodes it reports.

CATALOG: dict[str, tuple[int, dict[str, int]]] = {
    H100: (81559, {"1g.10gb": 9856, "2g.20gb": 20096, "3g.40gb": 40320, "4g.40gb": 40320}),
    A100_80: (81920, {"1g.10gb": 9728, "2g.20gb": 19968, "3g.40gb": 40192, "7g.80gb": 80640}),
    "NVIDIA-A100-SXM4-40GB": (40960, {"1g.5gb": 4864, "2g.10gb": 9984, "3g.20gb": 19968}),
    "NVIDIA-L4": (23034, {}),
}
PROFILES = sorted({p for _, profiles in CATALOG.values() for p in profiles} | {"4g.20gb"})
MEMORIES = ["4Gi", "9Gi", "10Gi", "19G", "20Gi", "30Gi", "45Gi", "79Gi", "100Gi"]
# Between the A100's and the H100's size of one profile (1g.10gb, 2g.20gb): only one fits.
BETWEEN = ["9800Mi", "19.6Gi"]
# Names matching several labels ("NVIDIA" matches all) make placement render affinity `In`.
SEVERAL = ["NVIDIA", "A100", "80GB"]
PRODUCTS = [*CATALOG, *SEVERAL, "H100-80GB", "A100-40GB", "L4", "NVIDIA-B200"]


@st.composite
def node_dicts(draw: st.DrawFn, name: str) -> dict[str, Any]:
    product = draw(st.sampled_from(sorted(CATALOG)))
    memory, profiles = CATALOG[product]
    strategy = draw(st.sampled_from(["none", "mixed", "single"] if profiles else ["none"]))
    labels = {"kubernetes.io/hostname": name, "zone": draw(st.sampled_from("ab"))}
    labels |= {"nvidia.com/mig.strategy": strategy, "nvidia.com/gpu.memory": str(memory)}
    allocatable: dict[str, str] = {"cpu": "64"}
    if strategy in ("none", "mixed") and (strategy == "none" or draw(st.booleans())):
        allocatable["nvidia.com/gpu"] = str(draw(st.integers(1, 8)))
    if strategy == "mixed":
        for p in draw(st.sets(st.sampled_from(sorted(profiles)), min_size=1)):
            allocatable[f"nvidia.com/mig-{p}"] = str(draw(st.integers(1, 16)))
            labels[f"nvidia.com/mig-{p}.memory"] = str(profiles[p])
    if strategy == "single":
        p = draw(st.sampled_from(sorted(profiles)))
        allocatable["nvidia.com/gpu"] = str(draw(st.integers(1, 56)))
        product = f"{product}-MIG-{p}"
        labels["nvidia.com/gpu.memory"] = str(profiles[p])
    labels["nvidia.com/gpu.product"] = product
    taints = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    team = [{"key": "team", "value": "a", "effect": "NoSchedule"}]
    taints = draw(st.sampled_from([[], [], taints, taints, team]))
    ready = draw(st.sampled_from(["True"] * 5 + ["False"]))
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints, "unschedulable": draw(st.sampled_from([False] * 5 + [True]))},
        "status": {"allocatable": allocatable, "conditions": [{"type": "Ready", "status": ready}]},
    }


@st.composite
def clusters(draw: st.DrawFn) -> Inventory:
    n = draw(st.integers(0, 8))
    return inventory([draw(node_dicts(f"node-{i}")) for i in range(n)])


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Inventory, Request]:
    """A cluster and a request, drawn mostly from what that cluster offers so many succeed."""
    inv = draw(clusters())
    offered = sorted({o.profile for n in inv.nodes for o in n.offers if o.profile})
    products = sorted({n.product for n in inv.nodes if n.product})
    kind = draw(st.sampled_from(["whole", "profile", "memory"]))
    gpu = GpuRequest(
        count=draw(st.sampled_from([1, 1, 1, 2, 4, 9])),
        mig_profile=draw(st.sampled_from(offered * 3 + PROFILES)) if kind == "profile" else None,
        memory=draw(st.sampled_from(MEMORIES + BETWEEN * 3)) if kind == "memory" else None,
        product=draw(st.sampled_from([None] * 8 + products * 2 + SEVERAL * 2 + PRODUCTS)),
    )
    selector = draw(st.sampled_from([{}, {}, {"zone": "a"}]))
    tolerations = draw(st.sampled_from([(), (), ({"key": "team", "operator": "Exists"},)]))
    return inv, Request(Device.GPU, gpu, selector, tolerations)


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Taint) -> bool:
    return any(
        (not t.get("effect") or t["effect"] == taint.effect)
        and (t.get("key") in (None, taint.key))
        and (t.get("operator") == "Exists" or t.get("value") == taint.value)
        for t in tolerations
    )


def oracle(request: Request, inv: Inventory) -> list[tuple[NodeGpus, Offer]]:
    """Every (node, offer) that could host one replica, straight from the definitions."""
    gpu = request.gpu
    need = memory_mib(gpu.memory) if gpu.memory else None
    return [
        (n, o)
        for n in inv.nodes
        for o in n.offers
        if n.ready
        and n.schedulable
        and (gpu.product is None or product_matches(gpu.product, n.product))
        and (
            o.profile == gpu.mig_profile
            if gpu.mig_profile
            else (o.memory_mib or 0) >= need
            if need is not None
            else not o.is_mig
        )
        and o.count >= gpu.count
        and all(n.labels.get(k) == v for k, v in request.node_selector.items())
        and all(
            tolerates((*request.tolerations, {"key": "nvidia.com/gpu", "operator": "Exists"}), t)
            for t in n.taints
        )
    ]


def admitted(p: Placed, inv: Inventory) -> set[str]:
    """The nodes the scheduler would consider for the rendered pod (static capacity)."""
    ((resource, count),) = p.limits.items()
    terms = (p.affinity or {}).get("nodeAffinity", {})
    terms = terms.get("requiredDuringSchedulingIgnoredDuringExecution", {})
    expressions = [e for t in terms.get("nodeSelectorTerms", []) for e in t["matchExpressions"]]

    def holds(e: dict[str, Any], labels: Mapping[str, str]) -> bool:
        inside = labels.get(e["key"]) in e["values"]
        return inside if e["operator"] == "In" else not inside

    return {
        n.name
        for n in inv.nodes
        if n.ready
        and n.schedulable
        and any(o.resource == resource and o.count >= int(count) for o in n.offers)
        and all(n.labels.get(k) == v for k, v in p.node_selector.items())
        and all(holds(e, n.labels) for e in expressions)
        and all(tolerates(p.tolerations, t) for t in n.taints)
    }


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_placement_agrees_with_the_oracle_and_renders_exactly_its_hosts(
    scenario: tuple[Inventory, Request],
) -> None:
    inv, request = scenario
    result = place(request, inv)
    can = oracle(request, inv)
    gpu = request.gpu
    kind = "profile" if gpu.mig_profile else "memory" if gpu.memory else "whole"
    event(f"{kind}: {type(result).__name__}")
    assert isinstance(result, Unplaceable) == (not can)
    if isinstance(result, Unplaceable):
        assert result.reason
        return
    event(f"{kind}: {result.gpu and result.gpu.strategy}, pinned: {bool(result.node_selector)}")
    ((resource, _),) = result.limits.items()
    chosen = [(n, o) for n, o in can if n.name in result.nodes and o.resource == resource]
    assert result.nodes and {n.name for n, _ in chosen} == set(result.nodes)
    # Never a resource no node offers, and the scheduler admits exactly the reported hosts.
    assert admitted(result, inv) == set(result.nodes)
    if gpu.mig_profile:
        assert all(o.profile == gpu.mig_profile for _, o in chosen)
    elif gpu.memory is None:
        assert not any(o.is_mig for _, o in chosen)
    else:
        need = memory_mib(gpu.memory)
        assert all((o.memory_mib or 0) >= need for _, o in chosen)
        fitting_migs = [o for _, o in can if o.is_mig]
        if chosen[0][1].is_mig:  # the smallest profile that fits, among those that can host
            smallest = min(profile_size_key(o.profile or "") for o in fitting_migs)
            assert all(profile_size_key(o.profile or "") == smallest for _, o in chosen)
        else:  # a whole GPU only when no slice fits, and the smallest whole GPU that does
            assert not fitting_migs
            assert {o.memory_mib for _, o in chosen} == {min(o.memory_mib or 0 for _, o in can)}
