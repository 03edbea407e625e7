"""Prove that a rendered GPU pipeline loads and computes correctly, and measure it against CPU.

One script, one call on a GPU machine (it also runs on a machine without a GPU, where it serves
the CPU half and reports the GPU as not available):

1. builds artifacts into a temp dir: a TorchScript MLP (64 -> 1024 -> 1024 -> 8) and an xgboost
   regressor saved as JSON, both from fixed seeds;
2. writes an InferencePipeline: `pre` (python: normalizes X; on a GPU instance it returns a CUDA
   tensor through DLPack), `mlp` (format pytorch, served through the torchscript adapter, dynamic
   batching), `trees` (format fil / xgboost_json, served through the trees adapter) and `post`
   (python: softmax and a score from both models, reporting on which device its inputs came);
3. per device (GPU, CPU): renders it with the functions the CLI uses (load_paths ->
   override_device / override_backend -> validate_documents with the local backend ->
   render_repository -> write_repository), checks the rendered configs, serves it with
   TritonProcess, checks the answers against torch / xgboost run directly, then measures latency
   (sequential requests at batch 1 and batch 64), throughput (concurrent client processes) and
   scrapes /metrics;
4. prints a markdown table and writes JSON and the table to $OUT (if set) or bench/results/.

Needs: inferline importable (PYTHONPATH=operator), torch, xgboost, tritonclient[http], and a
tritonserver (the nvidia-pytriton wheel, or INFERLINE_TRITONSERVER=.../bin/tritonserver).

    PYTHONPATH=operator python bench/gpu_check.py [--devices gpu,cpu] [--duration 10]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import multiprocessing as mp
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PIPELINE = "gpucheck"
N_FEATURES = 64
HIDDEN = 1024
N_CLASSES = 8
MAX_BATCH = 256
REL_TOL = 1e-4  # fp32 end to end
MARK = "[gpucheck]"

# ---- the pipeline ----------------------------------------------------------------------------

MANIFEST = """\
apiVersion: inferline.dev/v1alpha1
kind: InferencePipeline
metadata: {name: %(name)s}
spec:
  backend: {name: triton}
  placement: {device: GPU}
  maxBatchSize: %(mbs)d
  inputs: [{name: X, dtype: FP32, dims: [%(f)d]}]
  outputs:
    - {name: LOGITS, dtype: FP32, dims: [%(c)d]}
    - {name: TREE, dtype: FP32, dims: [1]}
    - {name: PROBS, dtype: FP32, dims: [%(c)d]}
    - {name: SCORE, dtype: FP32, dims: [1]}
    - {name: ON_GPU, dtype: INT32, dims: [3]}
  steps:
    - name: pre
      model:
        format: python
        python: {file: pre.py}
        maxBatchSize: %(mbs)d
        parameters: {mean: "%(mean)s", std: "%(std)s"}
        inputs: [{name: X, dtype: FP32, dims: [%(f)d]}]
        outputs: [{name: Z, dtype: FP32, dims: [%(f)d]}]
      inputMap: {X: X}
      outputMap: {Z: z}
    - name: mlp
      model:
        format: pytorch
        storageUri: file://%(d)s/mlp.pt
        maxBatchSize: %(mbs)d
        dynamicBatching: {maxQueueDelayMicroseconds: 200}
        inputs: [{name: INPUT__0, dtype: FP32, dims: [%(f)d]}]
        outputs: [{name: OUTPUT__0, dtype: FP32, dims: [%(c)d]}]
      inputMap: {INPUT__0: z}
      outputMap: {OUTPUT__0: LOGITS}
    - name: trees
      model:
        format: fil
        storageUri: file://%(d)s/trees.json
        tree: {modelType: xgboost_json}
        maxBatchSize: %(mbs)d
        inputs: [{name: input__0, dtype: FP32, dims: [%(f)d]}]
        outputs: [{name: output__0, dtype: FP32, dims: [1]}]
      inputMap: {input__0: z}
      outputMap: {output__0: TREE}
    - name: post
      model:
        format: python
        python: {file: post.py}
        maxBatchSize: %(mbs)d
        inputs:
          - {name: Z, dtype: FP32, dims: [%(f)d]}
          - {name: LOGITS, dtype: FP32, dims: [%(c)d]}
          - {name: TREE, dtype: FP32, dims: [1]}
        outputs:
          - {name: PROBS, dtype: FP32, dims: [%(c)d]}
          - {name: SCORE, dtype: FP32, dims: [1]}
          - {name: ON_GPU, dtype: INT32, dims: [3]}
      inputMap: {Z: z, LOGITS: LOGITS, TREE: TREE}
      outputMap: {PROBS: PROBS, SCORE: SCORE, ON_GPU: ON_GPU}
