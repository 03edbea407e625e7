"""The operator's view of the cluster: which events concern which pipelines."""

from __future__ import annotations

import copy
from typing import Any

from inferline.controller.state import DELETED, ClusterState


def pipeline(name: str, ns: str = "ml", model: str | None = None, **spec: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"name": "s", "outputMap": {"O": "Y"}}
    if model:
        step["modelRef"] = {"name": model}
    return {
        "apiVersion": "inferline.dev/v1alpha1",
        "kind": "InferencePipeline",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"steps": [step], **spec},
    }


def model(name: str, ns: str = "ml", fmt: str = "python") -> dict[str, Any]:
    return {
        "apiVersion": "inferline.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "format": fmt,
            "python": {"configMap": {"name": "c"}},
            "inputs": [{"name": "I", "dtype": "FP32", "dims": [1]}],
            "outputs": [{"name": "O", "dtype": "FP32", "dims": [1]}],
        },
    }


def node(name: str, gpus: int) -> dict[str, Any]:
    alloc = {"cpu": "8"} | ({"nvidia.com/gpu": str(gpus)} if gpus else {})
    return {"kind": "Node", "metadata": {"name": name}, "status": {"allocatable": alloc}}


def state() -> ClusterState:
    def view(n: dict[str, Any]) -> Any:
        gpus = {k: v for k, v in n["status"]["allocatable"].items() if k.startswith("nvidia")}
        return gpus or None

    return ClusterState(node_view=view)


def test_a_model_event_concerns_the_pipelines_of_its_namespace_that_use_it() -> None:
    s = state()
    for p in (
        pipeline("a", model="m"),
        pipeline("b", model="other"),
        pipeline("c", ns="dev", model="m"),
    ):
        s.on_pipeline(None, p)
    assert s.on_model(None, model("m")) == {("ml", "a")}
    assert ("ml", "m") in s.models
    assert s.on_model(DELETED, model("m")) == {("ml", "a")}
    assert ("ml", "m") not in s.models


def test_an_invalid_model_is_known_as_invalid_not_missing() -> None:
    s = state()
    bad = model("m", fmt="fil")  # fil without `tree`
    s.on_model(None, bad)
    assert ("Model", "ml", "m") in s.catalog().invalid and ("ml", "m") not in s.models
    s.on_model(None, model("m"))
    assert ("Model", "ml", "m") not in s.catalog().invalid and ("ml", "m") in s.models


def test_cluster_backend_changes_concern_pipelines_that_name_it() -> None:
    s = state()
    s.on_pipeline(None, pipeline("default-backend"))  # triton, by default
    s.on_pipeline(None, pipeline("cpu", backend={"name": "inferline-cpu"}))
    body = {
        "apiVersion": "inferline.dev/v1alpha1",
        "kind": "ClusterBackend",
        "metadata": {"name": "triton"},
        "spec": {"image": "example.com/triton:1", "formats": ["python"]},
    }
    assert s.on_cluster_backend(None, body) == {("ml", "default-backend")}
    assert s.catalog().cluster_backends["triton"].image == "example.com/triton:1"


def test_node_heartbeats_are_no_news_but_gpu_changes_replace_gpu_pipelines() -> None:
    s = state()
    s.on_pipeline(None, pipeline("gpu"))
    s.on_pipeline(None, pipeline("cpu", placement={"device": "CPU"}))
    assert s.on_node(None, node("g", 8)) == {("ml", "gpu")}
    assert s.on_node(None, node("g", 8)) == set()  # a status heartbeat: same GPUs
    assert s.on_node(None, node("c", 0)) == set()  # no GPUs: not in the inventory
    assert s.on_node(DELETED, node("g", 8)) == {("ml", "gpu")}
    assert s.nodes == {}


def child(kind: str, name: str, pipeline_name: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1" if kind == "Deployment" else "v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": "ml",
            "uid": f"uid-{name}",
            "labels": {"inferline.dev/pipeline": pipeline_name},
            "ownerReferences": [
                {"kind": "InferencePipeline", "name": pipeline_name, "uid": "p", "controller": True}
            ],
            **meta,
        },
    }


def test_children_and_pods_are_kept_per_pipeline() -> None:
    s = state()
    s.on_pipeline(None, pipeline("a"))
    assert s.on_child(None, child("Deployment", "a", "a", generation=3)) == {("ml", "a")}
    assert s.children[("ml", "a")][("Deployment", "a")].fingerprint == "g3"
    assert s.children[("ml", "a")][("Deployment", "a")].owner_uid == "p"
    assert s.on_child(None, child("Service", "x", "nobody")) == set()  # no such pipeline
    pod = child("Pod", "a-1", "a")
    pod["spec"] = {"volumes": [{"name": "r", "configMap": {"name": "a-render-1"}}]}
    assert s.on_pod(None, pod) == {("ml", "a")}
    assert s.on_pod(None, pod) == set()  # nothing status reads changed
    assert s.pods[("ml", "a")]["a-1"].config_maps == frozenset({"a-render-1"})
    s.on_pod(DELETED, pod)
    assert s.pods[("ml", "a")] == {}


