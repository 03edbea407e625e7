"""The HPA and KEDA ScaledObject rendered for `autoscaling.engine: hpa | keda`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferline.api.load import load_text
from inferline.compile import check_loaded, render_manifest
from inferline.render import kube
from inferline.render.autoscalers import render_autoscaler

from ..conftest import EXAMPLES


def pipeline(autoscaling: dict[str, Any]) -> Any:
    doc = yaml.safe_load((EXAMPLES / "cluster" / "autoscaled.yaml").read_text())
    doc["metadata"] |= {"namespace": "ml", "uid": "u-1", "generation": 1}
    doc["spec"]["autoscaling"] = autoscaling
    checked = check_loaded(load_text(json.dumps(doc), Path("/m/p.yaml")))
    assert checked.ok, checked.errors
    return checked.pipelines[0]


def scaler(autoscaling: dict[str, Any]) -> dict[str, Any]:
    rp = pipeline(autoscaling)
    out = render_autoscaler(rp.pipeline, "minimal-autoscaled", {"a": "b"}, {"uid": "u-1"})
    assert out is not None
    return out


TARGETS = {"p95LatencyMs": 50, "throughputPerReplica": 200, "queueTimeMs": 0.5}


def test_the_builtin_engine_renders_no_hpa() -> None:
    rp = pipeline({"maxReplicas": 4, "targets": TARGETS})
    assert render_autoscaler(rp.pipeline, "x", {}, {}) is None
    manifest = render_manifest([rp])
    children = kube.render_children(
        rp.pipeline, rp.backend, manifest, kube.PodPlacement(), kube.RuntimeSettings()
    )
    assert not [o for o in children.all if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")]


def test_hpa_targets_the_pipelines_scale_subresource_on_pods_metrics() -> None:
    hpa = scaler({"engine": "hpa", "minReplicas": 0, "maxReplicas": 8, "targets": TARGETS})
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "inferline.dev/v1alpha1",
        "kind": "InferencePipeline",
        "name": "minimal-autoscaled",
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 8)  # an HPA cannot go to zero
    by_name = {m["pods"]["metric"]["name"]: m["pods"] for m in spec["metrics"]}
    assert by_name["inferline_inferences_per_second"]["target"] == {
        "type": "AverageValue",
        "averageValue": "200",
    }
    assert by_name["inferline_p95_latency_ms"]["target"]["averageValue"] == "50"
    assert by_name["inferline_queue_time_ms"]["target"]["averageValue"] == "500m"
    for m in by_name.values():
        assert m["metric"]["selector"] == {"matchLabels": {"model": "minimal-autoscaled"}}
    assert hpa["metadata"]["ownerReferences"] == [{"uid": "u-1"}]


def test_behavior_follows_the_spec_and_defaults_to_the_builtin_engines() -> None:
    hpa = scaler(
        {
            "engine": "hpa",
            "maxReplicas": 8,
            "targets": {"throughputPerReplica": 100},
            "scaleDown": {"stabilizationSeconds": 300, "maxStepReplicas": 2},
        }
    )
    up, down = hpa["spec"]["behavior"]["scaleUp"], hpa["spec"]["behavior"]["scaleDown"]
    assert up["stabilizationWindowSeconds"] == 0
    assert up["policies"] == [
        {"type": "Pods", "value": 10, "periodSeconds": 15},
        {"type": "Percent", "value": 200, "periodSeconds": 15},
    ]
    assert down["stabilizationWindowSeconds"] == 300
    assert down["policies"][0] == {"type": "Pods", "value": 2, "periodSeconds": 30}
    assert up["selectPolicy"] == down["selectPolicy"] == "Max"


def test_keda_queries_prometheus_for_each_target() -> None:
    so = scaler(
        {
            "engine": "keda",
            "minReplicas": 0,
            "maxReplicas": 8,
            "targets": TARGETS,
            "metrics": {"prometheus": {"url": "http://prom:9090", "namespaceLabel": "ns"}},
        }
    )
    assert so["apiVersion"] == "keda.sh/v1alpha1" and so["kind"] == "ScaledObject"
    spec = so["spec"]
    assert spec["scaleTargetRef"]["kind"] == "InferencePipeline"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 8)
    assert spec["pollingInterval"] == 2
    triggers = spec["triggers"]
    assert {t["metadata"]["serverAddress"] for t in triggers} == {"http://prom:9090"}
    rate, p95, queue = triggers
    assert rate["metricType"] == "AverageValue" and rate["metadata"]["threshold"] == "200"
    assert 'nv_inference_count{ns="ml",model="minimal-autoscaled"}' in rate["metadata"]["query"]
    assert p95["metricType"] == "Value" and 'quantile="0.95"' in p95["metadata"]["query"]
    assert 'model=~"minimal-autoscaled-.+"' in queue["metadata"]["query"]
    assert queue["metadata"]["threshold"] == "0.5"


def test_keda_without_prometheus_is_refused_before_rendering() -> None:
    with pytest.raises(AssertionError, match="engine keda reads Prometheus"):
        pipeline({"engine": "keda", "maxReplicas": 4, "targets": TARGETS})
