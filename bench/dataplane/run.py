#!/usr/bin/env python3
"""The data-plane benchmark: Inferline's three layouts against three baselines, in one run.

    python bench/dataplane/run.py --out DIR [--profile full|quick] [--deadline-s 460]
        [--only SYSTEM,...]

Systems (each started, checked, measured and stopped in turn, alone on the machine):

  plain-torch        (a) the encoder alone in plain PyTorch (plain_torch.py; subprocess)
  all-gpu            Inferline, `inferline serve pipeline/models.yaml pipeline/all-gpu.yaml`
  models-gpu         Inferline, pre/post-processing on CPU, the models on the GPU
  all-cpu            Inferline, everything on CPU (a smaller sweep: see PROFILES)
  monolith           (b) one Python process behind an HTTP server (handmade.py)
  chain              (c) a server per model and an HTTP router (handmade.py)
  all-gpu-onepre     the all-gpu layout with one preprocess step (tokens and features together,
                     the seed's shape) instead of tokenize and features side by side
  all-gpu-plain      the all-gpu manifests with the levers off (instances 1, no dynamic
                     batching, no CUDA graphs): what the levers are worth
  all-gpu-2enc       the all-gpu manifests with two encoder instances of maxBatchSize 512
                     (the layout before: two stub processes time-slice the GPU without MPS)
  all-gpu-tok1       the all-gpu manifests with the preprocess tokenizer on one thread (the
                     layout before: a 512-text request is tokenized by one core)
  plain-torch-compile  (a) with torch.compile (last: it compiles for a minute or more)

Every system gets the same requests (real passages, `batch` texts each) from the same load
generator (loadgen.py). Per point: latency p50/p95 and throughput, the median of `reps`
windows; for Inferline also the per-step timing from Triton's counters and GPU utilization.
Correctness first: each system's scores for 8 passages are compared with an FP32 CPU reference.
Results go to DIR/dataplane.json after every system, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
PIPELINE = HERE / "pipeline"
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from build_artifacts import passages  # noqa: E402
from loadgen import LoadGenerator, Target, infer  # noqa: E402

PY = sys.executable
INFERLINE = "import sys; from inferline.cli import main; sys.argv[0] = 'inferline'; main()"
CHECK_TEXTS = 8

# (batch, concurrency) points per system, and the timing of each point.
GPU_LATENCY = [(b, 1) for b in (1, 4, 16, 64, 256, 512)]
GPU_LOAD = [(1, 16), (1, 64), (64, 8), (512, 4), (512, 8)]
PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "timing": {"warmup_s": 0.8, "window_s": 1.2, "reps": 3},
        "points": {
            "all-gpu": GPU_LATENCY + GPU_LOAD,
            "models-gpu": [(1, 1), (16, 1), (64, 1), (512, 1), *GPU_LOAD[:4]],
            "monolith": [(1, 1), (16, 1), (64, 1), (512, 1), *GPU_LOAD[:4]],
            "chain": [(1, 1), (16, 1), (64, 1), (512, 1), *GPU_LOAD[:4]],
            "all-cpu": [(1, 1), (8, 1), (32, 4)],
            "all-gpu-plain": [(1, 1), (1, 16), (512, 4)],
            "all-gpu-onepre": [(1, 1), (1, 16), (64, 8), (512, 4), (512, 8)],
        },
        # The all-CPU layout runs BERT-large in FP32 on the CPU: seconds per request.
        "cpu_timing": {"warmup_s": 2.0, "window_s": 5.0, "reps": 2},
        "plain_torch": ["--seconds", "0.4", "--reps", "3", "--graph-batches", "1,8,64"],
        "compile": ["--compile-batches", "512"],
    },
    # A second look at batch 512 with longer windows (a 1.2 s window counts few 512-requests)
    # and more clients: what bounds the throughput there, the GPU or the pre-processing.
    "batch512": {
        "timing": {"warmup_s": 1.5, "window_s": 4.0, "reps": 3},
        "points": {
            "all-gpu": [(512, 8), (512, 16)],
            "models-gpu": [(512, 16)],
            "monolith": [(512, 8)],
        },
        "cpu_timing": {"warmup_s": 1.5, "window_s": 4.0, "reps": 3},
        "plain_torch": [
            "--seconds",
            "0.4",
            "--reps",
            "3",
            "--batches",
            "512",
            "--graph-batches",
            "",
        ],
        "compile": ["--compile-batches", "512"],
    },
    # The levers at batch 512 (same windows as batch512): the layout as shipped against the
    # same with one preprocess step, with two encoder processes, and with a one-thread
    # tokenizer; the baseline (b) at the same points, for the 2x target.
    "levers512": {
        "timing": {"warmup_s": 1.5, "window_s": 4.0, "reps": 3},
        "points": {
            **{
                name: [(512, 16), (512, 8), (512, 4), (1, 1)]
                for name in ("all-gpu", "all-gpu-onepre", "all-gpu-2enc", "all-gpu-tok1")
            },
            # the levers off at the full run's points (a full run with every system takes
            # longer than one 10-minute call on the device machine)
            "all-gpu-plain": [(1, 1), (1, 16), (512, 4)],
            "monolith": [(512, 8), (512, 4)],
        },
        "cpu_timing": {"warmup_s": 1.5, "window_s": 4.0, "reps": 3},
        "plain_torch": [
            "--seconds",
            "0.4",
            "--reps",
            "3",
            "--batches",
            "1,512",
            "--graph-batches",
            "",
        ],
        "compile": ["--compile-batches", "512"],
    },
    "quick": {
        "timing": {"warmup_s": 0.5, "window_s": 1.0, "reps": 1},
        "points": {
            "all-gpu": [(1, 1), (64, 4), (512, 2)],
            "models-gpu": [(1, 1), (64, 4)],
            "monolith": [(1, 1), (64, 4)],
            "chain": [(1, 1), (64, 4)],
            "all-cpu": [(1, 1), (8, 2)],
            "all-gpu-plain": [(1, 1)],
            "all-gpu-onepre": [(1, 1)],
        },
        "cpu_timing": {"warmup_s": 0.5, "window_s": 1.0, "reps": 1},
        "plain_torch": [
            "--seconds",
            "0.2",
            "--reps",
            "1",
            "--batches",
            "1,64",
            "--graph-batches",
            "1",
        ],
        "compile": ["--compile-batches", "8"],
    },
}
ORDER = [
    "plain-torch",
    "all-gpu",
    "all-gpu-onepre",
    "all-gpu-2enc",
    "all-gpu-tok1",
    "monolith",
    "chain",
    "models-gpu",
    "all-cpu",
    "plain-torch-compile",
    "all-gpu-plain",
]
LAYOUT_FILES = {
    "all-gpu": "all-gpu.yaml",
    "models-gpu": "models-gpu.yaml",
    "all-cpu": "all-cpu.yaml",
    "all-gpu-onepre": "all-gpu-onepre.yaml",
    "all-gpu-plain": "all-gpu.yaml",
    "all-gpu-2enc": "all-gpu.yaml",
    "all-gpu-tok1": "all-gpu.yaml",
}
# Variants of a layout as a user would write them: Model fields changed (None: removed), per
# Model name; "*" applies to every Model.
ENCODER = "bench-encoder-fp16"
VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    # The levers off: one instance per model, no dynamic batching, no CUDA graphs.
    "all-gpu-plain": {"*": {"instances": 1, "dynamicBatching": None, "parameters": None}},
    "all-gpu-2enc": {ENCODER: {"instances": 2, "maxBatchSize": 512}},
    "all-gpu-tok1": {"bench-tokenize": {"parameters": None}},
}


# ---- processes ------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def start(name: str, args: list[str], logs: Path, env: dict[str, str] | None = None) -> Proc:
    log = logs / f"{name}.log"
    f = open(log, "ab")  # noqa: SIM115 (the child owns it)
    popen = subprocess.Popen(
        args, stdout=f, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=REPO
    )
    return Proc(name, popen, log)


def stop(procs: list[Proc], timeout: float = 8) -> None:
    """SIGTERM each (inferline serve stops its tritonserver), then SIGKILL what is left,
    descendants included: tritonserver runs in a session of its own, and with GPU tensors one
    python stub may not unload (tritonserver then waits out its 30 s exit timeout)."""
    import psutil

    family: list[psutil.Process] = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            family += psutil.Process(p.popen.pid).children(recursive=True)
        if p.alive():
            os.killpg(p.popen.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.popen.wait(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.popen.pid, signal.SIGKILL)
        p.popen.wait()
    for child in family:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(family, timeout=10)


def wait_ready(url: str, procs: list[Proc], timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited ({p.popen.returncode}):\n{p.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(
        f"not ready after {timeout:.0f}s: {url}\n" + "\n".join(p.tail() for p in procs)
    )


class Ports:
    def __init__(self, base: int = 18000) -> None:
        self.next = base

    def take(self, n: int = 1) -> list[int]:
        out = list(range(self.next, self.next + n))
        self.next += n
        return out


# ---- Triton metrics and GPU utilization ------------------------------------------------------

_METRIC = re.compile(r'^(nv_inference_\w+)\{model="([^"]+)",version="[^"]*"\}\s+(\S+)$')
COUNTERS = (
    "nv_inference_request_success",
    "nv_inference_count",
    "nv_inference_exec_count",
    "nv_inference_request_duration_us",
    "nv_inference_queue_duration_us",
    "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us",
    "nv_inference_compute_output_duration_us",
)


def scrape(port: int) -> dict[str, dict[str, float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        m = _METRIC.match(line)
        if m and m.group(1) in COUNTERS:
            out.setdefault(m.group(2), {})[m.group(1)] = float(m.group(3))
    return out


def step_breakdown(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """Per model over the interval: requests, mean batch per execution, and the mean time per
    request (microseconds) in the queue and in compute (input, infer, output)."""
    out = {}
    for model, a in after.items():
        b = before.get(model, {})
        d = {k: a.get(k, 0.0) - b.get(k, 0.0) for k in COUNTERS}
        n = d["nv_inference_request_success"]
        if n <= 0:
            continue
        out[model] = {
            "requests": n,
            "executions": d["nv_inference_exec_count"],
            "mean_batch": d["nv_inference_count"] / max(d["nv_inference_exec_count"], 1),
            "request_us": d["nv_inference_request_duration_us"] / n,
            "queue_us": d["nv_inference_queue_duration_us"] / n,
            "compute_input_us": d["nv_inference_compute_input_duration_us"] / n,
            "compute_infer_us": d["nv_inference_compute_infer_duration_us"] / n,
            "compute_output_us": d["nv_inference_compute_output_duration_us"] / n,
        }
    return out


class GpuSampler:
    """Mean GPU utilization (%) and peak memory while a point runs (NVML, every 50 ms)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self.handle = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:
            pass

    def __enter__(self) -> GpuSampler:
        self.samples = []
        self.running = True
        if self.handle is not None:
            self.thread = threading.Thread(target=self._loop, daemon=True)
            self.thread.start()
        return self

    def _loop(self) -> None:
        while self.running:
            u = self.nvml.nvmlDeviceGetUtilizationRates(self.handle)
            m = self.nvml.nvmlDeviceGetMemoryInfo(self.handle)
            self.samples.append((float(u.gpu), m.used / 2**30))
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self.running = False
        if self.handle is not None:
            self.thread.join()

    def summary(self) -> dict[str, float] | None:
        if not self.samples:
            return None
        # Skip the first quarter (warm-up).
        s = self.samples[len(self.samples) // 4 :] or self.samples
        return {
            "gpu_util_mean": float(np.mean([u for u, _ in s])),
            "gpu_mem_gib_max": float(max(m for _, m in s)),
        }


# ---- one system -----------------------------------------------------------------------------


@dataclass
class SystemResult:
    name: str
    kind: str
    description: str
    ready_s: float | None = None
    check: dict[str, Any] = field(default_factory=dict)
    points: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.profile = PROFILES[args.profile]
        self.out: Path = args.out
        self.work: Path = args.work
        self.logs = self.out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.ports = Ports()
        self.t0 = time.monotonic()
        self.texts = passages(512, seed=2024)
        self.results: dict[str, Any] = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "profile": args.profile,
            "command": " ".join([Path(PY).name, *sys.argv]),
            "environment": environment(),
            "artifacts": json.loads((PIPELINE / "artifacts" / "build.json").read_text()),
            "systems": {},
            "skipped": [],
        }
        self.loadgen = LoadGenerator(processes=args.client_processes)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def ready_timeout(self) -> float:
        """How long a server may take to load: never far past the deadline."""
        return max(60.0, self.args.deadline_s + 90 - self.elapsed())

    def save(self) -> None:
        self.results["elapsed_s"] = self.elapsed()
        (self.out / "dataplane.json").write_text(json.dumps(self.results, indent=2) + "\n")

    # -- reference --

    def reference(self) -> None:
        """FP32 scores on the CPU, computed directly (handmade.Steps)."""
        from handmade import Steps

        steps = Steps("cpu")
        texts = self.texts[:CHECK_TEXTS]
        ids, mask, feats = steps.preprocess(texts)
        bert = steps.encode(ids, mask)
        tree = steps.trees(feats)
        w = np.full((len(texts), 1), 0.5, np.float32)
        self.ref = Steps.post(bert, tree, w).reshape(-1)
        self.results["reference"] = {
            "bert": bert.reshape(-1).tolist(),
            "trees": tree.reshape(-1).tolist(),
            "score": self.ref.tolist(),
        }

    def check(self, target: Target) -> dict[str, Any]:
        got = infer(target, self.texts[:CHECK_TEXTS], 0.5)
        err = float(np.max(np.abs(got - self.ref)))
        scale = float(np.max(np.abs(self.ref)))
        return {
            "scores": got.tolist(),
            "max_abs_err": err,
            "max_rel_err": err / scale,
            "ok": bool(np.all(np.isfinite(got)) and err / scale < 2e-2),
        }

    # -- measuring --

    def warm(self, target: Target, points: list[tuple[int, int]], requests: int) -> float:
        """A few sequential requests at every batch size the sweep uses: CUDA contexts, the
        TorchScript profiling runs and the CUDA graphs are made here, not in a measurement."""
        t0 = time.monotonic()
        for batch in sorted({b for b, _ in points}):
            for _ in range(requests):
                infer(target, self.texts[:batch], 0.5)
        return time.monotonic() - t0

    def sweep(
        self,
        res: SystemResult,
        target: Target,
        points: list[tuple[int, int]],
        timing: dict,
        metrics_port: int | None = None,
    ) -> None:
        for batch, conc in points:
            if self.elapsed() > self.args.deadline_s:
                res.extra.setdefault("points_skipped", []).append([batch, conc])
                continue
            before = scrape(metrics_port) if metrics_port else None
            with GpuSampler() as gpu:
                m = self.loadgen.measure(target, self.texts[:batch], conc, **timing)
            if metrics_port and before is not None:
                m["steps"] = step_breakdown(before, scrape(metrics_port))
            m["gpu"] = gpu.summary()
            res.points.append(m)
            print(
                f"  {res.name} batch {batch:>3} x {conc:>2}: {m['samples_per_s'] or 0:>8.0f}/s "
                f"p50 {m['p50_ms'] or 0:8.2f} ms p95 {m['p95_ms'] or 0:8.2f} ms "
                f"gpu {(m['gpu'] or {}).get('gpu_util_mean', -1):.0f}% {m['errors'][:1]}",
                flush=True,
            )
            self.save()

    def run_system(self, name: str) -> None:
        kinds = {
            "plain-torch": self.plain_torch,
            "plain-torch-compile": self.plain_torch,
            "monolith": self.handmade,
            "chain": self.handmade,
        }
        fn = kinds.get(name, self.inferline)
        print(f"== {name} (t={self.elapsed():.0f}s)", flush=True)
        try:
            fn(name)
        except Exception:
            err = traceback.format_exc()
            print(err, flush=True)
            sys_res = self.results["systems"].setdefault(name, {"name": name})
            sys_res["error"] = err[-3000:]
        self.save()

    def _store(self, res: SystemResult) -> None:
        self.results["systems"][res.name] = res.__dict__

    # -- (a) --

    def plain_torch(self, name: str) -> None:
        out = self.work / f"{name}.json"
        if name == "plain-torch":
            extra = [*self.profile["plain_torch"], "--variants", "eager,torchscript,cuda-graph"]
        else:
            extra = [*self.profile["compile"], "--variants", "compile"]
        proc = start(name, [PY, str(HERE / "plain_torch.py"), "--out", str(out), *extra], self.logs)
        budget = max(30.0, self.args.deadline_s + 40 - self.elapsed())
        try:
            proc.popen.wait(budget)
        except subprocess.TimeoutExpired:
            stop([proc], 5)
        res = SystemResult(name, "baseline-a", "the encoder alone in plain PyTorch, one process")
        if out.exists():
            res.extra = json.loads(out.read_text())
        if proc.popen.returncode != 0:
            res.error = f"exit {proc.popen.returncode}:\n{proc.tail(30)}"
        self._store(res)

    # -- Inferline --

    def manifests(self, name: str) -> list[Path]:
        files = [PIPELINE / "models.yaml", PIPELINE / LAYOUT_FILES[name]]
        if name not in VARIANTS:
            return files
        # The same manifests with the variant's Model fields; the pipeline takes its name.
        docs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
        for d in docs:
            if d["kind"] != "Model":
                d["metadata"]["name"] = name
                continue
            for who in ("*", d["metadata"]["name"]):
                for key, value in VARIANTS[name].get(who, {}).items():
                    if value is None:
                        d["spec"].pop(key, None)
                    else:
                        d["spec"][key] = value
        path = PIPELINE / f"_variant-{name}.yaml"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        return [path]

    def inferline(self, name: str) -> None:
        files = self.manifests(name)
        http, grpc, metrics = self.ports.take(3)
        work = self.work / name
        shutil.rmtree(work, ignore_errors=True)
        cmd = [
            PY,
            "-c",
            INFERLINE,
            "serve",
            *map(str, files),
            "--http-port",
            str(http),
            "--grpc-port",
            str(grpc),
            "--metrics-port",
            str(metrics),
            "--workdir",
            str(work),
            *(["--device", self.args.serve_device] if self.args.serve_device else []),
        ]
        layout = LAYOUT_FILES[name].removesuffix(".yaml")
        res = SystemResult(name, "inferline", f"inferline serve {' '.join(f.name for f in files)}")
        res.extra["command"] = "inferline " + " ".join(
            str(c).replace(str(REPO) + "/", "") for c in cmd[3:]
        )
        self._store(res)
        proc = start(name, cmd, self.logs)
        try:
            res.ready_s = wait_ready(
                f"http://127.0.0.1:{http}/v2/health/ready", [proc], self.ready_timeout()
            )
            target = Target("triton", "127.0.0.1", http, f"/v2/models/{name}/infer")
            res.check = self.check(target)
            print(
                f"  ready in {res.ready_s:.1f}s; check {res.check['max_rel_err']:.2e}", flush=True
            )
            cpu = layout == "all-cpu"
            timing = self.profile["cpu_timing" if cpu else "timing"]
            res.extra["warmup_s"] = self.warm(target, self.profile["points"][name], 1 if cpu else 3)
            self.sweep(res, target, self.profile["points"][name], timing, metrics)
            res.extra["graph_capture_failures"] = _log_lines(
                work / "tritonserver.log", "CUDA graph capture failed"
            )
            res.extra["configs"] = {
                p.parent.name: p.read_text()
                for p in sorted((work / "model_repository").glob("*/config.pbtxt"))
            }
        finally:
            stop([proc])
            log = work / "tritonserver.log"
            if log.exists():
                shutil.copy(log, self.logs / f"{name}-tritonserver.log")

    # -- (b) and (c) --

    def handmade(self, name: str) -> None:
        script = str(HERE / "handmade.py")
        procs: list[Proc] = []
        if name == "monolith":
            (port,) = self.ports.take(1)
            procs.append(start(name, [PY, script, "monolith", "--port", str(port)], self.logs))
            desc = "(b) one Python process behind a threading HTTP server, no batching"
        else:
            ports = self.ports.take(5)
            steps = ["preprocess", "encoder", "trees", "post"]
            for step, p in zip(steps, ports, strict=False):
                procs.append(
                    start(f"chain-{step}", [PY, script, "step", step, "--port", str(p)], self.logs)
                )
            port = ports[4]
            addrs = ",".join(f"127.0.0.1:{p}" for p in ports[:4])
            procs.append(
                start(
                    "chain-router",
                    [PY, script, "router", "--port", str(port), "--steps", addrs],
                    self.logs,
                )
            )
            desc = "(c) a server per step, chained by an HTTP router (KServe InferenceGraph)"
        res = SystemResult(name, "baseline", desc)
        self._store(res)
        try:
            t0 = time.monotonic()
            if name == "chain":
                for p in ports[:4]:
                    wait_ready(f"http://127.0.0.1:{p}/health", procs, self.ready_timeout())
            wait_ready(f"http://127.0.0.1:{port}/health", procs, self.ready_timeout())
            res.ready_s = time.monotonic() - t0
            target = Target("json", "127.0.0.1", port, "/infer")
            res.check = self.check(target)
            print(
                f"  ready in {res.ready_s:.1f}s; check {res.check['max_rel_err']:.2e}", flush=True
            )
            res.extra["warmup_s"] = self.warm(target, self.profile["points"][name], 3)
            self.sweep(res, target, self.profile["points"][name], self.profile["timing"])
        finally:
            stop(procs)

    def run(self, only: list[str]) -> None:
        self.reference()
        self.save()
        for name in ORDER:
            if only and name not in only:
                continue
            if not name.startswith("plain-torch") and name not in self.profile["points"]:
                continue  # not part of this profile
            if self.elapsed() > self.args.deadline_s:
                self.results["skipped"].append(name)
                print(f"== {name}: skipped (deadline)", flush=True)
                continue
            self.run_system(name)
        self.loadgen.close()
        self.save()


