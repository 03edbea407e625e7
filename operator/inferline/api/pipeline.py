"""The InferencePipeline kind: the served unit (a DAG of steps) and how it is served."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from ..gpu.mig import MIG_PROFILE_PATTERN
from . import names
from .common import (
    MAX_TENSORS,
    ApiModel,
    CelRule,
    Device,
    DnsLabel,
    DnsSubdomain,
    InputTensor,
    ObjectMeta,
    OutputTensor,
    TensorName,
    words_for,
)
from .model import ModelSpec
from .status import InferencePipelineStatus

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

    cel_rules = (
        CelRule(
            "has(self.modelRef) != has(self.model)",
            "set exactly one of modelRef and model",
            lambda s: (s.model_ref is None) != (s.model is None),
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


class Toleration(ApiModel):
    key: Annotated[str, Field(max_length=316)] | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: Annotated[str, Field(max_length=63)] | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


MIG_PROFILE = words_for(
    MIG_PROFILE_PATTERN, "a MIG profile: <1-7>g.<memory>gb, optionally +me (e.g. 1g.10gb)"
)
GPU_MEMORY = words_for(
    r"^[0-9]+(\.[0-9]+)?Gi?$", "a number of gigabytes: G (10^9 bytes) or Gi (2^30), e.g. 10Gi"
)


class GpuAllocation(StrEnum):
    """How the pods get their GPUs."""

    AUTO = "auto"
    DEVICE_PLUGIN = "devicePlugin"
    DRA = "dra"


class GpuRequest(ApiModel):
    """The GPU each replica gets: whole GPUs, or one MIG slice.

    The same fields place on clusters where NVIDIA's device plugin runs (extended resources
    nvidia.com/gpu, nvidia.com/mig-*) and where its DRA driver runs (a ResourceClaim per pod, from
    a ResourceClaimTemplate whose CEL selectors say product, memory and MIG profile).
    """

    cel_rules = (
        CelRule(
            "!has(self.migProfile) || self.count == 1",
            "a MIG slice is requested one at a time",
            lambda g: g.mig_profile is None or g.count == 1,
        ),
        CelRule(
            "!(has(self.migProfile) && has(self.memory))",
            "set migProfile or memory, not both",
            lambda g: g.mig_profile is None or g.memory is None,
        ),
    )

    count: Annotated[int, Field(ge=1, le=16)] = 1
    mig_profile: Annotated[str, Field(pattern=MIG_PROFILE, max_length=16)] | None = Field(
        default=None, description="A MIG profile such as 1g.10gb."
    )
    memory: Annotated[str, Field(pattern=GPU_MEMORY, max_length=16)] | None = Field(
        default=None,
        description="GPU memory needed (e.g. 10Gi): picks the smallest MIG profile that fits.",
    )
    product: Annotated[str, Field(max_length=128)] | None = Field(
        default=None,
        description="The nvidia.com/gpu.product label to run on, e.g. NVIDIA-H100-80GB-HBM3 (with "
        "DRA, the device's productName with dashes for spaces), a family such as A100-80GB, or "
        "a short name such as H100.",
    )
    allocation: GpuAllocation = Field(
        default=GpuAllocation.AUTO,
        description="How pods get the GPU: devicePlugin (extended resources), dra (Dynamic "
        "Resource Allocation: a ResourceClaimTemplate with NVIDIA's DeviceClasses "
        "gpu.nvidia.com / mig.nvidia.com), or auto: DRA when the cluster has NVIDIA's "
        "DeviceClasses and ResourceSlices, else the device plugin (on a cluster with both, a "
        "request only the device plugin's nodes can host goes there). Changing it rolls the "
        "pods.",
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


PROMETHEUS_LABEL = words_for(
    r"^[a-zA-Z_][a-zA-Z0-9_]*$",
    "a Prometheus label name: letters, digits and '_', not first a digit",
)
PROMETHEUS_URL = words_for(r"^https?://\S+$", "an http:// or https:// URL")
PrometheusLabel = Annotated[str, Field(pattern=PROMETHEUS_LABEL, max_length=128)]


class PrometheusMetrics(ApiModel):
    """Where to read the runtime's metrics when a Prometheus already scrapes the pods."""

    url: Annotated[str, Field(pattern=PROMETHEUS_URL, max_length=2048)] = Field(
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

    cel_rules = (
        CelRule(
            "self.source != 'Prometheus' || has(self.prometheus)",
            "source Prometheus needs prometheus.url",
            lambda m: m.source is not MetricsSourceKind.PROMETHEUS or m.prometheus is not None,
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


class Autoscaling(ApiModel):
    cel_rules = (
        CelRule(
            "self.minReplicas <= self.maxReplicas",
            "minReplicas must not exceed maxReplicas",
            lambda a: a.min_replicas <= a.max_replicas,
        ),
        CelRule(
            "has(self.targets) && (has(self.targets.p95LatencyMs) || "
            "has(self.targets.throughputPerReplica) || has(self.targets.queueTimeMs))",
            "set at least one of targets.p95LatencyMs, targets.throughputPerReplica, "
            "targets.queueTimeMs",
            lambda a: (
                (
                    a.targets.p95_latency_ms,
                    a.targets.throughput_per_replica,
                    a.targets.queue_time_ms,
                )
                != (None, None, None)
            ),
        ),
        CelRule(
            "self.engine != 'keda' || has(self.metrics) && has(self.metrics.prometheus)",
            "engine keda reads Prometheus: set metrics.prometheus.url",
            lambda a: a.engine is not AutoscalingEngine.KEDA or a.metrics.prometheus is not None,
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


QUANTITY = words_for(
    r"^[0-9]+(\.[0-9]+)?([KMGT]i?)?$",
    "a size such as 50Gi, 500M or 1.5Ti (K, M, G, T, optionally i)",
)


class ArtifactCache(ApiModel):
    """A PersistentVolumeClaim for the pipeline's artifact cache.

    Artifacts are cached by content (sha256, or URI + ETag): a restarted pod, and every replica
    sharing the claim, fetches each one once. A ReadWriteMany claim lets replicas on several
    nodes share it; a ReadWriteOnce claim serves the pods of one node.
    """

    claim_name: DnsSubdomain
    max_size: Annotated[str, Field(max_length=32, pattern=QUANTITY)] | None = Field(
        default=None,
        description="Evict least recently used artifacts above this size, e.g. 50Gi "
        "(default: no cap; size the claim instead).",
    )


class InferencePipelineSpec(ApiModel):
    inputs: Annotated[list[InputTensor], Field(min_length=1, max_length=MAX_TENSORS)]
    outputs: Annotated[list[OutputTensor], Field(min_length=1, max_length=MAX_TENSORS)]
    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)]
    max_batch_size: Annotated[int, Field(ge=0, le=1 << 20)] = 0
    backend: BackendRef = Field(default_factory=lambda: BackendRef(name="triton"))
    placement: Placement = Field(default_factory=Placement)
    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    autoscaling: Autoscaling | None = None
    artifact_cache: ArtifactCache | None = Field(
        default=None,
        description="A claim to cache model artifacts on, so restarts and replicas skip the "
        "download (default: a per-pod emptyDir, which survives container restarts).",
    )
    served_name: (
        Annotated[
            str,
            Field(min_length=1, max_length=names.MAX_SERVED_NAME, pattern=names.SERVED_NAME),
        ]
        | None
    ) = Field(
        default=None,
        description="The Triton model name clients call (default: metadata.name), e.g. "
        "ensemble_all to keep an existing client working. Underscores are allowed. Each step "
        "is served as the model <metadata.name>-<step name>.",
    )


class InferencePipeline(ApiModel):
    # Rules on the whole object: the CRD carries them at the top of its schema.
    cel_rules = (
        CelRule(
            names.PIPELINE_NAME_RULE,
            names.PIPELINE_NAME_MESSAGE,
            lambda p: names.pipeline_name_ok(p.metadata.name),
        ),
        CelRule(
            # servedName == name + '-' + step, said cheaply enough for the CEL cost budget.
            "!has(self.spec.servedName) || "
            "!(self.spec.servedName.startsWith(self.metadata.name + '-') && "
            "self.spec.steps.exists(s, size(self.spec.servedName) == size(self.metadata.name) + "
            "1 + size(s.name) && self.spec.servedName.endsWith(s.name)))",
            "spec.servedName is the Triton model name of a step (<metadata.name>-<step name>); "
            "choose another",
            lambda p: (
                p.spec.served_name is None
                or all(
                    names.step_model(p.metadata.name, s.name) != p.spec.served_name
                    for s in p.spec.steps
                )
            ),
        ),
    )

    api_version: Literal["inferline.dev/v1alpha1"]
    kind: Literal["InferencePipeline"]
    metadata: ObjectMeta
    spec: InferencePipelineSpec
    status: InferencePipelineStatus | None = None
