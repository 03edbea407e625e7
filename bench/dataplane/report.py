#!/usr/bin/env python3
"""Tables (markdown) and plots (PNG) from a data-plane run's dataplane.json.

    python bench/dataplane/report.py RESULTS.json [--out bench/results] [--tag nvidia-h200]

Writes OUT/dataplane_TAG.md and OUT/dataplane_TAG_{throughput,latency,load}.png. Runs where
the JSON is (here, not on the GPU machine): numpy and matplotlib only.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

SYSTEM_LABELS = {
    "all-gpu": "Inferline, all GPU",
    "models-gpu": "Inferline, pre/post CPU + models GPU",
    "all-cpu": "Inferline, all CPU",
    "all-gpu-plain": "Inferline, all GPU, levers off",
    "monolith": "(b) one Python process + HTTP",
    "chain": "(c) server per model + HTTP router",
}
SERVED = ["all-gpu", "models-gpu", "all-cpu", "monolith", "chain", "all-gpu-plain"]


def fmt(v: float | None, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.{digits}f}"


def points(res: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return res["systems"].get(name, {}).get("points", [])


def point(res: dict[str, Any], name: str, batch: int, conc: int) -> dict[str, Any] | None:
    for p in points(res, name):
        if p["batch"] == batch and p["concurrency"] == conc:
            return p
    return None


def best(res: dict[str, Any], name: str, batch: int | None = None) -> dict[str, Any] | None:
    ps = [p for p in points(res, name) if batch is None or p["batch"] == batch]
    ps = [p for p in ps if p.get("samples_per_s")]
    return max(ps, key=lambda p: p["samples_per_s"]) if ps else None


def plain(res: dict[str, Any], variant: str, batch: int) -> dict[str, Any] | None:
    for name in ("plain-torch", "plain-torch-compile"):
        for m in res["systems"].get(name, {}).get("extra", {}).get("variants", {}).get(variant, []):
            if m["batch"] == batch:
                return m
    return None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


# ---- markdown ---------------------------------------------------------------------------------


def targets(res: dict[str, Any]) -> list[str]:
    rows = ["| target | measured | met |", "| --- | --- | --- |"]
    g512 = best(res, "all-gpu", 512)
    tput = g512["samples_per_s"] if g512 else None
    for variant in ("eager", "compile"):
        a = plain(res, variant, 512)
        r = ratio(tput, a["samples_per_s"] if a else None)
        rows.append(
            f"| all-GPU at batch 512 >= 90% of (a) {variant} | {fmt(tput)} vs "
            f"{fmt(a['samples_per_s'] if a else None)} samples/s = "
            f"{fmt(100 * r if r else None, 1)}% | {yes(r, 0.9)} |"
        )
    cpu = best(res, "all-cpu")
    r = ratio(tput, cpu["samples_per_s"] if cpu else None)
    rows.append(
        f"| all-GPU >= 30x all-CPU | {fmt(tput)} vs {fmt(cpu['samples_per_s'] if cpu else None, 1)}"
        f" samples/s = {fmt(r, 0)}x | {yes(r, 30)} |"
    )
    for base in ("monolith", "chain"):
        for p in points(res, "all-gpu"):
            if p["concurrency"] == 1:
                continue
            q = point(res, base, p["batch"], p["concurrency"])
            if not q:
                continue
            r = ratio(p["samples_per_s"], q["samples_per_s"])
            rows.append(
                f"| >= 2x {SYSTEM_LABELS[base]} under load (batch {p['batch']} x "
                f"{p['concurrency']} clients) | {fmt(p['samples_per_s'])} vs "
                f"{fmt(q['samples_per_s'])} samples/s = {fmt(r, 2)}x | {yes(r, 2)} |"
            )
    b1 = point(res, "all-gpu", 1, 1)
    v = b1["p50_ms"] if b1 else None
    rows.append(
        f"| all-GPU batch-1 p50 < 10 ms end to end | {fmt(v, 2)} ms | "
        f"{'yes' if v is not None and v < 10 else ('-' if v is None else 'no')} |"
    )
    return rows


def yes(r: float | None, threshold: float) -> str:
    return "-" if r is None else ("yes" if r >= threshold else "no")


def seed_table(res: dict[str, Any]) -> list[str]:
    rows = [
        "| pipeline | p50 latency, batch 1 (ms) | p50 latency, batch 512 (ms) "
        "| throughput at batch 512 (samples/s) |",
        "| --- | --- | --- | --- |",
    ]
    for name in SERVED:
        if name not in res["systems"]:
            continue
        b1 = point(res, name, 1, 1)
        b512 = point(res, name, 512, 1)
        top = best(res, name, 512) or (best(res, name) if name == "all-cpu" else None)
        note = ""
        if name == "all-cpu" and top and top["batch"] != 512:
            note = f" (batch {top['batch']} x {top['concurrency']}; see below)"
        rows.append(
            f"| {SYSTEM_LABELS[name]} | {fmt(b1['p50_ms'] if b1 else None, 2)} "
            f"| {fmt(b512['p50_ms'] if b512 else None, 1)} "
            f"| {fmt(top['samples_per_s'] if top else None)}{note} |"
        )
    a = plain(res, "eager", 512)
    a1 = plain(res, "eager", 1)
    rows.append(
        f"| (a) encoder alone, eager PyTorch FP16 | {fmt(a1['median_ms'] if a1 else None, 2)} "
        f"| {fmt(a['median_ms'] if a else None, 1)} | {fmt(a['samples_per_s'] if a else None)} |"
    )
    c = plain(res, "compile", 512)
    if c:
        rows.append(
            f"| (a) encoder alone, torch.compile | - | {fmt(c['median_ms'], 1)} "
            f"| {fmt(c['samples_per_s'])} |"
        )
    return rows


def system_tables(res: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name in SERVED:
        s = res["systems"].get(name)
        if not s:
            continue
        lines += ["", f"### {SYSTEM_LABELS[name]}", ""]
        if s.get("extra", {}).get("command"):
            lines.append(f"`{s['extra']['command']}`")
            lines.append("")
        extra = s.get("extra", {})
        if "warmup_s" in extra:
            lines.append(f"Warm-up before measuring: {extra['warmup_s']:.1f} s.")
        if extra.get("graph_capture_failures"):
            lines.append(f"CUDA graph capture failed: `{extra['graph_capture_failures'][0]}`")
        chk = s.get("check") or {}
        lines.append(
            f"Ready in {fmt(s.get('ready_s'), 1)} s; scores of {len(chk.get('scores', []))} "
            f"passages vs the FP32 CPU reference: max relative error "
            f"{chk['max_rel_err']:.1e} ({'ok' if chk.get('ok') else 'NOT OK'})."
            if chk
            else "No correctness check recorded."
        )
        if s.get("error"):
            lines.append(f"\nError: `{s['error'].strip().splitlines()[-1][:300]}`")
        lines += [
            "",
            "| batch | clients | samples/s (min-max of reps) | p50 ms | p95 ms | GPU util % |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for p in s.get("points", []):
            rng = p.get("samples_per_s_range") or [None, None]
            gpu = (p.get("gpu") or {}).get("gpu_util_mean")
            lines.append(
                f"| {p['batch']} | {p['concurrency']} | {fmt(p['samples_per_s'])} "
                f"({fmt(rng[0])}-{fmt(rng[1])}) | {fmt(p['p50_ms'], 2)} | {fmt(p['p95_ms'], 2)} "
                f"| {fmt(gpu)} |"
            )
        skipped = s.get("extra", {}).get("points_skipped")
        if skipped:
            lines.append(f"\nNot measured (time): {skipped}")
    return lines


def step_tables(res: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name in ("all-gpu", "models-gpu", "all-cpu", "all-gpu-plain"):
        for p in points(res, name):
            steps = p.get("steps")
            if not steps:
                continue
            lines += [
                "",
                f"**{SYSTEM_LABELS[name]}, batch {p['batch']} x {p['concurrency']} clients** "
                f"(end to end p50 {fmt(p['p50_ms'], 2)} ms):",
                "",
                "| model | requests | mean batch | request us | queue us | compute in us "
                "| compute infer us | compute out us |",
                "| --- | --- | --- | --- | --- | --- | --- | --- |",
            ]
            for model, d in sorted(steps.items()):
                lines.append(
                    f"| {model} | {fmt(d['requests'])} | {fmt(d['mean_batch'], 1)} "
                    f"| {fmt(d['request_us'])} | {fmt(d['queue_us'])} "
                    f"| {fmt(d['compute_input_us'])} | {fmt(d['compute_infer_us'])} "
                    f"| {fmt(d['compute_output_us'])} |"
                )
    return lines


def plain_table(res: dict[str, Any]) -> list[str]:
    lines = [
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
        if s.get("error"):
            lines.append(f"\n{name} error: `{s['error'].strip().splitlines()[-1][:300]}`")
    return lines


def preprocess_line(res: dict[str, Any]) -> str:
    pc = res["systems"].get("plain-torch", {}).get("extra", {}).get("preprocess_cpu")
    if not pc:
        return ""
    return (
        f"Python pre-processing on one core (plain_torch.py, {pc['passages']} passages of "
        f"{pc['mean_words']:.0f} words on average): tokenizing {pc['tokenize_ms']:.2f} ms and "
        f"the 207 features {pc['features_ms']:.2f} ms per passage."
    )


def markdown(res: dict[str, Any], plots: list[str]) -> str:
    env = res["environment"]
    art = res["artifacts"]
    lines = [
        "# Data plane: Inferline's three layouts against three baselines",
        "",
        f"Run {res['started']} ({res['profile']} profile, {fmt(res.get('elapsed_s'))} s). "
        f"GPU: {env.get('nvidia_smi') or env.get('gpu') or 'none'}. "
        f"CPU: {env.get('cpu_model')}, {env.get('cpu_count')} cores; kernel {env.get('kernel')}. "
        f"Python {env['python']}, torch {env['torch']} (CUDA {env.get('torch_cuda')}), "
        f"numpy {env['numpy']}, xgboost {env.get('xgboost')}, tokenizers "
        f"{env.get('tokenizers')}; tritonserver 2.51.0 (nvidia-pytriton 0.7.0).",
        "",
        f"Pipeline: encoder `{art['shape']}` ({fmt(art['encoder']['parameters'])} parameters, "
        f"{art['seq']} tokens, FP16 on GPU / FP32 on CPU), forest of {art['forest']['trees']} "
        f"trees (depth <= 16, {art['forest']['nodes']:,} nodes) on {art['forest']['features']} "
        "features, python pre/post-processing.",
        "",
        f"Command: `{res['command']}`",
        "",
        "## The seed's table, on this machine",
        "",
        *seed_table(res),
        "",
        "## Targets",
        "",
        *targets(res),
        "",
        "## (a) The encoder alone in plain PyTorch",
        "",
        *plain_table(res),
        "",
        preprocess_line(res),
        "",
        "## Every point",
        "",
        "Closed-loop clients (loadgen.py), each request `batch` passages; samples/s and "
        "latencies are the median of the repetitions.",
        *system_tables(res),
        "",
        "## Where the time goes (Triton's per-model counters over each point)",
        "",
        "Per request of each model: time in the queue and in compute (input, infer, output); "
        "mean batch = inferences per execution.",
        *step_tables(res),
        "",
    ]
    if res.get("skipped"):
        lines += [f"Skipped for time: {', '.join(res['skipped'])}", ""]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


# ---- plots ------------------------------------------------------------------------------------


def plot(res: dict[str, Any], out: Path, tag: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    for name in SERVED:
        ps = sorted(
            (p for p in points(res, name) if p["concurrency"] == 1 and p["p50_ms"]),
            key=lambda p: p["batch"],
        )
        if not ps:
            continue
        xs = [p["batch"] for p in ps]
        ax1.plot(xs, [p["samples_per_s"] for p in ps], "o-", label=SYSTEM_LABELS[name])
        ax2.plot(xs, [p["p50_ms"] for p in ps], "o-", label=SYSTEM_LABELS[name])
    for variant, style in (("eager", "k--"), ("torchscript", "k:"), ("cuda-graph", "kx")):
        ms = []
        for s in ("plain-torch", "plain-torch-compile"):
            ms += res["systems"].get(s, {}).get("extra", {}).get("variants", {}).get(variant, [])
        if ms:
            ms.sort(key=lambda m: m["batch"])
            label = f"(a) encoder alone, {variant}"
            ax1.plot([m["batch"] for m in ms], [m["samples_per_s"] for m in ms], style, label=label)
            ax2.plot([m["batch"] for m in ms], [m["median_ms"] for m in ms], style, label=label)
    for ax, title, unit in (
        (ax1, "throughput, one client", "samples/s"),
        (ax2, "p50 latency, one client", "ms"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch (texts per request)")
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

    loads = sorted(
        {(p["batch"], p["concurrency"]) for p in points(res, "all-gpu") if p["concurrency"] > 1}
    )
    if loads:
        import numpy as np

        fig, ax = plt.subplots(figsize=(12, 5))
        systems = [n for n in SERVED if n in res["systems"]]
        width = 0.8 / max(len(systems), 1)
        for i, name in enumerate(systems):
            vals = [(point(res, name, b, c) or {}).get("samples_per_s") or 0 for b, c in loads]
            ax.bar(np.arange(len(loads)) + i * width, vals, width, label=SYSTEM_LABELS[name])
        ax.set_xticks(np.arange(len(loads)) + width * (len(systems) - 1) / 2)
        ax.set_xticklabels([f"batch {b}\n{c} clients" for b, c in loads])
        ax.set_yscale("log")
        ax.set_ylabel("samples/s")
        ax.set_title("throughput under concurrent load")
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
    p.add_argument("results", type=Path)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "results")
    p.add_argument("--tag", default="nvidia-h200")
    args = p.parse_args()
    res = json.loads(args.results.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    plots = plot(res, args.out, args.tag)
    (args.out / f"dataplane_{args.tag}.md").write_text(markdown(res, plots))
    print(f"wrote {args.out / f'dataplane_{args.tag}.md'} and {', '.join(plots)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
