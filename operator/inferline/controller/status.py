"""Pure: what reconcile concluded + the children the cluster reports -> the pipeline's status.

Conditions follow kstatus, so `kubectl wait --for=condition=Ready`, Flux and (with the chart's
health check) Argo CD read them unchanged: Ready says the current generation is served;
Reconciling says work is in flight; Stalled says the spec cannot be served as it is (the only
thing that makes a GitOps tool report Failed). Validated, Scheduled, ModelsReady, Progressing and
Degraded say where on the way a pipeline is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..api.status import (
    MAX_CLAIMS_IN_STATUS,
    ClaimState,
    ClaimStatus,
    Condition,
    ConditionStatus,
    ConditionType,
    Endpoints,
    GpuResourceStatus,
    InferencePipelineStatus,
    Reason,
    StepStatus,
    set_condition,
)
from ..render.manifest import PipelineEntry

Obj = dict[str, Any]
T, F = ConditionStatus.TRUE, ConditionStatus.FALSE


@dataclass(frozen=True)
class Verdict:
    """What reconcile concluded about the spec before looking at children."""

    reason: Reason = Reason.VALID  # VALID, or why the spec is not served as it is
    message: str = ""
    placement_reason: Reason | None = None  # PLACED or NO_CAPACITY; None when not evaluated
    placement_message: str = ""
    gpu: GpuResourceStatus | None = None
    pipeline: PipelineEntry | None = None  # the compiled pipeline, when it compiled
    endpoints: Endpoints | None = None
    applied: bool = False  # children were applied for this generation

    @property
    def valid(self) -> bool:
        return self.reason is Reason.VALID

    @property
    def retrying(self) -> bool:
        """A missing reference may appear, a refused apply may pass: wait, do not give up."""
        return self.reason in (Reason.MISSING_REFERENCE, Reason.APPLY_FAILED)


@dataclass(frozen=True)
class PodView:
    """The parts of a Pod that status reads."""

    name: str
    phase: str = "Pending"
    ready: bool = False
    unschedulable: str | None = None  # the scheduler's message while PodScheduled is False
    waiting: str | None = None  # "CrashLoopBackOff: <last termination message>"
    restarts: int = 0
    terminating: bool = False
    ip: str | None = None  # where the autoscaler reads its metrics

    @classmethod
    def from_pod(cls, pod: Obj) -> PodView:
        status = pod.get("status") or {}
        conds = {c.get("type"): c for c in status.get("conditions") or []}
        sched = conds.get("PodScheduled") or {}
        unschedulable = None
        if sched.get("status") == "False":
            unschedulable = sched.get("message") or sched.get("reason") or "not scheduled"
        waiting = None
        restarts = 0
        for cs in status.get("containerStatuses") or []:
            restarts += int(cs.get("restartCount") or 0)
            w = (cs.get("state") or {}).get("waiting")
            term = (cs.get("lastState") or {}).get("terminated") or (cs.get("state") or {}).get(
                "terminated"
            )
            if w and w.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
                detail = ((term or {}).get("message") or w.get("message") or "").strip()
                last_line = detail.splitlines()[-1] if detail else ""
                waiting = f"{w['reason']}: {last_line}" if last_line else str(w["reason"])
        return cls(
            name=str((pod.get("metadata") or {}).get("name", "")),
            phase=str(status.get("phase") or "Pending"),
            ready=(conds.get("Ready") or {}).get("status") == "True",
            unschedulable=unschedulable,
            waiting=waiting,
            restarts=restarts,
            terminating=bool((pod.get("metadata") or {}).get("deletionTimestamp")),
            ip=status.get("podIP") or None,
        )


@dataclass(frozen=True)
class ClaimView:
    """The parts of a pod's ResourceClaim (DRA) that status reads."""

    name: str
    pod: str | None
    state: ClaimState
    devices: tuple[str, ...] = ()  # <pool>/<device>

    @classmethod
    def from_claim(cls, claim: Obj) -> ClaimView:
        meta = claim.get("metadata") or {}
        status = claim.get("status") or {}
        allocation = status.get("allocation") or {}
        results = (allocation.get("devices") or {}).get("results") or []
        if status.get("reservedFor"):
            state = ClaimState.RESERVED
        elif allocation:
            state = ClaimState.ALLOCATED
        else:
            state = ClaimState.PENDING
        return cls(
            name=str(meta.get("name", "")),
            pod=next(
                (
                    str(o.get("name"))
                    for o in meta.get("ownerReferences") or []
                    if o.get("kind") == "Pod"
                ),
                None,
            ),
            state=state,
            devices=tuple(f"{r.get('pool')}/{r.get('device')}" for r in results),
        )


