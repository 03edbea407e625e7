"""Start, track and stop the control-plane processes so none outlives its cluster.

Every component runs in its own session (so its process group id is its pid and a signal reaches
any children), logs to a file, and is recorded in a pidfile `<run>/pids/<nn>-<name>` holding
"<pid> <start time>". The start time (from /proc) guards against killing an unrelated process
that reused a pid after a reboot or a long pause. A run directory also records its owner (the
pytest process); `sweep` stops the components of runs whose owner is gone, which cleans up after
a run that was SIGKILLed or lost power before its teardown could.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _stat(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may contain spaces and parentheses; the rest follows the last ')'.
    return stat.rsplit(")", 1)[1].split()


def start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), or None if it is gone."""
    fields = _stat(pid)
    return fields[19] if fields else None


def _alive(pid: int, started: str) -> bool:
    fields = _stat(pid)
    if fields is None or fields[19] != started:
        return False
    if fields[0] == "Z":
        # A zombie has exited; reap it if it is our child (else init will).
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def _die_with_parent() -> None:
    # Owned clusters: the kernel SIGKILLs the component if the test process dies, even by SIGKILL.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def exited(self) -> int | None:
        return self.popen.poll()

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class RunDir:
    """A directory holding one cluster's state, logs and pidfiles."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pids = path / "pids"
        self.logs = path / "logs"

    def create(self, *, owned: bool) -> None:
        self.pids.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        if owned:
            me = os.getpid()
            (self.path / "owner").write_text(f"{me} {start_time(me)}\n")

    def owner_alive(self) -> bool:
        try:
            pid, started = (self.path / "owner").read_text().split()
        except (OSError, ValueError):
            return False
        return _alive(int(pid), started)

    def spawn(
        self, name: str, argv: list[str], *, env: dict[str, str] | None = None, owned: bool
    ) -> Process:
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.path,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent if owned else None,
            )
        # Numbered so that stop_all can go in reverse start order (clients before the apiserver,
        # the apiserver before etcd).
        seq = len(list(self.pids.iterdir()))
        (self.pids / f"{seq:02d}-{name}").write_text(f"{popen.pid} {start_time(popen.pid)}\n")
        return Process(name, popen, log)

    def recorded(self) -> list[tuple[str, int, str]]:
        """(pidfile name, pid, start time) of every pidfile, the last started first."""
        out = []
        for f in sorted(self.pids.glob("*"), reverse=True):
            with contextlib.suppress(OSError, ValueError):
                pid, started = f.read_text().split()
                out.append((f.name, int(pid), started))
        return out

    def stop_all(self, timeout: float = 10.0) -> list[str]:
        """Stop every recorded process group; return the names that needed SIGKILL."""
        killed = []
        for name, pid, started in self.recorded():
            if stop_group(pid, started, timeout):
                killed.append(name)
            (self.pids / name).unlink(missing_ok=True)
        return killed


def stop_group(pid: int, started: str, timeout: float) -> bool:
    """SIGTERM the process group led by `pid`, SIGKILL it after `timeout`. True if killed."""
    if not _alive(pid, started):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid, started):
            return False
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    while _alive(pid, started):
        time.sleep(0.05)
    return True


def sweep(
    root: Path, keep_failed: int = 3, cleanup: Callable[[Path], object] | None = None
) -> list[str]:
    """Stop the components of abandoned runs under `root` and delete their directories.

    A run is abandoned when its owner process is gone. Runs marked KEEP (a failed session keeps
    its logs) are stopped but only the newest `keep_failed` of them are kept. `cleanup(run)` then
    undoes what else the run set up (its pod route).
    """
    if not root.is_dir():
        return []
    report = []
    kept: list[Path] = []
    for path in sorted(root.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        run = RunDir(path)
        if not path.is_dir() or run.owner_alive():
            continue
        for name, pid, started in run.recorded():
            if _alive(pid, started):
                report.append(f"{path.name}/{name} (pid {pid})")
        run.stop_all(timeout=5)
        if cleanup is not None:
            cleanup(path)
        if (path / "KEEP").exists() and len(kept) < keep_failed:
            kept.append(path)
            continue
        shutil.rmtree(path, ignore_errors=True)
    return report


def leftovers(directory: Path) -> list[str]:
    """Live processes (other than this one) whose command line names `directory`: what a stopped
    cluster must not leave behind (its components, and the tritonservers and python stubs of its
    runtime pods, whose repositories live there)."""
    needle = str(directory).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = _stat(int(entry.name))
        if needle in cmdline and fields is not None and fields[0] != "Z":
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {command[:300]}")
    return found
