"""The Inferline operator as a process against the e2e cluster (`inferline operator`), the way
it runs in a pod: started, probed, killed (-9 too) and restarted by tests."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from e2e.cluster import Cluster
from e2e.procs import Process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """One `inferline operator` process; `restart()` starts a new one with the same ports."""

    def __init__(
        self,
        cluster: Cluster,
        *args: str,
        kubeconfig: Path | None = None,
        workers: int = 4,
    ) -> None:
        self.cluster = cluster
        self.args = list(args)
        self.kubeconfig = kubeconfig or cluster.kubeconfig
        self.workers = workers
        self.metrics_port = _free_port()
        self.health_port = _free_port()
        self.process: Process | None = None
        self.starts = 0
        self.crd_uids: dict[str, str] | None = None  # the CRDs it started watching

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def argv(self) -> list[str]:
        return [
            str(Path(sys.executable).with_name("inferline")),
            "operator",
            f"--kubeconfig={self.kubeconfig}",
            f"--metrics-port={self.metrics_port}",
            f"--health-port={self.health_port}",
            "--bind-address=127.0.0.1",
            f"--workers={self.workers}",
            *self.args,
        ]

    def start(self, timeout: float = 60) -> None:
        self.starts += 1
        env = self.cluster.env() | {"PYTHONUNBUFFERED": "1"}
        self.process = self.cluster.run.spawn(
            f"inferline-operator-{self.starts}", self.argv(), env=env, owned=True
        )
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if (rc := self.process.exited()) is not None:
                raise AssertionError(f"operator exited with {rc}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"operator not healthy in {timeout}s:\n{self.log_tail()}")
            time.sleep(0.2)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
            return str(r.read().decode())

    def kill(self, sig: int = signal.SIGKILL) -> int:
        """Signal the operator and wait for it to exit; returns its exit status."""
        assert self.process is not None
        os.killpg(self.process.popen.pid, sig)
        return self.process.popen.wait(timeout=60)

    def stop(self) -> int | None:
        if self.process is None or self.process.exited() is not None:
            return None if self.process is None else self.process.exited()
        return self.kill(signal.SIGTERM)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 80) -> str:
        return self.process.log_tail(lines) if self.process else "(not started)"

    def log(self) -> str:
        assert self.process is not None
        return self.process.log.read_text(errors="replace")