def claims_summary(claims: list[ClaimView]) -> str:
    """ "claims: 2 reserved, 1 pending" (by state, most advanced first), or ""."""
    counts = [
        f"{n} {s.value}"
        for s in (ClaimState.RESERVED, ClaimState.ALLOCATED, ClaimState.PENDING)
        if (n := sum(c.state is s for c in claims))
    ]
    return f"claims: {', '.join(counts)}" if counts else ""


@dataclass(frozen=True)
class DeploymentView:
    """The parts of the Deployment that status reads."""

    generation: int = 0
    observed_generation: int = 0
    replicas: int = 0  # pods of every ReplicaSet
    updated: int = 0
    ready: int = 0
    available: int = 0
    deadline_exceeded: bool = False
    uid: str = ""

    @classmethod
    def from_deployment(cls, d: Obj) -> DeploymentView:
        s = d.get("status") or {}
        conds = {c.get("type"): c for c in s.get("conditions") or []}
        progressing = conds.get("Progressing") or {}
        meta = d.get("metadata") or {}
        return cls(
            uid=str(meta.get("uid") or ""),
            generation=int(meta.get("generation") or 0),
            observed_generation=int(s.get("observedGeneration") or 0),
            replicas=int(s.get("replicas") or 0),
            updated=int(s.get("updatedReplicas") or 0),
            ready=int(s.get("readyReplicas") or 0),
            available=int(s.get("availableReplicas") or 0),
            deadline_exceeded=progressing.get("reason") == "ProgressDeadlineExceeded",
        )

    def rolled_out(self, desired: int) -> bool:
        """Every pod runs the current template, and no old one is left."""
        return (
            self.observed_generation >= self.generation
            and self.updated >= desired
            and self.replicas == desired
            and self.available >= desired
        )


def _not_routed(routed: frozenset[str] | None, live: list[PodView], desired: int) -> str:
    """Why the Service does not yet route to exactly the ready pods of the rollout ("" when it
    does): the EndpointSlice controller catches up after the pods do."""
    serving = {p.name for p in live if p.ready}
    if routed is None:
        return "the Service has no endpoints yet"
    if old := sorted(routed - serving):
        return f"the Service still routes to pod {old[0]}, which is being replaced"
    if len(routed) < desired:
        return f"the Service routes to {len(routed)} of them yet"
    return ""


@dataclass(frozen=True)
class Transition:
    """A condition that changed: worth an Event."""

    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class StatusResult:
    status: InferencePipelineStatus
    events: list[Transition] = field(default_factory=list)


