"""The Argo CD health check (Lua), run by a real Lua 5.1 interpreter (Argo CD's gopher-lua is
5.1), against Argo CD-style fixtures and against statuses the operator's own code computes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from inferline.api.status import Endpoints, Reason
from inferline.controller.status import DeploymentView, PodView, Verdict, compute_status

from .helm import CHART

LUA = (CHART / "files" / "argocd-health-inferencepipeline.lua").read_text()
HERE = Path(__file__).parent / "argocd"
CASES = yaml.safe_load((HERE / "health_test.yaml").read_text())["tests"]


def health(obj: dict[str, Any]) -> dict[str, str]:
    """What Argo CD would show for `obj`: the script's return value, as Argo CD reads it."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=False)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(LUA)
    return {"status": result["status"], "message": result["message"]}


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_fixture(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((HERE / case["inputPath"]).read_text())
    assert health(obj) == case["healthStatus"]


def test_fixtures_cover_every_health_argo_cd_needs() -> None:
    assert {c["healthStatus"]["status"] for c in CASES} == {"Healthy", "Progressing", "Degraded"}
    names = {Path(c["inputPath"]).stem for c in CASES}
    assert {"healthy", "progressing", "stale-observed-generation", "no-status"} <= names


def test_every_fixture_is_a_status_the_operator_could_write() -> None:
    from inferline.api.status import InferencePipelineStatus

    for case in CASES:
        obj = yaml.safe_load((HERE / case["inputPath"]).read_text())
        if "status" in obj:
            InferencePipelineStatus.model_validate(obj["status"])


# -- statuses computed by the operator's code ------------------------------------------------------

NOW = "2025-01-01T00:00:00Z"
ENDPOINTS = Endpoints(http="http://p.ns.svc:8000/v2/models/p/infer", grpc="p.ns.svc:8001")


def pipeline(status: Any, generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "inferline.dev/v1alpha1",
        "kind": "InferencePipeline",
        "metadata": {"name": "p", "namespace": "ns", "generation": generation},
        "spec": {"replicas": 2},
        "status": status.to_wire(),
    }


def computed(
    verdict: Verdict,
    deployment: DeploymentView | None = None,
    pods: list[PodView] | None = None,
    desired: int = 2,
) -> dict[str, Any]:
    if pods is None:  # the deployment's ready pods, and the Service routes to them
        pods = [
            PodView(f"p-{i}", "Running", True) for i in range(deployment.ready if deployment else 0)
        ]
    result = compute_status(
        generation=1,
        desired=desired,
        selector="inferline.dev/pipeline=p",
        verdict=verdict,
        deployment=deployment,
        pods=pods,
        previous=None,
        now=NOW,
        routed=frozenset(p.name for p in pods if p.ready),
    )
    return pipeline(result.status)


VALID = Verdict(
    placement_reason=Reason.PLACED, placement_message="CPU", endpoints=ENDPOINTS, applied=True
)
ROLLED_OUT = DeploymentView(
    generation=1, observed_generation=1, replicas=2, updated=2, ready=2, available=2
)


@pytest.mark.parametrize(
    ("name", "obj", "status", "message"),
    [
        ("serving", computed(VALID, ROLLED_OUT), "Healthy", "Serving: 2 of 2 replicas ready"),
        (
            "scaled to zero",
            computed(VALID, DeploymentView(generation=1, observed_generation=1), desired=0),
            "Healthy",
            "ScaledToZero",
        ),
        (
            "rolling out",
            computed(
                VALID,
                DeploymentView(generation=2, observed_generation=2, replicas=3, updated=1, ready=2),
            ),
            "Progressing",
            "RollingOut: 2 of 2 replicas ready",
        ),
        ("no deployment yet", computed(VALID), "Progressing", "RollingOut: 0 of 2 replicas ready"),
        (
            "invalid spec",
            computed(Verdict(Reason.INVALID_SPEC, "spec.steps: a cycle")),
            "Degraded",
            "InvalidSpec: spec.steps: a cycle",
        ),
        (
            "missing model",
            computed(Verdict(Reason.MISSING_REFERENCE, "Model 'm' not found")),
            "Progressing",
            "MissingReference: Model 'm' not found",
        ),
        (
            "no capacity",
            computed(
                Verdict(
                    placement_reason=Reason.NO_CAPACITY,
                    placement_message="no node offers nvidia.com/mig-3g.40gb",
                )
            ),
            "Degraded",
            "NoCapacity: no node offers nvidia.com/mig-3g.40gb",
        ),
        (
            "crash looping",
            computed(
                VALID,
                DeploymentView(generation=1, observed_generation=1, replicas=2, updated=2),
                [PodView("p-1", phase="Running", waiting="CrashLoopBackOff: bad model")],
            ),
            "Degraded",
            "PodFailing: pod p-1: CrashLoopBackOff: bad model",
        ),
        (
            "rollout past its deadline",
            computed(
                VALID,
                DeploymentView(
                    generation=1, observed_generation=1, replicas=2, deadline_exceeded=True
                ),
            ),
            "Degraded",
            "PodFailing: the rollout exceeded its progress deadline",
        ),
    ],
)
def test_statuses_the_operator_computes(
    name: str, obj: dict[str, Any], status: str, message: str
) -> None:
    got = health(obj)
    assert got["status"] == status, (name, got)
    assert got["message"].startswith(message), (name, got)


def test_a_status_for_an_older_generation_is_progressing_whatever_it_says() -> None:
    ready = computed(VALID, ROLLED_OUT)
    stalled = computed(Verdict(Reason.INVALID_SPEC, "bad"))
    for obj in (ready, stalled):
        obj["metadata"]["generation"] = 2
        assert health(obj) == {
            "status": "Progressing",
            "message": "Waiting for the Inferline operator to observe generation 2 "
            "(status is for generation 1)",
        }
