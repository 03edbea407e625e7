"""Where the metrics come from: each pod's /metrics (default) or a Prometheus HTTP API.

Both are blocking (urllib); the operator's loop runs them in a thread (`asyncio.to_thread`).
Neither follows HTTP(S)_PROXY: pod IPs and in-cluster Prometheus are reached directly.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..api.pipeline import AutoscalingMetrics, MetricsSourceKind
from .metrics import MetricsSource, PodFailure, PodSnapshot, PodTarget
from .triton_metrics import RawSample, models_from_samples, models_from_text

MAX_BODY = 16 << 20  # a Triton /metrics page is a few KiB per model; refuse runaway answers
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str, timeout_s: float, headers: Mapping[str, str] | None = None) -> bytes:
    req = urllib.request.Request(url, headers=dict(headers or {}))
    with _OPENER.open(req, timeout=timeout_s) as r:
        body: bytes = r.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise ValueError(f"answer larger than {MAX_BODY} bytes")
    return body


def _why(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    return f"{type(e).__name__}: {e}"


@dataclass
class ScrapeSource:
    """GET each ready pod's Triton metrics endpoint (PodTarget.metrics_url), in parallel."""

    timeout_s: float = 2.0
    max_parallel: int = 16
    clock: Callable[[], float] = time.time

    def collect(self, pods: Sequence[PodTarget]) -> list[PodSnapshot | PodFailure]:
        if not pods:
            return []
        with ThreadPoolExecutor(min(self.max_parallel, len(pods))) as pool:
            return list(pool.map(self._one, pods))

    def _one(self, pod: PodTarget) -> PodSnapshot | PodFailure:
        try:
            text = _get(pod.metrics_url, self.timeout_s).decode()
            return PodSnapshot(pod.name, self.clock(), models_from_text(text))
        except (OSError, ValueError, UnicodeDecodeError) as e:
            return PodFailure(pod.name, _why(e))


def promql_string(s: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class PrometheusSource:
    """Ask a Prometheus that scrapes the pods for their latest Triton samples.

    One instant query of a range selector returns the raw samples of the last `lookback_s` with
    their scrape timestamps; the newest of each series is the pod's snapshot, so rates come out
    of the same Observer as for scraped pods, over Prometheus' scrape interval.
    """

    url: str
    matchers: Mapping[str, str] = field(default_factory=dict)  # e.g. {"namespace": "prod"}
    pod_label: str = "pod"
    lookback_s: int = 120
    timeout_s: float = 5.0
    headers: Mapping[str, str] = field(default_factory=dict)

    def query(self, pods: Sequence[PodTarget]) -> str:
        names = "|".join(re.escape(p.name) for p in pods)
        terms = [
            '__name__=~"nv_inference_.*"',
            f"{self.pod_label}=~{promql_string(names)}",
            *(f"{k}={promql_string(v)}" for k, v in sorted(self.matchers.items())),
        ]
        return "{" + ",".join(terms) + "}" + f"[{self.lookback_s}s]"

    def collect(self, pods: Sequence[PodTarget]) -> list[PodSnapshot | PodFailure]:
        if not pods:
            return []
        url = f"{self.url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode(
            {"query": self.query(pods)}
        )
        try:
            answer = json.loads(_get(url, self.timeout_s, self.headers))
            if answer.get("status") != "success":
                raise ValueError(answer.get("error") or "query failed")
            series = answer["data"]["result"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            return [PodFailure(p.name, f"Prometheus at {self.url}: {_why(e)}") for p in pods]
        return self.snapshots(pods, series)

    def snapshots(
        self, pods: Sequence[PodTarget], series: list[dict[str, Any]]
    ) -> list[PodSnapshot | PodFailure]:
        """Group a range query's series by pod, keeping the newest sample of each."""
        samples: dict[str, list[RawSample]] = {}
        newest: dict[str, float] = {}
        for s in series:
            labels: dict[str, str] = dict(s["metric"])
            values: list[list[Any]] = s.get("values") or []
            pod = labels.get(self.pod_label)
            if pod is None or not values:
                continue
            ts, value = values[-1]
            name = labels.pop("__name__", "")
            samples.setdefault(pod, []).append(RawSample(name, labels, float(value)))
            newest[pod] = max(newest.get(pod, 0.0), float(ts))
        out: list[PodSnapshot | PodFailure] = []
        for p in pods:
            if p.name in samples:
                out.append(
                    PodSnapshot(p.name, newest[p.name], models_from_samples(samples[p.name]))
                )
            else:
                out.append(
                    PodFailure(p.name, f"no Triton series for it in Prometheus at {self.url}")
                )
        return out


def source_for(metrics: AutoscalingMetrics, namespace: str) -> MetricsSource:
    """The source a pipeline's `autoscaling.metrics` asks for (pods in `namespace`)."""
    if metrics.source is MetricsSourceKind.PROMETHEUS and metrics.prometheus is not None:
        p = metrics.prometheus
        return PrometheusSource(
            p.url, matchers={p.namespace_label: namespace}, pod_label=p.pod_label
        )
    return ScrapeSource()
