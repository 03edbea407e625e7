"""The InferencePipeline's status: conditions (kstatus conventions), reasons, and its fields.

Conditions are a list-map keyed by `type` in the CRD, so the operator and the autoscaler can each
apply the conditions they own with server-side apply without clobbering the other's.
`set_condition` is the one way conditions change: it keeps `lastTransitionTime` unless the
status flips, so a reconcile that finds nothing new writes nothing new.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from .common import ApiModel


class ConditionType(StrEnum):
    """Condition types the operator writes.

    kstatus (`kubectl wait`, Flux, cli-utils) reads Ready, Reconciling and Stalled; the rest
    say which part of the way to Ready a pipeline is on.
    """

    READY = "Ready"
    VALIDATED = "Validated"
    SCHEDULED = "Scheduled"
    MODELS_READY = "ModelsReady"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Reason(StrEnum):
    """Machine-readable reasons (CamelCase, as Kubernetes conventions ask)."""

    # Validated
    VALID = "Valid"
    INVALID_SPEC = "InvalidSpec"
    MISSING_REFERENCE = "MissingReference"
    NOT_SERVABLE_IN_CLUSTER = "NotServableInCluster"
    TOO_LARGE = "TooLarge"
    # Scheduled
    PLACED = "Placed"
    NO_CAPACITY = "NoCapacity"
    UNSCHEDULABLE = "Unschedulable"
    # ModelsReady / Ready / Progressing
    RECONCILED = "Reconciled"
    APPLYING = "Applying"
    ROLLING_OUT = "RollingOut"
    WAITING_FOR_PODS = "WaitingForPods"
    WAITING_FOR_ENDPOINTS = "WaitingForEndpoints"
    MODELS_LOADING = "ModelsLoading"
    MODELS_LOADED = "ModelsLoaded"
    SERVING = "Serving"
    SCALED_TO_ZERO = "ScaledToZero"
    POD_FAILING = "PodFailing"
    APPLY_FAILED = "ApplyFailed"


class Condition(ApiModel):
    """A Kubernetes-style condition, as kstatus, `kubectl wait`, Argo CD and Flux read it."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    status: ConditionStatus
    reason: Annotated[str, Field(max_length=1024)] = ""
    message: Annotated[str, Field(max_length=32768)] = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


def now_rfc3339() -> str:
    """The current time as Kubernetes writes timestamps (RFC 3339, UTC, seconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[Condition],
    type_: ConditionType | str,
    status: ConditionStatus | bool,
    reason: Reason | str,
    message: str = "",
    *,
    generation: int | None = None,
    now: str | None = None,
) -> list[Condition]:
    """`conditions` with `type_` set (a new list; the input is not changed).

    lastTransitionTime changes only when the status does; the list keeps its order, with a new
    type appended at the end.
    """
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    key = str(type_)
    old = get_condition(conditions, key)
    if old is not None and old.status is status:
        transition = old.last_transition_time
    else:
        transition = now or now_rfc3339()
    new = Condition(
        type=key,
        status=status,
        reason=str(reason),
        message=message[:32768],
        last_transition_time=transition,
        observed_generation=generation,
    )
    if old is None:
        return [*conditions, new]
    return [new if c.type == key else c for c in conditions]


def get_condition(conditions: list[Condition], type_: ConditionType | str) -> Condition | None:
    return next((c for c in conditions if c.type == str(type_)), None)


def is_true(conditions: list[Condition], type_: ConditionType | str) -> bool:
    c = get_condition(conditions, type_)
    return c is not None and c.status is ConditionStatus.TRUE


# ---- the InferencePipeline's status fields --------------------------------------------------


class StepStatus(ApiModel):
    name: str
    model: str = Field(description="The Triton model serving this step.")
    format: str
    served_as: str = Field(description="native:<triton backend> or adapter:<library>")
    device: str
    ready: bool = False
    message: str = ""


class Endpoints(ApiModel):
    http: str | None = None
    grpc: str | None = None
    metrics: str | None = None


class ClaimState(StrEnum):
    """Where a pod's ResourceClaim is (DRA)."""

    PENDING = "pending"  # not allocated yet: the scheduler has not found devices
    ALLOCATED = "allocated"  # devices chosen, no pod uses them yet
    RESERVED = "reserved"  # devices chosen and reserved for the pod


