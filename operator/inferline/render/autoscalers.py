"""Render the HPA or KEDA ScaledObject of a pipeline whose `autoscaling.engine` is `hpa` or
`keda` (pure). Both target the InferencePipeline's scale subresource, as the built-in engine
does, so `spec.replicas` stays the one place replicas are set.

- `hpa`: an autoscaling/v2 HorizontalPodAutoscaler on Pods metrics, which a metrics adapter
  (prometheus-adapter) must serve under the names below (docs/autoscaling.md has its rules).
- `keda`: a ScaledObject with Prometheus triggers, queried at `metrics.prometheus.url`.
"""

from __future__ import annotations

from typing import Any

from ..api import names
from ..api.common import API_VERSION
from ..api.pipeline import Autoscaling, AutoscalingEngine, InferencePipeline, ScalingBehavior

Obj = dict[str, Any]

# Pods metrics the HPA reads (per pod, averaged across the pipeline's pods by the HPA).
INFERENCES_PER_SECOND = "inferline_inferences_per_second"
P95_LATENCY_MS = "inferline_p95_latency_ms"
QUEUE_TIME_MS = "inferline_queue_time_ms"

# The built-in engine's defaults, which the HPA/KEDA behaviour repeats (autoscale/decide.py).
_UP = {"window": 0, "replicas": 10, "percent": 200, "period": 15}
_DOWN = {"window": 60, "replicas": 1, "percent": 50, "period": 30}


def _target(pipe: InferencePipeline) -> Obj:
    return {"apiVersion": API_VERSION, "kind": "InferencePipeline", "name": pipe.metadata.name}


def _rules(b: ScalingBehavior, d: dict[str, int]) -> Obj:
    period = b.step_period_seconds or d["period"]
    pods = b.max_step_replicas or d["replicas"]
    percent = b.max_step_percent or d["percent"]
    return {
        "stabilizationWindowSeconds": (
            d["window"] if b.stabilization_seconds is None else b.stabilization_seconds
        ),
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": pods, "periodSeconds": period},
            {"type": "Percent", "value": percent, "periodSeconds": period},
        ],
    }


def _behavior(a: Autoscaling) -> Obj:
    return {"scaleUp": _rules(a.scale_up, _UP), "scaleDown": _rules(a.scale_down, _DOWN)}


def _meta(pipe: InferencePipeline, name: str, labels: dict[str, str], owner: Obj) -> Obj:
    return {
        "name": name,
        "namespace": pipe.metadata.namespace or "default",
        "labels": labels,
        "ownerReferences": [owner],
    }


def render_hpa(
    pipe: InferencePipeline, served_name: str, labels: dict[str, str], owner: Obj
) -> Obj:
    a = pipe.spec.autoscaling
    assert a is not None
    t = a.targets
    selector = {"matchLabels": {"model": served_name}}
    metrics = []
    for name, value in (
        (INFERENCES_PER_SECOND, t.throughput_per_replica),
        (P95_LATENCY_MS, t.p95_latency_ms),
        (QUEUE_TIME_MS, t.queue_time_ms),
    ):
        if value is not None:
            metrics.append(
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": name, "selector": selector},
                        "target": {"type": "AverageValue", "averageValue": _quantity(value)},
                    },
                }
            )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(pipe, names.horizontal_pod_autoscaler(pipe.metadata.name), labels, owner),
        "spec": {
            "scaleTargetRef": _target(pipe),
            # The HPA cannot scale from zero (without an alpha gate).
            "minReplicas": max(a.min_replicas, 1),
            "maxReplicas": a.max_replicas,
            "metrics": metrics,
            "behavior": _behavior(a),
        },
    }


def render_scaled_object(
    pipe: InferencePipeline, served_name: str, labels: dict[str, str], owner: Obj
) -> Obj:
    a = pipe.spec.autoscaling
    assert a is not None and a.metrics.prometheus is not None  # CEL: keda needs prometheus
    prom = a.metrics.prometheus
    t = a.targets
    in_namespace = f'{prom.namespace_label}="{pipe.metadata.namespace or "default"}"'
    where = f'{in_namespace},model="{served_name}"'
    # The steps' models: <pipeline>-<step> (names.step_model); pipeline names are DNS labels.
    steps = f'{in_namespace},model=~"{names.step_model(pipe.metadata.name, ".+")}"'
    triggers = []
    if t.throughput_per_replica is not None:
        triggers.append(
            _prometheus(
                prom.url,
                f"sum(rate(nv_inference_count{{{where}}}[1m]))",
                t.throughput_per_replica,
                "AverageValue",  # total / threshold = replicas
            )
        )
    if t.p95_latency_ms is not None:
        triggers.append(
            _prometheus(
                prom.url,
                f'max(nv_inference_request_summary_us{{{where},quantile="0.95"}}) / 1000',
                t.p95_latency_ms,
                "Value",  # current x value / threshold = replicas
            )
        )
    if t.queue_time_ms is not None:
        triggers.append(
            _prometheus(
                prom.url,
                f"sum(rate(nv_inference_queue_duration_us{{{steps}}}[1m])) / "
                f"clamp_min(sum(rate(nv_inference_request_success{{{where}}}[1m])), 1e-9) / 1000",
                t.queue_time_ms,
                "Value",
            )
        )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _meta(pipe, names.scaled_object(pipe.metadata.name), labels, owner),
        "spec": {
            "scaleTargetRef": _target(pipe),
            "minReplicaCount": a.min_replicas,
            "maxReplicaCount": a.max_replicas,
            "pollingInterval": a.metrics.interval_seconds,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _behavior(a)}},
            "triggers": triggers,
        },
    }


def _prometheus(url: str, query: str, threshold: float, metric_type: str) -> Obj:
    return {
        "type": "prometheus",
        "metricType": metric_type,
        "metadata": {"serverAddress": url, "query": query, "threshold": _number(threshold)},
    }


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _quantity(v: float) -> str:
    """A Kubernetes quantity: integers as they are, fractions in milli-units (0.05 -> 50m)."""
    if float(v).is_integer():
        return str(int(v))
    return f"{round(v * 1000)}m"


def render_autoscaler(
    pipe: InferencePipeline, served_name: str, labels: dict[str, str], owner: Obj
) -> Obj | None:
    """The HPA or ScaledObject the pipeline's engine asks for; None for the built-in engine."""
    a = pipe.spec.autoscaling
    if a is None or a.engine is AutoscalingEngine.BUILTIN:
        return None
    if a.engine is AutoscalingEngine.HPA:
        return render_hpa(pipe, served_name, labels, owner)
    return render_scaled_object(pipe, served_name, labels, owner)