def compute_status(
    *,
    generation: int,
    desired: int,
    selector: str,
    verdict: Verdict,
    deployment: DeploymentView | None,
    pods: list[PodView],
    previous: InferencePipelineStatus | None,
    now: str,
    claims: list[ClaimView] | None = None,
    routed: frozenset[str] | None = None,
) -> StatusResult:
    """`routed`: the pods the pipeline's Service routes to (its EndpointSlices' ready
    endpoints); None while no slice is known. Ready waits until it is exactly the ready pods of
    the current rollout: until then a request through the Service may find no endpoint, or an
    old pod still serving the previous spec."""
    prev = previous or InferencePipelineStatus()
    conds: list[Condition] = list(prev.conditions)

    def put(t: ConditionType, status: ConditionStatus, reason: Reason, message: str) -> None:
        nonlocal conds
        conds = set_condition(conds, t, status, reason, message, generation=generation, now=now)

    live = [p for p in pods if not p.terminating]
    ready = deployment.ready if deployment else 0
    rolled_out = deployment is not None and deployment.rolled_out(desired)
    serving_old = not verdict.valid and ready > 0

    # Validated
    if verdict.valid:
        put(ConditionType.VALIDATED, T, Reason.VALID, "the spec compiles to a Triton ensemble")
    else:
        put(ConditionType.VALIDATED, F, verdict.reason, verdict.message)

    # Scheduled
    claims = sorted(claims or [], key=lambda c: (c.pod or "", c.name))
    dra = verdict.gpu is not None and verdict.gpu.allocation == "dra"
    unschedulable = [p for p in live if p.unschedulable]
    if verdict.placement_reason is Reason.NO_CAPACITY:
        put(ConditionType.SCHEDULED, F, Reason.NO_CAPACITY, verdict.placement_message)
    elif unschedulable:
        p = unschedulable[0]
        put(ConditionType.SCHEDULED, F, Reason.UNSCHEDULABLE, f"pod {p.name}: {p.unschedulable}")
    elif verdict.placement_reason is Reason.PLACED:
        message = verdict.placement_message
        if dra and (summary := claims_summary(claims)):
            message += f"; {summary}"
        put(ConditionType.SCHEDULED, T, Reason.PLACED, message)

    # ModelsReady and Degraded
    failing = [p for p in live if p.waiting]
    if ready > 0:
        put(
            ConditionType.MODELS_READY,
            T,
            Reason.MODELS_LOADED,
            f"{ready} replica{'s' * (ready != 1)} serving every model",
        )
    elif desired == 0 and verdict.valid:
        put(ConditionType.MODELS_READY, F, Reason.SCALED_TO_ZERO, "no replicas requested")
    elif failing:
        put(
            ConditionType.MODELS_READY,
            F,
            Reason.POD_FAILING,
            f"pod {failing[0].name}: {failing[0].waiting}",
        )
    else:
        put(
            ConditionType.MODELS_READY,
            F,
            Reason.MODELS_LOADING,
            "waiting for replicas to fetch artifacts and load models",
        )
    if failing:
        put(
            ConditionType.DEGRADED,
            T,
            Reason.POD_FAILING,
            f"pod {failing[0].name}: {failing[0].waiting}",
        )
    else:
        put(ConditionType.DEGRADED, F, Reason.RECONCILED, "")

    # Progressing (a rollout of the current spec is under way)
    rolling = verdict.valid and verdict.applied and not rolled_out
    if rolling:
        have = deployment.updated if deployment else 0
        put(
            ConditionType.PROGRESSING,
            T,
            Reason.ROLLING_OUT,
            f"{have} of {desired} replicas run the current configuration",
        )
    else:
        put(ConditionType.PROGRESSING, F, Reason.RECONCILED, "")

    # Ready, Reconciling, Stalled (kstatus)
    stall = _stall(verdict, deployment)
    if not verdict.valid:
        kept = " ; the last good configuration keeps serving" if serving_old else ""
        put(ConditionType.READY, F, verdict.reason, verdict.message + kept)
    elif verdict.placement_reason is Reason.NO_CAPACITY:
        put(ConditionType.READY, F, Reason.NO_CAPACITY, verdict.placement_message)
    elif desired == 0 and rolled_out:
        put(ConditionType.READY, T, Reason.SCALED_TO_ZERO, "scaled to zero replicas")
    elif rolled_out and ready >= desired and (stale := _not_routed(routed, live, desired)):
        put(
            ConditionType.READY,
            F,
            Reason.WAITING_FOR_ENDPOINTS,
            f"{ready} of {desired} replicas ready; {stale}",
        )
    elif rolled_out and ready >= desired:
        put(
            ConditionType.READY,
            T,
            Reason.SERVING,
            f"{ready} of {desired} replicas ready"
            + (f" at {verdict.endpoints.http}" if verdict.endpoints else ""),
        )
    else:
        cond = next((c for c in conds if c.type == ConditionType.MODELS_READY), None)
        reason = Reason.ROLLING_OUT if rolling else Reason.WAITING_FOR_PODS
        message = f"{ready} of {desired} replicas ready"
        if cond is not None and cond.status is F and cond.message:
            message += f"; {cond.message}"
        put(ConditionType.READY, F, reason, message)

    if stall is not None:
        reason, message = stall
        put(ConditionType.STALLED, T, reason, message)
        put(ConditionType.RECONCILING, F, reason, "")
    else:
        put(ConditionType.STALLED, F, Reason.RECONCILED, "")
        if any(c.type == ConditionType.READY and c.status is T for c in conds):
            put(ConditionType.RECONCILING, F, Reason.RECONCILED, "")
        elif verdict.retrying:
            put(ConditionType.RECONCILING, T, verdict.reason, verdict.message)
        else:
            put(
                ConditionType.RECONCILING,
                T,
                Reason.ROLLING_OUT if rolling else Reason.WAITING_FOR_PODS,
                "",
            )

    steps = prev.steps
    if verdict.pipeline is not None and verdict.valid:
        steps = [
            StepStatus(
                name=s.step,
                model=s.model,
                format=s.format,
                served_as=s.served_as,
                device=s.device,
                ready=ready > 0,
            )
            for s in verdict.pipeline.steps
        ]
    status = InferencePipelineStatus(
        observed_generation=generation,
        conditions=conds,
        replicas=deployment.replicas if deployment else 0,
        ready_replicas=ready,
        selector=selector,
        steps=steps,
        endpoints=verdict.endpoints or prev.endpoints,
        gpu_resource=_gpu_resource(verdict.gpu, claims if dra else [])
        if verdict.valid
        else prev.gpu_resource,
        last_autoscaling_decision=None,  # the autoscaler's field, under its own manager
    )
    return StatusResult(status, _transitions(prev.conditions, conds))


