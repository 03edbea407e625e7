"""The InferencePipeline kind: the served unit (a DAG of steps) and how it is served."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from ..gpu.mig import MIG_PROFILE_PATTERN
from .common import (
    MAX_TENSORS,
    ApiModel,
    Condition,
    Device,
    DnsLabel,
    DnsSubdomain,
    ObjectMeta,
    TensorName,
    TensorSpec,
    cel_rules,
)
from .model import ModelSpec

MAX_STEPS = 32


class BackendKind(StrEnum):
    BACKEND = "Backend"
    CLUSTER_BACKEND = "ClusterBackend"


class BackendRef(ApiModel):
    kind: BackendKind = BackendKind.CLUSTER_BACKEND
    name: DnsSubdomain


class StepModelRef(ApiModel):
    name: DnsSubdomain


class Step(ApiModel):
    """One node of the DAG: a model (by reference or inline) and how its tensors connect.

    `inputMap` maps the model's input names to pipeline tensors it reads; `outputMap` maps the
    model's output names to the pipeline tensors it produces (as Triton's ensemble_scheduling).
    """

    model_config = cel_rules(
        (
            "has(self.modelRef) != has(self.model)",
            "set exactly one of modelRef and model",
        ),
    )

    name: DnsLabel
    model_ref: StepModelRef | None = None
    model: ModelSpec | None = None
    input_map: Annotated[dict[str, TensorName], Field(max_length=MAX_TENSORS)] = Field(
        default_factory=dict
    )
    output_map: Annotated[dict[str, TensorName], Field(min_length=1, max_length=MAX_TENSORS)]
    device: Device | None = Field(
        default=None, description="Overrides placement.device for this step."
    )

    @model_validator(mode="after")
    def _one_model(self) -> Step:
        if (self.model_ref is None) == (self.model is None):
            raise ValueError("set exactly one of modelRef and model")
        return self


class Toleration(ApiModel):
    key: Annotated[str, Field(max_length=316)] | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: Annotated[str, Field(max_length=63)] | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class GpuRequest(ApiModel):
    """The GPU each replica gets: whole GPUs, or one MIG slice."""

    model_config = cel_rules(
        ("!has(self.migProfile) || self.count == 1", "a MIG slice is requested one at a time"),
        (
            "!(has(self.migProfile) && has(self.memory))",
            "set migProfile or memory, not both",
        ),
    )

    count: Annotated[int, Field(ge=1, le=16)] = 1
    mig_profile: Annotated[str, Field(pattern=MIG_PROFILE_PATTERN, max_length=16)] | None = Field(
        default=None, description="A MIG profile such as 1g.10gb."
    )
    memory: Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?Gi?$", max_length=16)] | None = Field(
        default=None,
        description="GPU memory needed (e.g. 10Gi): picks the smallest MIG profile that fits.",
    )
    product: Annotated[str, Field(max_length=128)] | None = Field(
        default=None,
        description="The nvidia.com/gpu.product label to run on, e.g. NVIDIA-H100-80GB-HBM3.",
    )


class Placement(ApiModel):
    device: Device = Device.GPU
    gpu: GpuRequest | None = None
    node_selector: Annotated[dict[str, str], Field(max_length=32)] = Field(default_factory=dict)
    tolerations: Annotated[list[Toleration], Field(max_length=32)] = Field(default_factory=list)


class AutoscalingEngine(StrEnum):
    BUILTIN = "builtin"
    HPA = "hpa"
    KEDA = "keda"


class AutoscalingTargets(ApiModel):
    """What one replica should deliver; the autoscaler keeps every target that is set."""

    p95_latency_ms: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="End-to-end p95 latency of the pipeline (the ensemble), in milliseconds. "
        "Breaking it scales up in steps; being near it blocks scaling down.",
    )
    throughput_per_replica: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="Inferences per second one replica should carry: the replicas follow the "
        "load in proportion. Without it, the rate at which a replica last broke a latency or "
        "queue target is used.",
    )
    queue_time_ms: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="Average time a request waits in the steps' queues, in milliseconds "
        "(NVIDIA's queue-time metric, summed over the pipeline's steps).",
    )


class ScalingBehavior(ApiModel):
    """How fast one direction may move (HPA's behavior, simplified to one rate limit)."""

    stabilization_seconds: Annotated[int, Field(ge=0, le=3600)] | None = Field(
        default=None,
        description="Act on the most conservative recommendation of this window (the lowest "
        "when scaling up, the highest when scaling down). Default 0 for scaleUp, 60 for "
        "scaleDown.",
    )
    max_step_replicas: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        default=None,
        description="At most this many replicas added (scaleUp) or removed (scaleDown) per "
        "stepPeriodSeconds; with maxStepPercent too, the larger allowance applies. Default 10 "
        "for scaleUp, 1 for scaleDown.",
    )
    max_step_percent: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        default=None,
        description="At most this percentage of the replicas added or removed per "
        "stepPeriodSeconds. Default 200 for scaleUp, 50 for scaleDown.",
    )
    step_period_seconds: Annotated[int, Field(ge=1, le=3600)] | None = Field(
        default=None,
        description="The period the step limits apply to. Default 15 for scaleUp, 30 for "
        "scaleDown.",
    )


