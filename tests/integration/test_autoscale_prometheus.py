"""The Prometheus metrics source against a real Prometheus scraping a real tritonserver.

`prometheus` (the server) comes from Debian's package; `./dev setup` installs it when missing.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from inferline.autoscale.metrics import Observer, PipelineModels, PodFailure, PodTarget
from inferline.autoscale.sources import PrometheusSource, ScrapeSource
from inferline.runtime.tritonserver import TritonProcess, free_port

from ..conftest import REPO
from .conftest import Serve
from .load import clients

pytestmark = pytest.mark.integration

SLOW = REPO / "tests" / "data" / "pipelines" / "slow"
POD, NAMESPACE = "slow-0", "team-a"


@pytest.fixture(scope="module")
def server(serve: Serve) -> TritonProcess:
    return serve([SLOW])


@pytest.fixture(scope="module")
def prometheus(server: TritonProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run ./dev setup (apt-get install prometheus)")
    work = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: triton\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{server.opts.ports.metrics}']\n"
        f"        labels: {{pod: {POD}, namespace: {NAMESPACE}}}\n"
    )
    with open(work / "log", "wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def load(server: TritonProcess) -> Iterator[None]:
    with clients(server, 8):
        yield


def test_prometheus_source_reads_what_the_pod_says(
    server: TritonProcess, prometheus: str, load: None
) -> None:
    pod = PodTarget(POD, f"http://127.0.0.1:{server.opts.ports.metrics}/metrics")
    via_prometheus = Observer(
        PrometheusSource(prometheus, matchers={"namespace": NAMESPACE}), PipelineModels("slow")
    )
    direct = Observer(ScrapeSource(), PipelineModels("slow"))
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        now = time.time()
        p, d = via_prometheus.observe([pod], now), direct.observe([pod], now)
        seen.append(p)
        if p.pods_with_rates == 1 and d.pods_with_rates == 1 and len(seen) >= 4:
            break
        time.sleep(2)
    assert p.pods_with_rates == 1, [o.errors for o in seen]
    assert p.age_s(time.time()) is not None and p.age_s(time.time()) < 5  # type: ignore[operator]
    assert p.request_rate and d.request_rate
    assert p.request_rate == pytest.approx(d.request_rate, rel=0.3)
    assert p.p95_latency_ms == pytest.approx(d.p95_latency_ms, rel=0.3)
    assert p.queue_time_ms is not None and p.queue_time_ms > 1

    elsewhere = PrometheusSource(prometheus, matchers={"namespace": "other"}).collect([pod])
    assert isinstance(elsewhere[0], PodFailure)
    down = PrometheusSource("http://127.0.0.1:1").collect([pod])
    assert isinstance(down[0], PodFailure) and "Prometheus at" in down[0].error
