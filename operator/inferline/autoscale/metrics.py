"""What a pipeline's runtime pods report, turned into one Observation per autoscaling tick.

A `MetricsSource` (sources.py: scrape the pods' /metrics, or ask Prometheus) returns one
`PodSnapshot` per ready pod, or a `PodFailure`. An `Observer` keeps each pod's previous snapshot
and turns successive snapshots into rates, then sums them over the pipeline's pods:

- throughput: the ensemble's `nv_inference_request_success` and `nv_inference_count` rates;
- latency: the ensemble's `nv_inference_request_summary_us` p95/p99 (Triton's ~60 s window),
  weighted by each pod's request rate, and the mean over the last interval from the counters;
- queue time per request: the steps' `nv_inference_queue_duration_us` increase over the
  ensemble's request increase (the ensemble itself never queues), i.e. NVIDIA's "average queue
  time" metric for the whole pipeline;
- backlog: the steps' `nv_inference_pending_request_count` now.

Counter resets (a restarted container) count the new value as the increase, as Prometheus'
rate() does. A pod seen for the first time has no rates until its second snapshot; a pod that
is gone is forgotten. Pods that are not ready are never asked: their empty metrics would read
as idle capacity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from .triton_metrics import ModelSnapshot


@dataclass(frozen=True)
class PodTarget:
    """A ready runtime pod: its name and the URL of its metrics endpoint."""

    name: str
    metrics_url: str = ""


@dataclass(frozen=True)
class PodSnapshot:
    pod: str
    time: float  # seconds since the epoch at which these values were read
    models: Mapping[str, ModelSnapshot]


@dataclass(frozen=True)
class PodFailure:
    pod: str
    error: str


class MetricsSource(Protocol):
    """Reads the current metrics of the given pods (blocking; run it off the event loop)."""

    def collect(self, pods: Sequence[PodTarget]) -> list[PodSnapshot | PodFailure]: ...


@dataclass(frozen=True)
class PipelineModels:
    """Which Triton models make up the pipeline on each pod.

    `steps` are the composing models (their queue time and backlog are the pipeline's); None
    means every other model the pod serves, which is right for Inferline's pods (one pipeline
    each) but not for a server shared by several pipelines.
    """

    ensemble: str
    steps: frozenset[str] | None = None

    def step_names(self, pod: Mapping[str, ModelSnapshot]) -> list[str]:
        names = self.steps if self.steps is not None else set(pod)
        return sorted(n for n in names if n in pod and n != self.ensemble)


@dataclass(frozen=True)
class Observation:
    """The pipeline's load and latency, as its ready pods reported them.

    Rates and means cover the interval between each pod's last two snapshots; quantiles are
    Triton's (about the last 60 s). None: not measured (no pod with two snapshots, no request
    in the interval, or an empty quantile window).
    """

    time: float
    ready_pods: int
    pods_answered: int = 0
    pods_with_rates: int = 0
    sampled_at: float | None = None  # the oldest snapshot used
    interval_s: float | None = None
    request_rate: float | None = None  # requests/s that succeeded
    inference_rate: float | None = None  # inferences/s (a batch of n is n)
    busiest_pod_rate: float | None = None  # inferences/s of the pod that served the most
    failure_rate: float | None = None
    mean_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    p99_latency_ms: float | None = None
    queue_time_ms: float | None = None  # per request, summed over the pipeline's steps
    pending_requests: float | None = None  # queued in the steps now
    errors: tuple[str, ...] = ()

    def age_s(self, now: float) -> float | None:
        return None if self.sampled_at is None else max(0.0, now - self.sampled_at)


@dataclass(frozen=True)
class _PodRates:
    time: float  # the snapshot the rates end at
    interval_s: float
    requests: float  # increases over the interval
    inferences: float
    failures: float
    duration_us: float
    queue_us: float

    def per_second(self, v: float) -> float:
        return v / self.interval_s


def _increase(now: float, before: float) -> float:
    """A counter's increase; after a reset (the value went down) the value is the increase."""
    return now - before if now >= before else now