class MetricsSourceKind(StrEnum):
    PODS = "Pods"
    PROMETHEUS = "Prometheus"


PrometheusLabel = Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=128)]


class PrometheusMetrics(ApiModel):
    """Where to read the runtime's metrics when a Prometheus already scrapes the pods."""

    url: Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2048)] = Field(
        description="Base URL of the Prometheus HTTP API, e.g. "
        "http://prometheus-operated.monitoring:9090 (its /api/v1/query is used).",
    )
    pod_label: PrometheusLabel = Field(
        default="pod", description="The label naming the pod on scraped series."
    )
    namespace_label: PrometheusLabel = Field(
        default="namespace", description="The label naming the pod's namespace."
    )


class AutoscalingMetrics(ApiModel):
    """Where the built-in autoscaler reads load and latency, and when it distrusts them."""

    model_config = cel_rules(
        (
            "self.source != 'Prometheus' || has(self.prometheus)",
            "source Prometheus needs prometheus.url",
        ),
    )

    source: MetricsSourceKind = Field(
        default=MetricsSourceKind.PODS,
        description="Pods: read each ready pod's Triton /metrics directly (no extra "
        "components). Prometheus: query the Prometheus HTTP API at prometheus.url.",
    )
    prometheus: PrometheusMetrics | None = None
    interval_seconds: Annotated[int, Field(ge=1, le=300)] = Field(
        default=2, description="How often the metrics are read and a decision is made."
    )
    max_age_seconds: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=30,
        description="Metrics older than this are stale: hold the replicas as they are.",
    )
    min_pods_percent: Annotated[int, Field(ge=1, le=100)] = Field(
        default=50,
        description="Hold the replicas as they are when fewer than this percentage of the ready "
        "pods answered.",
    )

    @model_validator(mode="after")
    def _prometheus_url(self) -> AutoscalingMetrics:
        if self.source is MetricsSourceKind.PROMETHEUS and self.prometheus is None:
            raise ValueError("source Prometheus needs prometheus.url")
        return self


class Autoscaling(ApiModel):
    model_config = cel_rules(
        ("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas"),
        (
            "has(self.targets) && (has(self.targets.p95LatencyMs) || "
            "has(self.targets.throughputPerReplica) || has(self.targets.queueTimeMs))",
            "set at least one of targets.p95LatencyMs, targets.throughputPerReplica, "
            "targets.queueTimeMs",
        ),
    )

    engine: AutoscalingEngine = AutoscalingEngine.BUILTIN
    min_replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=1000)]
    targets: AutoscalingTargets = Field(default_factory=AutoscalingTargets)
    scale_up: ScalingBehavior = Field(default_factory=ScalingBehavior)
    scale_down: ScalingBehavior = Field(default_factory=ScalingBehavior)
    tolerance: Annotated[float, Field(ge=0, le=0.5)] = Field(
        default=0.1,
        description="Ignore load changes within this fraction of the throughput target (as "
        "the HPA's 0.1), so small wobbles never move the replicas.",
    )
    metrics: AutoscalingMetrics = Field(default_factory=AutoscalingMetrics)

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) must not exceed maxReplicas "
                f"({self.max_replicas})"
            )
        t = self.targets
        if (t.p95_latency_ms, t.throughput_per_replica, t.queue_time_ms) == (None, None, None):
            raise ValueError(
                "set at least one of targets.p95LatencyMs, targets.throughputPerReplica, "
                "targets.queueTimeMs"
            )
        return self


class InferencePipelineSpec(ApiModel):
    inputs: Annotated[list[TensorSpec], Field(min_length=1, max_length=MAX_TENSORS)]
    outputs: Annotated[list[TensorSpec], Field(min_length=1, max_length=MAX_TENSORS)]
    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)]
    max_batch_size: Annotated[int, Field(ge=0, le=1 << 20)] = 0
    backend: BackendRef = Field(default_factory=lambda: BackendRef(name="triton"))
    placement: Placement = Field(default_factory=Placement)
    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    autoscaling: Autoscaling | None = None


# ---- status -------------------------------------------------------------------------------


class StepStatus(ApiModel):
    name: str
    model: str
    format: str
    served_as: str = Field(description="native:<triton backend> or adapter:<library>")
    device: str
    ready: bool = False
    message: str = ""


class Endpoints(ApiModel):
    http: str | None = None
    grpc: str | None = None
    metrics: str | None = None


class GpuResourceStatus(ApiModel):
    resource: str = Field(description="e.g. nvidia.com/gpu or nvidia.com/mig-1g.10gb")
    count: int
    strategy: str | None = None
    product: str | None = None


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
    conditions: list[Condition] = Field(default_factory=list)
    replicas: int = 0
    ready_replicas: int = 0
    selector: str | None = Field(default=None, description="Label selector (scale subresource).")
    steps: list[StepStatus] = Field(default_factory=list)
    endpoints: Endpoints | None = None
    gpu_resource: GpuResourceStatus | None = None
    last_autoscaling_decision: AutoscalingDecision | None = None


class InferencePipeline(ApiModel):
    api_version: Literal["inferline.dev/v1alpha1"]
    kind: Literal["InferencePipeline"]
    metadata: ObjectMeta
    spec: InferencePipelineSpec
    status: InferencePipelineStatus | None = None