def _gpu_resource(
    gpu: GpuResourceStatus | None, claims: list[ClaimView]
) -> GpuResourceStatus | None:
    if gpu is None or not claims:
        return gpu
    return gpu.model_copy(
        update={
            "claims": [
                ClaimStatus(name=c.name, pod=c.pod, state=c.state, devices=list(c.devices))
                for c in claims[:MAX_CLAIMS_IN_STATUS]
            ]
        }
    )


def _stall(verdict: Verdict, deployment: DeploymentView | None) -> tuple[Reason, str] | None:
    """Why the spec cannot be served as it is, if it cannot (kstatus Stalled)."""
    if not verdict.valid and not verdict.retrying:
        return verdict.reason, verdict.message
    if verdict.placement_reason is Reason.NO_CAPACITY:
        return Reason.NO_CAPACITY, verdict.placement_message
    if deployment is not None and deployment.deadline_exceeded:
        return Reason.POD_FAILING, "the rollout exceeded its progress deadline"
    return None


_WARNING = {
    Reason.INVALID_SPEC,
    Reason.MISSING_REFERENCE,
    Reason.NOT_SERVABLE_IN_CLUSTER,
    Reason.TOO_LARGE,
    Reason.NO_CAPACITY,
    Reason.UNSCHEDULABLE,
    Reason.POD_FAILING,
    Reason.APPLY_FAILED,
}
# Conditions whose changes are worth an Event (the rest follow from these).
_EVENTFUL = (
    ConditionType.READY,
    ConditionType.VALIDATED,
    ConditionType.SCHEDULED,
    ConditionType.DEGRADED,
)


def _transitions(before: list[Condition], after: list[Condition]) -> list[Transition]:
    old = {c.type: c for c in before}
    out = []
    for c in after:
        if c.type not in _EVENTFUL:
            continue
        o = old.get(c.type)
        if o is not None and (o.status, o.reason) == (c.status, c.reason):
            continue
        if c.type == ConditionType.DEGRADED and c.status is F and o is None:
            continue  # "not degraded" from the start is no news
        warning = (c.reason in _WARNING and c.status is not T) or (
            c.type == ConditionType.DEGRADED and c.status is T
        )
        out.append(
            Transition(
                "Warning" if warning else "Normal",
                c.reason or c.type,
                f"{c.type} is {c.status.value}" + (f": {c.message}" if c.message else ""),
            )
        )
    return out