@dataclass
class Observer:
    """Successive snapshots of a pipeline's pods -> Observations (one per call)."""

    source: MetricsSource
    models: PipelineModels
    _last: dict[str, PodSnapshot] = field(default_factory=dict)
    _rates: dict[str, _PodRates] = field(default_factory=dict)

    def observe(self, ready: Sequence[PodTarget], now: float) -> Observation:
        """Ask the source about the ready pods and fold the answers in."""
        results = self.source.collect(ready) if ready else []
        return self.update(results, ready_pods=len(ready), now=now)

    def update(
        self, results: Sequence[PodSnapshot | PodFailure], ready_pods: int, now: float
    ) -> Observation:
        """Fold one round of answers in (the pods not in `results` are forgotten)."""
        errors: list[str] = []
        answered: list[PodSnapshot] = []
        for r in results:
            if isinstance(r, PodFailure):
                errors.append(f"{r.pod}: {r.error}")
            elif self.models.ensemble not in r.models:
                errors.append(f"{r.pod}: does not serve {self.models.ensemble!r}")
            else:
                answered.append(r)
        seen = {r.pod for r in results}
        for gone in set(self._last) - seen:
            del self._last[gone]
            self._rates.pop(gone, None)

        for snap in answered:
            prev = self._last.get(snap.pod)
            if prev is not None and snap.time > prev.time:
                self._rates[snap.pod] = self._pod_rates(prev, snap)
                self._last[snap.pod] = snap
            elif prev is None:
                self._last[snap.pod] = snap
            # else: the same sample again (Prometheus has not scraped since): keep its rates

        rated = [(s, self._rates[s.pod]) for s in answered if s.pod in self._rates]
        return self._observation(now, ready_pods, answered, rated, tuple(errors))

    def _pod_rates(self, prev: PodSnapshot, cur: PodSnapshot) -> _PodRates:
        e0, e1 = prev.models[self.models.ensemble], cur.models[self.models.ensemble]
        queue_us = _increase(e1.queue_duration_us, e0.queue_duration_us)
        for name in self.models.step_names(cur.models):
            before = prev.models.get(name)
            queue_us += _increase(
                cur.models[name].queue_duration_us, before.queue_duration_us if before else 0.0
            )
        return _PodRates(
            time=cur.time,
            interval_s=cur.time - prev.time,
            requests=_increase(e1.request_success, e0.request_success),
            inferences=_increase(e1.inference_count, e0.inference_count),
            failures=_increase(e1.request_failure, e0.request_failure),
            duration_us=_increase(e1.request_duration_us, e0.request_duration_us),
            queue_us=queue_us,
        )

    def _observation(
        self,
        now: float,
        ready_pods: int,
        answered: list[PodSnapshot],
        rated: list[tuple[PodSnapshot, _PodRates]],
        errors: tuple[str, ...],
    ) -> Observation:
        base = Observation(
            time=now,
            ready_pods=ready_pods,
            pods_answered=len(answered),
            pods_with_rates=len(rated),
            sampled_at=min((s.time for s in answered), default=None),
            errors=errors,
        )
        if not answered:
            return base
        pending = sum(
            s.models[name].pending
            for s in answered
            for name in [self.models.ensemble, *self.models.step_names(s.models)]
        )
        if not rated:
            return _replace(base, pending_requests=pending)
        requests = sum(r.requests for _, r in rated)
        weights = [r.per_second(r.requests) for _, r in rated]
        ensemble = [s.models[self.models.ensemble] for s, _ in rated]
        return _replace(
            base,
            interval_s=sum(r.interval_s for _, r in rated) / len(rated),
            request_rate=sum(r.per_second(r.requests) for _, r in rated),
            inference_rate=sum(r.per_second(r.inferences) for _, r in rated),
            busiest_pod_rate=max(r.per_second(r.inferences) for _, r in rated),
            failure_rate=sum(r.per_second(r.failures) for _, r in rated),
            mean_latency_ms=(
                sum(r.duration_us for _, r in rated) / requests / 1000 if requests else None
            ),
            queue_time_ms=sum(r.queue_us for _, r in rated) / requests / 1000 if requests else None,
            p95_latency_ms=_weighted_quantile_ms(ensemble, weights, 0.95),
            p99_latency_ms=_weighted_quantile_ms(ensemble, weights, 0.99),
            pending_requests=pending,
        )


def _weighted_quantile_ms(
    models: Sequence[ModelSnapshot], weights: Sequence[float], q: float
) -> float | None:
    """Pods' quantiles averaged by their request rates (all equal when none had requests).

    Quantiles of different pods cannot be merged exactly; with the Service spreading requests
    evenly the pods' distributions are alike, and the average is what a request meets.
    """
    pairs = [
        (m.request_quantiles_us[q], w)
        for m, w in zip(models, weights, strict=True)
        if q in m.request_quantiles_us and not math.isnan(m.request_quantiles_us[q])
    ]
    if not pairs:
        return None
    total = sum(w for _, w in pairs)
    if total <= 0:
        return sum(v for v, _ in pairs) / len(pairs) / 1000
    return sum(v * w for v, w in pairs) / total / 1000


def _replace(o: Observation, **changes: object) -> Observation:
    return replace(o, **changes)  # type: ignore[arg-type]
