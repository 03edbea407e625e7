"""The pod runner's pure parts: a container spec -> the host process; probes; status; stages.

No cluster and no process here (the e2e tests in test_dataplane.py run the real thing).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from e2e import dataplane, kwok_stages
from e2e.runner import images, probes, spec, status

POD_IP, HOST_IP = "198.18.7.5", "10.240.0.1"


def pod(container: dict[str, Any], **spec_extra: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "u-1",
            "labels": {"app": "a"},
            "annotations": {"note": "hi"},
        },
        "spec": {"nodeName": "cpu-0", "containers": [container], **spec_extra},
    }


def runtime_container(**extra: Any) -> dict[str, Any]:
    return {"name": "runtime", "image": "ghcr.io/inferline/runtime-cpu:0.1.0", **extra}


def make_plan(
    container: dict[str, Any], tmp_path: Path, lookup: spec.Lookup | None = None
) -> spec.ContainerPlan:
    p = pod(container)
    vols = {"rendered": tmp_path / "v" / "rendered", "tmp": tmp_path / "v" / "tmp"}
    ctx = spec.PodContext(POD_IP, HOST_IP, vols, {"cpu": "16", "memory": "64Gi"})
    return spec.plan(p, container, ctx, tmp_path / "c", lookup or (lambda kind, name: None))


# -- which pods -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "owned"),
    [
        ("ghcr.io/inferline/runtime-cpu:0.1.0", True),
        ("ghcr.io/inferline/runtime-gpu@sha256:" + "a" * 64, True),
        ("ghcr.io/inferline/runtime-cpu", True),
        ("ghcr.io/inferline/runtime-cpu-debug:1", False),
        ("ghcr.io/inferline/operator:0.1.0", False),
        ("registry.k8s.io/pause:3.10", False),
        # GPU pods stay with kwok: this machine has no GPU to run them on.
        ("gpu-limits", False),
        ("gpu-requests", False),
        ("dra-claim", False),
    ],
)
def test_runtime_pods_are_recognised_by_image_alike_in_python_and_in_kwok_jq(
    image: str, owned: bool
) -> None:
    runtime = "ghcr.io/inferline/runtime-gpu:0.1.0"
    if image == "gpu-limits":
        p = pod({"name": "c", "image": runtime, "resources": {"limits": {"nvidia.com/gpu": "1"}}})
    elif image == "gpu-requests":
        p = pod(
            {
                "name": "c",
                "image": runtime,
                "resources": {"requests": {"nvidia.com/mig-1g.10gb": "1"}},
            }
        )
    elif image == "dra-claim":
        p = pod({"name": "c", "image": runtime, "resources": {"claims": [{"name": "gpu"}]}})
        p["spec"]["resourceClaims"] = [{"name": "gpu", "resourceClaimTemplateName": "t"}]
    else:
        p = pod({"name": "c", "image": image})
    assert images.is_runtime_pod(p) is owned
    jq = shutil.which("jq")
    if jq is None:  # gojq (kwok) and jq agree on this expression; jq is only a second opinion
        return
    out = subprocess.run(
        [jq, images.RUNTIME_POD_JQ], input=json.dumps(p), capture_output=True, text=True
    )
    assert out.stdout.strip() == ("true" if owned else "false"), out.stderr


def test_every_kwok_pod_stage_excludes_runtime_pods() -> None:
    for stage in kwok_stages.pod_stages():
        assert kwok_stages.NOT_A_RUNTIME_POD in stage["spec"]["selector"]["matchExpressions"]


# -- the process ----------------------------------------------------------------------------------


def test_args_replace_cmd_and_keep_the_entrypoint_mapped_to_this_python(tmp_path: Path) -> None:
    plan = make_plan(runtime_container(args=["--rendered", "/etc/r", "--http-port=8000"]), tmp_path)
    assert plan.argv[:3] == [sys.executable, "-m", "inferline.runtime"]
    assert plan.argv[3:5] == ["--rendered", "/etc/r"]  # not a mounted path: left alone
    # The pod's network namespace: the runtime listens on the pod IP.
    assert plan.argv[-1] == f"--address={POD_IP}"


def test_gpu_image_entrypoint_drops_nvidias_wrapper(tmp_path: Path) -> None:
    c = {"name": "r", "image": "ghcr.io/inferline/runtime-gpu:0.1.0", "args": ["--address=1.2.3.4"]}
    plan = make_plan(c, tmp_path)
    assert plan.argv == [sys.executable, "-m", "inferline.runtime", "--address=1.2.3.4"]


def test_mounted_paths_and_0000_are_rewritten_in_args_and_env(tmp_path: Path) -> None:
    c = runtime_container(
        args=[
            *("--rendered", "/etc/inferline/rendered", "--repository=/models/repo"),
            *("--address", "0.0.0.0", "--server-log", "/tmp/x.log"),
        ],
        volumeMounts=[
            {"name": "rendered", "mountPath": "/etc/inferline/rendered"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        env=[{"name": "ROOTS", "value": "/etc/inferline/rendered/a:/tmp,file:///tmp/b"}],
    )
    plan = make_plan(c, tmp_path)
    rendered, tmp = tmp_path / "v" / "rendered", tmp_path / "v" / "tmp"
    models = tmp_path / "c" / "rootfs" / "models"  # the image's VOLUME, no volume mounted
    assert plan.argv[3:] == [
        "--rendered",
        str(rendered),
        f"--repository={models}/repo",
        "--address",
        POD_IP,
        "--server-log",
        f"{tmp}/x.log",
    ]
    assert plan.env["ROOTS"] == f"{rendered}/a:{tmp},file://{tmp}/b"
    assert plan.env["HOME"] == str(tmp) and plan.env["TMPDIR"] == str(tmp)
    assert plan.cwd == tmp  # the image's WORKDIR /tmp, a volume here


def test_this_python_under_tmp_is_not_taken_for_the_containers_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkout (and its venv) in /tmp, as a CI clone may be; the pod mounts a volume at /tmp.
    monkeypatch.setattr(sys, "executable", "/tmp/clone/.venv/bin/python")
    c = runtime_container(volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}])
    plan = make_plan(c, tmp_path)
    assert plan.argv[:3] == ["/tmp/clone/.venv/bin/python", "-m", "inferline.runtime"]


def test_a_host_path_put_in_is_not_rewritten_again(tmp_path: Path) -> None:
    # The run directory lives under the host's /tmp: mapping /etc/r -> /tmp/... must not then
    # map that /tmp again to the container's /tmp volume.
    paths = spec.PathMap()
    paths.add("/etc/r", Path("/tmp/run/volumes/r"))
    paths.add("/tmp", Path("/tmp/run/volumes/tmp"))
    assert paths.rewrite("/etc/r/x") == "/tmp/run/volumes/r/x"
    assert paths.rewrite("/etc/rx") == "/etc/rx"  # a path boundary, not a prefix


def test_env_order_expansion_and_downward_api(tmp_path: Path) -> None:
    c = runtime_container(
        envFrom=[{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        env=[
            {"name": "A", "value": "a"},
            {"name": "B", "value": "$(A)-$(CM_K)-$(NOPE)-$$(A)"},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ],
        args=["--x=$(B)"],
    )
    data = {("configmap", "cm"): {"K": "k"}, ("secret", "s"): {"k": "secret"}}
    plan = make_plan(c, tmp_path, lambda kind, name: data.get((kind, name)))
    assert plan.env["B"] == "a-k-$(NOPE)-$(A)"
    assert plan.env["IP"] == POD_IP and plan.env["NS"] == "ns" and plan.env["L"] == "a"
    assert plan.env["MEM"] == str(64 * 2**30)  # no limit: the node's allocatable
    assert plan.env["S"] == "secret"
    assert "--x=a-k-$(NOPE)-$(A)" in plan.argv


def test_a_missing_key_is_a_config_error_naming_it(tmp_path: Path) -> None:
    c = runtime_container(
        env=[{"name": "S", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "gone"}}}]
    )
    with pytest.raises(spec.ConfigError, match="couldn't find key gone in ConfigMap ns/cm"):
        make_plan(c, tmp_path, lambda kind, name: {"other": "1"})


def test_other_programs_and_images_are_refused(tmp_path: Path) -> None:
    with pytest.raises(images.UnsupportedCommand, match="'/bin/sh'"):
        make_plan(runtime_container(command=["/bin/sh", "-c", "true"]), tmp_path)
    with pytest.raises(spec.ConfigError, match=r"runs only ghcr\.io/inferline/runtime-cpu"):
        make_plan({"name": "c", "image": "busybox"}, tmp_path)


def test_rendered_directory_round_trips_through_a_configmap_volume(tmp_path: Path) -> None:
    src = tmp_path / "rendered"
    (src / "model_repository" / "m" / "1").mkdir(parents=True)
    (src / "render.json").write_text("{}")
    (src / "model_repository" / "m" / "config.pbtxt").write_text("name: 'm'")
    (src / "model_repository" / "m" / "1" / "w.bin").write_bytes(b"\xff\x00")
    cm, vol = dataplane.directory_configmap("r", src)
    paths = {i["path"] for i in vol["configMap"]["items"]}
    assert paths == {"render.json", "model_repository/m/config.pbtxt", "model_repository/m/1/w.bin"}
    assert all("/" not in k for k in [*cm["data"], *cm.get("binaryData", {})])

    from e2e.runner import volumes

    class Source:
        def configmap(self, ns: str, name: str) -> dict[str, Any]:
            return cm

        def secret(self, ns: str, name: str) -> None:
            return None

        def token(self, *args: Any) -> str:
            return ""

    p = {"metadata": {"namespace": "ns", "name": "p"}, "spec": {"volumes": [vol]}}
    dirs = volumes.materialise(
        p, tmp_path / "out", Source(), pod_ip=POD_IP, host_ip=HOST_IP, allocatable={}
    )
    out = dirs["rendered"]
    for f in src.rglob("*"):
        if f.is_file():
            assert (out / f.relative_to(src)).read_bytes() == f.read_bytes()


# -- probes and status ----------------------------------------------------------------------------


def test_readiness_needs_its_success_threshold_and_loses_ready_after_failure_threshold() -> None:
    p = probes.Prober("readiness", {"successThreshold": 2, "failureThreshold": 2}, 0.0)
    assert p.record(True, "", 1) is None
    assert p.record(True, "", 2) == "ready"
    assert p.record(False, "down", 3) is None
    assert p.record(False, "down", 4) == "unready"
    assert p.next_at == 4 + 10  # periodSeconds defaults to 10


def test_liveness_fails_after_failure_threshold_and_counts_again() -> None:
    p = probes.Prober("liveness", {"failureThreshold": 2, "initialDelaySeconds": 5}, 100.0)
    assert p.next_at == 105
    assert [p.record(False, "", t) for t in (1, 2, 3, 4)] == [None, "failed", None, "failed"]


def test_pod_is_pending_until_admitted_with_the_reason_then_running_and_ready() -> None:
    c = status.ContainerView("runtime", "img")
    view = status.PodView([c], pending_reason=status.AT_CAPACITY, pending_message="full")
    body = status.status_patch(view, {}, "t0")["status"]
    assert body["phase"] == "Pending"
    ready = next(x for x in body["conditions"] if x["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "RunnerAtCapacity",
        "full",
    )

    view.admitted, view.pod_ip = True, POD_IP
    c.state, c.started = {"running": {"startedAt": "t1"}}, True
    body = status.status_patch(view, {x["type"]: x for x in body["conditions"]}, "t1")["status"]
    assert body["phase"] == "Running" and body["podIP"] == POD_IP
    assert next(x for x in body["conditions"] if x["type"] == "Ready")["status"] == "False"
    # Strategic merge: the state keys that no longer apply are removed explicitly.
    assert body["containerStatuses"][0]["state"] == {
        "waiting": None,
        "running": {"startedAt": "t1"},
        "terminated": None,
    }
    previous = {x["type"]: x for x in body["conditions"]}
    c.ready = True
    body = status.status_patch(view, previous, "t2")["status"]
    ready = next(x for x in body["conditions"] if x["type"] == "Ready")
    assert (ready["status"], ready["lastTransitionTime"]) == ("True", "t2")
    init = next(x for x in body["conditions"] if x["type"] == "Initialized")
    assert init["lastTransitionTime"] == "t1"  # unchanged status keeps its time


def test_terminated_containers_that_will_not_restart_end_the_pod() -> None:
    c = status.ContainerView("runtime", "img", will_restart=False)
    c.state = {"terminated": {"exitCode": 1}}
    view = status.PodView([c], admitted=True)
    assert status.phase(view) == "Failed"
    c.state = {"terminated": {"exitCode": 0}}
    assert status.phase(view) == "Succeeded"
    c.will_restart = True
    assert status.phase(view) == "Running"


def test_status_is_patched_again_when_another_writer_changed_it() -> None:
    c = status.ContainerView("runtime", "img", ready=True, started=True)
    c.state = {"running": {"startedAt": "t1"}}
    view = status.PodView([c], pod_ip=POD_IP, admitted=True)
    patch = status.status_patch(view, {}, "t1")
    # What the apiserver stores: empty values dropped, and conditions of other writers kept.
    stored = json.loads(json.dumps(patch["status"]))
    stored["conditions"].append({"type": "PodScheduled", "status": "True"})
    for cs in stored["containerStatuses"]:
        cs.pop("imageID")
        cs["state"] = {k: v for k, v in cs["state"].items() if v is not None}
        cs["lastState"] = {}
    assert not status.differs(patch, stored)
    # The node lifecycle controller marks the pod NotReady when its node's lease lapses.
    next(x for x in stored["conditions"] if x["type"] == "Ready")["status"] = "False"
    assert status.differs(patch, stored)


def test_a_directory_of_mounts_is_a_directory_of_links_to_them(tmp_path: Path) -> None:
    """INFERLINE_CONFIGMAP_ROOT names the directory the operator mounts each ConfigMap under:
    the container sees /var/run/inferline/configmaps/<name>/<key>, and so must the process."""
    vols = {"code": tmp_path / "v" / "code", "rendered": tmp_path / "v" / "rendered"}
    vols["code"].mkdir(parents=True)
    (vols["code"] / "scale.py").write_text("x")
    container = {
        "name": "runtime",
        "image": "ghcr.io/inferline/runtime-cpu:0.1.0",
        "env": [{"name": "INFERLINE_CONFIGMAP_ROOT", "value": "/var/run/inferline/configmaps"}],
        "volumeMounts": [
            {"name": "code", "mountPath": "/var/run/inferline/configmaps/code"},
            {"name": "rendered", "mountPath": "/etc/inferline/rendered"},
        ],
    }
    p = pod(container)
    ctx = spec.PodContext(POD_IP, HOST_IP, vols, {})
    plan = spec.plan(p, container, ctx, tmp_path / "c", lambda kind, name: None)
    root = Path(plan.env["INFERLINE_CONFIGMAP_ROOT"])
    assert root != Path("/var/run/inferline/configmaps")
    assert (root / "code" / "scale.py").read_text() == "x"
