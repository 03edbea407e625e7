"""Container probes and lifecycle hooks, with the kubelet's defaults and thresholds.

httpGet (against the pod IP unless `host` is set; 200-399 passes; no proxy), tcpSocket and exec
(run on this machine with the container's environment, its Python mapped like the entrypoint)
are supported; a grpc probe fails with a message saying it is not supported.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
from dataclasses import dataclass
from typing import Any

from e2e.runner import images
from e2e.runner.spec import ContainerPlan

Result = tuple[bool, str]  # (passed, why it failed)


def _port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports", []):
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"named port {port!r} is not a port of container {container['name']!r}")


def http_get(
    spec: dict[str, Any], container: dict[str, Any], pod_ip: str, timeout: float
) -> Result:
    host = spec.get("host") or pod_ip
    try:
        port = _port(container, spec["port"])
    except ValueError as e:
        return False, str(e)
    cls = (
        http.client.HTTPSConnection if spec.get("scheme") == "HTTPS" else http.client.HTTPConnection
    )
    conn = cls(host, port, timeout=timeout)
    headers = {"User-Agent": "kube-probe/1.34", "Accept": "*/*"}
    headers |= {h["name"]: h["value"] for h in spec.get("httpHeaders", [])}
    try:
        conn.request("GET", spec.get("path") or "/", headers=headers)
        code = conn.getresponse().status
    except (OSError, http.client.HTTPException) as e:
        return False, f'Get "http://{host}:{port}{spec.get("path", "/")}": {e}'
    finally:
        conn.close()
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"


def tcp_socket(
    spec: dict[str, Any], container: dict[str, Any], pod_ip: str, timeout: float
) -> Result:
    host = spec.get("host") or pod_ip
    try:
        port = _port(container, spec["port"])
        with socket.create_connection((host, port), timeout=timeout):
            return True, ""
    except (OSError, ValueError) as e:
        return False, f"dial tcp {host}:{spec.get('port')}: {e}"


def run_exec(command: list[str], plan: ContainerPlan, timeout: float) -> Result:
    try:
        argv = [plan.paths.rewrite(a) for a in images.host_argv(command)]
    except images.UnsupportedCommand as e:
        return False, str(e)
    try:
        proc = subprocess.run(
            argv,
            env=plan.env,
            cwd=plan.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"command timed out after {timeout:g}s"
    except OSError as e:
        return False, str(e)
    if proc.returncode == 0:
        return True, ""
    return False, (proc.stdout + proc.stderr).strip()[-500:] or f"exit status {proc.returncode}"


def check(
    spec: dict[str, Any], container: dict[str, Any], pod_ip: str, plan: ContainerPlan
) -> Result:
    """Run one probe (or a hook's handler) once."""
    timeout = float(spec.get("timeoutSeconds") or 1)
    if "httpGet" in spec:
        return http_get(spec["httpGet"], container, pod_ip, timeout)
    if "tcpSocket" in spec:
        return tcp_socket(spec["tcpSocket"], container, pod_ip, timeout)
    if "exec" in spec:
        return run_exec(spec["exec"].get("command", []), plan, timeout)
    handler = next((k for k in ("grpc", "sleep") if k in spec), "this")
    return False, f"{handler} probe handler is not supported by the e2e pod runner"


@dataclass
class Prober:
    """One probe of one container: when it is due and what its thresholds make of the results.

    record() turns results into the kubelet's verdicts: "ready"/"unready" (readiness), "started"
    (startup), "failed" (liveness or startup reached failureThreshold: restart the container).
    """

    kind: str  # "startup" | "liveness" | "readiness"
    spec: dict[str, Any]
    started_at: float  # when the container started (monotonic)
    next_at: float = 0.0
    successes: int = 0
    failures: int = 0
    ready: bool = False  # readiness only
    last_message: str = ""

    def __post_init__(self) -> None:
        self.next_at = self.started_at + float(self.spec.get("initialDelaySeconds") or 0)

    def _threshold(self, key: str, default: int) -> int:
        return int(self.spec.get(key) or default)

    def record(self, ok: bool, message: str, now: float) -> str | None:
        self.next_at = now + float(self.spec.get("periodSeconds") or 10)
        self.last_message = message
        if ok:
            self.failures = 0
            self.successes += 1
            if self.kind == "startup":
                return "started"
            need = self._threshold("successThreshold", 1)
            if self.kind == "readiness" and not self.ready and self.successes >= need:
                self.ready = True
                return "ready"
            return None
        self.successes = 0
        self.failures += 1
        if self.failures < self._threshold("failureThreshold", 3):
            return None
        if self.kind == "readiness":
            if self.ready:
                self.ready = False
                return "unready"
            return None
        self.failures = 0
        return "failed"