def _log_lines(path: Path, needle: str) -> list[str]:
    try:
        return [ln[:400] for ln in path.read_text(errors="replace").splitlines() if needle in ln]
    except OSError:
        return []


def environment() -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "tritonserver": os.environ.get("INFERLINE_TRITONSERVER", "(nvidia-pytriton wheel)"),
    }
    for mod in ("xgboost", "tokenizers", "transformers"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:
            env[mod] = None
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    if shutil.which("nvidia-smi"):
        q = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit",
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        env["nvidia_smi"] = q.stdout.strip() or q.stderr.strip()
    return env


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--work", type=Path, default=Path("/tmp/inferline-dataplane"))
    p.add_argument("--profile", choices=sorted(PROFILES), default="full")
    p.add_argument(
        "--deadline-s", type=float, default=460.0, help="start nothing new after this many seconds"
    )
    p.add_argument("--only", default="", help="comma-separated systems (default: all)")
    p.add_argument("--client-processes", type=int, default=8)
    p.add_argument(
        "--serve-device",
        choices=["gpu", "cpu"],
        help="inferline serve --device: `cpu` dry-runs the GPU layouts on a machine without one",
    )
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    bench = Bench(args)
    bench.run([s for s in args.only.split(",") if s])
    return 0


if __name__ == "__main__":
    sys.exit(main())