# ---- DRA: NVIDIA's slices and classes, the pods' claims ------------------------------------------


def gpu_slice(name: str, node_name: str, devices: int, driver: str = "gpu.nvidia.com") -> Any:
    return {
        "kind": "ResourceSlice",
        "metadata": {"name": name},
        "spec": {
            "driver": driver,
            "nodeName": node_name,
            "pool": {"name": node_name, "generation": 1},
            "devices": [
                {
                    "name": f"gpu-{i}",
                    "attributes": {"type": {"string": "gpu"}, "productName": {"string": "X"}},
                    "capacity": {"memory": {"value": "80Gi"}},
                }
                for i in range(devices)
            ],
        },
    }


def device_class(name: str) -> dict[str, Any]:
    return {"kind": "DeviceClass", "metadata": {"name": name}}


def test_nvidias_slices_and_classes_replace_gpu_pipelines_and_build_the_dra_inventory() -> None:
    s = state()
    s.on_pipeline(None, pipeline("gpu"))
    s.on_pipeline(None, pipeline("cpu", placement={"device": "CPU"}))
    s.on_node(None, node("d", 0))
    assert s.on_resource_slice(None, gpu_slice("d-gpu", "d", 2)) == {("ml", "gpu")}
    assert s.on_resource_slice(None, gpu_slice("d-gpu", "d", 2)) == set()  # unchanged
    assert s.on_resource_slice(None, gpu_slice("o", "d", 2, driver="other.example.com")) == set()
    assert s.on_device_class(None, device_class("gpu.nvidia.com")) == {("ml", "gpu")}
    assert s.on_device_class(None, device_class("gpu.nvidia.com")) == set()
    assert s.on_device_class(None, device_class("other.example.com")) == set()
    inv = s.dra_inventory()
    assert inv.available and [len(n.devices) for n in inv.nodes] == [2]
    assert inv.nodes[0].host is not None  # the Node's facts, though it has no GPU resources
    assert s.on_resource_slice(DELETED, gpu_slice("d-gpu", "d", 2)) == {("ml", "gpu")}
    assert not s.dra_inventory().available
    assert s.on_device_class(DELETED, device_class("gpu.nvidia.com")) == {("ml", "gpu")}


def test_a_dra_nodes_label_change_replaces_gpu_pipelines_other_nodes_do_not() -> None:
    s = state()
    s.on_pipeline(None, pipeline("gpu"))
    s.on_node(None, node("d", 0))
    s.on_node(None, node("c", 0))
    s.on_resource_slice(None, gpu_slice("d-gpu", "d", 1))
    assert s.dra_inventory().nodes[0].host.labels == {}  # type: ignore[union-attr]
    labelled = node("d", 0) | {"metadata": {"name": "d", "labels": {"zone": "a"}}}
    assert s.on_node(None, labelled) == {("ml", "gpu")}
    assert s.dra_inventory().nodes[0].host.labels == {"zone": "a"}  # type: ignore[union-attr]
    assert s.on_node(None, labelled) == set()
    other = node("c", 0) | {"metadata": {"name": "c", "labels": {"zone": "a"}}}
    assert s.on_node(None, other) == set()  # no DRA devices there


def claim(name: str, pipeline_name: str, **status: Any) -> dict[str, Any]:
    return {
        "kind": "ResourceClaim",
        "metadata": {
            "name": name,
            "namespace": "ml",
            "labels": {"inferline.dev/pipeline": pipeline_name},
            "ownerReferences": [{"kind": "Pod", "name": "a-1", "controller": True}],
        },
        "status": status,
    }


def test_claims_are_kept_per_pipeline_by_their_labels() -> None:
    s = state()
    s.on_pipeline(None, pipeline("a"))
    assert s.on_claim(None, claim("a-1-gpu-x", "a")) == {("ml", "a")}
    assert s.on_claim(None, claim("a-1-gpu-x", "a")) == set()  # nothing status reads changed
    assert s.claims[("ml", "a")]["a-1-gpu-x"].state == "pending"
    allocated = {"devices": {"results": [{"pool": "d", "device": "gpu-0"}]}}
    assert s.on_claim(None, claim("a-1-gpu-x", "a", allocation=allocated)) == {("ml", "a")}
    assert s.claims[("ml", "a")]["a-1-gpu-x"].devices == ("d/gpu-0",)
    assert s.on_claim(None, claim("z", "nobody")) == set()
    unlabelled = claim("u", "a")
    unlabelled["metadata"]["labels"] = {}
    assert s.on_claim(None, unlabelled) == set()
    assert s.on_claim(DELETED, claim("a-1-gpu-x", "a")) == {("ml", "a")}
    assert s.claims[("ml", "a")] == {}


