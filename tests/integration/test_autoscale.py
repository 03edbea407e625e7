"""The autoscaler on a real tritonserver under real load: the metrics source reads real values,
and the decision asks for more replicas while the load runs and fewer after it stops.

The pipeline's one step sleeps 20 ms per batch of up to 8 (tests/data/pipelines/slow), so one
replica serves at most ~380 inferences/s; 12 clients back to back saturate it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from inferline.api.pipeline import Autoscaling
from inferline.autoscale.decide import Decision, Policy, Reason, State, decide
from inferline.autoscale.metrics import Observation, Observer, PipelineModels, PodTarget
from inferline.autoscale.sources import ScrapeSource
from inferline.runtime.tritonserver import TritonProcess

from ..conftest import REPO
from .conftest import Serve
from .load import clients

pytestmark = pytest.mark.integration

SLOW = REPO / "tests" / "data" / "pipelines" / "slow"
SPEC = Autoscaling.model_validate(
    {
        "minReplicas": 1,
        "maxReplicas": 8,
        "targets": {"p95LatencyMs": 300, "throughputPerReplica": 100},
        # short windows so the test sees the way down in seconds
        "scaleDown": {"stabilizationSeconds": 3, "maxStepPercent": 100, "stepPeriodSeconds": 1},
        "metrics": {"intervalSeconds": 1},
    }
)


@pytest.fixture(scope="module")
def server(serve: Serve) -> TritonProcess:
    return serve([SLOW])


class Loop:
    """What the operator's loop does each interval, with one real pod."""

    def __init__(self, server: TritonProcess) -> None:
        self.pod = PodTarget("slow-0", f"http://127.0.0.1:{server.opts.ports.metrics}/metrics")
        self.observer = Observer(ScrapeSource(timeout_s=5), PipelineModels("slow"))
        self.policy = Policy.from_spec(SPEC)
        self.state = State()
        self.replicas = 1
        self.seen: list[tuple[Observation, Decision]] = []

    def tick(self) -> Decision:
        now = time.time()
        obs = self.observer.observe([self.pod], now)
        d = decide(self.policy, self.state, obs, self.replicas, now)
        self.state, self.replicas = d.state, d.replicas
        self.seen.append((obs, d))
        return d


@pytest.fixture
def load(server: TritonProcess) -> Iterator[threading.Event]:
    with clients(server, 12) as stop:
        yield stop


def test_scales_up_under_load_and_down_after_it(
    server: TritonProcess, load: threading.Event
) -> None:
    loop = Loop(server)
    deadline = time.monotonic() + 20
    while loop.replicas == 1 and time.monotonic() < deadline:
        loop.tick()
        time.sleep(1)
    busy = [o for o, _ in loop.seen if o.request_rate]
    assert busy, f"no rates were read: {[o.errors for o, _ in loop.seen]}"
    o = busy[-1]
    assert 100 < (o.inference_rate or 0) < 450, o  # ~380/s at most for 20 ms per batch of 8
    assert o.p95_latency_ms is not None and o.p95_latency_ms > 20, "the step sleeps 20 ms"
    assert o.queue_time_ms is not None and o.queue_time_ms > 1, "12 clients queue"
    assert o.pods_answered == o.pods_with_rates == o.ready_pods == 1
    up = loop.seen[-1][1]
    assert up.replicas >= 2 and up.reason is Reason.THROUGHPUT_ABOVE_TARGET, up.message

    load.set()  # the load stops
    deadline = time.monotonic() + 20
    while loop.replicas > 1 and time.monotonic() < deadline:
        loop.tick()
        time.sleep(1)
    idle = loop.seen[-1][0]
    assert idle.request_rate == 0 and idle.pending_requests == 0
    down = [d for _, d in loop.seen if d.replicas < d.current]
    assert down and loop.replicas == 1, [d.message for _, d in loop.seen]
    assert {d.reason for d in down} == {Reason.THROUGHPUT_BELOW_TARGET}
