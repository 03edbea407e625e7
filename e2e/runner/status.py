"""Pure: the pod status the runner reports, built from what its containers are doing.

The phase, conditions and container statuses follow the kubelet's rules (pkg/kubelet/status):
Pending until every container has started once, Running while any runs or will restart,
Succeeded/Failed once all stopped for good; Ready = every container ready and every readiness
gate True. The result is a strategic-merge patch of pods/status: conditions merge by type,
containerStatuses by name, and the container state keys that no longer apply are sent as null.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

WAITING_CREATING = "ContainerCreating"
AT_CAPACITY = "RunnerAtCapacity"


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass
class ContainerView:
    """What the pod worker knows about one container, at one moment."""

    name: str
    image: str
    restart_count: int = 0
    # One of {"waiting": {...}}, {"running": {...}}, {"terminated": {...}}
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": WAITING_CREATING}})
    last_state: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    container_id: str = ""
    will_restart: bool = True  # False once it terminated and the restart policy says stop

    def status(self) -> dict[str, Any]:
        def full(state: dict[str, Any]) -> dict[str, Any]:
            return {k: state.get(k) for k in ("waiting", "running", "terminated")}

        out = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": full(self.state),
            "lastState": full(self.last_state),
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


@dataclass
class PodView:
    containers: list[ContainerView]
    pod_ip: str = ""
    host_ip: str = ""
    start_time: str = ""
    admitted: bool = False  # a process slot and a sandbox (IP, volumes) were given
    pending_reason: str = ""  # why it waits before admission (the cap)
    pending_message: str = ""
    readiness_gates: dict[str, bool] = field(default_factory=dict)  # condition type -> True?
    deleting: bool = False


def phase(view: PodView) -> str:
    cs = view.containers
    if not view.admitted or any(
        "waiting" in c.state and c.restart_count == 0 and not c.last_state for c in cs
    ):
        return "Pending"
    if all("terminated" in c.state and not c.will_restart for c in cs):
        codes = [c.state["terminated"].get("exitCode", 1) for c in cs]
        return "Succeeded" if all(code == 0 for code in codes) else "Failed"
    return "Running"


def _condition(
    kind: str, ok: bool, reason: str, message: str, previous: dict[str, dict[str, Any]], now: str
) -> dict[str, Any]:
    status = "True" if ok else "False"
    prev = previous.get(kind) or {}
    changed = prev.get("status") != status
    out: dict[str, Any] = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": now if changed else prev.get("lastTransitionTime", now),
    }
    out["reason"] = None if ok else (reason or None)
    out["message"] = None if ok else (message or None)
    return out


def conditions(
    view: PodView, previous: dict[str, dict[str, Any]], now: str
) -> list[dict[str, Any]]:
    """The kubelet-owned conditions; `previous` (type -> condition) keeps transition times."""
    if not view.admitted:
        reason, message = view.pending_reason, view.pending_message
        return [
            _condition("PodReadyToStartContainers", False, reason, message, previous, now),
            _condition("Initialized", False, reason, message, previous, now),
            _condition("ContainersReady", False, reason, message, previous, now),
            _condition("Ready", False, reason, message, previous, now),
        ]
    unready = [c.name for c in view.containers if not c.ready]
    containers_ready = not unready
    msg = f"containers with unready status: [{' '.join(unready)}]"
    gates_down = [g for g, ok in view.readiness_gates.items() if not ok]
    if not containers_ready:
        ready_reason, ready_msg = "ContainersNotReady", msg
    elif gates_down:
        ready_reason = "ReadinessGatesNotReady"
        ready_msg = f"corresponding condition of pod readiness gate {gates_down[0]!r} is not True"
    else:
        ready_reason, ready_msg = "", ""
    running = any("running" in c.state for c in view.containers)
    sandbox_ok = view.admitted and (running or not view.deleting)
    return [
        _condition("PodReadyToStartContainers", sandbox_ok, "", "", previous, now),
        _condition("Initialized", True, "", "", previous, now),
        _condition("ContainersReady", containers_ready, "ContainersNotReady", msg, previous, now),
        _condition(
            "Ready", containers_ready and not gates_down, ready_reason, ready_msg, previous, now
        ),
    ]


def status_patch(view: PodView, previous: dict[str, dict[str, Any]], now: str) -> dict[str, Any]:
    """The body of a strategic-merge patch of pods/status."""
    status: dict[str, Any] = {
        "phase": phase(view),
        "conditions": conditions(view, previous, now),
        "containerStatuses": [c.status() for c in view.containers],
    }
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    if view.host_ip:
        status["hostIP"] = view.host_ip
        status["hostIPs"] = [{"ip": view.host_ip}]
    if view.start_time:
        status["startTime"] = view.start_time
    return {"status": status}


def _same(desired: Any, current: Any) -> bool:
    """Whether `current` (from the apiserver) already says what `desired` (our patch) says:
    None in `desired` means absent; keys `desired` doesn't name are someone else's."""
    if isinstance(desired, dict):
        current = current if isinstance(current, dict) else {}
        return all(_same(v, current.get(k)) for k, v in desired.items())
    if desired in (None, ""):  # the apiserver omits empty values
        return current in (None, {}, "")
    return bool(desired == current)


def differs(patch: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether the pod's status on the apiserver (`current`) needs `patch`.

    Compared with the server, not with what the runner sent last: another writer (the node
    lifecycle controller marks pods NotReady when their node's lease lapses) must be corrected.
    """
    desired = patch["status"]
    for key in ("phase", "podIP", "hostIP", "startTime"):
        if key in desired and desired[key] != current.get(key):
            return True
    have = {c.get("type"): c for c in current.get("conditions") or []}
    for cond in desired["conditions"]:
        mine = {k: v for k, v in cond.items() if k not in ("lastTransitionTime", "lastProbeTime")}
        if not _same(mine, have.get(cond["type"])):
            return True
    statuses = {c.get("name"): c for c in current.get("containerStatuses") or []}
    return not all(_same(c, statuses.get(c["name"])) for c in desired["containerStatuses"])
