"""Capture the Triton metrics text the autoscaler's parsing tests read (run by hand).

    .venv/bin/python tests/autoscale/data/capture.py

Serves tests/data/pipelines/slow on the tritonserver of nvidia-pytriton (2.51) with the runtime's
flags (`--metrics-config summary_latencies=true`) and writes what its /metrics said:
idle.metrics (started, no request yet), under-load.metrics (24 clients back to back, requests
queued in the step) and after-load.metrics (the same server once they stopped).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import tritonclient.http as thttp

from inferline.api.common import Device
from inferline.api.load import load_paths
from inferline.api.overrides import override_backend, override_device
from inferline.api.validate import validate_documents
from inferline.render.triton import render_repository
from inferline.runtime.repository import write_repository
from inferline.runtime.tritonserver import Ports, ServerOptions, TritonProcess, free_port

HERE = Path(__file__).resolve().parent
SLOW = HERE.parents[1] / "data" / "pipelines" / "slow"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="inferline-capture-"))
    loaded = load_paths([SLOW])
    docs = override_backend(override_device(loaded.documents, Device.CPU), "inferline-cpu")
    _, resolved = validate_documents(docs)
    write_repository([render_repository(rp) for rp in resolved], work / "repo")
    ports = Ports(free_port(), free_port(), free_port())
    url = f"http://127.0.0.1:{ports.metrics}/metrics"

    def save(name: str) -> None:
        with urllib.request.urlopen(url) as r:
            (HERE / name).write_bytes(r.read())

    try:
        with TritonProcess(ServerOptions(work / "repo", ports), log=work / "log"):
            save("idle.metrics")
            stop = time.monotonic() + 4

            def client() -> None:
                c = thttp.InferenceServerClient(f"127.0.0.1:{ports.http}")
                x = thttp.InferInput("X", [1, 4], "FP32")
                x.set_data_from_numpy(np.ones((1, 4), np.float32))
                while time.monotonic() < stop:
                    c.infer("slow", [x])

            threads = [threading.Thread(target=client) for _ in range(24)]
            for t in threads:
                t.start()
            time.sleep(2.5)
            save("under-load.metrics")
            for t in threads:
                t.join()
            save("after-load.metrics")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
