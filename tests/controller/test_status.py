"""Status as a pure function of what reconcile concluded and what the cluster reports."""

from __future__ import annotations

from typing import Literal

from inferline.api.status import (
    ClaimState,
    ClaimStatus,
    ConditionStatus,
    GpuResourceStatus,
    InferencePipelineStatus,
    Reason,
    get_condition,
)
from inferline.controller.status import (
    ClaimView,
    DeploymentView,
    PodView,
    StatusResult,
    Verdict,
    compute_status,
)

NOW = "2026-11-29T10:00:00Z"
LATER = "2026-11-29T10:05:00Z"
PLACED = Verdict(placement_reason=Reason.PLACED, placement_message="CPU only", applied=True)


def status(
    verdict: Verdict = PLACED,
    deployment: DeploymentView | None = None,
    pods: list[PodView] | None = None,
    desired: int = 2,
    previous: InferencePipelineStatus | None = None,
    now: str = NOW,
    generation: int = 1,
    claims: list[ClaimView] | None = None,
    routed: frozenset[str] | Literal["ready pods"] | None = "ready pods",
) -> StatusResult:
    """Without `pods`, the deployment's ready pods; without `routed`, the Service routes to
    exactly the ready pods (it has caught up)."""
    if pods is None:
        pods = [
            PodView(f"p-{i}", "Running", True) for i in range(deployment.ready if deployment else 0)
        ]
    if routed == "ready pods":
        routed = frozenset(p.name for p in pods if p.ready and not p.terminating)
    return compute_status(
        claims=claims,
        generation=generation,
        desired=desired,
        selector="inferline.dev/pipeline=p",
        verdict=verdict,
        deployment=deployment,
        pods=pods,
        previous=previous,
        now=now,
        routed=routed,
    )


def cond(r: StatusResult, t: str) -> tuple[str, str]:
    c = get_condition(r.status.conditions, t)
    assert c is not None, t
    return c.status.value, c.reason


def serving(n: int = 2, generation: int = 1) -> DeploymentView:
    return DeploymentView(generation, generation, n, n, n, n)


def test_a_new_pipeline_is_reconciling_until_its_pods_are_ready() -> None:
    r = status(deployment=DeploymentView(1, 1, 2, 2, 0, 0), pods=[PodView("p-1"), PodView("p-2")])
    assert cond(r, "Ready") == ("False", "RollingOut")
    assert cond(r, "Reconciling") == ("True", "RollingOut")
    assert cond(r, "Stalled") == ("False", "Reconciled")
    assert cond(r, "Validated") == ("True", "Valid")
    assert cond(r, "ModelsReady") == ("False", "ModelsLoading")
    assert r.status.observed_generation == 1
    assert all(c.observed_generation == 1 for c in r.status.conditions)
    assert r.status.selector == "inferline.dev/pipeline=p"


def test_serving_when_every_replica_runs_the_current_template_and_is_ready() -> None:
    r = status(deployment=serving(2), pods=[PodView(n, "Running", True) for n in "ab"])
    assert cond(r, "Ready") == ("True", "Serving")
    assert cond(r, "Reconciling") == ("False", "Reconciled")
    assert cond(r, "ModelsReady") == ("True", "ModelsLoaded")
    assert cond(r, "Progressing") == ("False", "Reconciled")
    assert (r.status.replicas, r.status.ready_replicas) == (2, 2)
    assert [e.reason for e in r.events if e.type == "Normal"] == ["Valid", "Placed", "Serving"]


def test_an_old_replica_set_still_around_is_a_rollout_not_ready() -> None:
    d = DeploymentView(2, 2, replicas=3, updated=2, ready=3, available=3)  # one old pod left
    r = status(deployment=d)
    assert cond(r, "Ready") == ("False", "RollingOut")
    assert cond(r, "Progressing") == ("True", "RollingOut")


def test_invalid_update_keeps_serving_and_stalls() -> None:
    good = status(deployment=serving())
    bad = Verdict(Reason.INVALID_SPEC, "spec.steps[0].inputMap.I: dtype mismatch")
    r = status(bad, deployment=serving(), previous=good.status, generation=2)
    assert cond(r, "Validated") == ("False", "InvalidSpec")
    assert cond(r, "Stalled") == ("True", "InvalidSpec")
    assert cond(r, "Ready")[0] == "False"
    ready = get_condition(r.status.conditions, "Ready")
    assert ready is not None and "keeps serving" in ready.message
    assert "dtype mismatch" in ready.message
    assert r.status.ready_replicas == 2  # still serving
    assert r.status.observed_generation == 2
    warnings = [e for e in r.events if e.type == "Warning"]
    assert {e.reason for e in warnings} == {"InvalidSpec"}