"""

# Both python steps take CPU or GPU inputs and, on a GPU instance, return CUDA tensors through
# DLPack. They pass the torch tensor itself (not a capsule) to from_dlpack: the stub then calls
# __dlpack__(stream=...) and synchronizes, so the tensor is complete when Triton reads it.
_STEP_COMMON = """
import json

import numpy as np
import torch
import torch.utils.dlpack
import triton_python_backend_utils as pb_utils


def device_of(args):
    if args.get("model_instance_kind") == "GPU":
        return torch.device(f"cuda:{args.get('model_instance_device_id', '0')}")
    return torch.device("cpu")


def to_torch(t, device):
    if t.is_cpu():
        x = torch.from_numpy(np.array(t.as_numpy()))
    else:
        x = torch.utils.dlpack.from_dlpack(t.to_dlpack())
    return x.to(device)


def to_triton(name, x):
    x = x.contiguous()
    if x.is_cuda:
        return pb_utils.Tensor.from_dlpack(name, x)
    return pb_utils.Tensor(name, x.numpy())


def announce(step, device):
    pb_utils.Logger.log_info(
        f"[gpucheck] {step}: device={device} numpy={np.__version__} torch={torch.__version__} "
        f"cuda_available={torch.cuda.is_available()}"
    )
"""

PRE_PY = (
    '"""pre: Z = (X - mean) / std, on the instance\'s device."""\n'
    + _STEP_COMMON
    + """

class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        self.device = device_of(args)
        self.mean = torch.tensor(json.loads(params["mean"]["string_value"]), device=self.device)
        std = torch.tensor(json.loads(params["std"]["string_value"]), device=self.device)
        self.inv_std = 1.0 / std
        announce("pre", self.device)

    def execute(self, requests):
        responses = []
        for request in requests:
            x = to_torch(pb_utils.get_input_tensor_by_name(request, "X"), self.device)
            z = (x - self.mean) * self.inv_std
            responses.append(pb_utils.InferenceResponse([to_triton("Z", z)]))
        return responses
"""
)

POST_PY = (
    '"""post: PROBS = softmax(LOGITS); SCORE = TREE + 0.1 * E[class]; ON_GPU: input devices."""\n'
    + _STEP_COMMON
    + """

class TritonPythonModel:
    def initialize(self, args):
        self.device = device_of(args)
        self.weights = torch.arange(8, dtype=torch.float32, device=self.device)
        announce("post", self.device)

    def execute(self, requests):
        responses = []
        for request in requests:
            raw = [pb_utils.get_input_tensor_by_name(request, n) for n in ("Z", "LOGITS", "TREE")]
            on_gpu = [0 if t.is_cpu() else 1 for t in raw]
            _z, logits, tree = (to_torch(t, self.device) for t in raw)
            probs = torch.softmax(logits, dim=1)
            score = tree + 0.1 * (probs * self.weights).sum(dim=1, keepdim=True)
            flags = np.tile(np.array(on_gpu, dtype=np.int32), (logits.shape[0], 1))
            responses.append(
                pb_utils.InferenceResponse(
                    [
                        to_triton("PROBS", probs),
                        to_triton("SCORE", score),
                        pb_utils.Tensor("ON_GPU", flags),
                    ]
                )
            )
        return responses
"""
)

# Every request asks for all outputs: with Triton 2.51, a request for a subset that leaves out
# LOGITS or TREE (pipeline outputs that `post` also consumes) fails with "unexpected deadlock,
# at least one output is not set while no more ensemble steps can be made".
OUTPUTS = ["LOGITS", "TREE", "PROBS", "SCORE", "ON_GPU"]


@dataclass
class Artifacts:
    root: Path
    manifest: Path
    mean: np.ndarray
    std: np.ndarray
    module: Any  # torch.nn.Module (float32, CPU)
    booster: Any  # xgboost.Booster


