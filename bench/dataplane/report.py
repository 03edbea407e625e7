#!/usr/bin/env python3
"""Tables (markdown) and plots (PNG) from data-plane runs (run.py's dataplane.json).

    python bench/dataplane/report.py FULL.json [--batch512 B512.json] [--levers512 LEV.json]
        [--out bench/results] [--tag nvidia-h200]

FULL is a `--profile full` run; B512, optionally, a `--profile batch512` run (batch 512 with
longer windows and more clients, with its own plain-PyTorch ceiling); LEV, optionally, a
`--profile levers512` run (the all-GPU layout as shipped against two encoder instances and a
one-thread tokenizer, and baseline (b), at batch 512). Targets are judged within one run each.
Writes OUT/dataplane_TAG.md (with an addendum for LEV), OUT/dataplane_TAG_levers512.md (LEV in
full) and OUT/dataplane_TAG_{batch,load}.png; numpy and matplotlib only, so it runs where the
JSON is (not on the GPU machine).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Any

LABELS = {
    "all-gpu": "Inferline, all GPU",
    "models-gpu": "Inferline, pre/post CPU + models GPU",
    "all-cpu": "Inferline, all CPU",
    "all-gpu-onepre": "Inferline, all GPU, one preprocess step",
    "all-gpu-plain": "Inferline, all GPU, levers off",
    "all-gpu-2enc": "Inferline, all GPU, two encoder instances of 512",
    "all-gpu-tok1": "Inferline, all GPU, one tokenizer thread",
    "monolith": "(b) one Python process + HTTP",
    "chain": "(c) server per model + HTTP router",
}
SERVED = list(LABELS)
Res = dict[str, Any]


def fmt(v: float | None, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.{digits}f}"


def points(res: Res, name: str) -> list[dict[str, Any]]:
    return res["systems"].get(name, {}).get("points", [])


def point(res: Res, name: str, batch: int, conc: int) -> dict[str, Any] | None:
    return next(
        (p for p in points(res, name) if p["batch"] == batch and p["concurrency"] == conc), None
    )


def best(res: Res, name: str, batch: int | None = None) -> dict[str, Any] | None:
    ps = [p for p in points(res, name) if (batch is None or p["batch"] == batch)]
    ps = [p for p in ps if p.get("samples_per_s")]
    return max(ps, key=lambda p: p["samples_per_s"]) if ps else None


def plain(res: Res, variant: str, batch: int) -> dict[str, Any] | None:
    for name in ("plain-torch", "plain-torch-compile"):
        extra = res["systems"].get(name, {}).get("extra", {})
        for m in extra.get("variants", {}).get(variant, []):
            if m["batch"] == batch:
                return m
    return None


def tput(p: dict[str, Any] | None) -> float | None:
    return p["samples_per_s"] if p else None


def pooled(p: dict[str, Any] | None) -> float | None:
    """Samples/s over all repetitions' windows together (the median of windows moves in steps
    of batch / window: 128 samples/s at batch 512 in 4 s windows)."""
    if not p or not p.get("reps"):
        return None
    done = sum(r["requests"] for r in p["reps"])
    return done * p["batch"] / (len(p["reps"]) * p["window_s"])


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def met(r: float | None, threshold: float) -> str:
    return "-" if r is None else ("**yes**" if r >= threshold else "**no**")


def where(p: dict[str, Any] | None) -> str:
    return f"batch {p['batch']} x {p['concurrency']} clients" if p else "-"


# ---- markdown --------------------------------------------------------------------------------


def seed_table(runs: list[tuple[str, Res]]) -> list[str]:
    full = runs[0][1]
    rows = [
        "| pipeline | p50, batch 1 (ms) | p50, batch 512, one client (ms) "
        "| best throughput at batch 512 (samples/s) | where |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in SERVED:
        if not points(full, name):  # not in this run, or cut short before its first point
            continue
        b1, b512 = point(full, name, 1, 1), point(full, name, 512, 1)
        cands = [(best(r, name, 512), label) for label, r in runs]
        top, label = max(cands, key=lambda c: tput(c[0]) or 0)
        if name == "all-cpu":  # BERT-large in FP32 on CPU: batch 512 takes minutes
            top, label = best(full, name), runs[0][0]
        rows.append(
            f"| {LABELS[name]} | {fmt(b1['p50_ms'] if b1 else None, 2)} "
            f"| {fmt(b512['p50_ms'] if b512 else None, 0)} | {fmt(tput(top))} "
            f"| {where(top)}, {label} |"
        )
    for label, r in runs:
        for variant in ("eager", "torchscript", "compile"):
            a1, a512 = plain(r, variant, 1), plain(r, variant, 512)
            if a512:
                rows.append(
                    f"| (a) encoder alone, {variant} FP16 | "
                    f"{fmt(a1['median_ms'] if a1 else None, 2)} | {fmt(a512['median_ms'], 0)} "
                    f"| {fmt(a512['samples_per_s'])} | {label} |"
                )
    return rows


def targets(runs: list[tuple[str, Res]]) -> list[str]:
    full = runs[0][1]
    rows = ["| target | run | measured | met |", "| --- | --- | --- | --- |"]
    for label, r in runs:
        g = best(r, "all-gpu", 512)
        for variant in ("eager", "compile"):
            a = plain(r, variant, 512)
            q = ratio(tput(g), tput(a))
            rows.append(
                f"| all-GPU at batch 512 >= 90% of (a) {variant} | {label} | {fmt(tput(g))} "
                f"({where(g)}) vs {fmt(tput(a))} = {fmt(100 * q if q else None, 1)}% "
                f"| {met(q, 0.9)} |"
            )
    g, cpu = best(full, "all-gpu", 512), best(full, "all-cpu")
    q = ratio(tput(g), tput(cpu))
    rows.append(
        f"| all-GPU >= 30x all-CPU | {runs[0][0]} | {fmt(tput(g))} vs {fmt(tput(cpu), 1)} "
        f"({where(cpu)}) = {fmt(q)}x | {met(q, 30)} |"
    )
    for label, r in runs:
        for base in ("monolith", "chain"):
            for p in points(r, "all-gpu"):
                b = point(r, base, p["batch"], p["concurrency"])
                if p["concurrency"] == 1 or not b:
                    continue
                q = ratio(tput(p), tput(b))
                rows.append(
                    f"| >= 2x {LABELS[base]}, {where(p)} | {label} | {fmt(tput(p))} vs "
                    f"{fmt(tput(b))} = {fmt(q, 2)}x | {met(q, 2)} |"
                )
    b1 = point(full, "all-gpu", 1, 1)
    v = b1["p50_ms"] if b1 else None
    ok = "-" if v is None else ("**yes**" if v < 10 else "**no**")
    rows.append(
        f"| all-GPU batch-1 p50 < 10 ms end to end | {runs[0][0]} | {fmt(v, 2)} ms | {ok} |"
    )
    return rows


def compare(full: Res, other: str, what: str) -> list[str]:
    """The all-GPU layout against `other` (a variant of it) at the points both measured."""
    rows = [
        f"| point | {what}: samples/s, p50 ms | as shipped: samples/s, p50 ms | encoder step "
        "(compute per request, that -> as shipped) |",
        "| --- | --- | --- | --- |",
    ]
    for p in points(full, other):
        on = point(full, "all-gpu", p["batch"], p["concurrency"])
        if not on:
            continue
        enc_off = (p.get("steps") or {}).get(f"{other}-encoder", {})
        enc_on = (on.get("steps") or {}).get("all-gpu-encoder", {})
        rows.append(
            f"| {where(p)} | {fmt(tput(p))}, {fmt(p['p50_ms'], 2)} | {fmt(tput(on))}, "
            f"{fmt(on['p50_ms'], 2)} | {fmt(enc_off.get('compute_infer_us', 0) / 1e3, 2)} -> "
            f"{fmt(enc_on.get('compute_infer_us', 0) / 1e3, 2)} ms |"
        )
    return rows


def levers_off(full: Res, levers: Res | None) -> list[str]:
    """From the full run, or else the levers512 run (each against its own all-GPU points)."""
    if points(full, "all-gpu-plain") or not levers or not points(levers, "all-gpu-plain"):
        return compare(full, "all-gpu-plain", "levers off")
    return [
        "From the levers512 run (the full run ran out of time before this system), against "
        "the all-GPU layout in the same run (4 s windows):",
        "",
        *compare(levers, "all-gpu-plain", "levers off"),
    ]


def plain_table(label: str, res: Res) -> list[str]:
    lines = [
        f"{label}:",
        "",
        "| variant | batch | ms per batch | samples/s | TFLOP/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in ("plain-torch", "plain-torch-compile"):
        s = res["systems"].get(name, {})
        for variant, ms in s.get("extra", {}).get("variants", {}).items():
            for m in ms:
                lines.append(
                    f"| {variant} | {m['batch']} | {fmt(m['median_ms'], 2)} "
                    f"| {fmt(m['samples_per_s'])} | {fmt(m.get('tflops'))} |"
                )
        if s.get("extra", {}).get("compile_wall_s"):
            lines.append(f"\ntorch.compile took {s['extra']['compile_wall_s']:.0f} s.")
        if s.get("error"):
            lines.append(f"\n{name} error: `{s['error'].strip().splitlines()[-1][:300]}`")
    pc = res["systems"].get("plain-torch", {}).get("extra", {}).get("preprocess_cpu")
    if pc:
        lines += [
            "",
            f"Python pre-processing on one core ({pc['passages']} passages, "
            f"{pc['mean_words']:.0f} words on average): tokenizing {pc['tokenize_ms']:.2f} ms and "
            f"the 207 features {pc['features_ms']:.2f} ms per passage.",
        ]
    return lines


def system_tables(label: str, res: Res) -> list[str]:
    lines: list[str] = []
    for name in SERVED:
        s = res["systems"].get(name)
        if not s:
            continue
        extra = s.get("extra", {})
        lines += ["", f"### {LABELS[name]} ({label})", ""]
        if extra.get("command"):
            lines += [f"`{extra['command']}`", ""]
        chk = s.get("check") or {}
        if chk:
            lines.append(
                f"Ready in {fmt(s.get('ready_s'), 1)} s; warm-up "
                f"{fmt(extra.get('warmup_s'), 1)} s; "
                f"scores of {len(chk['scores'])} passages against the FP32 CPU reference: max "
                f"relative error {chk['max_rel_err']:.1e} ({'ok' if chk.get('ok') else 'NOT OK'})."
            )
        if extra.get("graph_capture_failures"):
            lines.append(f"CUDA graph capture failed: `{extra['graph_capture_failures'][0]}`")
        if s.get("error"):
            lines.append(f"\nError: `{s['error'].strip().splitlines()[-1][:300]}`")
        lines += [
            "",
            "| batch | clients | samples/s (min-max of reps) | p50 ms | p95 ms | GPU util % |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for p in s.get("points", []):
            lo, hi = p.get("samples_per_s_range") or [None, None]
            gpu = (p.get("gpu") or {}).get("gpu_util_mean")
            lines.append(
                f"| {p['batch']} | {p['concurrency']} | {fmt(tput(p))} ({fmt(lo)}-{fmt(hi)}) "
                f"| {fmt(p['p50_ms'], 2)} | {fmt(p['p95_ms'], 2)} | {fmt(gpu)} |"
            )
        if extra.get("points_skipped"):
            lines.append(f"\nNot measured (time): {extra['points_skipped']}")
    return lines


def step_tables(label: str, res: Res) -> list[str]:
    lines: list[str] = []
    for name in SERVED:
        for p in points(res, name):
            steps = p.get("steps")
            if not steps:
                continue
            lines += [
                "",
                f"**{LABELS[name]}, {where(p)}** ({label}; end to end p50 "
                f"{fmt(p['p50_ms'], 2)} ms, {fmt(tput(p))} samples/s):",
                "",
                "| model | requests | mean batch | request ms | queue ms | compute in ms "
                "| compute infer ms | compute out ms |",
                "| --- | --- | --- | --- | --- | --- | --- | --- |",
            ]
            for model, d in sorted(steps.items()):
                lines.append(
                    f"| {model} | {fmt(d['requests'])} | {fmt(d['mean_batch'], 1)} "
                    + " ".join(
                        f"| {fmt(d[k] / 1e3, 2)}"
                        for k in (
                            "request_us",
                            "queue_us",
                            "compute_input_us",
                            "compute_infer_us",
                            "compute_output_us",
                        )
                    )
                    + " |"
                )
    return lines


def gpu_name(env: Res) -> str:
    """ "H100" from "NVIDIA H100 80GB HBM3, 580.159.04, ..." (the first model-like word)."""
    smi = str(env.get("nvidia_smi") or env.get("gpu") or "")
    m = re.search(r"\b([A-Z]+\d+[A-Z]*)\b", smi.split(",")[0])
    return m.group(1) if m else "no GPU"


def markdown(
    runs: list[tuple[str, Res]], plots: list[str], levers: Res | None = None, tag: str = ""
) -> str:
    full = runs[0][1]
    env, art = full["environment"], full["artifacts"]
    lines = [
        f"# Data plane: Inferline's three layouts against three baselines ({gpu_name(env)})",
        "",
        f"GPU: {env.get('nvidia_smi') or env.get('gpu') or 'none'}. CPU: {env.get('cpu_model')}, "
        f"{env.get('cpu_count')} cores; kernel {env.get('kernel')}. Python {env['python']}, "
        f"torch {env['torch']} (CUDA {env.get('torch_cuda')}), numpy {env['numpy']} (the "
        f"stub's), xgboost {env.get('xgboost')}, tokenizers {env.get('tokenizers')}; "
        "tritonserver 2.51.0 from nvidia-pytriton 0.7.0 (python backend only).",
        "",
        f"Pipeline: encoder `{art['shape']}` ({fmt(art['encoder']['parameters'])} parameters, "
        f"{art['seq']} tokens, FP16 on GPU, FP32 on CPU), a forest of {art['forest']['trees']} "
        f"trees (depth 16, {art['forest']['nodes']:,} nodes) on {art['forest']['features']} "
        "features, python pre/post-processing (bench/dataplane/pipeline/).",
        "",
    ]
    for label, r in runs:
        lines.append(
            f"- {label}: {r['started']}, {fmt(r.get('elapsed_s'))} s: `{r['command']}`"
            + (f" (skipped for time: {', '.join(r['skipped'])})" if r.get("skipped") else "")
        )
    lines += [
        "",
        "## The seed's table, on this machine",
        "",
        *seed_table(runs),
        "",
        "## Targets",
        "",
        *targets(runs),
        "",
        "## What the levers are worth (all GPU: instances, dynamic batching, CUDA graphs off/on)",
        "",
        *levers_off(full, levers),
        "",
        "## What running tokenize and features side by side is worth (all GPU)",
        "",
        "As shipped, the pipeline tokenizes (for the encoder) and computes the trees' features "
        "in two steps side by side; `all-gpu-onepre` does both in one preprocess step, as the "
        "seed's pipeline does, so the encoder waits for the features.",
        "",
        *compare(full, "all-gpu-onepre", "one preprocess step"),
        "",
        "## (a) The encoder alone in plain PyTorch",
        "",
    ]
    for label, r in runs:
        lines += [*plain_table(label, r), ""]
    lines += [
        "## Every point",
        "",
        "Closed-loop clients (loadgen.py); each request carries `batch` passages; samples/s, p50 "
        "and p95 are medians over the repetitions (windows of 1.2 s in the full run, 4 s in the "
        "batch-512 run: at batch 512 one completion more or less in a window moves samples/s by "
        "512 / window).",
    ]
    for label, r in runs:
        lines += system_tables(label, r)
    lines += [
        "",
        "## Where the time goes (Triton's per-model counters over each point)",
        "",
        "Per request of each model: the time in its queue and in compute (input, infer, "
        "output); mean batch = inferences per execution (the dynamic batcher's work).",
    ]
    for label, r in runs:
        lines += step_tables(label, r)
    lines += ["", *[f"![{p}]({p})" for p in plots]]
    if levers:
        lines += [
            "",
            "## Addendum: the levers at batch 512 (levers512 run)",
            "",
            f"{levers['started']}, {fmt(levers.get('elapsed_s'))} s: `{levers['command']}`; "
            f"every point and step in [dataplane_{tag}_levers512.md]"
            f"(dataplane_{tag}_levers512.md).",
            "",
            *levers_summary(levers),
        ]
    return "\n".join(lines) + "\n"


# ---- the levers at batch 512 (--profile levers512) -------------------------------------------


def encoder_settings(res: Res, name: str) -> str:
    """Instances and maxBatchSize of the encoder, as served (from the rendered config)."""
    config = res["systems"][name].get("extra", {}).get("configs", {}).get(f"{name}-encoder", "")
    count = re.search(r"count: (\d+)", config)
    mbs = re.search(r"max_batch_size: (\d+)", config)
    return f"{count.group(1) if count else '?'} x {mbs.group(1) if mbs else '?'}"


def tokenizer_threads(res: Res, name: str) -> str:
    configs = res["systems"][name].get("extra", {}).get("configs", {})
    config = configs.get(f"{name}-tokenize") or configs.get(f"{name}-preprocess", "")
    m = re.search(r'key: "TOKENIZER_THREADS"\s*value\s*\{\s*string_value: "(\d+)"', config)
    return m.group(1) if m else "1"


def step_ms(p: dict[str, Any] | None, step: str) -> float | None:
    """Compute (input + infer + output) per execution of `step` at point `p`, in ms."""
    s = ((p or {}).get("steps") or {}).get(step)
    if not s:
        return None
    return float(s["compute_input_us"] + s["compute_infer_us"] + s["compute_output_us"]) / 1e3


LEVERS = ("all-gpu", "all-gpu-onepre", "all-gpu-2enc", "all-gpu-tok1")


def features_step(res: Res, name: str) -> str:
    """The step that computes the trees' features: its own (features) or the one preprocess."""
    configs = res["systems"][name].get("extra", {}).get("configs", {})
    return f"{name}-features" if f"{name}-features" in configs else f"{name}-preprocess"


