"""What the operator's /metrics says about the built-in autoscaler (prometheus-client).

The loop calls `record` after every decision and `forget` when a pipeline goes away; the
operator serves `registry` (no server is started here).
"""

from __future__ import annotations

import contextlib
import math

from prometheus_client import CollectorRegistry, Counter, Gauge

from .decide import Decision
from .metrics import Observation

LABELS = ("namespace", "pipeline")


class AutoscalerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(f"inferline_autoscaler_{name}", doc, LABELS, registry=r)

        self.desired = gauge("desired_replicas", "Replicas the last decision asked for.")
        self.current = gauge("current_replicas", "Replicas (spec) when the decision was made.")
        self.ready = gauge("ready_replicas", "Ready runtime pods when the decision was made.")
        self.reporting = gauge("pods_reporting", "Ready pods whose metrics were read.")
        self.inferences = gauge(
            "observed_inferences_per_second", "Inferences per second the pipeline served."
        )
        self.p95 = gauge("observed_p95_latency_seconds", "End-to-end p95 latency (Triton).")
        self.p99 = gauge("observed_p99_latency_seconds", "End-to-end p99 latency (Triton).")
        self.queue = gauge(
            "observed_queue_time_seconds", "Average queue time per request, over the steps."
        )
        self.decisions = Counter(
            "inferline_autoscaler_decisions",
            "Autoscaling decisions, by reason.",
            (*LABELS, "reason"),
            registry=r,
        )
        self._reasons: dict[tuple[str, str], set[str]] = {}

    def _gauges(self) -> list[Gauge]:
        return [
            self.desired,
            self.current,
            self.ready,
            self.reporting,
            self.inferences,
            self.p95,
            self.p99,
            self.queue,
        ]

    def record(self, namespace: str, pipeline: str, d: Decision) -> None:
        key = (namespace, pipeline)
        self.desired.labels(*key).set(d.replicas)
        self.current.labels(*key).set(d.current)
        self.decisions.labels(*key, d.reason.value).inc()
        self._reasons.setdefault(key, set()).add(d.reason.value)
        o = d.observation or Observation(time=0.0, ready_pods=0)
        self.ready.labels(*key).set(o.ready_pods if d.observation else math.nan)
        self.reporting.labels(*key).set(o.pods_answered if d.observation else math.nan)
        self.inferences.labels(*key).set(_or_nan(o.inference_rate))
        self.p95.labels(*key).set(_or_nan(o.p95_latency_ms, 1e-3))
        self.p99.labels(*key).set(_or_nan(o.p99_latency_ms, 1e-3))
        self.queue.labels(*key).set(_or_nan(o.queue_time_ms, 1e-3))

    def forget(self, namespace: str, pipeline: str) -> None:
        """Drop a deleted pipeline's series."""
        key = (namespace, pipeline)
        for g in self._gauges():
            with contextlib.suppress(KeyError):
                g.remove(*key)
        for reason in self._reasons.pop(key, set()):
            self.decisions.remove(*key, reason)


def _or_nan(v: float | None, scale: float = 1.0) -> float:
    """Not measured is NaN: a stale number on a dashboard would be a lie."""
    return math.nan if v is None else v * scale