def build_artifacts(root: Path) -> Artifacts:
    import torch
    import xgboost

    rng = np.random.default_rng(0)
    mean = rng.normal(scale=2.0, size=N_FEATURES).astype(np.float32)
    std = rng.uniform(0.5, 3.0, size=N_FEATURES).astype(np.float32)

    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(N_FEATURES, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, N_CLASSES),
    ).eval()
    torch.jit.script(module).save(str(root / "mlp.pt"))

    z = rng.normal(size=(4000, N_FEATURES)).astype(np.float32)
    y = (
        2 * z[:, 0]
        - z[:, 1]
        + np.sin(3 * z[:, 2])
        + z[:, 3] * z[:, 4]
        + 0.1 * rng.normal(size=4000)
    )
    booster = xgboost.train(
        {"max_depth": 6, "eta": 0.1, "seed": 0, "nthread": 4},
        xgboost.DMatrix(z, label=y),
        num_boost_round=200,
    )
    booster.save_model(str(root / "trees.json"))

    (root / "pre.py").write_text(PRE_PY)
    (root / "post.py").write_text(POST_PY)
    manifest = root / "pipeline.yaml"
    manifest.write_text(
        MANIFEST
        % {
            "name": PIPELINE,
            "mbs": MAX_BATCH,
            "f": N_FEATURES,
            "c": N_CLASSES,
            "d": root,
            "mean": json.dumps([float(v) for v in mean]),
            "std": json.dumps([float(v) for v in std]),
        }
    )
    return Artifacts(root, manifest, mean, std, module, booster)


def reference(art: Artifacts, x: np.ndarray) -> dict[str, np.ndarray]:
    """The pipeline's answer computed directly: float32 normalization, float64 MLP, xgboost."""
    import torch
    import xgboost

    z = (torch.from_numpy(x) - torch.from_numpy(art.mean)) * (1.0 / torch.from_numpy(art.std))
    with torch.no_grad():
        logits = copy.deepcopy(art.module).double()(z.double()).numpy()
    tree = art.booster.predict(xgboost.DMatrix(z.numpy())).reshape(-1, 1).astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    score = tree + 0.1 * (probs * np.arange(N_CLASSES)).sum(axis=1, keepdims=True)
    return {"LOGITS": logits, "TREE": tree, "PROBS": probs, "SCORE": score}


# ---- rendering and serving -------------------------------------------------------------------


@dataclass
class Rendered:
    repository: Path
    served_as: dict[str, str]
    configs: dict[str, str]  # model name -> config.pbtxt text
    config_checks: dict[str, Any]


