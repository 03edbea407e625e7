"""Baseline (a): the encoder alone in plain PyTorch, in one process (the ceiling for serving).

    python bench/dataplane/plain_torch.py --out FILE.json [--batches 1,8,64,512]
        [--graph-batches 1,8] [--compile-batches 512] [--seconds 1.0]

Variants, all on the benchmark's encoder and real tokenized passages (not zeros):

- eager        the nn.Module in FP16 under inference_mode (what a team runs);
- torchscript  the served artifact (encoder-fp16.pt) as the adapter loads it;
- cuda-graph   the eager module captured once per batch size and replayed (no launch cost);
- compile      torch.compile (inductor, default mode, static shapes).

Each (variant, batch) is warmed up, then timed with CUDA events per call for about `seconds`;
the median call time gives samples/s. `reps` such runs; the JSON keeps each and the median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import encoder as encoder_mod  # noqa: E402
import torch  # noqa: E402
from build_artifacts import passages  # noqa: E402
from handmade import ARTIFACTS, Steps, load_eager_encoder  # noqa: E402
from textfeatures import all_features  # noqa: E402


def time_calls(fn: Any, seconds: float, min_calls: int = 5, max_calls: int = 400) -> list[float]:
    """Milliseconds per call, each timed with CUDA events (or perf_counter on CPU)."""
    cuda = torch.cuda.is_available()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < min_calls or (time.perf_counter() < deadline and len(times) < max_calls):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def measure(fn: Any, batch: int, warmup: int, seconds: float, reps: int) -> dict[str, Any]:
    for _ in range(warmup):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    runs = []
    for _ in range(reps):
        t = time_calls(fn, seconds)
        med = statistics.median(t)
        runs.append({"calls": len(t), "median_ms": med, "samples_per_s": batch * 1e3 / med})
    return {
        "batch": batch,
        "runs": runs,
        "median_ms": statistics.median(r["median_ms"] for r in runs),
        "samples_per_s": statistics.median(r["samples_per_s"] for r in runs),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--batches", default="1,2,4,8,16,32,64,128,256,512")
    p.add_argument("--graph-batches", default="1,8,64")
    p.add_argument("--compile-batches", default="512")
    p.add_argument("--variants", default="eager,torchscript,cuda-graph,compile")
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--artifacts", type=Path, default=ARTIFACTS)
    args = p.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    batches = [int(b) for b in args.batches.split(",") if b]
    variants = args.variants.split(",")
    build = json.loads((args.artifacts / "build.json").read_text())
    shape = encoder_mod.SHAPES[build["shape"]]
    flops = shape.flops_per_sample(128)

    pre = Steps("cpu", args.artifacts, load=("preprocess",))
    texts = passages(max([*batches, 1]), seed=99)
    # What the pipeline's python pre-processing costs per passage on one core (the profile
    # behind the preprocess step's instance count).
    t0 = time.perf_counter()
    for t in texts:
        pre.tokenizer.encode(t)
    t1 = time.perf_counter()
    for t in texts:
        all_features(t)
    t2 = time.perf_counter()
    preprocess_cpu = {
        "passages": len(texts),
        "mean_words": sum(len(t.split()) for t in texts) / len(texts),
        "tokenize_ms": (t1 - t0) * 1e3 / len(texts),
        "features_ms": (t2 - t1) * 1e3 / len(texts),
    }
    print(f"[plain_torch] preprocess on one core: {preprocess_cpu}", flush=True)
    ids_all, mask_all, _ = pre.preprocess(texts)
    ids_all = torch.from_numpy(ids_all).to(device)
    mask_all = torch.from_numpy(mask_all).to(device)

    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "dtype": "float16" if device == "cuda" else "float32",
        "flops_per_sample": flops,
        "mean_tokens": float(mask_all.float().sum(1).mean()),
        "preprocess_cpu": preprocess_cpu,
        "variants": {},
    }

    def save() -> None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")

    eager = load_eager_encoder(args.artifacts, device)
    scripted = None
    if "torchscript" in variants:
        name = "encoder-fp16.pt" if device == "cuda" else "encoder-fp32.pt"
        scripted = torch.jit.load(str(args.artifacts / name), map_location=device).eval()

    def run(variant: str, model: Any, bs: list[int], warmup: int) -> None:
        out = result["variants"].setdefault(variant, [])
        for b in bs:
            ids, mask = ids_all[:b].contiguous(), mask_all[:b].contiguous()

            def call(model: Any = model, ids: Any = ids, mask: Any = mask) -> Any:
                with torch.inference_mode():
                    return model(ids, mask)

            t0 = time.monotonic()
            m = measure(call, b, warmup, args.seconds, args.reps)
            m["tflops"] = m["samples_per_s"] * flops / 1e12
            m["wall_s"] = time.monotonic() - t0
            out.append(m)
            print(
                f"[plain_torch] {variant} batch {b}: {m['median_ms']:.2f} ms, "
                f"{m['samples_per_s']:.0f} samples/s, {m['tflops']:.0f} TFLOP/s",
                flush=True,
            )
            save()

    if "eager" in variants:
        run("eager", eager, batches, warmup=3)
    if scripted is not None:
        run("torchscript", scripted, batches, warmup=5)  # the profiling executor needs 2+
    if "cuda-graph" in variants and device == "cuda":
        out = result["variants"].setdefault("cuda-graph", [])
        for b in [int(x) for x in args.graph_batches.split(",") if x]:
            ids, mask = ids_all[:b].clone(), mask_all[:b].clone()
            with torch.inference_mode():
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    for _ in range(3):
                        eager(ids, mask)
                torch.cuda.current_stream().wait_stream(s)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    eager(ids, mask)
            m = measure(graph.replay, b, 3, args.seconds, args.reps)
            m["tflops"] = m["samples_per_s"] * flops / 1e12
            out.append(m)
            print(f"[plain_torch] cuda-graph batch {b}: {m['median_ms']:.2f} ms", flush=True)
            save()
            del graph
    if "compile" in variants and device == "cuda":
        os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
        compiled = torch.compile(eager, dynamic=False)
        t0 = time.monotonic()
        run("compile", compiled, [int(x) for x in args.compile_batches.split(",") if x], 3)
        result["compile_wall_s"] = time.monotonic() - t0
        save()
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
