"""pytest fixtures for the e2e control plane (imported by conftest.py; or `-p e2e.plugin`).

One cluster per test session. It is torn down on normal exit, on Ctrl-C/SIGTERM/SIGHUP (turned
into KeyboardInterrupt so pytest unwinds its fixtures), by atexit, and by the kernel if this
process is killed outright (PR_SET_PDEATHSIG); the next session also sweeps what an aborted one
left. A session with failures keeps its run directory (logs, kubeconfig) and says where.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from e2e import build, podnet, procs
from e2e.cluster import Cluster, ClusterError
from e2e.operator import OperatorProcess

if TYPE_CHECKING:
    import subprocess

    from kubernetes.client import ApiClient

CRD_DIR = Path(__file__).resolve().parents[1] / "crds"
RUNS_ROOT = Path(tempfile.gettempdir()) / f"inferline-e2e-{os.getuid()}"
_active: list[Cluster] = []
_build_error: list[build.BuildError] = []


def _say(config: pytest.Config, message: str) -> None:
    # Straight to the terminal: output of a fixture is captured and shown only on failure.
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.write_line(f"\ne2e: {message}")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build missing binaries before the first test, outside any test's timeout."""
    if not any(item.get_closest_marker("e2e") for item in session.items):
        return
    try:
        if not build.is_built(build.bin_dir()):
            _say(session.config, "building the control-plane binaries (python -m e2e.build)")
            build.ensure_built()
    except build.BuildError as e:
        _build_error.append(e)  # reported by e2e_bin_dir, in every e2e test


@pytest.fixture(scope="session")
def e2e_bin_dir() -> Path:
    """The built etcd/Kubernetes/kwok/helm binaries; builds them if missing (never skips)."""
    error = _build_error[0] if _build_error else None
    if error is None:
        try:
            return build.ensure_built()
        except build.BuildError as e:
            error = e
    pytest.fail(f"cannot build the e2e binaries (python -m e2e.build):\n{error}", pytrace=False)


@pytest.fixture(scope="session")
def cluster(e2e_bin_dir: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A running control plane with the nodes of nodes.yaml Ready."""
    strays = procs.sweep(RUNS_ROOT, cleanup=podnet.release_recorded)
    if strays:
        _say(request.config, f"stopped processes left by an aborted run: {', '.join(strays)}")
    RUNS_ROOT.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="run-", dir=RUNS_ROOT))
    c = Cluster(directory, e2e_bin_dir, owned=True)
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    atexit.register(c.stop)
    _active.append(c)
    try:
        try:
            c.start()
        except ClusterError as e:
            (directory / "KEEP").touch()
            pytest.fail(f"e2e cluster failed to start (logs in {directory}):\n{e}", pytrace=False)
        yield c
    finally:
        _active.remove(c)
        c.stop()
        atexit.unregister(c.stop)
        # Components, runtime pods' tritonservers and python stubs: all named the run dir.
        left = procs.leftovers(directory)
        for s, handler in previous.items():
            signal.signal(s, handler)
        if request.session.testsfailed or (directory / "KEEP").exists():
            (directory / "KEEP").touch()
            _say(request.config, f"kept logs and kubeconfig of the failed session in {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
        if left and sys.exc_info()[0] is None:  # don't hide why the session ended
            pytest.fail("processes outlived the e2e cluster:\n" + "\n".join(left), pytrace=False)


@pytest.fixture(scope="session")
def kubeconfig(cluster: Cluster) -> Path:
    return cluster.kubeconfig


@pytest.fixture(scope="session")
def kubectl(cluster: Cluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`kubectl(*args, input=None, timeout=120)` -> CompletedProcess (text); never raises."""
    return cluster.kubectl


@pytest.fixture(scope="session")
def k8s_client(cluster: Cluster) -> Iterator[ApiClient]:
    client = cluster.api_client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> list[str]:
    """Apply crds/*.yaml and wait until every CRD is Established; return their names."""
    files = sorted(CRD_DIR.glob("*.yaml"))
    assert files, f"no CRDs in {CRD_DIR}"
    names = [d["metadata"]["name"] for f in files for d in yaml.safe_load_all(f.read_text()) if d]
    for f in files:
        proc = cluster.kubectl("apply", "--server-side", "-f", str(f))
        assert proc.returncode == 0, f"{f.name}: {proc.stderr}"
    proc = cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names)
    )
    assert proc.returncode == 0, proc.stderr
    return names


@pytest.fixture(scope="session")
def operator(cluster: Cluster, crds: list[str]) -> Iterator[OperatorProcess]:
    """`inferline operator` running against the cluster (cluster-wide, admin credentials)."""
    op = OperatorProcess(cluster)
    op.start()
    yield op
    op.stop()


def _crd_uids(cluster: Cluster) -> dict[str, str]:
    proc = cluster.kubectl("get", "crd", "-l", "app.kubernetes.io/part-of=inferline", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    return {c["metadata"]["name"]: c["metadata"]["uid"] for c in json.loads(proc.stdout)["items"]}


@pytest.fixture(autouse=True)
def _operator_watches_current_crds(request: pytest.FixtureRequest) -> None:
    """Restart the session's operator when the CRDs were deleted and re-created since it
    started (the chart's uninstall test does that): kopf notices a re-created CRD only when
    the apiserver already serves it at the CRD's first event, a race it can lose, and then
    never watches that kind again. A real uninstall/reinstall restarts the operator anyway."""
    if "operator" not in request.fixturenames:
        return
    op: OperatorProcess = request.getfixturevalue("operator")
    uids = _crd_uids(op.cluster)
    if op.crd_uids != uids:
        if op.crd_uids is not None:
            op.restart()
        op.crd_uids = uids


@pytest.fixture
def kwok_backend(cluster: Cluster, crds: list[str]) -> str:
    """The kwok-run ClusterBackend the control-plane tests use (e2e.pipelines.KWOK_BACKEND).

    Applied per test: another module may have removed and restored the CRDs (the chart's
    uninstall test does), which deletes every ClusterBackend with them.
    """
    from e2e.pipelines import KWOK_BACKEND, kwok_backend

    proc = cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(kwok_backend()))
    assert proc.returncode == 0, proc.stderr
    return KWOK_BACKEND


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards.

    Teardown makes sure its pods are gone, so that they never hold GPUs the next test needs,
    but doesn't wait for the namespace: the namespace controller takes ~5 s per namespace.
    """
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    proc = cluster.kubectl("create", "namespace", name)
    assert proc.returncode == 0, proc.stderr
    # Pods are refused until the controller manager has made the namespace's ServiceAccount.
    proc = cluster.kubectl(
        "wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s"
    )
    assert proc.returncode == 0, proc.stderr
    yield name
    proc = cluster.kubectl("delete", "namespace", name, "--wait=false")
    assert proc.returncode == 0, proc.stderr
    # A Terminating namespace takes no new pods, so controllers can't replace these.
    proc = cluster.kubectl("delete", "pods", "--all", "-n", name, "--timeout=60s")
    assert proc.returncode == 0, proc.stderr


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Attach the tail of every component's log to a failed test that used the cluster."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and _active and "cluster" in getattr(item, "fixturenames", ()):
        c = _active[-1]
        report.sections.append(("e2e run directory", str(c.dir)))
        for name, tail in c.log_tails().items():
            report.sections.append((f"{name} log (last lines)", tail))
