"""The control plane itself: pinned versions, RBAC, controllers, and the fake nodes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from e2e import build, nodes
from e2e.cluster import Cluster
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

PINS = {t.module: build.pinned_version(t) for t in build.TARGETS}


def test_binaries_report_their_pinned_versions(kubectl: Kubectl, e2e_bin_dir: Path) -> None:
    proc = kubectl("version", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    versions = json.loads(proc.stdout)
    assert versions["clientVersion"]["gitVersion"] == PINS["kubernetes"]
    assert versions["serverVersion"]["gitVersion"] == PINS["kubernetes"]

    def run(tool: str, *args: str) -> str:
        return subprocess.run(
            [str(e2e_bin_dir / tool), *args], capture_output=True, text=True, check=True
        ).stdout

    assert run("helm", "version", "--short").startswith(PINS["helm"])
    assert PINS["kwok"].lstrip("v") in run("kwok", "--version")
    for tool in ("kube-controller-manager", "kube-scheduler"):
        assert PINS["kubernetes"] in run(tool, "--version")


def test_fake_nodes_are_ready_with_their_gpu_resources_labels_and_taints(
    kubectl: Kubectl,
) -> None:
    items = {n["metadata"]["name"]: n for n in get_json(kubectl, "nodes")["items"]}
    declared = nodes.load()
    assert set(items) == {n.name for n in declared}
    for fake in declared:
        node = items[fake.name]
        assert condition(node, "Ready")["status"] == "True", fake.name  # type: ignore[index]
        for resource, amount in fake.capacity.items():
            assert node["status"]["allocatable"][resource] == amount, (fake.name, resource)
        assert fake.labels.items() <= node["metadata"]["labels"].items()
        taints = [t for t in node["spec"].get("taints", []) if t["key"].startswith("nvidia.com")]
        assert taints == fake.taints


def test_rbac_is_enforced(kubectl: Kubectl) -> None:
    sa = "system:serviceaccount:default:default"
    proc = kubectl("auth", "can-i", "list", "secrets", "--as", sa)
    assert proc.stdout.strip() == "no"
    assert kubectl("auth", "can-i", "list", "secrets").stdout.strip() == "yes"


def test_deleting_a_deployment_garbage_collects_its_replicasets_and_pods(
    kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, deployment("gc", tolerations=[]))
    wait_for_pod(kubectl, namespace, "gc", is_running, "Running")

    proc = kubectl("delete", "deployment", "gc", "-n", namespace, "--cascade=background")
    assert proc.returncode == 0, proc.stderr

    def gone() -> bool | None:
        left = get_json(kubectl, "replicasets,pods", "-n", namespace, "-l", "app=gc")["items"]
        return True if not left else None

    wait_for(gone, "the garbage collector to delete the ReplicaSet and its pods")


def test_kubeconfig_works_with_the_python_client(cluster: Cluster) -> None:
    from kubernetes import client

    with cluster.api_client() as api:
        names = {n.metadata.name for n in client.CoreV1Api(api).list_node().items if n.metadata}
    assert names == {n.name for n in cluster.nodes}


def test_every_fake_node_holds_a_lease_kwok_renews(kubectl: Kubectl) -> None:
    """Without leases the node lifecycle controller sees kwok's nodes go NotReady ~50 s after
    each status heartbeat, and marks every pod on them NotReady."""
    from datetime import UTC, datetime

    def renewed() -> dict[str, float] | None:
        leases = get_json(kubectl, "leases", "-n", "kube-node-lease")["items"]
        now = datetime.now(UTC)
        ages = {
            lease["metadata"]["name"]: (
                now - datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00"))
            ).total_seconds()
            for lease in leases
            if lease["spec"].get("renewTime")
        }
        return ages if set(ages) == {n.name for n in nodes.load()} else None

    ages = wait_for(renewed, "a lease for every node", timeout=30)
    assert max(ages.values()) < 30, ages  # renewed every 10 s (a quarter of 40 s)
