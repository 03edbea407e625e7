"""The data plane: runtime pods on kwok's fake nodes run real tritonservers (the pod runner).

Each test deploys the Inferline CPU runtime serving the minimal example (rendered with
`inferline render`, shipped in a ConfigMap), reaches the pods on their IPs, and leaves no
process behind (the `runtime_ns` fixture checks). Timings go to the terminal with -s and into the
tests' user_properties (`measure`).
"""

from __future__ import annotations

import ipaddress
import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from e2e import dataplane, procs
from e2e.cluster import Cluster
from e2e.traffic import Traffic
from e2e.workloads import Kubectl, apply, condition, get_json, wait_for

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
MODEL = "minimal"
X = [1.0, 2.0, 3.0]
Property = Callable[[str, object], None]


@pytest.fixture(scope="module")
def minimal_rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dataplane.render([REPO / "examples" / "minimal"], tmp_path_factory.mktemp("minimal"))


@pytest.fixture
def runtime_ns(cluster: Cluster, namespace: str) -> Iterator[str]:
    """A namespace whose runtime pods, and every process they started, are gone afterwards."""
    yield namespace
    proc = cluster.kubectl("delete", "deployments,pods", "--all", "-n", namespace, "--timeout=90s")
    assert proc.returncode == 0, proc.stderr

    def released() -> bool | None:
        held = [p for p in dataplane.runner_pods(cluster.runner_url) if p["namespace"] == namespace]
        return None if held else True

    wait_for(released, f"the runner to let go of the pods of {namespace}", timeout=30)
    pods_dir = cluster.dir / "runner" / "pods"
    left = procs.leftovers(pods_dir / f"{namespace}_")
    assert left == [], f"processes outlived their pods: {left}"


def deploy(
    kubectl: Kubectl, ns: str, rendered: Path, name: str = MODEL, **kwargs: Any
) -> dict[str, Any]:
    configmap, volume = dataplane.directory_configmap(f"{name}-rendered", rendered)
    apply(kubectl, ns, configmap)
    apply(kubectl, ns, dataplane.headless_service(name))
    deployment = dataplane.runtime_deployment(name, volume, **kwargs)
    apply(kubectl, ns, deployment)
    return deployment


def pods_of(kubectl: Kubectl, ns: str, app: str = MODEL) -> list[dict[str, Any]]:
    return list(get_json(kubectl, "pods", "-n", ns, "-l", f"app={app}")["items"])


def is_ready(pod: dict[str, Any]) -> bool:
    ready = condition(pod, "Ready")
    return bool(ready and ready["status"] == "True")


def describe(pods: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{p['metadata']['name']} {p['status'].get('phase')} ready={is_ready(p)} "
        f"deleting={bool(p['metadata'].get('deletionTimestamp'))} ip={p['status'].get('podIP')}"
        for p in pods
    )


def wait_ready(kubectl: Kubectl, ns: str, n: int, timeout: float = 120) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def probe() -> list[dict[str, Any]] | None:
        seen[:] = pods_of(kubectl, ns)
        pods = [p for p in seen if not p["metadata"].get("deletionTimestamp")]
        return pods if len(pods) == n and all(is_ready(p) for p in pods) else None

    try:
        return wait_for(probe, f"{n} Ready runtime pod(s)", timeout=timeout, interval=0.3)
    except AssertionError as e:
        raise AssertionError(f"{e}; last seen: {describe(seen)}") from None


def runtime(pod: dict[str, Any]) -> dict[str, Any]:
    return dict(pod["status"]["containerStatuses"][0])


def serves(address: str) -> bool:
    return dataplane.infer(address, MODEL, {"X": X})["Y"] == [2 * x for x in X]


def runner_container(cluster: Cluster, pod: dict[str, Any]) -> dict[str, Any]:
    """The runner's view of the pod's (only) container: pid, log file, restarts."""
    uid = pod["metadata"]["uid"]
    entry = next(p for p in dataplane.runner_pods(cluster.runner_url) if p["uid"] == uid)
    return dict(entry["containers"][0])


def tritonserver_of(cluster: Cluster, pod: dict[str, Any]) -> psutil.Process:
    launcher = psutil.Process(runner_container(cluster, pod)["pid"])
    return next(p for p in launcher.children(recursive=True) if p.name() == "tritonserver")


