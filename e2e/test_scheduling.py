"""What the real scheduler does with GPU and MIG requests on the fake nodes of nodes.yaml."""

from __future__ import annotations

from typing import Any

import pytest

from e2e import nodes
from e2e.workloads import (
    Kubectl,
    apply,
    condition,
    deployment,
    get_json,
    is_running,
    wait_for,
    wait_for_pod,
)

pytestmark = pytest.mark.e2e

NODES = nodes.load()


def test_mig_slice_lands_on_a_mixed_mig_node_and_runs(kubectl: Kubectl, namespace: str) -> None:
    resource = "nvidia.com/mig-1g.10gb"
    offering = {n.name for n in NODES if n.offers(resource)}
    assert offering, f"nodes.yaml should offer {resource}"

    apply(kubectl, namespace, deployment("mig-small", limits={resource: "1"}))
    pod = wait_for_pod(kubectl, namespace, "mig-small", is_running, "Running")

    assert pod["spec"]["nodeName"] in offering
    node = get_json(kubectl, "node", pod["spec"]["nodeName"])
    assert node["metadata"]["labels"]["nvidia.com/mig.strategy"] == "mixed"


def test_mig_profile_no_node_has_stays_pending_with_the_schedulers_reason(
    kubectl: Kubectl, namespace: str
) -> None:
    resource = "nvidia.com/mig-7g.80gb"
    assert not any(n.offers(resource) for n in NODES), f"no node may offer {resource}"
    expected = f"Insufficient {resource}"

    apply(kubectl, namespace, deployment("mig-huge", limits={resource: "1"}))

    def unschedulable(pod: dict[str, Any]) -> bool:
        cond = condition(pod, "PodScheduled")
        return bool(cond and cond["status"] == "False" and cond.get("reason") == "Unschedulable")

    pod = wait_for_pod(kubectl, namespace, "mig-huge", unschedulable, "marked Unschedulable")
    assert pod["status"]["phase"] == "Pending"
    assert "nodeName" not in pod["spec"]
    assert expected in condition(pod, "PodScheduled")["message"]  # type: ignore[index]

    name = pod["metadata"]["name"]

    def failed_scheduling() -> str | None:
        events = get_json(
            kubectl,
            "events",
            "-n",
            namespace,
            "--field-selector",
            f"involvedObject.name={name},reason=FailedScheduling",
        )["items"]
        return next((e["message"] for e in events if expected in e["message"]), None)

    wait_for(failed_scheduling, f"a FailedScheduling event saying {expected!r}", timeout=30)


# Every node offering whole GPUs (or MIG slices under the single strategy) as nvidia.com/gpu.
GPU_NODES = [n for n in NODES if n.offers("nvidia.com/gpu")]


@pytest.mark.parametrize("node", GPU_NODES, ids=[n.name for n in GPU_NODES])
def test_gpu_deployment_selecting_a_product_lands_on_that_node(
    kubectl: Kubectl, namespace: str, node: nodes.FakeNode
) -> None:
    product = node.labels["nvidia.com/gpu.product"]
    # The selector must single the node out among those offering nvidia.com/gpu (the MIG-mixed
    # H100 node shares the H100 product label but has no nvidia.com/gpu left to give).
    assert [n.name for n in GPU_NODES if n.labels["nvidia.com/gpu.product"] == product] == [
        node.name
    ]

    apply(
        kubectl,
        namespace,
        deployment(
            "gpu",
            limits={"nvidia.com/gpu": "1"},
            node_selector={"nvidia.com/gpu.product": product},
        ),
    )
    pod = wait_for_pod(kubectl, namespace, "gpu", is_running, "Running")
    assert pod["spec"]["nodeName"] == node.name


def test_gpu_pod_without_the_toleration_avoids_tainted_gpu_nodes(
    kubectl: Kubectl, namespace: str
) -> None:
    tainted = {n.name for n in GPU_NODES if n.taints}
    untainted = {n.name for n in GPU_NODES if not n.taints}
    assert tainted and untainted, "nodes.yaml should have tainted and untainted GPU nodes"

    apply(kubectl, namespace, deployment("gpu", limits={"nvidia.com/gpu": "1"}, tolerations=[]))
    pod = wait_for_pod(kubectl, namespace, "gpu", is_running, "Running")
    assert pod["spec"]["nodeName"] in untainted
