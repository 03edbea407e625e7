"""The reconciler's status after its own apply, before the watch brings the write back.

The apiserver here is a fake (a dict that bumps `generation` when a spec changes, as the real one
does): what is under test is which Deployment the status is computed from, not the apply.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from typing import Any

from inferline.api.status import Reason
from inferline.controller.metrics import Metrics
from inferline.controller.placement import place_pipeline
from inferline.controller.reconcile import Reconciler
from inferline.controller.state import ClusterState
from inferline.render.kube import RuntimeSettings

Obj = dict[str, Any]
NS = "ml"
CODE = "import triton_python_backend_utils as pb_utils\n"


class Apiserver:
    """Server-side apply as far as the reconciler can tell: the object back, with a uid and a
    generation that moves when its spec does; status patches land on the pipeline."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Obj] = {}
        self.uids = (f"uid-{i}" for i in itertools.count())
        self.statuses: list[Obj] = []
        self.applies: list[str] = []

    def apply(self, obj: Obj, manager: str, *, subresource: str | None = None) -> Obj:
        if subresource == "status":
            self.statuses.append(copy.deepcopy(obj["status"]))
            return obj
        key = (obj["kind"], obj["metadata"]["name"])
        self.applies.append(obj["kind"])
        old = self.objects.get(key)
        new = copy.deepcopy(obj)
        meta = new["metadata"]
        meta["uid"] = old["metadata"]["uid"] if old else next(self.uids)
        generation = old["metadata"]["generation"] if old else 1
        if old is not None and _desired(old) != _desired(new):
            generation += 1
        meta["generation"] = generation
        new["status"] = (old or {}).get("status", {})
        self.objects[key] = new
        return copy.deepcopy(new)

    def delete(self, api_version: str, kind: str, namespace: str, name: str, uid: str) -> None:
        self.objects.pop((kind, name), None)

    def create_event(self, namespace: str, event: Obj) -> Obj:
        return event


