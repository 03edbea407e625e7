"""One container of a runner pod: its process, probes, restarts and stop, kubelet-style.

The process runs under pidns.py (PID 1 of its own PID namespace, in a session of its own, dying
with the runner), its stdout and stderr go to `<logs>/<restart count>.log` (kubelet keeps
/var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log). Restarts follow the kubelet's CrashLoopBackOff:
the first restart is immediate, then `initial` seconds doubling up to `cap`, reset after a
container ran 10 minutes. Exit codes are the container runtime's: 128+N when signal N killed it.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.runner import probes
from e2e.runner.spec import ContainerPlan
from e2e.runner.status import ContainerView, rfc3339

PIDNS = Path(__file__).resolve().parent / "pidns.py"
_PR_SET_PDEATHSIG = 1
# kubelet: the last 80 lines, at most 2048 bytes, for FallbackToLogsOnError; 4096 from the file.
_LOG_TAIL_LINES, _LOG_TAIL_BYTES, _MESSAGE_FILE_BYTES = 80, 2048, 4096
_BACKOFF_RESET_S = 600


def _die_with_runner() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# (type "Normal"|"Warning", reason, message): what the kubelet would post as an Event.
Notify = Callable[[str, str, str], None]


@dataclass(frozen=True)
class Backoff:
    initial: float = 10.0
    cap: float = 300.0


def termination_message(
    spec: dict[str, Any], plan: ContainerPlan | None, log: Path | None, exit_code: int
) -> str:
    if plan is not None and plan.termination_log.is_file():
        text = plan.termination_log.read_bytes()[:_MESSAGE_FILE_BYTES]
        if text.strip():
            return text.decode(errors="replace")
    if spec.get("terminationMessagePolicy") == "FallbackToLogsOnError" and exit_code != 0 and log:
        with contextlib.suppress(OSError):
            lines = log.read_bytes().splitlines()[-_LOG_TAIL_LINES:]
            return b"\n".join(lines)[-_LOG_TAIL_BYTES:].decode(errors="replace")
    return ""


class Container:
    def __init__(
        self,
        spec: dict[str, Any],
        restart_policy: str,
        container_dir: Path,
        log_dir: Path,
        backoff: Backoff,
        grace: float,
        wake: threading.Event,
        notify: Notify | None = None,
    ) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self.restart_policy = restart_policy
        self.dir = container_dir
        self.log_dir = log_dir
        self.backoff = backoff
        self.grace = grace  # terminationGracePeriodSeconds, for liveness kills
        self.wake = wake
        self.notify: Notify = notify or (lambda kind, reason, message: None)
        self.view = ContainerView(self.name, spec.get("image", ""))
        self.proc: subprocess.Popen[bytes] | None = None
        self.plan: ContainerPlan | None = None
        self.log: Path | None = None
        self.started_mono = 0.0
        self.probes: dict[str, probes.Prober] = {}
        self.restart_at: float | None = 0.0  # start as soon as the pod is set up
        self.next_delay = 0.0
        self.kill_at: float | None = None  # SIGTERM sent; SIGKILL then
        self.stopping = False  # stopped for good (pod deleted): no restart
        self.instances = 0
        self.last_terminated: dict[str, Any] | None = None

    # -- process --------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.running and self.proc else None

    def start(self, plan: ContainerPlan, now: float) -> None:
        self.plan = plan
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for host in plan.paths.entries.values():
            # Image directories exist in an image; terminationMessagePath's is a file.
            if host != plan.termination_log:
                host.mkdir(parents=True, exist_ok=True)
        plan.cwd.mkdir(parents=True, exist_ok=True)
        plan.termination_log.unlink(missing_ok=True)
        if self.instances > 0:
            self.view.restart_count += 1
            if self.last_terminated is not None:
                self.view.last_state = {"terminated": self.last_terminated}
        self.instances += 1
        self.log = self.log_dir / f"{self.view.restart_count}.log"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(PIDNS), *plan.argv],
                env=plan.env,
                cwd=plan.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_runner,
            )
        self.started_mono = now
        self.restart_at = None
        self.kill_at = None
        self.view.state = {"running": {"startedAt": rfc3339(time.time())}}
        self.view.container_id = f"e2e-runner://{self.proc.pid}"
        self.view.ready = False
        self.probes = {
            kind: probes.Prober(kind, self.spec[f"{kind}Probe"], now)
            for kind in ("startup", "liveness", "readiness")
            if self.spec.get(f"{kind}Probe")
        }
        self.view.started = "startup" not in self.probes
        self.notify("Normal", "Started", f"Started container {self.name}")
        proc = self.proc

        def wait_then_wake() -> None:
            proc.wait()
            self.wake.set()

        threading.Thread(target=wait_then_wake, daemon=True).start()

    def config_error(self, reason: str, message: str, now: float, retry_s: float = 10) -> None:
        """The container could not be created; the kubelet retries on its next sync."""
        self.view.state = {"waiting": {"reason": reason, "message": message}}
        self.restart_at = now + retry_s

    def _exited(self, code: int, now: float) -> None:
        exit_code = code if code >= 0 else 128 - code
        message = termination_message(self.spec, self.plan, self.log, exit_code)
        terminated: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": self.view.state.get("running", {}).get("startedAt"),
            "finishedAt": rfc3339(time.time()),
            "containerID": self.view.container_id,
        }
        if message:
            terminated["message"] = message
        self.view.state = {"terminated": terminated}
        self.last_terminated = terminated
        self.view.ready = False
        self.view.started = False
        self.kill_at = None
        restart = self.restart_policy == "Always" or (
            self.restart_policy == "OnFailure" and exit_code != 0
        )
        if self.stopping or not restart:
            self.view.will_restart = False
            self.restart_at = None
            return
        if now - self.started_mono >= _BACKOFF_RESET_S:
            self.next_delay = 0.0
        delay = self.next_delay
        self.next_delay = min(self.backoff.cap, max(self.backoff.initial, delay * 2))
        self.restart_at = now + delay
        if delay > 0:
            self.notify("Warning", "BackOff", f"Back-off restarting failed container {self.name}")
            self.view.last_state = {"terminated": terminated}
            pod = self.log_dir.parent.name
            self.view.state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {delay:g}s restarting failed container={self.name} "
                    f"pod={pod}",
                }
            }

    def begin_stop(
        self, grace: float, now: float, pod_ip: str, *, restart: bool = False, pre_stop: bool = True
    ) -> None:
        """preStop hook (if any), then SIGTERM; SIGKILL once `grace` has passed (in step)."""
        self.stopping = not restart
        self.restart_at = None
        if not self.running:
            return
        self.kill_at = now + grace
        hook = self.spec.get("lifecycle", {}).get("preStop") if pre_stop else None
        proc = self.proc

        def stop() -> None:
            if hook:
                self._run_hook(hook, pod_ip, grace)
            with contextlib.suppress(ProcessLookupError):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)

        threading.Thread(target=stop, daemon=True).start()

    def _run_hook(self, hook: dict[str, Any], pod_ip: str, grace: float) -> None:
        if "sleep" in hook:
            time.sleep(min(float(hook["sleep"].get("seconds", 0)), grace))
        elif self.plan is not None:
            probes.check({**hook, "timeoutSeconds": grace}, self.spec, pod_ip, self.plan)

    def kill_now(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()  # the launcher; its PID namespace dies with it

    # -- one step of the pod worker's loop ------------------------------------------------------

    def collect(self, now: float) -> None:
        """Record the exit of a process that ended since the last look."""
        if self.proc is not None and self.view.state.get("running"):
            code = self.proc.poll()
            if code is not None:
                self._exited(code, now)

    def step(
        self,
        now: float,
        pod_ip: str,
        make_plan: Callable[[], ContainerPlan],
        on_config_error: Callable[[Exception], tuple[str, str]],
    ) -> None:
        self.collect(now)
        if self.running:
            if self.kill_at is not None and now >= self.kill_at:
                self.kill_now()
            elif self.kill_at is None:
                self._probe(now, pod_ip)
            return
        if self.restart_at is not None and now >= self.restart_at and not self.stopping:
            try:
                plan = make_plan()
            except Exception as e:  # spec.ConfigError, images.UnsupportedCommand
                reason, message = on_config_error(e)
                self.config_error(reason, message, now)
                return
            self.start(plan, now)

    def _probe(self, now: float, pod_ip: str) -> None:
        assert self.plan is not None
        order = ["startup"] if not self.view.started else ["liveness", "readiness"]
        for kind in order:
            prober = self.probes.get(kind)
            if prober is None or now < prober.next_at:
                continue
            ok, message = probes.check(prober.spec, self.spec, pod_ip, self.plan)
            verdict = prober.record(ok, message, time.monotonic())
            if not ok and (prober.failures == 1 or verdict):  # a streak starts, or it counts
                self.notify("Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {message}")
            if verdict == "started":
                self.view.started = True
            elif verdict == "ready":
                self.view.ready = True
            elif verdict == "unready":
                self.view.ready = False
            elif verdict == "failed":
                # The kubelet kills the container with its grace period and restarts it.
                self.notify(
                    "Normal",
                    "Killing",
                    f"Container {self.name} failed {kind} probe, will be restarted",
                )
                self.begin_stop(self.grace, now, pod_ip, restart=True)
                return
        if "readiness" not in self.probes and self.view.started:
            self.view.ready = True

    def next_due(self) -> float | None:
        times = [p.next_at for p in self.probes.values()] if self.running else []
        times += [t for t in (self.restart_at, self.kill_at) if t is not None]
        return min(times) if times else None
