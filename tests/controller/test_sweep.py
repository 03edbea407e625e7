"""Objects deleted while no watch saw it: a relist forgets them, so a gone pod stops holding
its render ConfigMap.

kopf's watches list from scratch after the operator's own first listing; a pod deleted in
between is in neither's events (likewise after a watch restarts on "410 Gone"). The apiserver
here is the reconcile tests' fake, which can also list: what is under test is what the
operator forgets, and that the prune then happens.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from inferline.controller.main import SOURCES, Controller, OperatorOptions
from inferline.controller.state import DELETED, ClusterState

from .test_reconcile import NS, Apiserver, backend, pipeline, rolled_out

Obj = dict[str, Any]
KEY = (NS, "p")
LABELS = {"inferline.dev/pipeline": "p"}


class ListingApiserver(Apiserver):
    """The reconcile tests' apiserver, with pods and what the user applied, and lists
    (cluster-wide, by kind)."""

    def __init__(self) -> None:
        super().__init__()
        self.pods: dict[str, Obj] = {}
        self.users: dict[tuple[str, str], Obj] = {}  # (kind, name): pipelines, backends
        self.on_list_pods: list[Any] = []  # callbacks: what happens while pods are listed

    def request(
        self, method: str, path: str, *, query: Any = None, accept: str = "", **_: Any
    ) -> Obj:
        assert method == "GET", (method, path)
        # The sweep asks for names only (PartialObjectMetadata), as the apiserver can answer.
        assert accept.startswith("application/json;as=PartialObjectMetadataList"), accept
        plural = path.rsplit("/", 1)[-1]
        kind = next(s.kind for s in SOURCES if s.plural == plural)
        if kind == "Pod":
            for callback in self.on_list_pods:
                callback()
            found = list(self.pods.values())
        else:
            objects = {**self.objects, **self.users}
            found = [o for (k, _), o in objects.items() if k == kind]
        # An empty metadata-only list says `"items": null`, as the apiserver does.
        return {"items": [{"metadata": copy.deepcopy(o["metadata"])} for o in found] or None}

    def user_applies(self, state: ClusterState, obj: Obj) -> None:
        """kubectl apply, and the watch bringing it to the operator's state."""
        self.users[(obj["kind"], obj["metadata"]["name"])] = obj
        handler = {
            "InferencePipeline": state.on_pipeline,
            "ClusterBackend": state.on_cluster_backend,
        }
        handler[obj["kind"]](None, obj)


