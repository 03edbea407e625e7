"""Autoscaling on the real control plane with the real data plane: load through the pods'
addresses, the operator's built-in autoscaler reads their Triton metrics, scales the pipeline
through its scale subresource, the scheduler places the new pods, the pod runner starts real
tritonservers, and the load spreads onto them; then the load stops and it scales back down.
Also: `engine: hpa` hands the same pipeline to the cluster's own HPA controller."""

from __future__ import annotations

import copy
import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from e2e.dataplane import infer, ready_addresses
from e2e.operator import OperatorProcess
from e2e.pipelines import apply, code_config_map, get, pipeline, wait_condition
from e2e.traffic import Traffic
from e2e.workloads import Kubectl, get_json, wait_for

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("kwok_backend")]


def autoscaled(name: str, **autoscaling: Any) -> dict[str, Any]:
    p = pipeline(name, code=f"{name}-code", backend="inferline-cpu", replicas=1)
    p["spec"]["autoscaling"] = {
        "minReplicas": 1,
        "maxReplicas": 3,
        "targets": {"throughputPerReplica": 12},
        "scaleDown": {"stabilizationSeconds": 10, "maxStepPercent": 100, "stepPeriodSeconds": 5},
        "metrics": {"intervalSeconds": 1},
        **autoscaling,
    }
    return p


def test_load_scales_a_pipeline_up_onto_serving_replicas_and_back_down(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, k8s_client: ApiClient
) -> None:
    apply(kubectl, namespace, code_config_map("auto-code"), autoscaled("auto"))
    wait_condition(kubectl, namespace, "auto", "Ready", timeout=180)

    def replicas() -> int:
        return int(get(kubectl, namespace, "auto")["spec"]["replicas"])

    def request(address: str) -> None:
        assert infer(address, "auto", {"X": [1.0]}) == {"Y": [2.0]}

    timeline: dict[str, float] = {}
    with Traffic(
        lambda: ready_addresses(k8s_client, namespace, "auto"), request, rate=45, workers=4
    ) as traffic:
        started = time.monotonic()
        wait_for(lambda: True if replicas() > 1 else None, "a scale-up decision", 90)
        timeline["overload -> decision"] = time.monotonic() - started
        decided = time.monotonic()
        # The new replicas are scheduled, started (real tritonservers) and become Ready; the
        # Service's endpoints list them and the load spreads onto them.
        target = replicas()
        wait_for(
            lambda: True if len(ready_addresses(k8s_client, namespace, "auto")) >= target else None,
            f"{target} serving replicas",
            180,
        )
        timeline["decision -> new replicas serving"] = time.monotonic() - decided
        time.sleep(4)
    report = traffic.report
    assert report.failed == 0, report.summary()
    assert len([a for a, n in report.per_address.items() if n > 0]) >= 2, report.summary()
    assert target >= 3, f"45 inferences/s at 12 per replica should ask for 3, got {target}"

    p = get(kubectl, namespace, "auto")
    decision = p["status"]["lastAutoscalingDecision"]
    assert decision["reason"] in ("ThroughputAboveTarget", "WithinTargets"), decision
    assert decision["observed"]["inferencesPerSecond"] > 12, decision

    # The load is gone: after the scale-down window the pipeline shrinks back to its minimum.
    stopped = time.monotonic()
    wait_for(lambda: True if replicas() == 1 else None, "the scale-down to 1 replica", 120)
    timeline["load stopped -> back to 1"] = time.monotonic() - stopped
    events = get_json(
        kubectl, "events", "-n", namespace, "--field-selector", "involvedObject.name=auto"
    )["items"]
    reasons = {e["reason"] for e in events}
    assert {"ScaledUp", "ScaledDown"} <= reasons, reasons
    metrics = operator.metrics()
    assert f'inferline_autoscaler_desired_replicas{{namespace="{namespace}",pipeline="auto"}}' in (
        metrics
    )
    # The autoscaler writes under its own field manager, beside the operator's.
    full = get_json(kubectl, "inferencepipeline", "auto", "-n", namespace, "--show-managed-fields")
    managers = {m["manager"] for m in full["metadata"]["managedFields"]}
    assert "inferline-autoscaler" in managers and "inferline" in managers
    print("autoscaling timeline (s):", json.dumps({k: round(v, 1) for k, v in timeline.items()}))


def test_engine_hpa_hands_the_pipeline_to_the_clusters_hpa_controller(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    p = autoscaled("byhpa", engine="hpa")
    p["spec"]["backend"] = {"name": "e2e-kwok"}  # nothing needs to serve for this one
    apply(kubectl, namespace, code_config_map("byhpa-code"), p)
    wait_condition(kubectl, namespace, "byhpa", "Ready")

    def hpa_status() -> dict[str, Any] | None:
        proc = kubectl("get", "hpa", "byhpa", "-n", namespace, "-o", "json")
        if proc.returncode != 0:
            return None
        hpa = json.loads(proc.stdout)
        conds = {c["type"]: c for c in hpa.get("status", {}).get("conditions", [])}
        return hpa if "AbleToScale" in conds else None

    hpa = wait_for(hpa_status, "the HPA controller to act on the HPA", 90)
    conds = {c["type"]: c for c in hpa["status"]["conditions"]}
    # It found the pipeline's scale subresource and its pods...
    assert conds["AbleToScale"]["status"] == "True", conds
    assert hpa["status"]["currentReplicas"] == 1
    # ...and asks for the Pods metrics a metrics adapter (prometheus-adapter) would serve.
    assert conds["ScalingActive"]["status"] == "False", conds
    assert "inferline_inferences_per_second" in conds["ScalingActive"]["message"], conds

    # Switching back to the built-in engine prunes the HPA.
    builtin = copy.deepcopy(p)
    builtin["spec"]["autoscaling"]["engine"] = "builtin"
    apply(kubectl, namespace, builtin)
    wait_for(
        lambda: True if kubectl("get", "hpa", "byhpa", "-n", namespace).returncode != 0 else None,
        "the HPA to be pruned",
        60,
    )