class ClaimStatus(ApiModel):
    name: str = Field(description="The ResourceClaim, generated for the pod from the template.")
    pod: str | None = None
    state: ClaimState
    devices: list[str] = Field(
        default_factory=list, description="The allocated devices, as <pool>/<device>."
    )


MAX_CLAIMS_IN_STATUS = 16


class GpuResourceStatus(ApiModel):
    resource: str = Field(
        description="e.g. nvidia.com/gpu or nvidia.com/mig-1g.10gb; with DRA the DeviceClass, "
        "gpu.nvidia.com or mig.nvidia.com"
    )
    count: int
    strategy: str | None = Field(
        default=None, description="The device plugin's MIG strategy: none, single or mixed."
    )
    product: str | None = None
    allocation: str | None = Field(default=None, description="devicePlugin or dra.")
    profile: str | None = Field(default=None, description="The MIG profile, for a MIG slice.")
    claims: Annotated[list[ClaimStatus], Field(max_length=MAX_CLAIMS_IN_STATUS)] = Field(
        default_factory=list,
        description="With DRA, the pods' ResourceClaims (the first "
        f"{MAX_CLAIMS_IN_STATUS} by pod) and their state.",
    )


class AutoscalingReason(StrEnum):
    """Why the built-in autoscaler chose its replicas (status, Events and its /metrics)."""

    THROUGHPUT_ABOVE_TARGET = "ThroughputAboveTarget"
    LATENCY_ABOVE_TARGET = "LatencyAboveTarget"
    QUEUE_TIME_ABOVE_TARGET = "QueueTimeAboveTarget"
    THROUGHPUT_BELOW_TARGET = "ThroughputBelowTarget"
    WITHIN_TARGETS = "WithinTargets"
    SCALE_UP_STABILIZING = "ScaleUpStabilizing"
    SCALE_DOWN_STABILIZING = "ScaleDownStabilizing"
    LATENCY_NEAR_TARGET = "LatencyNearTarget"
    BELOW_MIN_REPLICAS = "BelowMinReplicas"
    ABOVE_MAX_REPLICAS = "AboveMaxReplicas"
    NO_METRICS = "NoMetrics"
    STALE_METRICS = "StaleMetrics"
    TOO_FEW_PODS_REPORTING = "TooFewPodsReporting"


class ObservedLoad(ApiModel):
    """What the pods reported when the decision was made (absent: not measured)."""

    ready_replicas: int = 0
    pods_reporting: int = 0
    inferences_per_second: float | None = None
    requests_per_second: float | None = None
    p95_latency_ms: float | None = None
    p99_latency_ms: float | None = None
    queue_time_ms: float | None = None
    pending_requests: float | None = None


class AutoscalingDecision(ApiModel):
    time: str = Field(description="When the decision was made (RFC 3339).")
    from_replicas: int
    to_replicas: int
    reason: AutoscalingReason
    message: str = Field(default="", description="The decision in one line, with its numbers.")
    limited_by: str | None = Field(
        default=None,
        description="What held the change back: ScaleUpStepLimit, ScaleDownStepLimit, "
        "MaxReplicas or MinReplicas.",
    )
    observed: ObservedLoad | None = None


class InferencePipelineStatus(ApiModel):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    replicas: int = 0
    ready_replicas: int = 0
    selector: str | None = Field(default=None, description="Label selector (scale subresource).")
    steps: list[StepStatus] = Field(default_factory=list)
    endpoints: Endpoints | None = None
    gpu_resource: GpuResourceStatus | None = None
    last_autoscaling_decision: AutoscalingDecision | None = None