@pytest.fixture
def measure(request: pytest.FixtureRequest) -> Property:
    """`measure(name, value)`: printed (-s) and kept in the test's user_properties."""

    def record(name: str, value: object) -> None:
        request.node.user_properties.append((name, value))
        print(f"\ne2e data plane: {name} = {value}")

    return record


def test_two_replicas_are_ready_only_once_tritonserver_is_and_serve_on_their_pod_ips(
    cluster: Cluster,
    kubectl: Kubectl,
    k8s_client: Any,
    runtime_ns: str,
    minimal_rendered: Path,
    measure: Property,
) -> None:
    ns = runtime_ns
    started = time.monotonic()
    deploy(kubectl, ns, minimal_rendered, replicas=2)

    ready_after: dict[str, float] = {}

    def both_ready() -> list[dict[str, Any]] | None:
        pods = pods_of(kubectl, ns)
        for p in pods:
            name, ip = p["metadata"]["name"], p["status"].get("podIP", "")
            if is_ready(p) and name not in ready_after:
                ready_after[name] = round(time.monotonic() - started, 1)
                # Ready comes from the pod's own readiness probe: the server answers already.
                assert dataplane.health_ready(ip), f"{name} is Ready but {ip} is not serving"
        return pods if len(pods) == 2 and len(ready_after) == 2 else None

    pods = wait_for(both_ready, "both replicas Ready", timeout=120, interval=0.2)
    measure("apply_to_ready_s", sorted(ready_after.values()))

    ips = sorted(p["status"]["podIP"] for p in pods)
    network = ipaddress.ip_network(cluster.pod_cidr)
    assert all(ipaddress.ip_address(ip) in network for ip in ips), (ips, network)
    assert all(runtime(p)["restartCount"] == 0 and runtime(p)["ready"] for p in pods)
    # The EndpointSlice controller lists exactly these two ready addresses.
    wait_for(
        lambda: True if dataplane.ready_addresses(k8s_client, ns, MODEL) == ips else None,
        f"the EndpointSlice of {MODEL} to list {ips}",
        timeout=30,
    )
    for ip in ips:
        assert serves(ip), ip

    # Another writer marks a pod NotReady (the node lifecycle controller does, when a node's
    # lease lapses): the runner, which owns the status, puts back what the probe says.
    name = pods[0]["metadata"]["name"]
    not_ready = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    proc = kubectl(
        "patch", "pod", name, "-n", ns, "--subresource=status", "-p", json.dumps(not_ready)
    )
    assert proc.returncode == 0, proc.stderr
    wait_for(
        lambda: True if is_ready(get_json(kubectl, "pod", name, "-n", ns)) else None,
        "the runner to restore the pod's Ready condition",
        timeout=15,
    )


def test_a_killed_tritonserver_makes_the_pod_unready_then_it_restarts_and_serves(
    cluster: Cluster,
    kubectl: Kubectl,
    runtime_ns: str,
    minimal_rendered: Path,
    measure: Property,
) -> None:
    ns = runtime_ns
    deploy(kubectl, ns, minimal_rendered)
    (pod,) = wait_ready(kubectl, ns, 1)

    tritonserver_of(cluster, pod).send_signal(signal.SIGKILL)
    killed = time.monotonic()
    seen_unready = wait_for(
        lambda: True if not is_ready(pods_of(kubectl, ns)[0]) else None,
        "the pod to turn NotReady",
        timeout=20,
        interval=0.1,
    )
    assert seen_unready
    (pod,) = wait_ready(kubectl, ns, 1)
    measure("kill_to_ready_again_s", round(time.monotonic() - killed, 1))

    status = runtime(pod)
    assert status["restartCount"] == 1
    terminated = status["lastState"]["terminated"]
    assert terminated["exitCode"] != 0, terminated
    assert terminated["reason"] == "Error"
    measure("runtime_exit_code_after_tritonserver_sigkill", terminated["exitCode"])
    assert serves(pod["status"]["podIP"])


