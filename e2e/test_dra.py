"""GPUs through Dynamic Resource Allocation, on the real control plane: the same placement fields
render a ResourceClaimTemplate where NVIDIA's DRA driver publishes the GPUs, and the real
kube-scheduler allocates devices from the ResourceSlices of the DRA nodes in nodes.yaml (the
harness publishes them; no driver runs, kwok runs the pods).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from e2e import nodes
from e2e.operator import OperatorProcess
from e2e.pipelines import (
    apply,
    children,
    code_config_map,
    condition,
    get,
    pipeline,
    pods,
    wait_condition,
)
from e2e.workloads import Kubectl, get_json, wait_for

pytestmark = pytest.mark.e2e

LABEL = "inferline.dev/pipeline"
DRA_NODES = {n.name for n in nodes.load() if n.dra}
PLUGIN_NODES = {n.name for n in nodes.load() if "nvidia.com/gpu" in n.capacity}


def gpu_pipeline(name: str, **gpu: Any) -> dict[str, Any]:
    return pipeline(name, code=f"{name}-code", device="GPU", gpu=gpu)


def start(kubectl: Kubectl, namespace: str, name: str, **gpu: Any) -> dict[str, Any]:
    p = gpu_pipeline(name, **gpu)
    apply(kubectl, namespace, code_config_map(f"{name}-code"), p)
    return p


def live_pods(kubectl: Kubectl, namespace: str, name: str) -> list[dict[str, Any]]:
    return [p for p in pods(kubectl, namespace, name) if not p["metadata"].get("deletionTimestamp")]


def claims(kubectl: Kubectl, namespace: str, name: str) -> list[dict[str, Any]]:
    """The ResourceClaims made for the pipeline's pods (they carry the template's labels)."""
    items = get_json(kubectl, "resourceclaims", "-n", namespace, "-l", f"{LABEL}={name}")
    return list(items["items"])


def templates(kubectl: Kubectl, namespace: str, name: str) -> list[dict[str, Any]]:
    items = get_json(kubectl, "resourceclaimtemplates", "-n", namespace, "-l", f"{LABEL}={name}")
    return list(items["items"])


def allocated(claim: dict[str, Any]) -> list[tuple[str, str]]:
    results = claim.get("status", {}).get("allocation", {}).get("devices", {}).get("results", [])
    return [(r["pool"], r["device"]) for r in results]


def device_attributes(kubectl: Kubectl, pool: str, device: str) -> dict[str, Any]:
    """A device's attributes, as the ResourceSlice of its pool publishes them."""
    for s in get_json(kubectl, "resourceslices")["items"]:
        if s["spec"]["pool"]["name"] == pool:
            for d in s["spec"]["devices"]:
                if d["name"] == device:
                    return {k: next(iter(v.values())) for k, v in d["attributes"].items()}
    raise AssertionError(f"no device {pool}/{device} in any ResourceSlice")


