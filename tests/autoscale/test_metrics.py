"""Reading Triton's metrics: parsing text a real tritonserver 2.51 wrote (tests/autoscale/data,
captured by data/capture.py), rates from successive snapshots, and the two sources."""

from __future__ import annotations

import json
import math
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from inferline.api.pipeline import AutoscalingMetrics
from inferline.autoscale.decide import Policy, State, decide
from inferline.autoscale.export import AutoscalerMetrics
from inferline.autoscale.metrics import (
    Observer,
    PipelineModels,
    PodFailure,
    PodSnapshot,
    PodTarget,
)
from inferline.autoscale.sources import PrometheusSource, ScrapeSource, source_for
from inferline.autoscale.triton_metrics import models_from_text, samples_from_text

DATA = Path(__file__).parent / "data"
IDLE, LOADED, AFTER = (
    (DATA / f"{n}.metrics").read_text() for n in ("idle", "under-load", "after-load")
)
MODELS = PipelineModels("slow")


def test_parses_what_tritonserver_exports() -> None:
    models = models_from_text(LOADED)
    assert set(models) == {"slow", "slow-work"}
    ens, step = models["slow"], models["slow-work"]
    assert ens.request_success == step.request_success > 0
    assert ens.inference_count == ens.request_success  # batch-1 requests
    assert step.exec_count < step.inference_count, "the step batches requests"
    assert ens.queue_duration_us < step.queue_duration_us / 100, "an ensemble never queues"
    assert ens.pending == 0 and step.pending > 0, "requests were waiting in the step"
    assert set(ens.request_quantiles_us) == {0.5, 0.9, 0.95, 0.99, 0.999}
    assert ens.request_quantiles_us[0.5] <= ens.request_quantiles_us[0.95]
    assert ens.request_quantiles_us[0.95] > 20_000, "the step sleeps 20 ms per batch"


def test_empty_summary_windows_read_as_no_quantile() -> None:
    idle = models_from_text(IDLE)["slow"]
    assert idle.request_success == 0
    assert idle.request_quantiles_us == {}  # tritonserver writes "Nan"


def test_counter_samples_keep_tritons_names() -> None:
    names = {s.name for s in samples_from_text(LOADED)}
    assert "nv_inference_request_success" in names  # not the parser's ..._total
    assert "nv_inference_request_summary_us_count" in names
    failures = [s for s in samples_from_text(LOADED) if s.name == "nv_inference_request_failure"]
    assert {s.labels["reason"] for s in failures} >= {"BACKEND", "OTHER", "REJECTED"}


def test_garbage_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        models_from_text("this is { not metrics")


def snap(pod: str, text: str, t: float) -> PodSnapshot:
    return PodSnapshot(pod, t, models_from_text(text))


def test_rates_between_two_snapshots_of_a_pod() -> None:
    loaded, after = models_from_text(LOADED), models_from_text(AFTER)
    observer = Observer(ScrapeSource(), MODELS)
    first = observer.update([snap("a", LOADED, 100.0)], ready_pods=1, now=100.0)
    assert (first.pods_answered, first.pods_with_rates, first.request_rate) == (1, 0, None)
    assert first.pending_requests == loaded["slow-work"].pending
    o = observer.update([snap("a", AFTER, 102.0)], ready_pods=1, now=102.0)
    requests = after["slow"].request_success - loaded["slow"].request_success
    assert o.pods_with_rates == 1 and o.interval_s == 2.0
    assert o.request_rate == pytest.approx(requests / 2)
    queue_us = after["slow-work"].queue_duration_us - loaded["slow-work"].queue_duration_us
    queue_us += after["slow"].queue_duration_us - loaded["slow"].queue_duration_us
    assert o.queue_time_ms == pytest.approx(queue_us / requests / 1000)
    duration = after["slow"].request_duration_us - loaded["slow"].request_duration_us
    assert o.mean_latency_ms == pytest.approx(duration / requests / 1000)
    assert o.p95_latency_ms == pytest.approx(after["slow"].request_quantiles_us[0.95] / 1000)
    assert o.age_s(105.0) == 3.0