def test_a_failing_liveness_probe_restarts_the_container(
    kubectl: Kubectl, runtime_ns: str, minimal_rendered: Path
) -> None:
    ns = runtime_ns
    configmap, volume = dataplane.directory_configmap("live-rendered", minimal_rendered)
    apply(kubectl, ns, configmap)
    deployment = dataplane.runtime_deployment("live", volume, grace_s=2)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenessProbe"] = {
        "httpGet": {"path": "/v2/health/never", "port": "http"},
        "periodSeconds": 1,
        "failureThreshold": 2,
    }
    apply(kubectl, ns, deployment)

    def restarted() -> dict[str, Any] | None:
        (pod,) = pods_of(kubectl, ns, "live")
        statuses = pod.get("status", {}).get("containerStatuses") or [{}]
        return pod if statuses[0].get("restartCount", 0) >= 1 else None

    pod = wait_for(restarted, "the liveness probe to restart the container", timeout=60)
    assert not is_ready(pod)
    # The exit code is the runtime's answer to SIGTERM (0 once it drains; 137 if SIGKILLed at
    # the end of the grace period): the kubelet's event says why it was stopped.
    about = f"involvedObject.name={pod['metadata']['name']}"
    events = get_json(kubectl, "events", "-n", ns, "--field-selector", about)["items"]
    messages = [e["message"] for e in events if e["reason"] == "Killing"]
    assert "Container runtime failed liveness probe, will be restarted" in messages, messages


def test_an_unreachable_artifact_keeps_the_pod_unready_with_the_runtimes_reason(
    kubectl: Kubectl, runtime_ns: str, tmp_path: Path
) -> None:
    ns = runtime_ns
    # The minimal example, plus a model artifact on a port nothing listens on.
    uri = "http://127.0.0.1:9/weights.bin"
    source = (REPO / "examples" / "minimal" / "pipeline.yaml").read_text()
    example = tmp_path / "example"
    example.mkdir()
    (example / "scale.py").write_text((REPO / "examples" / "minimal" / "scale.py").read_text())
    marker = "        python: {file: scale.py}\n"
    assert marker in source
    (example / "pipeline.yaml").write_text(
        source.replace(marker, f"{marker}        storageUri: {uri}\n")
    )
    rendered = dataplane.render([example], tmp_path / "rendered")
    assert uri in (rendered / "render.json").read_text()
    deploy(kubectl, ns, rendered, name="unreachable")

    def failed_once() -> dict[str, Any] | None:
        (pod,) = pods_of(kubectl, ns, "unreachable")
        assert not is_ready(pod), "a pod that cannot fetch its artifact became Ready"
        statuses = pod.get("status", {}).get("containerStatuses") or [{}]
        terminated = statuses[0].get("lastState", {}).get("terminated") or statuses[0].get(
            "state", {}
        ).get("terminated")
        return terminated if terminated and terminated.get("message") else None

    terminated = wait_for(failed_once, "the runtime to exit with its reason", timeout=60)
    assert terminated["exitCode"] == 1
    reason = terminated["message"].strip().splitlines()[-1]
    assert f"{uri}: cannot fetch" in reason, terminated["message"]
    # It keeps failing: restarted, never Ready.
    wait_for(
        lambda: (
            True if runtime(pods_of(kubectl, ns, "unreachable")[0])["restartCount"] >= 1 else None
        ),
        "a restart",
        timeout=30,
    )
    assert not is_ready(pods_of(kubectl, ns, "unreachable")[0])


def test_scaled_to_zero_the_processes_exit_within_the_grace_period_and_serve_again_after(
    cluster: Cluster,
    kubectl: Kubectl,
    runtime_ns: str,
    minimal_rendered: Path,
    measure: Property,
) -> None:
    ns = runtime_ns
    grace = 15
    deploy(kubectl, ns, minimal_rendered, grace_s=grace)
    (pod,) = wait_ready(kubectl, ns, 1)
    server = tritonserver_of(cluster, pod)
    log = Path(
        next(
            p
            for p in dataplane.runner_pods(cluster.runner_url)
            if p["uid"] == pod["metadata"]["uid"]
        )["containers"][0]["log"]
    )

    scaled = time.monotonic()
    proc = kubectl("scale", "deployment", MODEL, "-n", ns, "--replicas=0")
    assert proc.returncode == 0, proc.stderr
    wait_for(
        lambda: True if not pods_of(kubectl, ns) else None, "the pod to go", timeout=grace + 10
    )
    took = time.monotonic() - scaled
    measure("scale_to_zero_s", round(took, 1))
    assert took < grace, f"took {took:.1f}s, the grace period is {grace}s"
    assert not server.is_running()
    # Stopped by SIGTERM and drained, not killed when the grace period ran out.
    assert "tritonserver exited with status 0" in log.read_text()

    proc = kubectl("scale", "deployment", MODEL, "-n", ns, "--replicas=1")
    assert proc.returncode == 0, proc.stderr
    (pod,) = wait_ready(kubectl, ns, 1)
    assert serves(pod["status"]["podIP"])


