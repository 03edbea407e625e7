"""The built-in autoscaler's decision: observed load and latency -> desired replicas (pure).

The operator's loop calls, for each autoscaled pipeline, every `policy.interval_s`:

    policy = Policy.from_spec(pipeline.spec.autoscaling)       # again when the spec changes
    obs = observer.observe(ready_pods, now)                     # metrics.Observer
    decision = decide(policy, state, obs, current_replicas, now)
    state = decision.state                                      # keep for the next call
    if decision.changed: scale to decision.replicas

`current_replicas` is the pipeline's spec.replicas (what the scale subresource says), not the
ready count: pods still starting are capacity on its way, never idle capacity.

How it decides, in order:
1. bounds: below minReplicas or above maxReplicas is corrected first, whatever the metrics;
2. trust: no observation, no ready pod, no rates yet, metrics older than `max_age_s`, or fewer
   than `min_pods_fraction` of the ready pods answering -> hold (a scale-up that the answering
   pods prove is still allowed; a scale-down never is);
3. load: with a throughput target (or the per-replica rate at which a target last broke), the
   replicas follow the load in proportion, ignoring changes within `tolerance`; the load is the
   served rate plus the growth of the steps' backlog (what is served under overload is the
   capacity, not the demand) plus the backlog itself spread over `BACKLOG_DRAIN_S` (requests
   wait behind it on the pods that hold it, and only fewer new requests per pod let it drain);
4. service level: p95 latency or queue time above its target steps up in proportion to the
   overshoot (at most doubling), when requests actually queue (more replicas cannot fix a model
   that is slow on its own), at most once per latency window unless it keeps getting worse
   (Triton's p95 covers ~60 s, so it stays high for a while after the fix); within
   `NEAR_TARGET` of a target blocks scaling down;
5. stabilization (as the HPA): scale up to the lowest recommendation of the scale-up window,
   down to the highest of the scale-down window, counting there only what the steady load
   asked for (a drained backlog does not come back with the next burst; the load may);
6. step limits (as the HPA's policies): at most max(replicas, percent) added or removed per
   period, counted from the changes this state remembers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TypeVar

from ..api.pipeline import Autoscaling
from ..api.status import AutoscalingDecision, AutoscalingReason, ObservedLoad
from .metrics import Observation

Reason = AutoscalingReason

# Latency or queue time above this share of its target blocks scaling down.
NEAR_TARGET = 0.8
# A per-replica rate learned at a broken target is used at this share, for headroom.
LEARNED_HEADROOM = 0.9
# One latency step at most doubles the ready replicas (the scale-up limit may allow less).
MAX_SLO_STEP = 2.0
# A latency breach is load's doing only when requests queue at least this share of the target.
QUEUEING_SHARE = 0.1
# ... and while the last interval's mean latency is at least this share of the p95 target.
FRESH_MEAN_SHARE = 0.5
# A backlog growing by this share of the served rate means the pods are saturated.
SATURATED_GROWTH = 0.05
# Size the pool to serve the queued requests within this many seconds, on top of the load.
BACKLOG_DRAIN_S: float | None = 10.0
# Triton's latency summaries cover about this many seconds.
LATENCY_WINDOW_S = 60.0


class Limit(StrEnum):
    SCALE_UP_STEP = "ScaleUpStepLimit"
    SCALE_DOWN_STEP = "ScaleDownStepLimit"
    MAX_REPLICAS = "MaxReplicas"
    MIN_REPLICAS = "MinReplicas"


@dataclass(frozen=True)
class StepLimit:
    """At most max(replicas, percent of the replicas at the period's start) per period."""

    replicas: int
    percent: int
    period_s: float

    def allowance(self, base: int) -> int:
        return max(self.replicas, math.ceil(base * self.percent / 100), 1)


@dataclass(frozen=True)
class Policy:
    max_replicas: int
    min_replicas: int = 1
    p95_latency_ms: float | None = None
    throughput_per_replica: float | None = None
    queue_time_ms: float | None = None
    tolerance: float = 0.1
    up_window_s: float = 0.0
    down_window_s: float = 60.0
    up_limit: StepLimit = StepLimit(10, 200, 15.0)
    down_limit: StepLimit = StepLimit(1, 50, 30.0)
    interval_s: float = 2.0
    max_age_s: float = 30.0
    min_pods_fraction: float = 0.5

    @property
    def floor(self) -> int:
        """The fewest replicas the built-in engine keeps: it cannot wake a pipeline from zero
        (no pod, no metrics, nothing buffers requests), so minReplicas 0 means 1 here."""
        return max(self.min_replicas, 1)

    @property
    def remember_s(self) -> float:
        return max(
            self.up_window_s,
            self.down_window_s,
            self.up_limit.period_s,
            self.down_limit.period_s,
            LATENCY_WINDOW_S,
        )

    @classmethod
    def from_spec(cls, spec: Autoscaling) -> Policy:
        up, down, m, t = spec.scale_up, spec.scale_down, spec.metrics, spec.targets
        d = cls(max_replicas=spec.max_replicas)
        return cls(
            max_replicas=spec.max_replicas,
            min_replicas=spec.min_replicas,
            p95_latency_ms=t.p95_latency_ms,
            throughput_per_replica=t.throughput_per_replica,
            queue_time_ms=t.queue_time_ms,
            tolerance=spec.tolerance,
            up_window_s=_or(up.stabilization_seconds, d.up_window_s),
            down_window_s=_or(down.stabilization_seconds, d.down_window_s),
            up_limit=StepLimit(
                _or(up.max_step_replicas, d.up_limit.replicas),
                _or(up.max_step_percent, d.up_limit.percent),
                _or(up.step_period_seconds, d.up_limit.period_s),
            ),
            down_limit=StepLimit(
                _or(down.max_step_replicas, d.down_limit.replicas),
                _or(down.max_step_percent, d.down_limit.percent),
                _or(down.step_period_seconds, d.down_limit.period_s),
            ),
            interval_s=m.interval_seconds,
            max_age_s=m.max_age_seconds,
            min_pods_fraction=m.min_pods_percent / 100,
        )


_T = TypeVar("_T", int, float)


def _or(value: _T | None, default: _T) -> _T:
    return default if value is None else value


@dataclass(frozen=True)
class State:
    """What decide() remembers between calls; start with State() and keep decision.state."""

    # (time, recommended replicas, of which the steady load's share: what a scale-down keeps)
    recommendations: tuple[tuple[float, int, int], ...] = ()
    changes: tuple[tuple[float, int], ...] = ()  # (time, replicas added (+) or removed (-))
    capacity_per_replica: float | None = None  # inferences/s a replica carried when a target broke
    last_slo_step: tuple[float, float] | None = None  # (time, overshoot) of the last SLO step
    last_pending: tuple[float, float] | None = None  # (time, backlog) for the backlog growth

    def pruned(self, now: float, keep_s: float) -> State:
        return replace(
            self,
            recommendations=tuple(r for r in self.recommendations if r[0] > now - keep_s),
            changes=tuple(c for c in self.changes if c[0] > now - keep_s),
        )


@dataclass(frozen=True)
class Signals:
    """The numbers a decision was made on (for its message, status and metrics)."""

    load: float | None = None  # inferences/s, backlog growth included
    per_replica_target: float | None = None
    latency_ratio: float | None = None  # p95 / target
    queue_ratio: float | None = None  # queue time / target


@dataclass(frozen=True)
class Decision:
    replicas: int
    current: int
    reason: Reason
    message: str
    recommendation: int | None = None  # before stabilization and limits
    limited_by: Limit | None = None
    observation: Observation | None = None
    signals: Signals = field(default_factory=Signals)
    state: State = field(default_factory=State)

    @property
    def changed(self) -> bool:
        return self.replicas != self.current

    def status(self, time: str) -> AutoscalingDecision:
        """The decision as status.lastAutoscalingDecision (`time` in RFC 3339)."""
        o = self.observation
        observed = None
        if o is not None:
            observed = ObservedLoad(
                ready_replicas=o.ready_pods,
                pods_reporting=o.pods_answered,
                inferences_per_second=_round(o.inference_rate),
                requests_per_second=_round(o.request_rate),
                p95_latency_ms=_round(o.p95_latency_ms),
                p99_latency_ms=_round(o.p99_latency_ms),
                queue_time_ms=_round(o.queue_time_ms),
                pending_requests=o.pending_requests,
            )
        return AutoscalingDecision(
            time=time,
            from_replicas=self.current,
            to_replicas=self.replicas,
            reason=self.reason,
            message=self.message,
            limited_by=self.limited_by.value if self.limited_by else None,
            observed=observed,
        )


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def decide(
    policy: Policy, state: State, obs: Observation | None, current: int, now: float
) -> Decision:
    """Desired replicas for a pipeline now, and why. Pure: same inputs, same decision."""
    state = state.pruned(now, policy.remember_s)
    lo, hi = policy.floor, policy.max_replicas

    def out(
        replicas: int,
        reason: Reason,
        message: str,
        st: State = state,
        recommendation: int | None = None,
        limited_by: Limit | None = None,
        signals: Signals | None = None,
    ) -> Decision:
        if replicas != current:
            st = replace(st, changes=(*st.changes, (now, replicas - current)))
        return Decision(
            replicas,
            current,
            reason,
            message,
            recommendation=recommendation,
            limited_by=limited_by,
            observation=obs,
            signals=signals or Signals(),
            state=st,
        )

    if current < lo:
        return out(lo, Reason.BELOW_MIN_REPLICAS, f"{current} -> {lo}: below minReplicas")
    if current > hi:
        return out(hi, Reason.ABOVE_MAX_REPLICAS, f"{current} -> {hi}: above maxReplicas")

    distrust = _distrust(policy, obs, now)
    if distrust is not None and distrust[0] is not Reason.TOO_FEW_PODS_REPORTING:
        return out(current, distrust[0], f"hold at {current}: {distrust[1]}")
    assert obs is not None

    rec, steady, reason, signals, state = _recommend(policy, state, obs, current, now)
    detail = _describe(obs, signals)
    if distrust is not None and rec <= current:
        # Too few pods answered: what they show may raise the replicas, never lower them.
        return out(current, distrust[0], f"hold at {current}: {distrust[1]}; {detail}")
    state = replace(state, recommendations=(*state.recommendations, (now, rec, steady)))

    target, limited = current, None
    if rec > current:
        window = [r for t, r, _ in state.recommendations if t >= now - policy.up_window_s]
        target = max(current, min(window))
        if target == current:
            return out(
                current,
                Reason.SCALE_UP_STABILIZING,
                f"hold at {current}: {rec} recommended, waiting out the "
                f"{policy.up_window_s:.0f}s scale-up window; {detail}",
                state,
                recommendation=rec,
                signals=signals,
            )
        added = sum(d for t, d in state.changes if d > 0 and t > now - policy.up_limit.period_s)
        base = current - added
        ceiling = base + policy.up_limit.allowance(base)
        if target > ceiling:
            target, limited = max(ceiling, current), Limit.SCALE_UP_STEP
    elif rec < current:
        window = [s for t, _, s in state.recommendations if t >= now - policy.down_window_s]
        target = min(current, max(window))
        if target == current:
            return out(
                current,
                Reason.SCALE_DOWN_STABILIZING,
                f"hold at {current}: {rec} recommended, the last {policy.down_window_s:.0f}s "
                f"asked for up to {max(window)}; {detail}",
                state,
                recommendation=rec,
                signals=signals,
            )
        removed = -sum(
            d for t, d in state.changes if d < 0 and t > now - policy.down_limit.period_s
        )
        base = current + removed
        floor = base - policy.down_limit.allowance(base)
        if target < floor:
            target, limited = min(floor, current), Limit.SCALE_DOWN_STEP
    if target > hi:
        target, limited = hi, Limit.MAX_REPLICAS
    if target < lo:
        target, limited = lo, Limit.MIN_REPLICAS
    verb = f"{current} -> {target}" if target != current else f"hold at {current}"
    why = f" (limited by {limited.value})" if limited else ""
    return out(
        target,
        reason,
        f"{verb}: {rec} recommended{why}; {detail}",
        state,
        recommendation=rec,
        limited_by=limited,
        signals=signals,
    )


def _distrust(policy: Policy, obs: Observation | None, now: float) -> tuple[Reason, str] | None:
    if obs is None:
        return Reason.NO_METRICS, "no metrics were read"
    if obs.ready_pods == 0:
        return Reason.NO_METRICS, "no ready pod to read metrics from"
    age = obs.age_s(now)
    if age is not None and age > policy.max_age_s:
        return Reason.STALE_METRICS, f"metrics are {age:.0f}s old (max {policy.max_age_s:.0f}s)"
    needed = max(1, math.ceil(policy.min_pods_fraction * obs.ready_pods))
    if obs.pods_with_rates == 0:
        if obs.pods_answered == 0:
            return Reason.NO_METRICS, f"none of {obs.ready_pods} ready pods answered"
        return Reason.NO_METRICS, "first reading of these pods; rates need two"
    if obs.pods_with_rates < needed:
        return (
            Reason.TOO_FEW_PODS_REPORTING,
            f"{obs.pods_with_rates} of {obs.ready_pods} ready pods reported rates "
            f"(at least {needed} needed)",
        )
    return None


def _recommend(
    policy: Policy, state: State, obs: Observation, current: int, now: float
) -> tuple[int, int, Reason, Signals, State]:
    """The replicas the load and the service level call for, before windows and limits, and
    how many of them the steady load needs (without draining the backlog): a burst's backlog
    is gone once drained, so scaling down keeps only the steady share of past peaks."""
    ready, rated = obs.ready_pods, obs.pods_with_rates
    served = obs.inference_rate or 0.0
    # The backlog: under overload the served rate is the capacity, not the demand, and the
    # backlog's growth is the rest of the demand. A shrinking backlog means the capacity is
    # already there: latency still reads high while it drains, but more replicas won't help.
    growth, draining = 0.0, False
    if obs.pending_requests is not None:
        prev = state.last_pending
        if prev is not None and now > prev[0]:
            change = (obs.pending_requests - prev[1]) / (now - prev[0])
            growth, draining = max(0.0, change), change < 0
        state = replace(state, last_pending=(now, obs.pending_requests))
    # ... and what is queued must be served too, soon: requests wait behind it on its pods.
    backlog = (obs.pending_requests or 0.0) / BACKLOG_DRAIN_S if BACKLOG_DRAIN_S else 0.0
    load = served + growth + backlog
    # Pods that answered without rates (new) or did not answer carried load too: count them at
    # the reporting pods' average when deciding to shrink, at nothing when deciding to grow.
    load_if_all = load * ready / rated if 0 < rated < ready else load

    lat = _ratio(obs.p95_latency_ms, policy.p95_latency_ms)
    que = _ratio(obs.queue_time_ms, policy.queue_time_ms)
    target_ms = policy.p95_latency_ms or 0.0
    # Triton's p95 covers ~60 s and stays high long after a fix; it counts as a breach caused
    # by load only while requests queue and the last interval's mean latency is high too.
    lat_from_load = (
        lat is not None
        and lat > 1
        and (obs.queue_time_ms or 0.0) >= QUEUEING_SHARE * target_ms
        and (obs.mean_latency_ms is None or obs.mean_latency_ms >= FRESH_MEAN_SHARE * target_ms)
    )
    breach = max(lat if lat_from_load and lat is not None else 0.0, que or 0.0)
    # Act on a breach only with every replica ready and measured (new pods' effect does not
    # show yet; pods on their way are capacity already asked for), never while the backlog
    # drains, and once per latency window unless it gets worse.
    settled = rated == ready >= current
    last = state.last_slo_step
    fresh = last is None or now - last[0] >= LATENCY_WINDOW_S or breach > last[1] * 1.25
    act = breach > 1 and settled and not draining and fresh
    if act:
        state = replace(state, last_slo_step=(now, breach))

    # Learn the rate a replica carries when a target breaks, so that a throughput target that
    # is too optimistic (or none) does not shrink the pool back into the breach, again and
    # again. From the busiest pod (with a backlog, old pods serve at capacity while new ones
    # idle, and the average would read too low): as it is when the backlog grows (the pods are
    # saturated: that is their capacity), else discounted by how far the target was broken
    # (latency climbs steeply near capacity; at most halved). Raise it when replicas carry more
    # unharmed.
    capacity = state.capacity_per_replica
    per_pod = served / rated
    busiest = obs.busiest_pod_rate or per_pod
    if act and busiest > 0:
        saturated = growth > SATURATED_GROWTH * served
        capacity = busiest if saturated else busiest / math.sqrt(min(breach, MAX_SLO_STEP**2))
    elif (
        capacity is not None
        and per_pod > capacity * LEARNED_HEADROOM
        and max(lat or 0.0, que or 0.0) < NEAR_TARGET
    ):
        capacity = per_pod / LEARNED_HEADROOM
    state = replace(state, capacity_per_replica=capacity)
    targets = [
        t for t in (policy.throughput_per_replica, capacity and capacity * LEARNED_HEADROOM) if t
    ]
    per_replica = min(targets) if targets else None
    signals = Signals(load, per_replica, lat, que)

    rec, reason = current, Reason.WITHIN_TARGETS
    if per_replica is not None:
        up, down = load / per_replica, load_if_all / per_replica
        if up > current * (1 + policy.tolerance):
            rec, reason = math.ceil(up), Reason.THROUGHPUT_ABOVE_TARGET
        elif down < current * (1 - policy.tolerance) and math.ceil(down) < current:
            rec, reason = math.ceil(down), Reason.THROUGHPUT_BELOW_TARGET

    if act:  # the breach is why the replicas grow, whether by this step or the learned rate
        rec = max(rec, ready + 1, math.ceil(ready * min(breach, MAX_SLO_STEP)))
        latency_worse = lat_from_load and (lat or 0.0) >= (que or 0.0)
        reason = Reason.LATENCY_ABOVE_TARGET if latency_worse else Reason.QUEUE_TIME_ABOVE_TARGET
    if rec < current and max(lat or 0.0, que or 0.0) > NEAR_TARGET:
        rec, reason = current, Reason.LATENCY_NEAR_TARGET
    steady_rec = rec
    if per_replica is not None and backlog > 0 and not act:
        steady_rec = min(rec, max(math.ceil((load - backlog) / per_replica), 1))
    return max(rec, 1), steady_rec, reason, signals, state


def _ratio(value: float | None, target: float | None) -> float | None:
    return None if value is None or target is None else value / target


def _describe(obs: Observation, s: Signals) -> str:
    parts = []
    if s.load is not None:
        per = f" vs {s.per_replica_target:.0f}/replica" if s.per_replica_target else ""
        parts.append(f"{s.load:.0f} inferences/s{per}")
    if obs.p95_latency_ms is not None:
        parts.append(f"p95 {obs.p95_latency_ms:.1f} ms")
    if obs.queue_time_ms is not None:
        parts.append(f"queue {obs.queue_time_ms:.1f} ms")
    parts.append(f"{obs.pods_with_rates}/{obs.ready_pods} pods reporting")
    return ", ".join(parts)