def test_a_restarted_pod_counts_its_new_counters_as_the_increase() -> None:
    observer = Observer(ScrapeSource(), MODELS)
    observer.update([snap("a", AFTER, 100.0)], ready_pods=1, now=100.0)
    o = observer.update([snap("a", LOADED, 110.0)], ready_pods=1, now=110.0)  # counters fell
    loaded = models_from_text(LOADED)["slow"]
    assert o.request_rate == pytest.approx(loaded.request_success / 10)


def test_pods_appear_and_disappear() -> None:
    observer = Observer(ScrapeSource(), MODELS)
    observer.update([snap("a", IDLE, 100.0)], ready_pods=1, now=100.0)
    o = observer.update([snap("a", LOADED, 105.0), snap("b", IDLE, 105.0)], 2, 105.0)
    assert (o.pods_answered, o.pods_with_rates) == (2, 1), "b has no rates before its 2nd reading"
    o = observer.update([snap("b", LOADED, 110.0)], ready_pods=1, now=110.0)
    assert (o.pods_answered, o.pods_with_rates) == (1, 1)
    o = observer.update([snap("a", AFTER, 115.0), snap("b", AFTER, 115.0)], 2, 115.0)
    assert o.pods_with_rates == 1, "a was gone: its old snapshot must not be reused"


def test_failures_and_pods_without_the_pipeline_are_reported_not_counted() -> None:
    observer = Observer(ScrapeSource(), PipelineModels("other"))
    o = observer.update([snap("a", LOADED, 1.0), PodFailure("b", "timed out")], 2, 1.0)
    assert o.pods_answered == 0
    assert o.errors == ("a: does not serve 'other'", "b: timed out")


def test_the_same_prometheus_sample_twice_keeps_its_rates() -> None:
    observer = Observer(ScrapeSource(), MODELS)
    observer.update([snap("a", IDLE, 100.0)], 1, 100.0)
    o1 = observer.update([snap("a", LOADED, 115.0)], 1, 116.0)
    o2 = observer.update([snap("a", LOADED, 115.0)], 1, 121.0)  # not scraped again yet
    assert o2.request_rate == o1.request_rate and o2.age_s(121.0) == 6.0


def test_a_decision_from_real_metrics() -> None:
    observer = Observer(ScrapeSource(), MODELS)
    observer.update([snap("a", IDLE, 0.0)], 1, 0.0)
    o = observer.update([snap("a", LOADED, 2.5)], 1, 2.5)
    d = decide(Policy(max_replicas=8, throughput_per_replica=100.0), State(), o, 1, 2.5)
    assert o.inference_rate is not None and o.inference_rate > 200
    assert d.replicas == math.ceil(o.inference_rate / 100) <= 1 + 4  # within the step limit
    assert d.reason.value == "ThroughputAboveTarget"