def test_a_missing_model_is_waited_for_not_stalled() -> None:
    r = status(Verdict(Reason.MISSING_REFERENCE, "Model 'm' not found"))
    assert cond(r, "Reconciling") == ("True", "MissingReference")
    assert cond(r, "Stalled") == ("False", "Reconciled")
    assert cond(r, "Validated") == ("False", "MissingReference")


def test_no_capacity_says_why_before_the_scheduler_is_asked() -> None:
    message = "no node offers nvidia.com/mig-3g.40gb; the cluster has mig-1g.10gb x14 on 2 nodes"
    r = status(Verdict(placement_reason=Reason.NO_CAPACITY, placement_message=message))
    assert cond(r, "Scheduled") == ("False", "NoCapacity")
    assert cond(r, "Stalled") == ("True", "NoCapacity")
    ready = get_condition(r.status.conditions, "Ready")
    assert ready is not None and ready.message == message


def test_the_scheduler_reason_is_surfaced() -> None:
    pending = PodView(
        "p-1", unschedulable="0/9 nodes are available: 9 Insufficient nvidia.com/gpu."
    )
    r = status(deployment=DeploymentView(1, 1, 1, 1, 0, 0), pods=[pending], desired=1)
    assert cond(r, "Scheduled") == ("False", "Unschedulable")
    c = get_condition(r.status.conditions, "Scheduled")
    assert c is not None and "Insufficient nvidia.com/gpu" in c.message


def test_a_crash_looping_runtime_is_degraded_with_its_last_words() -> None:
    failing = PodView("p-1", "Running", waiting="CrashLoopBackOff: model 'x' failed to load: boom")
    r = status(deployment=DeploymentView(1, 1, 1, 1, 0, 0), pods=[failing], desired=1)
    assert cond(r, "Degraded") == ("True", "PodFailing")
    assert cond(r, "ModelsReady") == ("False", "PodFailing")
    c = get_condition(r.status.conditions, "Ready")
    assert c is not None and "failed to load: boom" in c.message


def test_scaled_to_zero_is_ready() -> None:
    r = status(deployment=serving(0), desired=0)
    assert cond(r, "Ready") == ("True", "ScaledToZero")


def test_transition_time_moves_only_when_the_status_does() -> None:
    first = status(deployment=serving())
    again = status(deployment=serving(), previous=first.status, now=LATER)
    assert again.status.conditions == first.status.conditions
    assert again.events == []
    down = status(deployment=DeploymentView(1, 1, 2, 2, 1, 1), previous=first.status, now=LATER)
    ready = get_condition(down.status.conditions, "Ready")
    validated = get_condition(down.status.conditions, "Validated")
    assert ready is not None and ready.last_transition_time == LATER
    assert validated is not None and validated.last_transition_time == NOW
    assert ready.status is ConditionStatus.FALSE


def test_pod_view_reads_the_scheduler_and_the_runtime() -> None:
    pod = {
        "metadata": {"name": "p-1"},
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False"},
            ],
            "containerStatuses": [
                {
                    "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                    "lastState": {
                        "terminated": {
                            "exitCode": 1,
                            "message": "INFO fetching\nERROR s3://b/m.pt: not found\n",
                        }
                    },
                }
            ],
        },
    }
    v = PodView.from_pod(pod)
    assert (v.name, v.phase, v.ready, v.restarts) == ("p-1", "Running", False, 3)
    assert v.waiting == "CrashLoopBackOff: ERROR s3://b/m.pt: not found"
    unscheduled = {
        "metadata": {"name": "p-2"},
        "status": {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available",
                }
            ]
        },
    }
    assert PodView.from_pod(unscheduled).unschedulable == "0/3 nodes are available"


def test_deployment_view_reads_rollout_state() -> None:
    d = {
        "metadata": {"generation": 4},
        "status": {
            "observedGeneration": 4,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}],
        },
    }
    v = DeploymentView.from_deployment(d)
    assert v.rolled_out(2) and not v.rolled_out(3) and v.deadline_exceeded
    r = status(deployment=v)
    assert cond(r, "Stalled") == ("True", "PodFailing")


# ---- DRA: the allocation mode and the pods' claims ----------------------------------------------

DRA_GPU = GpuResourceStatus(
    resource="mig.nvidia.com", count=1, product="NVIDIA H200", allocation="dra", profile="1g.35gb"
)
DRA = Verdict(
    placement_reason=Reason.PLACED,
    placement_message="1 x mig.nvidia.com device 1g.35gb (NVIDIA H200) through DRA",
    gpu=DRA_GPU,
    applied=True,
)