def pod(name: str, config_map: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": LABELS},
        "spec": {"volumes": [{"name": "rendered", "configMap": {"name": config_map}}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def render_config_maps(api: Apiserver) -> set[str]:
    return {name for kind, name in api.objects if kind == "ConfigMap"}


def test_a_pod_deleted_unseen_is_forgotten_by_the_sweep_and_its_config_map_pruned() -> None:
    ctl = Controller(OperatorOptions(dra=False), k8s.Configuration())
    api = ListingApiserver()
    ctl.kube = ctl.reconciler.kube = api  # type: ignore[assignment]
    state: ClusterState = ctl.state
    api.user_applies(state, backend())

    def reconcile() -> None:
        asyncio.run(ctl.reconciler.reconcile(KEY))
        for o in api.objects.values():  # the watch brings the applies and prunes back
            state.on_child(None, o)
        for kind, name in set(state.children[KEY]) - set(api.objects):
            gone = {"kind": kind, "metadata": {"name": name, "namespace": NS, "labels": LABELS}}
            state.on_child(DELETED, gone)
        state.on_child(None, rolled_out(api.objects[("Deployment", "p")], 1))

    def add_pod(name: str, config_map: str) -> None:
        api.pods[name] = pod(name, config_map)
        state.on_pod(None, api.pods[name])

    api.user_applies(state, pipeline("2.0", generation=1))
    reconcile()
    (first,) = render_config_maps(api)
    add_pod("p-old", first)

    # The spec changes; the old pod still uses the first render ConfigMap: it stays.
    api.user_applies(state, pipeline("3.0", generation=2))
    reconcile()
    second = (render_config_maps(api) - {first}).pop()
    assert render_config_maps(api) == {first, second}
    add_pod("p-new", second)

    # The old pod is deleted, and no watch says so: the operator still believes it runs.
    del api.pods["p-old"]
    reconcile()
    assert first in render_config_maps(api)

    # A pod created while the sweep lists is known from its event, whatever the listing says.
    api.on_list_pods.append(lambda: state.on_pod(None, pod("p-late", second)))
    asyncio.run(ctl._sweep_once())
    assert set(state.pods[KEY]) == {"p-new", "p-late"}
    assert KEY in ctl.queue._due  # enqueued: its prune and status are due again
    assert state.touched is None  # recording events stops with the sweep
    reconcile()
    assert render_config_maps(api) == {second}

    # Nothing else was forgotten: every child the apiserver has is still known.
    assert set(state.children[KEY]) == set(api.objects)
    # A sweep that finds nothing gone enqueues nothing.
    ctl.queue._due.clear()
    api.on_list_pods.clear()
    api.pods["p-late"] = pod("p-late", second)
    asyncio.run(ctl._sweep_once())
    assert ctl.queue._due == {}

    # Not only what pipelines own: a ClusterBackend deleted unseen concerns its pipelines (now
    # missing a reference), and a pipeline deleted unseen is forgotten.
    del api.users[("ClusterBackend", "cpu")]
    asyncio.run(ctl._sweep_once())
    assert "cpu" not in state.cluster_backends
    assert KEY in ctl.queue._due
    ctl.queue._due.clear()
    del api.users[("InferencePipeline", "p")]
    asyncio.run(ctl._sweep())
    assert KEY not in state.pipelines
    assert ctl.queue._due == {}

    # The operator's /metrics counts sweeps and what they forgot; a refused listing is counted
    # as an error and leaves the state as it was (the next resync tries again).
    def sample(name: str, **labels: str) -> float | None:
        return ctl.metrics.registry.get_sample_value(name, labels)

    assert sample("inferline_sweep_total", result="ok") == 1
    assert sample("inferline_sweep_forgotten_objects_total") == 1  # the pipeline

    def refuse(*_: Any, **__: Any) -> Obj:
        raise ApiException(status=403, reason="Forbidden")

    api.request = refuse  # type: ignore[method-assign]
    known = list(state.known())
    asyncio.run(ctl._sweep())
    assert sample("inferline_sweep_total", result="error") == 1
    assert list(state.known()) == known and state.touched is None


def test_what_the_sweep_forgets_it_forgets_as_a_deletion() -> None:
    """Every labelled table (children, the Deployment's view, pods, slices, claims), and the
    pipelines themselves."""
    state = ClusterState(node_view=lambda _: None)
    state.on_pipeline(None, pipeline("2.0", generation=1))
    meta = {"namespace": NS, "labels": LABELS, "uid": "u"}
    objs = {
        "Deployment": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "p"}},
        "Pod": pod("p-1", "cm"),
        "EndpointSlice": {"kind": "EndpointSlice", "metadata": {"name": "p-x"}, "endpoints": []},
        "ResourceClaim": {"kind": "ResourceClaim", "metadata": {"name": "p-1-gpu"}},
    }
    on = {
        "Deployment": state.on_child,
        "Pod": state.on_pod,
        "EndpointSlice": state.on_endpoint_slice,
        "ResourceClaim": state.on_claim,
    }
    for kind, o in objs.items():
        o["metadata"] = {**meta, **o["metadata"]}
        on[kind](None, o)
    assert KEY in state.deployments and state.routed(KEY) == frozenset()
    kinds = set(objs)
    assert state.sweep(kinds, set(), set()) == (4, {KEY})
    assert [i for i, _ in state.known()] == [("InferencePipeline", NS, "p")]
    assert KEY not in state.deployments and state.routed(KEY) is None
    # Kinds the relist did not cover are left alone.
    on["Pod"](None, objs["Pod"])
    assert state.sweep({"ConfigMap"}, set(), set()) == (0, set())
    assert sorted(i for i, _ in state.known()) == [
        ("InferencePipeline", NS, "p"),
        ("Pod", NS, "p-1"),
    ]
    # A pipeline is forgotten like the rest.
    assert state.sweep({"InferencePipeline"}, set(), set()) == (1, set())
    assert state.pipelines == {}