def _desired(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def backend() -> Obj:
    return {
        "apiVersion": "inferline.dev/v1alpha1",
        "kind": "ClusterBackend",
        "metadata": {"name": "cpu"},
        "spec": {"image": "example.com/runtime:1", "formats": ["python"], "devices": ["CPU"]},
    }


def pipeline(factor: str, generation: int) -> Obj:
    return {
        "apiVersion": "inferline.dev/v1alpha1",
        "kind": "InferencePipeline",
        "metadata": {"name": "p", "namespace": NS, "uid": "pipe-uid", "generation": generation},
        "spec": {
            "backend": {"name": "cpu"},
            "placement": {"device": "CPU"},
            "replicas": 2,
            "inputs": [{"name": "X", "dtype": "FP32", "dims": [-1]}],
            "outputs": [{"name": "Y", "dtype": "FP32", "dims": [-1]}],
            "steps": [
                {
                    "name": "scale",
                    "inputMap": {"INPUT": "X"},
                    "outputMap": {"OUTPUT": "Y"},
                    "model": {
                        "format": "python",
                        "python": {"configMap": {"name": "code"}, "key": "scale.py"},
                        "parameters": {"factor": factor},
                        "inputs": [{"name": "INPUT", "dtype": "FP32", "dims": [-1]}],
                        "outputs": [{"name": "OUTPUT", "dtype": "FP32", "dims": [-1]}],
                    },
                }
            ],
        },
    }


def rolled_out(deployment: Obj, replicas: int) -> Obj:
    """The Deployment as the watch reports it once its controller finished the rollout."""
    out = copy.deepcopy(deployment)
    out["status"] = {
        "observedGeneration": out["metadata"]["generation"],
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
    }
    return out


def serving_pods(state: ClusterState, *names: str, gone: tuple[str, ...] = ()) -> None:
    """The watch: pods `names` run and are ready, pods `gone` were deleted, and the Service's
    EndpointSlice routes to `names`."""
    labels = {"inferline.dev/pipeline": "p"}
    for name in gone:
        state.on_pod("DELETED", {"metadata": {"name": name, "namespace": NS, "labels": labels}})
    for name in names:
        state.on_pod(
            None,
            {
                "metadata": {"name": name, "namespace": NS, "labels": labels},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
            },
        )
    endpoints = [
        {"conditions": {"ready": True}, "targetRef": {"kind": "Pod", "name": n}} for n in names
    ]
    state.on_endpoint_slice(
        None,
        {"metadata": {"name": "p-x", "namespace": NS, "labels": labels}, "endpoints": endpoints},
    )


def world() -> tuple[Apiserver, ClusterState, Reconciler]:
    """The apiserver stand-in, the operator's state (with the pipeline's backend) and a
    reconciler between them."""
    api = Apiserver()
    state = ClusterState(node_view=lambda _: None)
    state.on_cluster_backend(None, backend())
    reconciler = Reconciler(state, api, place_pipeline, RuntimeSettings(), Metrics())  # type: ignore[arg-type]
    return api, state, reconciler


def ready(status: Obj) -> Obj:
    return next(c for c in status["conditions"] if c["type"] == "Ready")


def test_a_changed_spec_is_not_ready_on_the_old_rollout_before_the_watch_catches_up() -> None:
    api, state, reconciler = world()
    key = (NS, "p")

    state.on_pipeline(None, pipeline("2.0", generation=1))
    asyncio.run(reconciler.reconcile(key))
    deployment = api.objects[("Deployment", "p")]
    # The watch: the Deployment's controller has rolled out generation 1.
    state.on_child(None, rolled_out(deployment, 2))
    serving_pods(state, "p-1", "p-2")
    asyncio.run(reconciler.reconcile(key))
    assert ready(api.statuses[-1])["status"] == "True"

    # The spec changes; the watch has not yet delivered the new Deployment (the last one it
    # reported is the rolled-out generation 1).
    state.on_pipeline(None, pipeline("3.0", generation=2))
    asyncio.run(reconciler.reconcile(key))
    assert api.objects[("Deployment", "p")]["metadata"]["generation"] == 2
    status = api.statuses[-1]
    assert ready(status)["status"] == "False", status
    assert ready(status)["reason"] == Reason.ROLLING_OUT.value

    # A late watch event from before the apply is old news: it neither brings the old rollout
    # back nor asks for a re-apply.
    applies = len(api.applies)
    state.on_child(None, rolled_out(deployment, 2))
    asyncio.run(reconciler.reconcile(key))
    assert ready(api.statuses[-1])["status"] == "False"
    assert len(api.applies) == applies, api.applies[applies:]

    # The rollout of generation 2 finishes: Ready.
    state.on_child(None, rolled_out(api.objects[("Deployment", "p")], 2))
    serving_pods(state, "p-3", "p-4", gone=("p-1", "p-2"))
    asyncio.run(reconciler.reconcile(key))
    assert ready(api.statuses[-1])["status"] == "True"


def test_status_only_reconciles_reuse_the_plan_until_an_input_or_a_child_changes() -> None:
    api, state, reconciler = world()
    plans = 0
    plan = reconciler.plan

    def counting(body: Obj) -> Any:
        nonlocal plans
        plans += 1
        return plan(body)

    reconciler.plan = counting  # type: ignore[method-assign]
    key = (NS, "p")

    def reconcile(expect_plans: int, **kwargs: Any) -> None:
        asyncio.run(reconciler.reconcile(key, **kwargs))
        assert plans == expect_plans

    state.on_pipeline(None, pipeline("2.0", generation=1))
    reconcile(1)
    for o in api.objects.values():  # the watch brings our applies back
        state.on_child(None, o)
    # the rollout, pods and endpoints move on: status only
    state.on_child(None, rolled_out(api.objects[("Deployment", "p")], 2))
    serving_pods(state, "p-1", "p-2")
    reconcile(1)
    assert ready(api.statuses[-1])["status"] == "True"
    # someone edits a child: planned again, and the child put back
    edited = copy.deepcopy(api.objects[("Service", "p")])
    edited["metadata"]["resourceVersion"] = "edited"
    state.on_child(None, edited)
    applies = len(api.applies)
    reconcile(2)
    assert api.applies[applies:] == ["Service"]
    reconcile(2)
    # a plan input other than the pipeline changes (a ClusterBackend, here the same one again)
    state.on_cluster_backend(None, backend())
    reconcile(3)
    # the spec changes
    state.on_pipeline(None, pipeline("3.0", generation=2))
    reconcile(4)
    # a forced resync plans again
    reconcile(5, force=True)


def test_a_refused_prune_is_reported_as_a_failed_apply_not_raised() -> None:
    """On the reused-plan path too (a status-only reconcile that finds something to prune)."""
    from kubernetes.client.exceptions import ApiException

    api, state, reconciler = world()
    key = (NS, "p")
    state.on_pipeline(None, pipeline("2.0", generation=1))
    asyncio.run(reconciler.reconcile(key))
    for o in api.objects.values():
        state.on_child(None, o)
    # A render ConfigMap of an earlier spec, which no pod uses: due for pruning, and refused.
    stale = copy.deepcopy(next(o for (k, _), o in api.objects.items() if k == "ConfigMap"))
    stale["metadata"]["name"] = "p-render-earlier"
    state.on_child(None, stale)

    def refuse(*_: Any) -> None:
        raise ApiException(status=403, reason="Forbidden")

    api.delete = refuse  # type: ignore[method-assign]
    asyncio.run(reconciler.reconcile(key))
    ready_condition = ready(api.statuses[-1])
    assert ready_condition["reason"] == Reason.APPLY_FAILED.value, api.statuses[-1]