def claim_body(**status: object) -> dict[str, object]:
    return {
        "metadata": {
            "name": "p-1-gpu-abc",
            "ownerReferences": [{"kind": "Pod", "name": "p-1", "controller": True}],
        },
        "status": status,
    }


ALLOCATION = {
    "devices": {"results": [{"request": "gpu", "pool": "n", "device": "gpu-1-mig-1g35gb-2"}]}
}


def test_a_claims_state_is_pending_allocated_or_reserved() -> None:
    assert ClaimView.from_claim(claim_body()) == ClaimView("p-1-gpu-abc", "p-1", ClaimState.PENDING)
    allocated = ClaimView.from_claim(claim_body(allocation=ALLOCATION))
    assert (allocated.state, allocated.devices) == (ClaimState.ALLOCATED, ("n/gpu-1-mig-1g35gb-2",))
    reserved = ClaimView.from_claim(
        claim_body(allocation=ALLOCATION, reservedFor=[{"resource": "pods", "name": "p-1"}])
    )
    assert reserved.state is ClaimState.RESERVED


def test_with_dra_status_lists_the_claims_and_scheduled_counts_them() -> None:
    claims = [
        ClaimView("p-2-gpu-x", "p-2", ClaimState.PENDING),
        ClaimView("p-1-gpu-y", "p-1", ClaimState.RESERVED, ("n/gpu-1-mig-1g35gb-2",)),
    ]
    r = status(DRA, claims=claims)
    gpu = r.status.gpu_resource
    assert gpu is not None and (gpu.allocation, gpu.profile) == ("dra", "1g.35gb")
    assert gpu.claims == [
        ClaimStatus(
            name="p-1-gpu-y", pod="p-1", state=ClaimState.RESERVED, devices=["n/gpu-1-mig-1g35gb-2"]
        ),
        ClaimStatus(name="p-2-gpu-x", pod="p-2", state=ClaimState.PENDING),
    ]
    scheduled = get_condition(r.status.conditions, "Scheduled")
    assert scheduled is not None and scheduled.message == (
        "1 x mig.nvidia.com device 1g.35gb (NVIDIA H200) through DRA; claims: 1 reserved, 1 pending"
    )
    wire = r.status.to_wire()["gpuResource"]
    assert wire["claims"][0] == {
        "name": "p-1-gpu-y",
        "pod": "p-1",
        "state": "reserved",
        "devices": ["n/gpu-1-mig-1g35gb-2"],
    }


def test_the_schedulers_refusal_outranks_the_claims() -> None:
    r = status(
        DRA,
        pods=[PodView("p-1", unschedulable="0/9 nodes are available: cannot allocate all claims")],
        claims=[ClaimView("p-1-gpu-y", "p-1", ClaimState.PENDING)],
    )
    assert cond(r, "Scheduled") == ("False", "Unschedulable")


def test_claims_are_not_reported_for_the_device_plugin() -> None:
    plugin = Verdict(
        placement_reason=Reason.PLACED,
        placement_message="1 x nvidia.com/gpu",
        gpu=GpuResourceStatus(resource="nvidia.com/gpu", count=1, allocation="devicePlugin"),
    )
    r = status(plugin, claims=[ClaimView("old-gpu-x", "old", ClaimState.RESERVED)])
    assert r.status.gpu_resource is not None and r.status.gpu_resource.claims == []
    scheduled = get_condition(r.status.conditions, "Scheduled")
    assert scheduled is not None and scheduled.message == "1 x nvidia.com/gpu"


def test_ready_waits_until_the_service_routes_to_exactly_the_current_ready_pods() -> None:
    new = [PodView("new-1", "Running", True), PodView("new-2", "Running", True)]
    old = PodView("old-1", "Running", True, terminating=True)
    cases = [
        (None, "the Service has no endpoints yet"),
        (frozenset({"new-1"}), "the Service routes to 1 of them yet"),
        # a slice that has not yet caught up with a pod being replaced (old spec)
        (
            frozenset({"new-1", "new-2", "old-1"}),
            "the Service still routes to pod old-1, which is being replaced",
        ),
    ]
    for routed, why in cases:
        r = status(deployment=serving(2), pods=[*new, old], routed=routed)
        assert cond(r, "Ready") == ("False", "WaitingForEndpoints"), routed
        ready = get_condition(r.status.conditions, "Ready")
        assert ready is not None and ready.message == f"2 of 2 replicas ready; {why}"
        assert cond(r, "Reconciling")[0] == "True"
        assert cond(r, "Stalled")[0] == "False"
    r = status(deployment=serving(2), pods=[*new, old], routed=frozenset({"new-1", "new-2"}))
    assert cond(r, "Ready") == ("True", "Serving")
