"""The built-in autoscaler's decision function: examples, then properties (hypothesis)."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferline.api.pipeline import Autoscaling
from inferline.api.status import AutoscalingDecision
from inferline.autoscale.decide import (
    BACKLOG_DRAIN_S,
    Decision,
    Limit,
    Policy,
    Reason,
    State,
    StepLimit,
    decide,
)
from inferline.autoscale.metrics import Observation

NOW = 1_000_000.0


def obs(
    rate: float | None = 100.0,
    *,
    ready: int = 2,
    rated: int | None = None,
    p95: float | None = None,
    queue: float | None = None,
    pending: float | None = None,
    t: float = NOW,
    age: float = 0.0,
) -> Observation:
    rated = ready if rated is None else rated
    return Observation(
        time=t,
        ready_pods=ready,
        pods_answered=rated,
        pods_with_rates=rated,
        sampled_at=t - age,
        interval_s=5.0,
        request_rate=rate,
        inference_rate=rate,
        p95_latency_ms=p95,
        queue_time_ms=queue,
        pending_requests=pending,
    )


# Explicit limits (the HPA's defaults), so these examples do not move with Inferline's defaults.
POLICY = Policy(
    max_replicas=20,
    min_replicas=1,
    p95_latency_ms=100.0,
    throughput_per_replica=100.0,
    down_window_s=300.0,
    up_limit=StepLimit(4, 100, 15.0),
    down_limit=StepLimit(1, 25, 30.0),
)


def run(policy: Policy, observations: list[Observation], current: int) -> list[Decision]:
    """Feed observations (5 s apart) as the loop would, applying each decision."""
    state, out = State(), []
    for o in observations:
        d = decide(policy, state, o, current, o.time)
        state, current = d.state, d.replicas
        out.append(d)
    return out


# ---- examples -------------------------------------------------------------------------------


def test_policy_from_spec_maps_fields_and_direction_defaults() -> None:
    spec = Autoscaling.model_validate(
        {
            "minReplicas": 2,
            "maxReplicas": 9,
            "targets": {"p95LatencyMs": 50, "queueTimeMs": 5},
            "scaleUp": {"maxStepReplicas": 2},
            "scaleDown": {"stabilizationSeconds": 60, "maxStepPercent": 50},
            "tolerance": 0.2,
            "metrics": {"intervalSeconds": 3, "maxAgeSeconds": 20, "minPodsPercent": 75},
        }
    )
    p = Policy.from_spec(spec)
    assert (p.min_replicas, p.max_replicas, p.p95_latency_ms, p.queue_time_ms) == (2, 9, 50, 5)
    assert p.throughput_per_replica is None and p.tolerance == 0.2
    assert (p.up_window_s, p.down_window_s) == (0, 60)
    assert p.up_limit == StepLimit(2, Policy.up_limit.percent, 15)
    assert p.down_limit == StepLimit(1, 50, 30)
    assert (p.interval_s, p.max_age_s, p.min_pods_fraction) == (3, 20, 0.75)


def test_follows_the_load_in_proportion() -> None:
    d = decide(POLICY, State(), obs(530.0, ready=2), current=2, now=NOW)
    assert d.reason is Reason.THROUGHPUT_ABOVE_TARGET
    assert d.recommendation == 6
    assert d.replicas == 6  # 2 + max(4 replicas, 100%) per 15 s allows 6
    assert d.changed and d.state.changes == ((NOW, 4),)


def test_a_backlog_counts_as_load_to_drain() -> None:
    st0 = decide(POLICY, State(), obs(200.0, ready=2, pending=3000.0, t=NOW - 5), 2, NOW - 5).state
    # 200/s served, the backlog grew by 600/s and 6000 wait: 200 + 600 + 6000/10 = 1400/s
    d = decide(POLICY, st0, obs(200.0, ready=2, pending=6000.0), 2, NOW)
    assert BACKLOG_DRAIN_S == 10
    assert d.signals.load == pytest.approx(200 + 600 + 6000 / 10)
    assert d.recommendation == 14


def test_scale_up_is_limited_per_period() -> None:
    d = decide(POLICY, State(), obs(2000.0, ready=2), current=2, now=NOW)
    assert (d.recommendation, d.replicas, d.limited_by) == (20, 6, Limit.SCALE_UP_STEP)
    # 5 s later the period still holds the +4: base 2, so nothing more yet
    d2 = decide(POLICY, d.state, obs(2000.0, ready=2, t=NOW + 5), current=6, now=NOW + 5)
    assert (d2.replicas, d2.limited_by) == (6, Limit.SCALE_UP_STEP)
    d3 = decide(POLICY, d2.state, obs(2000.0, ready=6, t=NOW + 16), current=6, now=NOW + 16)
    assert d3.replicas == 12


def test_changes_within_tolerance_are_ignored() -> None:
    assert decide(POLICY, State(), obs(305.0, ready=3), 3, NOW).reason is Reason.WITHIN_TARGETS
    assert decide(POLICY, State(), obs(275.0, ready=3), 3, NOW).replicas == 3
    assert decide(POLICY, State(), obs(340.0, ready=3), 3, NOW).replicas == 4


@pytest.mark.parametrize(
    ("observation", "reason"),
    [
        (None, Reason.NO_METRICS),
        (obs(0.0, ready=0), Reason.NO_METRICS),
        (obs(0.0, ready=4, rated=0), Reason.NO_METRICS),
        (obs(0.0, ready=4, age=31), Reason.STALE_METRICS),
        (obs(0.0, ready=4, rated=1), Reason.TOO_FEW_PODS_REPORTING),
    ],
    ids=["none", "no-ready-pod", "first-reading", "stale", "too-few-pods"],
)
def test_holds_when_the_metrics_cannot_be_trusted(
    observation: Observation | None, reason: Reason
) -> None:
    d = decide(POLICY, State(), observation, current=4, now=NOW)
    assert (d.replicas, d.reason) == (4, reason)
    assert not d.state.recommendations, "a hold must not count as a recommendation"


def test_too_few_pods_may_still_prove_a_scale_up() -> None:
    d = decide(POLICY, State(), obs(900.0, ready=4, rated=1), current=4, now=NOW)
    assert d.reason is Reason.THROUGHPUT_ABOVE_TARGET and d.replicas == 8


def test_bounds_come_first_even_without_metrics() -> None:
    p = replace(POLICY, min_replicas=3, max_replicas=5)
    assert decide(p, State(), None, 1, NOW).replicas == 3
    assert decide(p, State(), None, 1, NOW).reason is Reason.BELOW_MIN_REPLICAS
    assert decide(p, State(), None, 9, NOW).replicas == 5
    assert decide(p, State(), None, 9, NOW).reason is Reason.ABOVE_MAX_REPLICAS
    assert decide(replace(p, min_replicas=0), State(), obs(0.0, ready=1), 1, NOW).replicas == 1


def test_scale_down_waits_for_the_window_then_steps() -> None:
    policy = replace(POLICY, down_window_s=60)
    busy = [obs(800.0, ready=8, t=NOW + 5 * i) for i in range(3)]
    idle = [obs(100.0, ready=8, t=NOW + 15 + 5 * i) for i in range(40)]
    decisions = run(policy, busy + idle, current=8)
    held = [d for d in decisions[3:] if d.observation.time < NOW + 10 + 60]  # type: ignore[union-attr]
    assert {d.reason for d in held} == {Reason.SCALE_DOWN_STABILIZING}
    assert all(d.replicas == 8 for d in held)
    first_down = next(d for d in decisions if d.replicas < d.current)
    assert first_down.observation.time >= NOW + 10 + 60  # type: ignore[union-attr]
    # at most max(1, 25%) per 30 s: 8 -> 6, then 6 -> 5 30 s later, ...
    assert first_down.replicas == 6 and first_down.limited_by is Limit.SCALE_DOWN_STEP
    assert decisions[-1].replicas < 6


def test_scale_up_window_acts_on_the_lowest_recommendation() -> None:
    policy = replace(POLICY, up_window_s=20)
    quiet = [obs(150.0, ready=2, t=NOW + 5 * i) for i in range(3)]
    busy = [obs(900.0, ready=2, t=NOW + 15 + 5 * i) for i in range(6)]
    decisions = run(policy, quiet + busy, current=2)
    waited = [d for d in decisions[3:] if d.observation.time <= NOW + 10 + 20]  # type: ignore[union-attr]
    assert waited and {d.reason for d in waited} == {Reason.SCALE_UP_STABILIZING}
    assert decisions[-1].replicas > 2
    # a single spike between quiet readings never moves the replicas
    spike = [obs(150.0, ready=2, t=NOW), obs(900.0, ready=2, t=NOW + 5), obs(150.0, t=NOW + 10)]
    assert [d.replicas for d in run(policy, spike, current=2)] == [2, 2, 2]


def test_latency_breach_steps_up_when_requests_queue() -> None:
    p = replace(POLICY, throughput_per_replica=None)
    d = decide(p, State(), obs(100.0, ready=4, p95=150.0, queue=40.0), 4, NOW)
    assert (d.reason, d.replicas) == (Reason.LATENCY_ABOVE_TARGET, 6)
    d = decide(p, State(), obs(100.0, ready=4, p95=900.0, queue=400.0), 4, NOW)
    assert d.replicas == 8, "one step at most doubles the ready replicas"


def test_latency_without_queueing_is_not_fixed_by_more_replicas() -> None:
    d = decide(POLICY, State(), obs(100.0, ready=2, p95=300.0, queue=0.5), 2, NOW)
    assert d.replicas == 2


def test_no_latency_step_while_the_backlog_drains_or_pods_start() -> None:
    p = replace(POLICY, throughput_per_replica=None)
    st0 = decide(p, State(), obs(100.0, ready=4, pending=500.0, t=NOW - 5), 4, NOW - 5).state
    draining = obs(100.0, ready=4, p95=400.0, queue=200.0, pending=200.0)
    assert decide(p, st0, draining, 4, NOW).replicas == 4
    starting = obs(100.0, ready=4, p95=400.0, queue=200.0)
    assert decide(p, State(), starting, 6, NOW).replicas == 6


def test_latency_steps_once_per_window_unless_it_gets_worse() -> None:
    p = replace(POLICY, throughput_per_replica=None, max_replicas=100)
    d1 = decide(p, State(), obs(100.0, ready=4, p95=150.0, queue=40.0), 4, NOW)
    assert d1.replicas == 6
    same = obs(100.0, ready=6, p95=150.0, queue=40.0, t=NOW + 20)
    assert decide(p, d1.state, same, 6, NOW + 20).replicas == 6
    worse = obs(100.0, ready=6, p95=300.0, queue=90.0, t=NOW + 20)
    assert decide(p, d1.state, worse, 6, NOW + 20).replicas == 12
    later = replace(same, time=NOW + 61, sampled_at=NOW + 61)
    assert decide(p, d1.state, later, 6, NOW + 61).replicas == 9


def test_queue_time_target_alone_steps_up() -> None:
    p = Policy(max_replicas=10, queue_time_ms=5.0)
    d = decide(p, State(), obs(100.0, ready=2, queue=8.0), 2, NOW)
    assert (d.reason, d.replicas) == (Reason.QUEUE_TIME_ABOVE_TARGET, 4)


def test_latency_near_target_blocks_scale_down() -> None:
    p = replace(POLICY, down_window_s=0)
    d = decide(p, State(), obs(100.0, ready=5, p95=90.0, queue=20.0), 5, NOW)
    assert (d.reason, d.replicas) == (Reason.LATENCY_NEAR_TARGET, 5)
    d = decide(p, State(), obs(100.0, ready=5, p95=40.0, queue=2.0), 5, NOW)
    assert (d.reason, d.replicas) == (Reason.THROUGHPUT_BELOW_TARGET, 3)  # 1, limited to -2


def test_without_a_throughput_target_the_capacity_is_learned() -> None:
    p = replace(POLICY, throughput_per_replica=None, down_window_s=0)
    s = decide(p, State(), obs(800.0, ready=4, pending=10.0, t=NOW - 5), 4, NOW - 5).state
    saturated = obs(800.0, ready=4, p95=400.0, queue=150.0, pending=300.0)
    d = decide(p, s, saturated, 4, NOW)
    assert d.state.capacity_per_replica == pytest.approx(200.0)
    assert d.replicas == 8
    # load halves: at 90% of the learned 200/replica, 400/s needs 3 replicas
    calm = obs(400.0, ready=8, p95=40.0, queue=1.0, pending=0.0, t=NOW + 5)
    d2 = decide(p, d.state, calm, 8, NOW + 5)
    assert d2.recommendation == 3 and d2.reason is Reason.THROUGHPUT_BELOW_TARGET


def test_decision_becomes_the_status_field() -> None:
    d = decide(POLICY, State(), obs(530.0, ready=2, p95=60.0, queue=3.0), 2, NOW)
    status = d.status("2026-01-01T00:00:00Z")
    assert isinstance(status, AutoscalingDecision)
    wire = status.to_wire()
    assert wire["reason"] == "ThroughputAboveTarget"
    assert (wire["fromReplicas"], wire["toReplicas"]) == (2, 6)
    assert wire["observed"]["inferencesPerSecond"] == 530.0
    assert wire["observed"]["p95LatencyMs"] == 60.0
    assert "530 inferences/s" in wire["message"]


# ---- properties ---------------------------------------------------------------------------

rates = st.floats(min_value=0, max_value=1e5, allow_nan=False)
maybe_ms = st.none() | st.floats(min_value=0, max_value=1e4, allow_nan=False)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    lo = draw(st.integers(0, 10))
    hi = draw(st.integers(max(lo, 1), 40))
    lat = draw(st.none() | st.floats(1, 1000))
    tp = draw(st.none() | st.floats(1, 1000))
    q = draw(st.none() | st.floats(0.1, 100))
    if (lat, tp, q) == (None, None, None):
        tp = 100.0
    return Policy(
        max_replicas=hi,
        min_replicas=lo,
        p95_latency_ms=lat,
        throughput_per_replica=tp,
        queue_time_ms=q,
        tolerance=draw(st.floats(0, 0.5)),
        down_window_s=draw(st.sampled_from([0.0, 30.0, 300.0])),
        up_limit=StepLimit(draw(st.integers(1, 8)), draw(st.integers(1, 200)), 15.0),
        down_limit=StepLimit(draw(st.integers(1, 8)), draw(st.integers(1, 100)), 30.0),
    )


@st.composite
def observations(draw: st.DrawFn) -> Observation:
    ready = draw(st.integers(0, 40))
    return obs(
        draw(rates),
        ready=ready,
        rated=draw(st.integers(0, ready)),
        p95=draw(maybe_ms),
        queue=draw(maybe_ms),
        pending=draw(st.none() | st.floats(0, 1e4)),
        age=draw(st.floats(0, 60)),
    )


@given(policies(), observations(), st.integers(0, 60))
def test_property_replicas_stay_within_bounds(p: Policy, o: Observation, current: int) -> None:
    d = decide(p, State(), o, current, NOW)
    assert p.floor <= d.replicas <= p.max_replicas
    if p.floor <= current <= p.max_replicas:
        up = p.up_limit.allowance(current)
        down = p.down_limit.allowance(current)
        assert current - down <= d.replicas <= current + up, "step limits"


@given(policies(), st.integers(1, 40), st.integers(1, 40), maybe_ms, maybe_ms, rates, rates)
def test_property_monotonic_in_load(
    p: Policy, ready: int, current: int, p95: float | None, q: float | None, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    dl = decide(p, State(), obs(low, ready=ready, p95=p95, queue=q), current, NOW)
    dh = decide(p, State(), obs(high, ready=ready, p95=p95, queue=q), current, NOW)
    assert dl.replicas <= dh.replicas


@given(policies(), st.integers(0, 60), st.integers(1, 40), st.integers(0, 40))
def test_property_never_scales_down_on_missing_or_partial_data(
    p: Policy, current: int, ready: int, rated_seed: int
) -> None:
    clamp = min(max(current, p.floor), p.max_replicas)
    needed = max(1, math.ceil(p.min_pods_fraction * ready))
    rated = rated_seed % needed  # fewer than needed
    for o in (
        None,
        obs(0.0, ready=0),
        obs(0.0, ready=ready, rated=rated),
        obs(0.0, ready=ready, age=p.max_age_s + 1),
    ):
        assert decide(p, State(), o, current, NOW).replicas >= clamp


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.floats(50, 2000),
    demand=st.floats(0, 20000),
    start=st.integers(1, 30),
    startup_ticks=st.integers(0, 8),
    with_tp=st.booleans(),
)
def test_property_no_oscillation_under_constant_load(
    capacity: float, demand: float, start: int, startup_ticks: int, with_tp: bool
) -> None:
    """A closed loop on a plant: each replica serves `capacity`/s; utilization drives latency
    and queue time; new replicas serve after `startup_ticks` decisions. Under constant demand the
    replicas settle within minutes and stay. On the way they may change direction, but at most
    three times: an overload's backlog is drained with extra replicas that go once it is gone,
    and without a throughput target the rate at which latency breaks is learned by a search."""
    policy = Policy(
        max_replicas=40,
        p95_latency_ms=100.0,
        throughput_per_replica=capacity * 0.7 if with_tp else None,
        down_window_s=60.0,
    )
    state, current, ready_at = State(), start, [0] * start
    pending, history = 0.0, []
    for tick in range(240):  # 20 minutes at 5 s
        now = NOW + 5 * tick
        ready = sum(1 for t in ready_at[:current] if t <= tick)
        served = min(demand, ready * capacity)
        pending = max(0.0, pending + (demand - served) * 5)
        rho = demand / (ready * capacity) if ready else math.inf
        queue = 1e4 if rho >= 1 else 20.0 * rho / (1 - rho)
        o = obs(served, ready=ready, p95=30.0 + 2 * queue, queue=queue, pending=pending, t=now)
        d = decide(policy, state, o, current, now)
        state = d.state
        if d.replicas > current:
            ready_at = ready_at[:current] + [tick + startup_ticks] * (d.replicas - current)
        current = d.replicas
        history.append(current)
    moves = [b - a for a, b in itertools.pairwise(history) if b != a]
    reversals = sum(1 for x, y in itertools.pairwise(moves) if (x > 0) != (y > 0))
    assert reversals <= 3, history
    assert len(set(history[-24:])) == 1, f"not settled after 20 min: {history[-24:]}"