def levers_summary(res: Res) -> list[str]:
    eager, script = plain(res, "eager", 512), plain(res, "torchscript", 512)
    b4, b8 = tput(point(res, "monolith", 512, 4)), tput(point(res, "monolith", 512, 8))
    rows = [
        f"(a) in the same run, batch 512: eager {fmt(tput(eager))} samples/s "
        f"({fmt(eager['median_ms'] if eager else None, 1)} ms), TorchScript "
        f"{fmt(tput(script))} samples/s; (b) one Python process: {fmt(b4)} samples/s at 512 x 4, "
        f"{fmt(b8)} at 512 x 8. Samples/s: the median of the three 4 s windows (the benchmark's "
        "measure) and, after the slash, all windows pooled.",
        "",
        "| pipeline | encoder instances x maxBatchSize | tokenizer threads "
        "| 512 x 16: samples/s | % of (a) eager | 512 x 8: samples/s | x (b) "
        "| 512 x 4: samples/s | x (b) | batch 1 p50 ms "
        "| encoder per execution at 512 x 16 (mean batch) "
        "| features (or preprocess) per request at 512 x 4 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in LEVERS:
        if name not in res["systems"]:
            continue
        p16, p8, p4 = (point(res, name, 512, c) for c in (16, 8, 4))
        b1 = point(res, name, 1, 1)
        enc = ((p16 or {}).get("steps") or {}).get(f"{name}-encoder", {})
        q_med, q_all = ratio(tput(p16), tput(eager)), ratio(pooled(p16), tput(eager))
        x8, x4 = ratio(tput(p8), b8), ratio(tput(p4), b4)
        rows.append(
            f"| {LABELS[name]} | {encoder_settings(res, name)} | {tokenizer_threads(res, name)} "
            f"| {fmt(tput(p16))} / {fmt(pooled(p16))} "
            f"| {fmt(100 * q_med if q_med else None, 1)} / "
            f"{fmt(100 * q_all if q_all else None, 1)} "
            f"| {fmt(tput(p8))} / {fmt(pooled(p8))} | {fmt(x8, 2)} "
            f"| {fmt(tput(p4))} / {fmt(pooled(p4))} | {fmt(x4, 2)} "
            f"| {fmt(b1['p50_ms'] if b1 else None, 2)} "
            f"| {fmt(step_ms(p16, f'{name}-encoder'), 1)} ms ({fmt(enc.get('mean_batch'), 0)}) "
            f"| {fmt(step_ms(p4, features_step(res, name)), 0)} ms |"
        )
    return rows


def levers_markdown(res: Res, tag: str) -> str:
    env = res["environment"]
    label = "levers512 run"
    lines = [
        f"# Data plane, the all-GPU layout's levers at batch 512 ({gpu_name(env)})",
        "",
        f"GPU: {env.get('nvidia_smi') or env.get('gpu') or 'none'}. CPU: {env.get('cpu_model')}, "
        f"{env.get('cpu_count')} cores. Python {env['python']}, torch {env['torch']}. "
        f"{res['started']}, {fmt(res.get('elapsed_s'))} s: `{res['command']}`",
        "",
        "The all-GPU layout as shipped (bench/dataplane/pipeline/models.yaml + all-gpu.yaml: "
        "tokenize and features side by side, one encoder instance of maxBatchSize 1,024, the "
        "tokenizer on 4 threads) against `all-gpu-onepre` (all-gpu-onepre.yaml: tokens and "
        "features in one preprocess step) and two variants that change Model fields only "
        "(run.py's VARIANTS): `all-gpu-2enc`, two encoder instances of maxBatchSize 512; "
        "`all-gpu-tok1`, the tokenizer on one thread.",
        "",
        *levers_summary(res),
        "",
        "## (a) The encoder alone in plain PyTorch",
        "",
        *plain_table(label, res),
        "",
        "## Every point",
        "",
        "Closed-loop clients (loadgen.py), 1.5 s warm-up, then three 4 s windows per point.",
        *system_tables(label, res),
        "",
        "## Where the time goes (Triton's per-model counters over each point)",
        "",
        "Per request of each model: the time in its queue and in compute (input, infer, "
        "output); mean batch = inferences per execution (the dynamic batcher's work). Triton "
        "charges each request of a batched execution the whole execution's time (the "
        "encoder batching 1,024: one execution of two requests, not two executions).",
        *step_tables(label, res),
    ]
    return "\n".join(lines) + "\n"


# ---- plots -----------------------------------------------------------------------------------


def plot(runs: list[tuple[str, Res]], out: Path, tag: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    full = runs[0][1]
    names = []
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    for name in SERVED:
        ps = sorted(
            (p for p in points(full, name) if p["concurrency"] == 1 and p["p50_ms"]),
            key=lambda p: p["batch"],
        )
        if ps:
            xs = [p["batch"] for p in ps]
            ax1.plot(xs, [p["samples_per_s"] for p in ps], "o-", label=LABELS[name])
            ax2.plot(xs, [p["p50_ms"] for p in ps], "o-", label=LABELS[name])
    for variant, style in (("eager", "k--"), ("torchscript", "k:"), ("cuda-graph", "kx")):
        ms = sorted(
            full["systems"]
            .get("plain-torch", {})
            .get("extra", {})
            .get("variants", {})
            .get(variant, []),
            key=lambda m: m["batch"],
        )
        if ms:
            label = f"(a) encoder alone, {variant}"
            xs = [m["batch"] for m in ms]
            ax1.plot(xs, [m["samples_per_s"] for m in ms], style, label=label)
            ax2.plot(xs, [m["median_ms"] for m in ms], style, label=label)
    for ax, title, unit in (
        (ax1, "throughput, one client", "samples/s"),
        (ax2, "p50 latency, one client (red: 10 ms)", "ms"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch (passages per request)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    ax2.axhline(10, color="r", lw=0.8, ls="--")
    ax1.legend(fontsize=7)
    fig.tight_layout()
    f = f"dataplane_{tag}_batch.png"
    fig.savefig(out / f, dpi=110)
    plt.close(fig)
    names.append(f)

    loads = []
    for label, r in runs:
        for p in points(r, "all-gpu"):
            if p["concurrency"] > 1:
                loads.append((label, r, p["batch"], p["concurrency"]))
    systems = [n for n in SERVED if n != "all-cpu" and any(n in r["systems"] for _, r in runs)]
    fig, ax = plt.subplots(figsize=(14, 5))
    width = 0.8 / len(systems)
    for i, name in enumerate(systems):
        vals = [tput(point(r, name, b, c)) or 0 for _, r, b, c in loads]
        ax.bar(np.arange(len(loads)) + i * width, vals, width, label=LABELS[name])
    ceil = [tput(plain(r, "eager", 512)) for _, r, _, _ in loads]
    for j, (c, (_, _, b, _)) in enumerate(zip(ceil, loads, strict=True)):
        if b == 512 and c:
            ax.hlines(c, j - 0.05, j + 0.8, colors="k", linestyles="--", lw=0.8)
    ax.set_xticks(np.arange(len(loads)) + width * (len(systems) - 1) / 2)
    ax.set_xticklabels([f"batch {b}\n{c} clients\n{label}" for label, _, b, c in loads], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("samples/s")
    ax.set_title("throughput under concurrent load (dashed: (a) eager at batch 512)")
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    f = f"dataplane_{tag}_load.png"
    fig.savefig(out / f, dpi=110)
    plt.close(fig)
    names.append(f)
    return names


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("results", type=Path, help="a --profile full run's dataplane.json")
    p.add_argument("--batch512", type=Path, help="a --profile batch512 run's dataplane.json")
    p.add_argument("--levers512", type=Path, help="a --profile levers512 run's dataplane.json")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "results")
    p.add_argument("--tag", default="nvidia-h200")
    args = p.parse_args()
    runs = [("full run", json.loads(args.results.read_text()))]
    if args.batch512:
        runs.append(("batch-512 run", json.loads(args.batch512.read_text())))
    args.out.mkdir(parents=True, exist_ok=True)
    plots = plot(runs, args.out, args.tag)
    levers = json.loads(args.levers512.read_text()) if args.levers512 else None
    (args.out / f"dataplane_{args.tag}.md").write_text(markdown(runs, plots, levers, args.tag))
    if levers:
        (args.out / f"dataplane_{args.tag}_levers512.md").write_text(
            levers_markdown(levers, args.tag)
        )
    print(f"wrote {args.out / f'dataplane_{args.tag}.md'} and {', '.join(plots)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