def render(manifest: Path, device: str, out: Path) -> Rendered:
    """What `inferline serve --device DEVICE` does up to the repository, with artifacts fetched."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    from inferline.api.common import Device
    from inferline.compile import Overrides, check_paths, render_manifest
    from inferline.runtime.local import LOCAL_BACKEND, local_backend_spec
    from inferline.runtime.repository import write_rendered
    from inferline.runtime.tritonserver import find_tritonserver

    overrides = Overrides(
        Device(device), LOCAL_BACKEND, {LOCAL_BACKEND: local_backend_spec(find_tritonserver())}
    )
    checked = check_paths([manifest], overrides, require_refs=True)
    errors = [str(p) for p in checked.errors]
    if errors or not checked.pipelines:
        raise RuntimeError(f"validation failed: {errors}")
    rendered = render_manifest(checked.pipelines)
    write_rendered(rendered, out, fetch_artifacts=True)
    served_as = {s.step: s.served_as for p in rendered.pipelines for s in p.steps}
    repo = out / "model_repository"

    configs: dict[str, str] = {}
    checks: dict[str, Any] = {}
    want_kind = "KIND_GPU" if device == "GPU" else "KIND_CPU"
    for cfg_path in sorted(repo.glob("*/config.pbtxt")):
        text = cfg_path.read_text()
        configs[cfg_path.parent.name] = text
        cfg = text_format.Parse(text, mc.ModelConfig())
        if cfg.platform == "ensemble":
            continue
        kinds = [mc.ModelInstanceGroup.Kind.Name(g.kind) for g in cfg.instance_group]
        force_cpu = (
            cfg.parameters["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value
            if "FORCE_CPU_ONLY_INPUT_TENSORS" in cfg.parameters
            else None
        )
        ok = kinds == [want_kind] and (device != "GPU" or force_cpu == "no")
        checks[cfg.name] = {
            "backend": cfg.backend,
            "instance_kinds": kinds,
            "FORCE_CPU_ONLY_INPUT_TENSORS": force_cpu,
            "adapter": cfg.parameters["INFERLINE_ADAPTER"].string_value
            if "INFERLINE_ADAPTER" in cfg.parameters
            else None,
            "dynamic_batching": cfg.HasField("dynamic_batching"),
            "ok": ok,
        }
    return Rendered(repo, served_as, configs, checks)


def runtime_probe() -> dict[str, str]:
    """What the runtime's numpy check sees: `python3 -c` in the server's environment.

    The stub itself runs Python isolated (PYTHONPATH ignored): the numpy the steps really import
    is in their log lines (`step_log`).
    """
    from inferline.runtime.tritonserver import find_tritonserver, server_env

    env = server_env(find_tritonserver())
    probe = subprocess.run(
        ["python3", "-c", "import sys, numpy; print(sys.executable, numpy.__version__)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return {"stdout": probe.stdout.strip(), "stderr": probe.stderr.strip()[-300:]}


# ---- clients ---------------------------------------------------------------------------------


def _client_inputs(th: Any, x: np.ndarray) -> list[Any]:
    i = th.InferInput("X", list(x.shape), "FP32")
    i.set_data_from_numpy(x, binary_data=True)
    return [i]


def infer(url: str, x: np.ndarray) -> dict[str, np.ndarray]:
    import tritonclient.http as th

    client = th.InferenceServerClient(url)
    outs = [th.InferRequestedOutput(o, binary_data=True) for o in OUTPUTS]
    res = client.infer(PIPELINE, _client_inputs(th, x), outputs=outs)
    return {o: res.as_numpy(o) for o in OUTPUTS}


def latency(url: str, batch: int, n: int, warmup: int = 20) -> dict[str, float]:
    """Sequential requests from one client: median, p95, mean in milliseconds."""
    import tritonclient.http as th

    client = th.InferenceServerClient(url)
    x = np.random.default_rng(batch).normal(size=(batch, N_FEATURES)).astype(np.float32)
    inputs = _client_inputs(th, x)
    outs = [th.InferRequestedOutput(o, binary_data=True) for o in OUTPUTS]
    for _ in range(warmup):
        client.infer(PIPELINE, inputs, outputs=outs)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.infer(PIPELINE, inputs, outputs=outs)
        times.append((time.perf_counter() - t0) * 1e3)
    return {
        "batch": batch,
        "requests": n,
        "p50_ms": statistics.median(times),
        "p95_ms": float(np.percentile(times, 95)),
        "mean_ms": statistics.fmean(times),
        "min_ms": min(times),
    }


def _load_worker(url: str, batch: int, start_at: float, duration: float, seed: int) -> int:
    import tritonclient.http as th

    client = th.InferenceServerClient(url)
    x = np.random.default_rng(seed).normal(size=(batch, N_FEATURES)).astype(np.float32)
    inputs = _client_inputs(th, x)
    outs = [th.InferRequestedOutput(o, binary_data=True) for o in OUTPUTS]
    client.infer(PIPELINE, inputs, outputs=outs)
    while time.time() < start_at:
        time.sleep(0.005)
    done = 0
    end = start_at + duration
    while time.time() < end:
        client.infer(PIPELINE, inputs, outputs=outs)
        done += 1
    return done


def throughput(url: str, batch: int, clients: int, duration: float) -> dict[str, float]:
    """`clients` processes, each sending requests back to back for `duration` seconds."""
    ctx = mp.get_context("spawn")
    start_at = time.time() + 4.0  # spawned interpreters import tritonclient first
    with ctx.Pool(clients) as pool:
        counts = pool.starmap(
            _load_worker, [(url, batch, start_at, duration, i) for i in range(clients)]
        )
    requests = sum(counts)
    return {
        "batch": batch,
        "clients": clients,
        "seconds": duration,
        "requests": requests,
        "req_per_s": requests / duration,
        "samples_per_s": requests * batch / duration,
    }


# ---- metrics ---------------------------------------------------------------------------------

_METRIC = re.compile(r"^(\w+)(?:\{([^}]*)\})?\s+(\S+)$")


def scrape(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    summary: dict[str, dict[str, float]] = {}
    gpu: dict[str, list[float]] = {}
    for line in text.splitlines():
        m = _METRIC.match(line)
        if not m:
            continue
        name, labels_s, value = m.groups()
        labels = dict(re.findall(r'(\w+)="([^"]*)"', labels_s or ""))
        if name == "nv_inference_request_summary_us" and "quantile" in labels:
            summary.setdefault(labels["model"], {})[f"p{float(labels['quantile']) * 100:g}"] = (
                float(value)
            )
        elif name in ("nv_inference_request_summary_us_count",):
            summary.setdefault(labels["model"], {})["count"] = float(value)
        elif name.startswith("nv_gpu_") or name == "nv_energy_consumption":
            gpu.setdefault(name, []).append(float(value))
    return {
        "request_summary_us": summary,
        "gpu_metrics": {k: v for k, v in sorted(gpu.items())},
        "nv_gpu_utilization_present": "nv_gpu_utilization" in gpu,
        "nv_gpu_memory_used_bytes_present": "nv_gpu_memory_used_bytes" in gpu,
    }


# ---- one device ------------------------------------------------------------------------------


@dataclass
class DeviceResult:
    device: str
    available: bool
    note: str = ""
    served_as: dict[str, str] = field(default_factory=dict)
    config_checks: dict[str, Any] = field(default_factory=dict)
    correctness: dict[str, Any] = field(default_factory=dict)
    on_gpu_flags: list[int] | None = None
    latency: list[dict[str, float]] = field(default_factory=list)
    throughput: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    step_log: list[str] = field(default_factory=list)
    load_seconds: float = 0.0
    error: str = ""
    failures: list[str] = field(default_factory=list)


def check_answers(art: Artifacts, url: str, result: DeviceResult) -> None:
    for batch, seed in ((64, 11), (1, 12), (MAX_BATCH, 13)):
        rng = np.random.default_rng(seed)
        x = (art.mean + art.std * rng.normal(size=(batch, N_FEATURES))).astype(np.float32)
        got = infer(url, x)
        want = reference(art, x)
        entry: dict[str, Any] = {}
        for name, ref in want.items():
            g = got[name].astype(np.float64)
            if g.shape != ref.shape or not np.all(np.isfinite(g)):
                entry[name] = {"shape": list(g.shape), "finite": bool(np.all(np.isfinite(g)))}
                result.failures.append(f"batch {batch} {name}: bad shape or non-finite values")
                continue
            rel = float(np.linalg.norm(g - ref) / np.linalg.norm(ref))
            entry[name] = {"rel_err": rel, "max_abs_err": float(np.max(np.abs(g - ref)))}
            if not rel < REL_TOL:
                result.failures.append(f"batch {batch} {name}: rel_err {rel:.3g} >= {REL_TOL}")
        flags = got["ON_GPU"]
        entry["ON_GPU"] = flags[0].tolist()
        if not np.all(flags == flags[0]):
            result.failures.append(f"batch {batch}: ON_GPU differs between rows")
        result.correctness[f"batch_{batch}"] = entry
        result.on_gpu_flags = flags[0].tolist()
    if result.device == "GPU" and (result.on_gpu_flags or [])[:2] != [1, 1]:
        result.failures.append(
            f"Z and LOGITS should reach `post` on the GPU; ON_GPU={result.on_gpu_flags}"
        )


def run_device(
    art: Artifacts, device: str, work: Path, args: argparse.Namespace, out_dir: Path
) -> DeviceResult:
    from inferline.runtime.tritonserver import Ports, ServerOptions, TritonProcess, free_port

    result = DeviceResult(device, True)
    rendered = render(art.manifest, device, work / f"rendered-{device.lower()}")
    result.served_as = rendered.served_as
    result.config_checks = rendered.config_checks
    for name, chk in rendered.config_checks.items():
        if not chk["ok"]:
            result.failures.append(f"config {name}: {chk}")
    (out_dir / f"configs_{device.lower()}.txt").write_text(
        "".join(f"# {name}/config.pbtxt\n{text}\n" for name, text in rendered.configs.items())
    )

    ports = Ports(free_port(), free_port(), free_port())
    log = out_dir / f"tritonserver_{device.lower()}.log"
    log.write_text("")
    server = TritonProcess(ServerOptions(rendered.repository, ports, exit_timeout_s=10), log=log)
    t0 = time.monotonic()
    server.start()
    try:
        server.wait_ready(timeout_s=args.ready_timeout)
        result.load_seconds = time.monotonic() - t0
        print(f"  {device}: server ready in {result.load_seconds:.1f}s", flush=True)
        check_answers(art, server.url, result)
        print(f"  {device}: answers checked, ON_GPU={result.on_gpu_flags}", flush=True)
        for batch in (1, 64):
            lat = latency(server.url, batch, args.requests)
            result.latency.append(lat)
            print(f"  {device}: latency batch {batch}: {lat}", flush=True)
        for batch, clients in ((64, args.clients), (1, args.clients * 2)):
            tp = throughput(server.url, batch, clients, args.duration)
            result.throughput.append(tp)
            print(f"  {device}: throughput {tp}", flush=True)
        result.metrics = scrape(ports.metrics)
    finally:
        code = server.stop()
        result.step_log = [
            ln.split(MARK, 1)[1].strip().rstrip('"')
            for ln in log.read_text().splitlines()
            if MARK in ln
        ]
        print(f"  {device}: tritonserver exited with {code}", flush=True)
        for line in result.step_log:
            print(f"  {device}: step says: {line}", flush=True)
        if any("numpy=2." in line for line in result.step_log):
            result.failures.append("a python step imported numpy 2 (the 2.51 stub needs numpy<2)")
    return result


# ---- environment and report ------------------------------------------------------------------


def environment() -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cpu_count": os.cpu_count(),
        "tritonserver": os.environ.get("INFERLINE_TRITONSERVER", "(pytriton wheel)"),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["torch_cuda"] = torch.version.cuda
    if shutil.which("nvidia-smi"):
        q = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,driver_version,memory.total,uuid",
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        env["nvidia_smi"] = q.stdout.strip() or q.stderr.strip()
    try:
        env["runtime_numpy_probe"] = runtime_probe()
    except Exception as e:
        env["runtime_numpy_probe"] = {"error": repr(e)}
    return env


def gpu_available() -> tuple[bool, str]:
    import torch

    from inferline.runtime.local import gpu_visible

    if not gpu_visible():
        return False, "no /dev/nvidia* device"
    if not torch.cuda.is_available():
        return False, "torch.cuda.is_available() is False"
    return True, ""


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def markdown(env: dict[str, Any], results: list[DeviceResult]) -> str:
    lines = ["# Inferline GPU check", ""]
    lines.append(
        f"GPU: {env.get('nvidia_smi') or env.get('gpu') or 'none'}; torch {env['torch']}"
        f" (CUDA {env.get('torch_cuda', '-')}); numpy {env['numpy']}; python {env['python']};"
        f" {env['cpu_count']} CPUs"
    )
    lines.append("")
    lines.append("## Loading and correctness")
    lines.append("")
    lines.append(
        "| device | loaded | load s | instance kinds | ON_GPU (Z, LOGITS, TREE) at post "
        "| max rel err (LOGITS / TREE / PROBS / SCORE) | result |"
    )
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        if not r.available:
            lines.append(f"| {r.device} | not available ({r.note}) | | | | | skipped |")
            continue
        kinds = sorted({k for c in r.config_checks.values() for k in c["instance_kinds"]})
        errs = []
        for name in ("LOGITS", "TREE", "PROBS", "SCORE"):
            vals = [
                e[name]["rel_err"]
                for e in r.correctness.values()
                if isinstance(e.get(name), dict) and "rel_err" in e[name]
            ]
            errs.append(f"{max(vals):.1e}" if vals else "-")
        status = "FAIL" if r.error or r.failures else "ok"
        lines.append(
            f"| {r.device} | {'yes' if r.load_seconds else 'no'} | {_fmt(r.load_seconds, 1)} "
            f"| {', '.join(kinds)} | {r.on_gpu_flags} | {' / '.join(errs)} | {status} |"
        )
    lines.append("")
    for r in results:
        for line in r.step_log:
            lines.append(f"- {r.device} python step: {line}")
        for name, chk in sorted(r.config_checks.items()):
            lines.append(
                f"- {r.device} {name}: {r.served_as.get(name.removeprefix(PIPELINE + '-'), '')}"
                f" backend={chk['backend']} {chk['instance_kinds']}"
                f" FORCE_CPU_ONLY_INPUT_TENSORS={chk['FORCE_CPU_ONLY_INPUT_TENSORS']}"
                f" dynamic_batching={chk['dynamic_batching']}"
            )
    lines.append("")
    lines.append("## Latency (sequential requests, one HTTP client)")
    lines.append("")
    lines.append("| device | batch | requests | p50 ms | p95 ms | mean ms | min ms |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        for lat in r.latency:
            lines.append(
                f"| {r.device} | {lat['batch']:.0f} | {lat['requests']:.0f} "
                f"| {_fmt(lat['p50_ms'])} | {_fmt(lat['p95_ms'])} | {_fmt(lat['mean_ms'])} "
                f"| {_fmt(lat['min_ms'])} |"
            )
    lines.append("")
    lines.append("## Throughput (concurrent client processes, HTTP)")
    lines.append("")
    lines.append("| device | batch | clients | seconds | requests/s | samples/s |")
    lines.append("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        for tp in r.throughput:
            lines.append(
                f"| {r.device} | {tp['batch']:.0f} | {tp['clients']:.0f} | {tp['seconds']:.0f} "
                f"| {_fmt(tp['req_per_s'], 1)} | {_fmt(tp['samples_per_s'], 0)} |"
            )
    lines.append("")
    lines.append("## Server metrics (nv_inference_request_summary_us, microseconds)")
    lines.append("")
    lines.append("| device | model | count | p50 | p90 | p95 | p99 |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        for model, q in sorted(r.metrics.get("request_summary_us", {}).items()):
            lines.append(
                f"| {r.device} | {model} | {q.get('count', 0):.0f} | {_fmt(q.get('p50'), 0)} "
                f"| {_fmt(q.get('p90'), 0)} | {_fmt(q.get('p95'), 0)} | {_fmt(q.get('p99'), 0)} |"
            )
    lines.append("")
    for r in results:
        if r.metrics:
            g = r.metrics["gpu_metrics"]
            seen = [
                f"{name} {'present ' + str(g[name]) if name in g else 'absent'}"
                for name in ("nv_gpu_utilization", "nv_gpu_memory_used_bytes")
            ]
            lines.append(f"- {r.device} /metrics: {'; '.join(seen)}")
        for f in r.failures:
            lines.append(f"- {r.device} FAILED CHECK: {f}")
        if r.error:
            lines.append(f"- {r.device} ERROR: {r.error.strip().splitlines()[-1]}")
    return "\n".join(lines) + "\n"


def result_tag(env: dict[str, Any]) -> str:
    gpu = env.get("gpu")
    if not gpu:
        return "cpu-only"
    return re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="GPU,CPU", help="comma-separated: GPU,CPU")
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per batch")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load test")
    parser.add_argument("--clients", type=int, default=4, help="client processes at batch 64")
    parser.add_argument("--ready-timeout", type=float, default=240.0)
    parser.add_argument("--out", type=Path, default=None, help="default: $OUT or bench/results")
    args = parser.parse_args()

    try:
        import inferline  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO / "operator"))

    out_dir = args.out or (Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    out_dir = out_dir or REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)

    env = environment()
    print(f"environment: {json.dumps(env)}", flush=True)
    results: list[DeviceResult] = []
    with tempfile.TemporaryDirectory(prefix="gpucheck-") as tmp:
        work = Path(tmp)
        art_dir = work / "artifacts"
        art_dir.mkdir()
        art = build_artifacts(art_dir)
        for device in [d.strip().upper() for d in args.devices.split(",") if d.strip()]:
            print(f"== {device}", flush=True)
            if device == "GPU":
                ok, why = gpu_available()
                if not ok:
                    print(f"  GPU not available: {why}", flush=True)
                    results.append(DeviceResult("GPU", False, why))
                    continue
            try:
                results.append(run_device(art, device, work, args, out_dir))
            except Exception:
                results.append(DeviceResult(device, True, error=traceback.format_exc()))
                print(results[-1].error, flush=True)

    table = markdown(env, results)
    tag = result_tag(env)
    payload = {
        "environment": env,
        "pipeline": {
            "name": PIPELINE,
            "mlp": [N_FEATURES, HIDDEN, HIDDEN, N_CLASSES],
            "trees": {"rounds": 200, "max_depth": 6},
            "max_batch_size": MAX_BATCH,
            "rel_tol": REL_TOL,
        },
        "results": [r.__dict__ for r in results],
    }
    (out_dir / f"gpu_check_{tag}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out_dir / f"gpu_check_{tag}.md").write_text(table)
    print(table, flush=True)
    failed = [r for r in results if r.available and (r.error or r.failures)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