def test_pods_remember_the_claim_templates_they_use() -> None:
    s = state()
    s.on_pipeline(None, pipeline("a"))
    pod = child("Pod", "a-1", "a")
    pod["spec"] = {"resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "a-gpu-1"}]}
    s.on_pod(None, pod)
    assert s.pods[("ml", "a")]["a-1"].claim_templates == frozenset({"a-gpu-1"})


def test_a_status_only_change_of_a_pipeline_is_no_news_and_the_spec_awaits_until_observed() -> None:
    s = state()
    p = pipeline("a") | {"metadata": {"name": "a", "namespace": "ml", "generation": 1}}
    assert s.on_pipeline(None, p) == {("ml", "a")}
    assert s.awaits_spec(("ml", "a"))
    # our status write comes back: a new resourceVersion and managedFields, same spec
    written = copy.deepcopy(p)
    written["metadata"] |= {"resourceVersion": "7", "managedFields": [{"manager": "inferline"}]}
    written["status"] = {"observedGeneration": 1}
    assert s.on_pipeline(None, written) == set()
    assert s.pipelines[("ml", "a")]["status"] == {"observedGeneration": 1}  # kept all the same
    assert not s.awaits_spec(("ml", "a"))
    # a label or a spec change is news; a changed spec awaits until status observes it
    labelled = copy.deepcopy(written)
    labelled["metadata"]["labels"] = {"team": "x"}
    assert s.on_pipeline(None, labelled) == {("ml", "a")}
    changed = copy.deepcopy(labelled)
    changed["metadata"]["generation"] = 2
    changed["spec"]["replicas"] = 3
    assert s.on_pipeline(None, changed) == {("ml", "a")}
    assert s.awaits_spec(("ml", "a"))
    assert not s.awaits_spec(("ml", "gone"))


def test_endpoint_slices_say_which_pods_the_service_routes_to() -> None:
    s = state()
    s.on_pipeline(None, pipeline("a"))
    labels = {"inferline.dev/pipeline": "a"}

    def eps(name: str, *endpoints: tuple[str, bool | None]) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "namespace": "ml", "labels": labels},
            "endpoints": [
                {
                    "conditions": {} if ready is None else {"ready": ready},
                    "targetRef": {"kind": "Pod", "name": pod},
                }
                for pod, ready in endpoints
            ],
        }

    assert s.routed(("ml", "a")) is None
    # not ready (or terminating) is not routed to; an unset `ready` means ready
    assert s.on_endpoint_slice(None, eps("a-1", ("p1", True), ("p2", False))) == {("ml", "a")}
    assert s.on_endpoint_slice(None, eps("a-2", ("p3", None))) == {("ml", "a")}
    assert s.routed(("ml", "a")) == {"p1", "p3"}
    assert s.on_endpoint_slice(None, eps("a-2", ("p3", None))) == set()  # no news
    assert s.on_endpoint_slice("DELETED", eps("a-2")) == {("ml", "a")}
    assert s.routed(("ml", "a")) == {"p1"}
    s.on_endpoint_slice("DELETED", eps("a-1"))
    assert s.routed(("ml", "a")) is None
    # a Service without the pipeline label (not ours) is not tracked
    assert s.on_endpoint_slice(None, eps("x", ("p9", True)) | {"metadata": {"name": "x"}}) == set()


def test_a_child_event_that_changes_nothing_we_read_is_no_news() -> None:
    s = state()
    s.on_pipeline(None, pipeline("a"))
    cm = child("ConfigMap", "a-code", "a", resourceVersion="5")
    assert s.on_child(None, cm) == {("ml", "a")}
    assert s.on_child(None, cm) == set()  # our apply's response, then its watch event
    assert s.on_child(None, child("ConfigMap", "a-code", "a", resourceVersion="6")) == {("ml", "a")}
    pdb = child("PodDisruptionBudget", "a", "a", generation=1)
    assert s.on_child(None, pdb) == {("ml", "a")}
    assert s.on_child(None, pdb | {"status": {"currentHealthy": 2}}) == set()  # its status
    deployment = child("Deployment", "a", "a", generation=1)
    assert s.on_child(None, deployment) == {("ml", "a")}
    assert s.on_child(None, deployment) == set()
    assert s.on_child(None, deployment | {"status": {"readyReplicas": 1}}) == {("ml", "a")}
    assert s.on_child(DELETED, pdb) == {("ml", "a")}
