"""Helpers for tests that run the Inferline runtime in the e2e cluster (the pod runner).

- `render()`: `inferline render` (the CLI, as a user runs it) into a directory;
- `directory_configmap()`: THE place that turns such a directory into a ConfigMap plus the volume
  that lays it out again, nested paths included (ConfigMap keys cannot contain '/': each file
  gets a flat key and the volume's `items` map keys back to paths);
- `runtime_deployment()` / `headless_service()`: what a runtime Deployment looks like until the
  operator renders one;
- `ready_addresses()`: the ready endpoints of a Service, from its EndpointSlices;
- `infer()`: one KServe v2 JSON request to a pod IP (no proxy, no gevent).
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

RUNTIME_IMAGE = "ghcr.io/inferline/runtime-cpu:0.1.0"
RENDERED_MOUNT = "/etc/inferline/rendered"
HTTP_PORT, GRPC_PORT, METRICS_PORT = 8000, 8001, 8002
_KEY_CHARS = re.compile(r"[^-._a-zA-Z0-9]")


def render(sources: list[Path], out: Path) -> Path:
    """`inferline render SOURCES -o OUT`; absolute sources, so file:// URIs in render.json are
    absolute too (the runner runs the runtime in another directory)."""
    cli = Path(sys.executable).parent / "inferline"
    cmd = [str(cli), "render", *(str(s.resolve()) for s in sources), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}")
    return out


def directory_configmap(name: str, directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ConfigMap, volume) carrying every file under `directory` at its relative path."""
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    items = []
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    for i, f in enumerate(files):
        rel = f.relative_to(directory).as_posix()
        key = f"{i:03d}.{_KEY_CHARS.sub('_', rel.replace('/', '.'))}"[:253]
        content = f.read_bytes()
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode()
        items.append({"key": key, "path": rel})
    configmap: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": data,
    }
    if binary:
        configmap["binaryData"] = binary
    volume = {"name": "rendered", "configMap": {"name": name, "items": items}}
    return configmap, volume


def runtime_deployment(
    name: str,
    rendered_volume: dict[str, Any],
    *,
    replicas: int = 1,
    grace_s: int = 15,
    readiness_period_s: int = 1,
    pre_stop_sleep_s: int = 0,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Deployment of the CPU runtime serving a rendered pipeline mounted from a ConfigMap.

    Restricted Pod Security, read-only root filesystem, emptyDirs for /models and /tmp; ready on
    /v2/health/ready; the runtime's one-line error becomes the termination message. A preStop
    sleep keeps a terminating pod serving while its endpoint is withdrawn.
    """
    labels = {"app": name}
    container = {
        "name": "runtime",
        "image": RUNTIME_IMAGE,
        "args": [
            "--rendered",
            RENDERED_MOUNT,
            "--repository",
            "/models/repository",
            "--address",
            "0.0.0.0",
            f"--http-port={HTTP_PORT}",
            f"--grpc-port={GRPC_PORT}",
            f"--metrics-port={METRICS_PORT}",
            "--exit-timeout=10",
        ],
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT},
            {"name": "grpc", "containerPort": GRPC_PORT},
            {"name": "metrics", "containerPort": METRICS_PORT},
        ],
        # Probed every second (tests want Ready fast), but 3 misses of 2 s each before a pod is
        # taken out: a CPU-starved CI machine must not flap every endpoint at once.
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": "http"},
            "periodSeconds": readiness_period_s,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": "rendered", "mountPath": RENDERED_MOUNT, "readOnly": True},
            {"name": "models", "mountPath": "/models"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if pre_stop_sleep_s:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": pre_stop_sleep_s}}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": labels, "annotations": annotations or {}},
                "spec": {
                    "terminationGracePeriodSeconds": grace_s,
                    "containers": [container],
                    "volumes": [
                        rendered_volume,
                        {"name": "models", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def headless_service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "clusterIP": "None",
            "selector": {"app": name},
            "ports": [{"name": "http", "port": HTTP_PORT, "targetPort": "http"}],
        },
    }


def ready_addresses(api: ApiClient, namespace: str, service: str) -> list[str]:
    """Addresses of the Service's ready endpoints, as a headless-Service client resolves them."""
    from kubernetes import client

    slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}", _request_timeout=5
    )
    out = []
    for s in slices.items:
        for ep in s.endpoints or []:
            if ep.conditions is not None and ep.conditions.ready:
                out.extend(ep.addresses)
    return sorted(out)


def infer(
    address: str, model: str, inputs: dict[str, list[float]], timeout: float = 5
) -> dict[str, list[float]]:
    """POST /v2/models/MODEL/infer with FP32 inputs of shape [1, n]; the outputs by name."""
    body = {
        "inputs": [
            {"name": k, "shape": [1, len(v)], "datatype": "FP32", "data": v}
            for k, v in inputs.items()
        ]
    }
    conn = http.client.HTTPConnection(address, HTTP_PORT, timeout=timeout)
    try:
        conn.request(
            "POST",
            f"/v2/models/{model}/infer",
            body=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        payload = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"{address}: HTTP {resp.status}: {payload[:300]!r}")
    return {o["name"]: o["data"] for o in json.loads(payload)["outputs"]}


def health_ready(address: str, timeout: float = 2) -> bool:
    conn = http.client.HTTPConnection(address, HTTP_PORT, timeout=timeout)
    try:
        conn.request("GET", "/v2/health/ready")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def runner_pods(runner_url: str) -> list[dict[str, Any]]:
    """The pod runner's view (GET /pods): each pod's IP, containers' pids, restarts and logs."""
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{runner_url}/pods", timeout=5) as resp:
        return list(json.loads(resp.read()))


def manifests(sources: list[Path], name: str, replicas: int, work: Path) -> list[dict[str, Any]]:
    """ConfigMap + headless Service + Deployment serving `sources`, named `name`."""
    rendered = render(sources, work / "rendered")
    configmap, volume = directory_configmap(f"{name}-rendered", rendered)
    deployment = runtime_deployment(name, volume, replicas=replicas)
    return [configmap, headless_service(name), deployment]


def main(argv: list[str] | None = None) -> int:
    """python -m e2e.dataplane SOURCES... [--name N] [--replicas R] | kubectl apply -f -"""
    import argparse
    import tempfile

    import yaml

    p = argparse.ArgumentParser(
        prog="python -m e2e.dataplane",
        description="Print a runtime Deployment (plus its ConfigMap and headless Service) that "
        "serves the pipelines in SOURCES, rendered with `inferline render`.",
    )
    p.add_argument("sources", nargs="+", type=Path)
    p.add_argument("--name", help="default: the first source's directory or file stem")
    p.add_argument("--replicas", type=int, default=1)
    args = p.parse_args(argv)
    first = args.sources[0].resolve()
    name = args.name or (first.name if first.is_dir() else first.stem)
    with tempfile.TemporaryDirectory() as work:
        try:
            docs = manifests(args.sources, name, args.replicas, Path(work))
        except RuntimeError as e:
            print(e, file=sys.stderr)
            return 1
    print(yaml.safe_dump_all(docs, sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
