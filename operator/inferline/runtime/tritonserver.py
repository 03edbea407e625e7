"""Find, prepare and run tritonserver.

Two installs are supported: NVIDIA's Triton image (/opt/tritonserver, all native backends) and
the tritonserver inside the nvidia-pytriton wheel (python backend and ensembles only). For the
wheel, the runtime lays out a backend directory of its own in a cache folder — the python
backend plus the stub built for the running Python — instead of writing into site-packages.

The python backend stub imports numpy from the `python3` first on PATH; the runtime puts its own
interpreter's directory first, and checks that numpy there is < 2 (the 2.51 stub cannot
deserialize BYTES tensors with numpy 2).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

NGC_ROOT = Path("/opt/tritonserver")
TRITONSERVER_ENV = "INFERLINE_TRITONSERVER"


class ServerError(UserError):
    """tritonserver could not be started, or stopped serving."""


@dataclass(frozen=True)
class TritonInstall:
    binary: Path
    backends: Path  # the install's own backend directory
    stubs: Path | None  # per-Python-version python backend stubs (pytriton wheel)
    lib_dirs: tuple[Path, ...] = ()
    version: str = ""


@dataclass(frozen=True)
class Ports:
    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002

    def all(self) -> dict[str, int]:
        return {"http": self.http, "grpc": self.grpc, "metrics": self.metrics}


@dataclass
class ServerOptions:
    repository: Path
    ports: Ports = field(default_factory=Ports)
    address: str = "127.0.0.1"  # loopback locally; 0.0.0.0 in a pod
    exit_timeout_s: int = 30
    log_verbose: int = 0
    extra_args: list[str] = field(default_factory=list)


def find_tritonserver() -> TritonInstall:
    explicit = os.environ.get(TRITONSERVER_ENV)
    if explicit:
        binary = Path(explicit)
        if not binary.is_file():
            raise ServerError(f"{TRITONSERVER_ENV}={explicit}: no such file")
        root = binary.parent.parent
        return TritonInstall(binary, root / "backends", None, (root / "lib",))
    if (NGC_ROOT / "bin" / "tritonserver").is_file():
        return TritonInstall(
            NGC_ROOT / "bin" / "tritonserver", NGC_ROOT / "backends", None, (NGC_ROOT / "lib",)
        )
    try:
        import pytriton
    except ImportError as e:
        raise ServerError(
            "no tritonserver found: install inferline[runtime] (it brings "
            "nvidia-pytriton), run in the Triton image, or set "
            f"{TRITONSERVER_ENV}"
        ) from e
    root = Path(pytriton.__file__).parent / "tritonserver"
    libs = root.parent.parent / "nvidia_pytriton.libs"
    from importlib.metadata import version

    return TritonInstall(
        root / "bin" / "tritonserver",
        root / "backends",
        root / "python_backend_stubs",
        (libs,),
        version("nvidia-pytriton"),
    )


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inferline"


def prepare_backend_dir(install: TritonInstall, cache: Path | None = None) -> Path:
    """A backend directory holding a python stub for this Python (copied once, then reused)."""
    if install.stubs is None:
        return install.backends
    pyver = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = install.stubs / pyver / "triton_python_backend_stub"
    if not stub.is_file():
        raise ServerError(
            f"the tritonserver in nvidia-pytriton {install.version} has no python "
            f"backend stub for Python {pyver}"
        )
    target = (cache or default_cache_dir()) / f"backends-pytriton-{install.version}-py{pyver}"
    marker = target / ".complete"
    if not marker.exists():
        staging = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(install.backends, staging, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(stub, staging / "python" / "triton_python_backend_stub")
        (staging / ".complete").write_text(str(stub) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def server_env(install: TritonInstall) -> dict[str, str]:
    env = dict(os.environ)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    lib_path = [str(p) for p in install.lib_dirs] + [libdir, env.get("LD_LIBRARY_PATH", "")]
    env["LD_LIBRARY_PATH"] = ":".join(p for p in lib_path if p)
    # The python stub runs the `python3` first on PATH: make it ours (numpy<2, our packages).
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


def check_stub_numpy(env: dict[str, str]) -> None:
    """Fail early (not at the first request) if the stub would import numpy >= 2.

    The stub runs its interpreter isolated (-I: PYTHONPATH and user site ignored), so probe
    the same way: numpy must live in that interpreter's own environment.
    """
    probe = subprocess.run(
        ["python3", "-I", "-c", "import numpy; print(numpy.__version__)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        raise ServerError(
            f"the python backend's interpreter cannot import numpy: "
            f"{probe.stderr.strip().splitlines()[-1:]}"
        )
    major = int(probe.stdout.strip().split(".")[0])
    if major >= 2:
        raise ServerError(
            f"numpy {probe.stdout.strip()} found for the python backend; the "
            "Triton 2.51 python stub needs numpy<2 (install inferline[runtime])"
        )


def server_args(install: TritonInstall, backends: Path, opts: ServerOptions) -> list[str]:
    p = opts.ports
    return [
        str(install.binary),
        f"--model-repository={opts.repository}",
        f"--backend-directory={backends}",
        f"--http-address={opts.address}",
        f"--http-port={p.http}",
        f"--grpc-address={opts.address}",
        f"--grpc-port={p.grpc}",
        f"--metrics-address={opts.address}",
        f"--metrics-port={p.metrics}",
        "--allow-metrics=true",
        "--metrics-config=summary_latencies=true",
        # Explicit control: everything loads at start, and the runtime (or, later, the
        # operator) can load and unload models one by one without a restart.
        "--model-control-mode=explicit",
        "--load-model=*",
        "--strict-readiness=true",
        "--exit-on-error=true",
        f"--exit-timeout-secs={opts.exit_timeout_s}",
        f"--log-verbose={opts.log_verbose}",
        *opts.extra_args,
    ]


def check_ports_free(ports: Ports, address: str = "127.0.0.1") -> None:
    for name, port in ports.all().items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((address if address != "0.0.0.0" else "", port))
            except OSError:
                raise ServerError(
                    f"port {port} ({name}) is already in use; stop what is "
                    f"listening there or choose another with --{name}-port"
                ) from None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TritonProcess:
    """A running tritonserver in its own process group (so stopping it stops its stubs)."""

    def __init__(
        self, opts: ServerOptions, install: TritonInstall | None = None, log: Path | None = None
    ) -> None:
        self.opts = opts
        self.install = install or find_tritonserver()
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.opts.address in ("0.0.0.0", "") else self.opts.address
        return f"{host}:{self.opts.ports.http}"

    def start(self) -> None:
        check_ports_free(self.opts.ports, self.opts.address)
        backends = prepare_backend_dir(self.install)
        env = server_env(self.install)
        check_stub_numpy(env)
        args = server_args(self.install, backends, self.opts)
        stdout = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        self.proc = subprocess.Popen(
            args, env=env, stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout_s: float = 300) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        url = f"http://{self.url}/v2/health/ready"
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise ServerError(
                    f"tritonserver exited with status {code} before it was ready{self._log_hint()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        self.stop()
        raise ServerError(f"tritonserver was not ready after {timeout_s:.0f}s{self._log_hint()}")

    def _log_hint(self) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        failures = failed_models(self.log_path.read_text(errors="replace"))
        if failures:
            return ":\n  " + "\n  ".join(
                f"model {m!r} failed to load: {why}" for m, why in failures.items()
            )
        lines = self.log_path.read_text(errors="replace").splitlines()
        errors = [ln for ln in lines if ln.startswith("E") or "error" in ln.lower()]
        tail = (errors or lines)[-5:]
        return ":\n  " + "\n  ".join(tail) if tail else ""

    def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM the server (it unloads its models and stubs), wait, then SIGKILL the group.

        Returns tritonserver's exit status.
        """
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s if timeout_s is not None else self.opts.exit_timeout_s + 5)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Stubs live in the same group; make sure none outlive the server.
        _signal_group(self.proc.pid, signal.SIGKILL)
        return self.proc.returncode

    def __enter__(self) -> TritonProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def failed_models(log: str) -> dict[str, str]:
    """Model -> reason, from the model status table tritonserver prints when loading fails."""
    out = {}
    for line in log.splitlines():
        m = re.match(r"^\|\s*(\S+)\s*\|\s*\d+\s*\|\s*UNAVAILABLE: (.*)\|\s*$", line)
        if m:
            reason = re.split(r"\\n|Stack trace", m.group(2))[0].strip()
            out[m.group(1)] = reason[:400]
    return out


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
