"""One runner pod from admission to deletion, in a thread of its own (the kubelet's pod worker).

admission (a process slot under the cap, else Pending with reason RunnerAtCapacity) -> sandbox
(a pod IP, the volumes) -> containers started, probed, restarted -> on deletion: preStop, SIGTERM,
SIGKILL after the grace period, the terminal status, then the pod object is deleted (grace 0).
Every change is reported through pods/status.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubernetes.client.exceptions import ApiException

from e2e.runner import images, spec, volumes
from e2e.runner.container import Container
from e2e.runner.status import AT_CAPACITY, PodView, differs, rfc3339, status_patch

if TYPE_CHECKING:
    from e2e.runner.runner import Runner

log = logging.getLogger("e2e.runner")
_IDLE_WAKE_S = 1.0
_CONFIG_RETRY_S = 10.0
_DELETE_RETRY_S = 10.0
_SHUTDOWN_GRACE_S = 3.0


@dataclass(frozen=True)
class PodKey:
    namespace: str
    name: str
    uid: str

    @classmethod
    def of(cls, pod: dict[str, Any]) -> PodKey:
        m = pod["metadata"]
        return cls(m["namespace"], m["name"], m["uid"])

    @property
    def dirname(self) -> str:  # as the kubelet's /var/log/pods/<ns>_<name>_<uid>
        return f"{self.namespace}_{self.name}_{self.uid}"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class PodWorker(threading.Thread):
    def __init__(self, runner: Runner, pod: dict[str, Any]) -> None:
        self.key = PodKey.of(pod)
        super().__init__(name=f"pod {self.key}", daemon=True)
        self.runner = runner
        self.pod = pod
        self.wake = threading.Event()
        self.gone = False  # the pod object was removed from the apiserver
        self.dir = runner.dir / "pods" / self.key.dirname
        self.logs = runner.dir / "logs" / self.key.dirname
        node = runner.nodes[pod["spec"]["nodeName"]]
        pspec = pod["spec"]
        grace = float(pspec.get("terminationGracePeriodSeconds", 30))
        self.containers = [
            Container(
                c,
                pspec.get("restartPolicy", "Always"),
                self.dir / "containers" / c["name"],
                self.logs / c["name"],
                runner.backoff,
                grace,
                self.wake,
                partial(self._event, c["name"]),
            )
            for c in pspec.get("containers", [])
        ]
        self.view = PodView([c.view for c in self.containers], host_ip=node.ip)
        self.allocatable = node.allocatable
        self.volume_dirs: dict[str, Path] | None = None

    def _event(self, container: str, kind: str, reason: str, message: str) -> None:
        """Log it, and post it as the kubelet would (best effort: events are advisory)."""
        log.info("pod %s: %s %s: %s", self.key, container, reason, message)
        try:
            self.runner.kube.event(self.pod, container, kind, reason, message)
        except Exception as e:
            log.warning("pod %s: event not posted: %s", self.key, e)

    # -- called from the watch thread -------------------------------------------------------------

    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        self.wake.set()

    def vanished(self) -> None:
        self.gone = True
        self.wake.set()

    def info(self) -> dict[str, Any]:
        """What `GET /pods` on the runner shows (tests find processes and logs here)."""
        return {
            "namespace": self.key.namespace,
            "name": self.key.name,
            "uid": self.key.uid,
            "podIP": self.view.pod_ip,
            "admitted": self.view.admitted,
            "containers": [
                {
                    "name": c.name,
                    "pid": c.pid,
                    "restartCount": c.view.restart_count,
                    "state": next(iter(c.view.state), ""),
                    "ready": c.view.ready,
                    "log": str(c.log) if c.log else None,
                    "logs": str(c.log_dir),
                    "argv": c.plan.argv if c.plan else None,
                }
                for c in self.containers
            ],
        }

    # -- the worker -----------------------------------------------------------------------------

    @property
    def deleting(self) -> bool:
        return bool(self.pod["metadata"].get("deletionTimestamp"))

    def run(self) -> None:
        try:
            if self._admit() and self._sandbox():
                self._serve()
        except Exception:
            log.exception("pod %s: the runner failed", self.key)
        finally:
            for c in self.containers:
                c.kill_now()
            if self.view.pod_ip:
                self.runner.ips.release(self.view.pod_ip)
            shutil.rmtree(self.dir, ignore_errors=True)  # volumes and scratch; logs stay
            self.runner.worker_done(self)

    def _sleep(self, seconds: float) -> None:
        self.wake.wait(max(0.0, seconds))
        self.wake.clear()

    def _stop_requested(self) -> bool:
        return self.runner.stopping.is_set() or self.gone

    def _admit(self) -> bool:
        while not self.runner.admit(self):
            if self._stop_requested():
                return False
            if self.deleting:
                self._finish()
                return False
            cap = self.runner.max_pods
            self.view.pending_reason = AT_CAPACITY
            self.view.pending_message = (
                f"the e2e pod runner runs at most {cap} pods at once "
                f"(INFERLINE_E2E_RUNNER_MAX_PODS={cap}); this pod waits for one to end"
            )
            for c in self.containers:
                c.view.state = {
                    "waiting": {"reason": AT_CAPACITY, "message": self.view.pending_message}
                }
            self._publish()
            self._sleep(5)
        self.view.pending_reason = self.view.pending_message = ""
        for c in self.containers:
            c.view.state = {"waiting": {"reason": "ContainerCreating"}}
        self.view.admitted = True
        self.view.pod_ip = self.runner.ips.allocate()
        self.view.start_time = rfc3339(time.time())
        return True

    def _sandbox(self) -> bool:
        """Volumes; a missing ConfigMap/Secret is retried as the kubelet does."""
        while True:
            if self._stop_requested():
                return False
            if self.deleting:
                self._finish()
                return False
            try:
                self.volume_dirs = volumes.materialise(
                    self.pod,
                    self.dir / "volumes",
                    self.runner.kube,
                    pod_ip=self.view.pod_ip,
                    host_ip=self.view.host_ip,
                    allocatable=self.allocatable,
                )
                return True
            except (spec.ConfigError, ApiException) as e:
                message = str(e) if isinstance(e, spec.ConfigError) else f"apiserver: {e.reason}"
                for c in self.containers:
                    c.view.state = {
                        "waiting": {"reason": "CreateContainerConfigError", "message": message}
                    }
                self._publish()
                self._sleep(_CONFIG_RETRY_S)

    def _plan(self, c: Container) -> spec.ContainerPlan:
        assert self.volume_dirs is not None
        ctx = spec.PodContext(
            self.view.pod_ip, self.view.host_ip, self.volume_dirs, self.allocatable
        )

        def lookup(kind: str, name: str) -> dict[str, str] | None:
            ns = self.key.namespace
            obj = (
                self.runner.kube.configmap(ns, name)
                if kind == "configmap"
                else self.runner.kube.secret(ns, name)
            )
            if obj is None:
                return None
            return {
                k: v.decode(errors="replace") for k, v in volumes.object_files(obj, kind).items()
            }

        return spec.plan(self.pod, c.spec, ctx, c.dir, lookup)

    @staticmethod
    def _config_error(e: Exception) -> tuple[str, str]:
        if isinstance(e, images.UnsupportedCommand):
            return "RunContainerError", str(e)
        if isinstance(e, spec.ConfigError):
            return "CreateContainerConfigError", str(e)
        return "CreateContainerError", f"{type(e).__name__}: {e}"

    def _serve(self) -> None:
        terminating = False
        while True:
            now = time.monotonic()
            if self._stop_requested():
                self._shutdown()
                return
            if self.deleting and not terminating:
                terminating = True
                grace = float(self.pod["metadata"].get("deletionGracePeriodSeconds", 30))
                for c in self.containers:
                    if c.running:
                        c.notify("Normal", "Killing", f"Stopping container {c.name}")
                    c.begin_stop(grace, now, self.view.pod_ip)
            for c in self.containers:
                c.step(now, self.view.pod_ip, partial(self._plan, c), self._config_error)
            self.view.deleting = terminating
            self.view.readiness_gates = self._gates()
            if terminating and not any(c.running for c in self.containers):
                self._finish()
                return
            if all(
                c.view.state.get("terminated") and not c.view.will_restart for c in self.containers
            ):
                self.runner.release_slot(self)  # terminal: its processes are gone for good
            self._publish()
            due = [t for c in self.containers if (t := c.next_due()) is not None]
            self._sleep(min([*due, now + _IDLE_WAKE_S]) - time.monotonic())

    def _gates(self) -> dict[str, bool]:
        conds = {c["type"]: c for c in self.pod.get("status", {}).get("conditions", [])}
        return {
            g["conditionType"]: conds.get(g["conditionType"], {}).get("status") == "True"
            for g in self.pod["spec"].get("readinessGates", [])
        }

    def _shutdown(self) -> None:
        """The runner stops (the cluster goes down): stop the processes, report nothing."""
        now = time.monotonic()
        for c in self.containers:
            c.begin_stop(_SHUTDOWN_GRACE_S, now, self.view.pod_ip, pre_stop=False)
        deadline = now + _SHUTDOWN_GRACE_S
        while any(c.running for c in self.containers) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _finish(self) -> None:
        """Containers stopped: report their last state, then let the pod object go."""
        for c in self.containers:
            c.collect(time.monotonic())
            c.view.will_restart = False
        self.view.deleting = True
        self._publish()
        while not self._stop_requested():
            try:
                self.runner.kube.delete_pod_now(self.key.namespace, self.key.name, self.key.uid)
            except ApiException as e:
                log.warning("pod %s: delete failed: %s", self.key, e.reason)
            self._sleep(_DELETE_RETRY_S)

    def _publish(self) -> None:
        """Patch pods/status when the apiserver's copy (the last watched pod, or our last
        patch's answer) says something else than the containers do."""
        current = self.pod.get("status", {})
        previous = {c["type"]: c for c in current.get("conditions") or []}
        body = status_patch(self.view, previous, rfc3339(time.time()))
        if self.gone or not differs(body, current):
            return
        try:
            self.pod = self.runner.kube.patch_status(self.key.namespace, self.key.name, body)
        except ApiException as e:
            if e.status == 404:
                self.gone = True
            else:
                log.warning("pod %s: status update failed: %s", self.key, e.reason)
        except Exception as e:  # the apiserver is going away with the cluster
            log.warning("pod %s: status update failed: %s", self.key, e)