# ---- sources over HTTP on loopback ----------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes]] = {}
    queries: list[str] = []

    def do_GET(self) -> None:
        url = urllib.parse.urlparse(self.path)
        if url.path == "/api/v1/query":
            self.queries.append(urllib.parse.parse_qs(url.query)["query"][0])
        code, body = self.routes.get(url.path, (404, b"not found"))
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("H", (_Handler,), {"routes": {}, "queries": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_scrape_source_reads_each_pod_and_names_failures(
    http: tuple[str, type[_Handler]],
) -> None:
    base, handler = http
    handler.routes = {"/a/metrics": (200, LOADED.encode()), "/b/metrics": (500, b"boom")}
    got = ScrapeSource(timeout_s=2).collect(
        [
            PodTarget("a", f"{base}/a/metrics"),
            PodTarget("b", f"{base}/b/metrics"),
            PodTarget("c", "http://127.0.0.1:1/metrics"),
        ]
    )
    assert isinstance(got[0], PodSnapshot) and "slow" in got[0].models
    assert isinstance(got[1], PodFailure) and "HTTP 500" in got[1].error
    assert isinstance(got[2], PodFailure) and "refused" in got[2].error.lower()


def _prometheus_answer(pods: dict[str, tuple[float, str]]) -> bytes:
    """A range query's answer (Prometheus HTTP API, resultType matrix) holding the given pods'
    real Triton samples, each series with an older and the newest value."""
    result = []
    for pod, (ts, text) in pods.items():
        for s in samples_from_text(text):
            labels = {"__name__": s.name, **s.labels, "pod": pod, "namespace": "prod"}
            values = [[ts - 15, "0"], [ts, repr(s.value)]]
            result.append({"metric": labels, "values": values})
    answer = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    return json.dumps(answer).encode()


def test_prometheus_source_groups_series_by_pod(http: tuple[str, type[_Handler]]) -> None:
    base, handler = http
    handler.routes = {"/api/v1/query": (200, _prometheus_answer({"p-1": (500.0, LOADED)}))}
    source = PrometheusSource(base, matchers={"namespace": "prod"})
    got = source.collect([PodTarget("p-1"), PodTarget("p.2")])
    assert isinstance(got[0], PodSnapshot) and got[0].time == 500.0
    assert got[0].models["slow"].request_success == models_from_text(LOADED)["slow"].request_success
    assert got[0].models["slow-work"].request_quantiles_us == (
        models_from_text(LOADED)["slow-work"].request_quantiles_us
    )
    assert isinstance(got[1], PodFailure) and "no Triton series" in got[1].error
    assert handler.queries == [
        '{__name__=~"nv_inference_.*",pod=~"p\\\\-1|p\\\\.2",namespace="prod"}[120s]'
    ]


def test_the_spec_picks_the_source() -> None:
    pods = AutoscalingMetrics()
    assert isinstance(source_for(pods, "prod"), ScrapeSource)
    prom = AutoscalingMetrics.model_validate(
        {"source": "Prometheus", "prometheus": {"url": "http://p:9090", "podLabel": "kpod"}}
    )
    s = source_for(prom, "prod")
    assert isinstance(s, PrometheusSource)
    assert (s.url, s.pod_label, dict(s.matchers)) == (
        "http://p:9090",
        "kpod",
        {"namespace": "prod"},
    )


def test_prometheus_errors_fail_every_pod(http: tuple[str, type[_Handler]]) -> None:
    base, handler = http
    bad = json.dumps({"status": "error", "error": "parse error"}).encode()
    handler.routes = {"/api/v1/query": (400, bad)}
    got = PrometheusSource(base).collect([PodTarget("a"), PodTarget("b")])
    assert all(isinstance(g, PodFailure) and "HTTP 400" in g.error for g in got)


# ---- export -------------------------------------------------------------------------------


def test_export_records_decisions_and_forgets_pipelines() -> None:
    observer = Observer(ScrapeSource(), MODELS)
    observer.update([snap("a", IDLE, 0.0)], 1, 0.0)
    o = observer.update([snap("a", LOADED, 2.5)], 1, 2.5)
    d = decide(Policy(max_replicas=8, throughput_per_replica=100.0), State(), o, 1, 2.5)
    m = AutoscalerMetrics()
    m.record("prod", "slow", d)
    m.record("prod", "slow", decide(Policy(max_replicas=8, p95_latency_ms=50), State(), None, 1, 3))
    text = generate_latest(m.registry).decode()
    assert 'inferline_autoscaler_desired_replicas{namespace="prod",pipeline="slow"} 1.0' in text
    assert (
        'inferline_autoscaler_decisions_total{namespace="prod",pipeline="slow",'
        'reason="ThroughputAboveTarget"} 1.0'
    ) in text
    assert 'reason="NoMetrics"} 1.0' in text
    assert (
        'inferline_autoscaler_observed_p95_latency_seconds{namespace="prod",pipeline="slow"} NaN'
        in text
    )
    m.forget("prod", "slow")
    assert 'pipeline="slow"' not in generate_latest(m.registry).decode()
