"""Triton's per-model metrics, read from one pod's metrics (pure: text or samples in, data out).

What tritonserver 2.51 exports with `--metrics-config summary_latencies=true` (seen by running
it; tests/autoscale/data/ holds captured text), per model and version:

- counters `nv_inference_request_success`, `nv_inference_request_failure` (with a `reason`
  label), `nv_inference_count` (inferences: a batch of n counts n), `nv_inference_exec_count`
  (batch executions), `nv_inference_request_duration_us`, `nv_inference_queue_duration_us`,
  `nv_inference_compute_{input,infer,output}_duration_us`;
- the gauge `nv_inference_pending_request_count` (requests queued, not yet executing);
- summaries `nv_inference_{request,queue,compute_*}_summary_us` with quantiles 0.5, 0.9, 0.95,
  0.99 and 0.999 over a sliding window of about 60 s (a quantile reads NaN once the window is
  empty), plus `_count` and `_sum`.

For an ensemble, the ensemble model's own queue time and pending count stay at zero: requests
queue in its composing models. So a pipeline's queue time is the sum over its steps, and its
end-to-end latency and throughput are the ensemble's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

# Counters read per model: exposition name -> ModelSnapshot field.
COUNTERS = {
    "nv_inference_request_success": "request_success",
    "nv_inference_request_failure": "request_failure",
    "nv_inference_count": "inference_count",
    "nv_inference_exec_count": "exec_count",
    "nv_inference_request_duration_us": "request_duration_us",
    "nv_inference_queue_duration_us": "queue_duration_us",
    "nv_inference_compute_infer_duration_us": "compute_infer_duration_us",
}
PENDING = "nv_inference_pending_request_count"
REQUEST_SUMMARY = "nv_inference_request_summary_us"
QUEUE_SUMMARY = "nv_inference_queue_summary_us"
SUMMARIES = {REQUEST_SUMMARY: "request_quantiles_us", QUEUE_SUMMARY: "queue_quantiles_us"}


@dataclass(frozen=True)
class RawSample:
    """One sample under its exposition name (`nv_inference_count`, `..._summary_us_count`)."""

    name: str
    labels: dict[str, str]
    value: float


@dataclass
class ModelSnapshot:
    """One model's metrics on one pod at one time (versions summed; quantiles: the worst)."""

    request_success: float = 0.0
    request_failure: float = 0.0
    inference_count: float = 0.0
    exec_count: float = 0.0
    request_duration_us: float = 0.0
    queue_duration_us: float = 0.0
    compute_infer_duration_us: float = 0.0
    pending: float = 0.0
    # quantile (0.95) -> microseconds; quantiles that read NaN (an empty window) are left out
    request_quantiles_us: dict[float, float] = field(default_factory=dict)
    queue_quantiles_us: dict[float, float] = field(default_factory=dict)

    def counter(self, name: str) -> float:
        return float(getattr(self, COUNTERS[name]))


def samples_from_text(text: str) -> list[RawSample]:
    """Parse Prometheus text exposition with prometheus-client's parser.

    The parser names counter samples `<family>_total`; they are returned under the family name,
    as Triton writes them and as Prometheus stores them, so both sources share one vocabulary.
    Raises ValueError on text that is not the exposition format.
    """
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name = family.name if family.type == "counter" else s.name
            out.append(RawSample(name, dict(s.labels), float(s.value)))
    return out


def models_from_samples(samples: Iterable[RawSample]) -> dict[str, ModelSnapshot]:
    """Per-model snapshots from one pod's samples; metrics without a `model` label are ignored."""
    models: dict[str, ModelSnapshot] = {}
    for s in samples:
        model = s.labels.get("model")
        if model is None:
            continue
        snap = models.setdefault(model, ModelSnapshot())
        if s.name in COUNTERS:
            attr = COUNTERS[s.name]
            setattr(snap, attr, getattr(snap, attr) + s.value)
        elif s.name == PENDING:
            snap.pending += s.value
        elif s.name in SUMMARIES and "quantile" in s.labels:
            if math.isnan(s.value):
                continue
            q = float(s.labels["quantile"])
            quantiles: dict[float, float] = getattr(snap, SUMMARIES[s.name])
            quantiles[q] = max(quantiles.get(q, 0.0), s.value)
    return models


def models_from_text(text: str) -> dict[str, ModelSnapshot]:
    return models_from_samples(samples_from_text(text))
