"""Serve rendered repositories with a real tritonserver (the nvidia-pytriton binary)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from inferline.api.common import Device
from inferline.compile import Overrides, check_paths, render_manifest
from inferline.runtime.repository import write_repository
from inferline.runtime.tritonserver import Ports, ServerOptions, TritonProcess, free_port

Serve = Callable[[list[Path]], TritonProcess]


def stray_tritonservers(marker: Path | str) -> list[psutil.Process]:
    """tritonserver and python-stub processes still running over a repository under `marker`.

    Scoped by path so servers of other tests or other work on the machine do not count.
    """
    out = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if p.info["name"] in ("tritonserver", "triton_python_backend_stub") and any(
                str(marker) in arg for arg in p.info["cmdline"] or []
            ):
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """Render the given manifests for the local CPU runtime and serve them until module end."""
    started: list[TritonProcess] = []
    base = tmp_path_factory.getbasetemp()

    def _serve(files: list[Path]) -> TritonProcess:
        checked = check_paths(files, Overrides(Device.CPU, "inferline-cpu"), require_refs=True)
        assert checked.ok, checked.errors
        work = tmp_path_factory.mktemp("served")
        write_repository(render_manifest(checked.pipelines), work / "repo")
        ports = Ports(free_port(), free_port(), free_port())
        server = TritonProcess(
            ServerOptions(work / "repo", ports, exit_timeout_s=5), log=work / "tritonserver.log"
        )
        started.append(server)
        server.start()
        server.wait_ready(timeout_s=180)
        return server

    yield _serve
    for s in started:
        s.stop()
    assert stray_tritonservers(base) == [], "tritonserver or a python stub outlived its test"
