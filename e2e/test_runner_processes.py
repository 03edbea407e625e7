"""The runner's process chain: nothing a runtime pod started outlives a SIGKILLed runner.

tritonserver and its python stubs run in sessions of their own (the runtime starts them so),
which PR_SET_PDEATHSIG alone would not reach. The runner runs each container as PID 1 of its own
PID namespace (runner/pidns.py); killing the runner kills the launcher (PDEATHSIG), which kills
PID 1, and the kernel then kills the whole namespace. Here a stand-in runner process starts a real
runtime serving the minimal example, and is SIGKILLed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from e2e import dataplane

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
POD_IP = "127.77.0.5"  # no EndpointSlice here: a loopback address will do

RUNNER = textwrap.dedent(
    """
    import sys, threading, time
    from pathlib import Path
    from e2e import dataplane
    from e2e.runner import spec, volumes
    from e2e.runner.container import Backoff, Container

    work, rendered, ip = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    cm, vol = dataplane.directory_configmap("r", rendered)
    template = dataplane.runtime_deployment("m", vol)["spec"]["template"]["spec"]
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": template}

    class Source:
        def configmap(self, ns, name): return cm
        def secret(self, ns, name): return None
        def token(self, *args): return ""

    dirs = volumes.materialise(
        pod, work / "volumes", Source(), pod_ip=ip, host_ip=ip, allocatable={}
    )
    c = template["containers"][0]
    plan = spec.plan(pod, c, spec.PodContext(ip, ip, dirs), work / "c", lambda k, n: None)
    container = Container(c, "Always", work / "c", work / "logs", Backoff(), 15, threading.Event())
    container.start(plan, time.monotonic())
    while not container.view.ready:
        container.step(time.monotonic(), ip, lambda: plan, lambda e: ("", str(e)))
        if not container.running:  # e.g. no PID namespace without CAP_SYS_ADMIN
            print("EXITED", container.view.state, container.log.read_text()[-2000:], flush=True)
            sys.exit(1)
        time.sleep(0.2)
    print("READY", container.pid, flush=True)
    time.sleep(600)
    """
)


def test_a_sigkilled_runner_leaves_no_tritonserver_or_stub(tmp_path: Path) -> None:
    rendered = dataplane.render([REPO / "examples" / "minimal"], tmp_path / "rendered")
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(tmp_path / "work"), str(rendered), POD_IP],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert runner.stdout is not None
        line = runner.stdout.readline()  # the script has its own deadline: pytest's timeout
        assert line.startswith("READY"), line
        launcher = psutil.Process(int(line.split()[1]))
        tree = launcher.children(recursive=True)
        names = sorted({p.name() for p in tree})
        assert "tritonserver" in names and "triton_python_backend_stub" in names, names
        assert dataplane.infer(POD_IP, "minimal", {"X": [1.0]})["Y"] == [2.0]
    finally:
        runner.kill()
        runner.wait()
    _, alive = psutil.wait_procs([launcher, *tree], timeout=10)
    assert alive == [], f"outlived the runner: {[(p.pid, p.name()) for p in alive]}"
    # The stub is not a child of tritonserver's session leader forever: double-check by name.
    time.sleep(0.5)
    strays = [
        p.info["name"]
        for p in psutil.process_iter(["name", "cmdline"])
        if str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]
    assert strays == []
