"""The operator's own metrics (prometheus-client), served on its /metrics."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..api.status import ConditionType, InferencePipelineStatus, Reason

Key = tuple[str, str]


class _PipelinesByCondition(Collector):
    """inferline_pipelines{condition, status}: how many pipelines are Ready, Stalled, ..."""

    def __init__(self) -> None:
        self.conditions: dict[Key, dict[str, str]] = {}

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "inferline_pipelines",
            "Pipelines by condition and status, as the operator last wrote them.",
            labels=["condition", "status"],
        )
        tally = Tally((t, s) for conds in self.conditions.values() for t, s in conds.items())
        for (t, s), n in sorted(tally.items()):
            family.add_metric([t, s], n)
        yield family


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.reconciles = Counter(
            "inferline_reconcile",
            "Reconciles, by the outcome they reached.",
            ["result"],
            registry=self.registry,
        )
        self.errors = Counter(
            "inferline_reconcile_errors",
            "Reconciles that raised and were retried.",
            registry=self.registry,
        )
        self.duration = Histogram(
            "inferline_reconcile_duration_seconds",
            "Time from taking a pipeline off the queue to its status written.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.applies = Counter(
            "inferline_apply",
            "Server-side applies of pipeline children, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.sweeps = Counter(
            "inferline_sweep",
            "Relists of everything watched, to forget what no watch said was deleted; by result "
            "(ok, or error: a listing failed).",
            ["result"],
            registry=self.registry,
        )
        self.forgotten = Counter(
            "inferline_sweep_forgotten_objects",
            "Objects a sweep found deleted though no watch said so.",
            registry=self.registry,
        )
        self._by_condition = _PipelinesByCondition()
        self.registry.register(self._by_condition)

    def reconciled(
        self, key: Key, status: InferencePipelineStatus, seconds: float, reason: Reason
    ) -> None:
        self.reconciles.labels(reason.value).inc()
        self.duration.observe(seconds)
        self._by_condition.conditions[key] = {
            c.type: c.status.value
            for c in status.conditions
            if c.type in (ConditionType.READY, ConditionType.STALLED, ConditionType.DEGRADED)
        }

    def forget(self, key: Key) -> None:
        self._by_condition.conditions.pop(key, None)

    def applied(self, kind: str) -> None:
        self.applies.labels(kind).inc()

    def failed(self) -> None:
        self.errors.inc()

    def swept(self, forgotten: int | None) -> None:
        """A sweep finished (`forgotten` objects), or failed (None)."""
        self.sweeps.labels("error" if forgotten is None else "ok").inc()
        if forgotten:
            self.forgotten.inc(forgotten)