def reserved_claim(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        for c in claims(kubectl, namespace, name):
            if c.get("status", {}).get("reservedFor") and allocated(c):
                return c
        return None

    return wait_for(probe, f"a reserved claim for {name}", 60)


def pod_spec(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    d = get_json(kubectl, "deployment", name, "-n", namespace)
    return dict(d["spec"]["template"]["spec"])


def test_an_h100_lands_on_a_dra_node_with_an_allocated_claim_of_that_product(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    start(kubectl, namespace, "h100", product="H100", allocation="dra")
    p = wait_condition(kubectl, namespace, "h100", "Ready")
    assert {pod["spec"]["nodeName"] for pod in live_pods(kubectl, namespace, "h100")} == {
        "dra-h100-nvl-0"
    }

    # What was rendered: a template owned by the pipeline, claimed by the pods; no limits.
    (rct,) = templates(kubectl, namespace, "h100")
    assert [r["uid"] for r in rct["metadata"]["ownerReferences"]] == [p["metadata"]["uid"]]
    (request,) = rct["spec"]["spec"]["devices"]["requests"]
    assert request["exactly"]["deviceClassName"] == "gpu.nvidia.com"
    spec = pod_spec(kubectl, namespace, "h100")
    assert spec["resourceClaims"] == [
        {"name": "gpu", "resourceClaimTemplateName": rct["metadata"]["name"]}
    ]
    resources = spec["containers"][0]["resources"]
    assert resources["claims"] == [{"name": "gpu"}]
    assert not [k for k in resources.get("limits", {}) if k.startswith("nvidia.com/")]

    # What the scheduler did: a device of that product, from the node's slice.
    claim = reserved_claim(kubectl, namespace, "h100")
    ((pool, device),) = allocated(claim)
    assert pool == "dra-h100-nvl-0"
    attributes = device_attributes(kubectl, pool, device)
    assert (attributes["type"], attributes["productName"]) == ("gpu", "NVIDIA H100 NVL")

    # What status says: the mode, the product, the claim and its state.
    p = wait_condition(kubectl, namespace, "h100", "Ready")
    gpu = p["status"]["gpuResource"]
    assert (gpu["allocation"], gpu["resource"], gpu["product"]) == (
        "dra",
        "gpu.nvidia.com",
        "NVIDIA H100 NVL",
    )

    def claim_reported() -> dict[str, Any] | None:
        g = get(kubectl, namespace, "h100")["status"]["gpuResource"]
        return g if [c["state"] for c in g.get("claims", [])] == ["reserved"] else None

    gpu = wait_for(claim_reported, "the claim to be reported reserved", 30)
    assert gpu["claims"][0]["name"] == claim["metadata"]["name"]
    assert gpu["claims"][0]["devices"] == [f"{pool}/{device}"]
    scheduled = condition(get(kubectl, namespace, "h100"), "Scheduled")
    assert scheduled is not None and "through DRA" in scheduled["message"]
    assert "claims: 1 reserved" in scheduled["message"]


def test_memory_on_a_mig_cluster_gets_the_smallest_mig_device_that_fits(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    # allocation auto: the cluster has NVIDIA's DRA driver, and its devices can host this.
    start(kubectl, namespace, "mem", memory="20Gi")
    p = wait_condition(kubectl, namespace, "mem", "Ready")
    gpu = p["status"]["gpuResource"]
    assert (gpu["allocation"], gpu["resource"], gpu["profile"]) == (
        "dra",
        "mig.nvidia.com",
        "1g.35gb",
    )
    ((pool, device),) = allocated(reserved_claim(kubectl, namespace, "mem"))
    attributes = device_attributes(kubectl, pool, device)
    # 1g.18gb (16.5 GiB) is too small; 1g.35gb is the smallest that fits (2g.35gb is as large
    # but takes two compute slices, 3g.71gb more memory).
    assert (pool, attributes["type"], attributes["profile"]) == (
        "dra-h200-mig-0",
        "mig",
        "1g.35gb",
    )
    scheduled = condition(p, "Scheduled")
    assert (
        scheduled is not None
        and "1g.35gb is the smallest MIG device that fits" in (scheduled["message"])
    )


def test_what_no_slice_has_stays_unscheduled_with_the_reason(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    start(kubectl, namespace, "none", migProfile="3g.40gb", allocation="dra")
    p = wait_condition(kubectl, namespace, "none", "Stalled", reason="NoCapacity")
    scheduled = condition(p, "Scheduled")
    assert scheduled is not None and scheduled["status"] == "False"
    assert scheduled["message"] == (
        "no device of class mig.nvidia.com with profile 3g.40gb; the cluster has 1g.18gb x7 on "
        "1 node, 1g.35gb x1 on 1 node, 2g.35gb x1 on 1 node, 3g.71gb x1 on 1 node, "
        "NVIDIA H100 NVL x4 on 1 node"
    )
    assert children(kubectl, namespace, "none") == {}
    assert templates(kubectl, namespace, "none") == []


def test_the_same_manifest_on_device_plugin_nodes_and_switching_allocation_rolls_the_pods(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    on_plugin = start(kubectl, namespace, "sw", product="H100", allocation="devicePlugin")
    p = wait_condition(kubectl, namespace, "sw", "Ready")
    assert p["status"]["gpuResource"]["allocation"] == "devicePlugin"
    before = live_pods(kubectl, namespace, "sw")
    assert {pod["spec"]["nodeName"] for pod in before} <= PLUGIN_NODES
    spec = pod_spec(kubectl, namespace, "sw")
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "resourceClaims" not in spec
    assert templates(kubectl, namespace, "sw") == []

    on_dra = copy.deepcopy(on_plugin)
    on_dra["spec"]["placement"]["gpu"]["allocation"] = "dra"
    apply(kubectl, namespace, on_dra)
    p = wait_condition(kubectl, namespace, "sw", "Ready")
    assert p["status"]["gpuResource"]["allocation"] == "dra"
    after = live_pods(kubectl, namespace, "sw")
    assert {pod["metadata"]["name"] for pod in after}.isdisjoint(
        pod["metadata"]["name"] for pod in before
    )
    assert {pod["spec"]["nodeName"] for pod in after} == {"dra-h100-nvl-0"}
    assert [c["name"] for c in after[0]["spec"]["resourceClaims"]] == ["gpu"]
    (rct,) = templates(kubectl, namespace, "sw")

    # And back: extended resources again, and the template goes once no pod uses it.
    apply(kubectl, namespace, on_plugin)
    wait_condition(kubectl, namespace, "sw", "Ready")
    wait_for(
        lambda: True if not templates(kubectl, namespace, "sw") else None,
        f"{rct['metadata']['name']} to be pruned",
        60,
    )
    assert {pod["spec"]["nodeName"] for pod in live_pods(kubectl, namespace, "sw")} <= (
        PLUGIN_NODES
    )


def test_deleting_the_pipeline_releases_its_claims(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    """The only 3g.71gb device: a second pipeline waits for it (the scheduler says why) and gets
    it once the first is deleted."""
    start(kubectl, namespace, "first", migProfile="3g.71gb", allocation="dra")
    wait_condition(kubectl, namespace, "first", "Ready")
    ((pool, device),) = allocated(reserved_claim(kubectl, namespace, "first"))

    start(kubectl, namespace, "second", migProfile="3g.71gb", allocation="dra")
    p = wait_condition(kubectl, namespace, "second", "Scheduled", "False", "Unschedulable")
    assert "claim" in condition(p, "Scheduled")["message"]  # type: ignore[index]

    def pending_reported() -> bool | None:
        g = get(kubectl, namespace, "second")["status"].get("gpuResource", {})
        return True if [c["state"] for c in g.get("claims", [])] == ["pending"] else None

    wait_for(pending_reported, "the waiting claim to be reported pending", 30)

    assert kubectl("delete", "inferencepipeline", "first", "-n", namespace).returncode == 0
    wait_for(
        lambda: True if not claims(kubectl, namespace, "first") else None,
        "the first pipeline's claims to go with its pods",
        60,
    )
    wait_condition(kubectl, namespace, "second", "Ready", timeout=120)
    assert allocated(reserved_claim(kubectl, namespace, "second")) == [(pool, device)]
    text = json.dumps(get(kubectl, namespace, "second")["status"]["gpuResource"])
    assert f"{pool}/{device}" in text