@pytest.mark.parametrize("pre_stop_s", [0, 5], ids=["plain", "prestop-sleep"])
def test_a_rolling_update_under_traffic_counts_failed_requests(
    kubectl: Kubectl,
    k8s_client: Any,
    runtime_ns: str,
    minimal_rendered: Path,
    measure: Property,
    pre_stop_s: int,
) -> None:
    """Plain, a pod stops listening at SIGTERM while clients may still hold its address: the
    failures are counted and reported. With a preStop sleep it keeps serving until its endpoint
    is withdrawn everywhere: none may fail."""
    ns = runtime_ns
    deploy(kubectl, ns, minimal_rendered, replicas=2, pre_stop_sleep_s=pre_stop_s)
    old = {p["status"]["podIP"] for p in wait_ready(kubectl, ns, 2)}
    wait_for(
        lambda: True if set(dataplane.ready_addresses(k8s_client, ns, MODEL)) == old else None,
        "the EndpointSlice to list both pods",
        timeout=30,
    )

    def request(address: str) -> None:
        if not serves(address):
            raise AssertionError("wrong answer")

    with Traffic(lambda: dataplane.ready_addresses(k8s_client, ns, MODEL), request) as traffic:
        time.sleep(2)
        patch = {"spec": {"template": {"metadata": {"annotations": {"e2e/rollout": "2"}}}}}
        proc = kubectl("patch", "deployment", MODEL, "-n", ns, "-p", json.dumps(patch))
        assert proc.returncode == 0, proc.stderr
        proc = kubectl("rollout", "status", f"deployment/{MODEL}", "-n", ns, "--timeout=180s")
        assert proc.returncode == 0, proc.stderr + proc.stdout
        wait_for(lambda: True if len(pods_of(kubectl, ns)) == 2 else None, "old pods gone", 60)
        time.sleep(2)
    result = traffic.report
    measure(f"rolling_update_traffic[preStop {pre_stop_s}s]", result.summary())
    measure(f"rolling_update_failed_requests[preStop {pre_stop_s}s]", result.failed)

    new = {p["status"]["podIP"] for p in wait_ready(kubectl, ns, 2)}
    assert new.isdisjoint(old)
    # The client followed the rollout: old pods served before, new ones after.
    assert old <= set(result.per_address) and new <= set(result.per_address), result.per_address
    assert result.ok > 50, result.summary()
    if pre_stop_s:
        assert result.failed == 0, f"{result.summary()}\nready addresses: {result.timeline}"


def test_pods_over_the_process_cap_stay_pending_with_the_reason(
    cluster: Cluster, kubectl: Kubectl, runtime_ns: str
) -> None:
    ns = runtime_ns
    assert dataplane.runner_pods(cluster.runner_url) == [], "another test's pods are still running"
    cap = cluster.max_pods

    def cheap(name: str, replicas: int) -> dict[str, Any]:
        # The runtime's --help: a real process that exits at once (and then crash-loops).
        d = dataplane.runtime_deployment(
            name, {"name": "rendered", "emptyDir": {}}, replicas=replicas
        )
        d["spec"]["template"]["spec"]["containers"][0]["args"] = ["--help"]
        return d

    apply(kubectl, ns, cheap("fill", cap))
    wait_for(
        lambda: (
            True
            if sum(p["admitted"] for p in dataplane.runner_pods(cluster.runner_url)) == cap
            else None
        ),
        f"{cap} admitted pods",
    )
    apply(kubectl, ns, cheap("over", 1))

    def pending_with_reason() -> dict[str, Any] | None:
        pods = pods_of(kubectl, ns, "over")
        ready = condition(pods[0], "Ready") if pods else None
        return pods[0] if ready and ready.get("reason") == "RunnerAtCapacity" else None

    pod = wait_for(pending_with_reason, "the pod over the cap to say why it waits")
    assert pod["status"]["phase"] == "Pending"
    assert f"at most {cap} pods" in condition(pod, "Ready")["message"]  # type: ignore[index]
    assert runtime(pod)["state"]["waiting"]["reason"] == "RunnerAtCapacity"

    proc = kubectl("scale", "deployment", "fill", "-n", ns, f"--replicas={cap - 1}")
    assert proc.returncode == 0, proc.stderr

    def admitted() -> bool | None:
        (p,) = pods_of(kubectl, ns, "over")
        return True if p["status"].get("podIP") and p["status"]["phase"] != "Pending" else None

    wait_for(admitted, "the waiting pod to start once a slot is free", timeout=60)
