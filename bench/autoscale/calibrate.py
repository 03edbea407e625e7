"""Measure one replica of a pipeline on a real tritonserver, for the autoscaling simulator.

    .venv/bin/python bench/autoscale/calibrate.py [--out bench/results/autoscale_calibration.json]

Serves tests/data/pipelines/slow (one python step that sleeps a fixed time per batch of up to 8:
a stand-in for a GPU model with a fixed cost per batch) through the user-facing entry points
(`inferline render`, `python -m inferline.runtime`), then:

1. startup: seconds from starting the runtime to /v2/health/ready;
2. the batch cost: closed-loop load at concurrency 1 (batches of 1) and 32 (full batches);
   Triton's counters give the mean batch size and the time per batch, fitted as
   batch_ms = fixed_ms + per_item_ms * batch; what a request spends outside the step (ensemble,
   protocol) is the request time less the step's queue and compute times;
3. open-loop Poisson load at several rates (gRPC async requests, one sender thread): achieved
   rate and client-side p50/p95/p99, which the simulator must reproduce for one replica.
Writes one JSON (with the date and the machine) that bench/autoscale/sim.py reads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp

REPO = Path(__file__).resolve().parents[2]
PIPELINE = REPO / "tests" / "data" / "pipelines" / "slow"
ENSEMBLE, STEP = "slow", "slow-work"
sys.path.insert(0, str(REPO / "operator"))

from inferline.autoscale.triton_metrics import models_from_text  # noqa: E402
from inferline.runtime.tritonserver import free_port  # noqa: E402


def exe(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


class Server:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.http, self.grpc, self.metrics = free_port(), free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        rendered = self.work / "rendered"
        subprocess.run(
            [exe("inferline"), "render", str(PIPELINE), "-o", str(rendered), "--device", "cpu"],
            check=True,
            capture_output=True,
        )
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "inferline.runtime",
                "--rendered",
                str(rendered),
                "--repository",
                str(self.work / "repo"),
                "--address",
                "127.0.0.1",
                f"--http-port={self.http}",
                f"--grpc-port={self.grpc}",
                f"--metrics-port={self.metrics}",
                "--server-log",
                str(self.work / "tritonserver.log"),
            ],
            start_new_session=True,
        )
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"the runtime exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.http}/v2/health/ready", timeout=1
                ) as r:
                    if r.status == 200:
                        return time.monotonic() - t0
            except OSError:
                pass
            time.sleep(0.05)

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics}/metrics") as r:
            return str(r.read().decode())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _input(protocol: object) -> object:
    inp = protocol.InferInput("X", [1, 4], "FP32")  # type: ignore[attr-defined]
    inp.set_data_from_numpy(np.ones((1, 4), np.float32))
    return inp


def closed_loop(server: Server, concurrency: int, seconds: float) -> dict[str, float]:
    """`concurrency` clients back to back; Triton's counters over the run."""
    before = models_from_text(server.metrics_text())
    stop = time.monotonic() + seconds

    def client() -> None:
        c = thttp.InferenceServerClient(f"127.0.0.1:{server.http}")
        inp = _input(thttp)
        while time.monotonic() < stop:
            c.infer(ENSEMBLE, [inp])

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    after = models_from_text(server.metrics_text())
    e0, e1, s0, s1 = before[ENSEMBLE], after[ENSEMBLE], before[STEP], after[STEP]
    requests = e1.request_success - e0.request_success
    inferences = s1.inference_count - s0.inference_count
    execs = s1.exec_count - s0.exec_count
    return {
        "concurrency": concurrency,
        "inferences_per_s": inferences / wall,
        "mean_batch": inferences / execs,
        # compute time is counted per request; each request of a batch waits the whole batch
        "batch_ms": (s1.compute_infer_duration_us - s0.compute_infer_duration_us) / requests / 1e3,
        "request_ms": (e1.request_duration_us - e0.request_duration_us) / requests / 1e3,
        "queue_ms": (s1.queue_duration_us - s0.queue_duration_us) / requests / 1e3,
    }


def open_loop(server: Server, rate: float, seconds: float, seed: int) -> dict[str, float]:
    """Poisson arrivals at `rate`/s from one thread (gRPC async); client-side latencies."""
    rng = np.random.default_rng(seed)
    client = tgrpc.InferenceServerClient(f"127.0.0.1:{server.grpc}")
    inp = _input(tgrpc)
    done: queue.Queue[float] = queue.Queue()
    n = int(rate * seconds)
    sends = np.cumsum(rng.exponential(1 / rate, n))
    t0 = time.perf_counter()
    for at in sends:
        delay = t0 + at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent = time.perf_counter()
        client.async_infer(
            ENSEMBLE,
            [inp],
            callback=lambda result, error, sent=sent: done.put(
                time.perf_counter() - sent if error is None else float("nan")
            ),
        )
    lat = np.array([done.get(timeout=60) for _ in range(n)]) * 1e3
    wall = time.perf_counter() - t0
    client.close()
    ok = lat[~np.isnan(lat)]
    return {
        "offered_per_s": rate,
        "achieved_per_s": len(ok) / wall,
        "errors": int(np.isnan(lat).sum()),
        "p50_ms": float(np.percentile(ok, 50)),
        "p95_ms": float(np.percentile(ok, 95)),
        "p99_ms": float(np.percentile(ok, 99)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/autoscale_calibration.json")
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="inferline-calibrate-"))
    server = Server(work)
    try:
        startup = server.start()
        closed_loop(server, 8, 2.0)  # warm up
        one = closed_loop(server, 1, args.seconds)
        full = closed_loop(server, 32, args.seconds)
        per_item = (full["batch_ms"] - one["batch_ms"]) / (full["mean_batch"] - one["mean_batch"])
        fixed = one["batch_ms"] - per_item * one["mean_batch"]
        outside = one["request_ms"] - one["batch_ms"] - one["queue_ms"]
        capacity = full["inferences_per_s"]
        rates = [round(capacity * f) for f in (0.3, 0.5, 0.7, 0.85)]
        measured = [open_loop(server, r, args.seconds, seed=i) for i, r in enumerate(rates)]
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "host": platform.node(),
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "tritonserver": "2.51.0 (nvidia-pytriton 0.7.0)",
        },
        "pipeline": str(PIPELINE.relative_to(REPO)),
        "max_batch": 8,
        "startup_s": round(startup, 2),
        "batch_fixed_ms": round(fixed, 3),
        "batch_per_item_ms": round(per_item, 3),
        "outside_step_ms": round(outside, 3),
        # between two full batches the instance also spends this (python stub, scheduling)
        "batch_gap_ms": round(full["mean_batch"] / capacity * 1e3 - full["batch_ms"], 3),
        "capacity_per_s": round(capacity, 1),
        "closed_loop": [one, full],
        "open_loop": measured,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
