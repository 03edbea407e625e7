"""A closed-loop HTTP load generator: C concurrent clients, each sending one request at a time.

The same client code drives every system under test, so client costs are the same for all:

- `triton`: KServe v2 / Triton's HTTP protocol with the binary-tensor extension (what a client
  of an Inferline pipeline sends: TEXT as BYTES, BERT_WEIGHT as FP32; SCORE comes back binary);
- `json`: the hand-written baselines' {"texts": [...], "bert_weight": [...]} body.

Each request carries `batch` texts. Clients are spread over worker processes (threads inside
each, keep-alive connections), start together, warm up, then count completions; a point is
measured `reps` times back to back and each repetition reports throughput, p50 and p95.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Target:
    kind: str  # "triton" | "json"
    host: str
    port: int
    path: str  # /v2/models/NAME/infer or /infer


def triton_body(texts: list[str], weight: float) -> tuple[bytes, dict[str, str]]:
    raw = b"".join(struct.pack("<I", len(b)) + b for b in (t.encode() for t in texts))
    w = np.full((len(texts), 1), weight, np.float32).tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "TEXT",
                    "shape": [len(texts), 1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(raw)},
                },
                {
                    "name": "BERT_WEIGHT",
                    "shape": [len(texts), 1],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(w)},
                },
            ],
            "outputs": [{"name": "SCORE", "parameters": {"binary_data": True}}],
        }
    ).encode()
    headers = {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
    }
    return header + raw + w, headers


def json_body(texts: list[str], weight: float) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"texts": texts, "bert_weight": [weight] * len(texts)}).encode()
    return body, {"Content-Type": "application/json"}


def body_for(target: Target, texts: list[str], weight: float) -> tuple[bytes, dict[str, str]]:
    return (triton_body if target.kind == "triton" else json_body)(texts, weight)


def parse_scores(target: Target, resp: http.client.HTTPResponse, data: bytes) -> np.ndarray:
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {data[:300]!r}")
    if target.kind == "json":
        return np.asarray(json.loads(data)["score"], np.float32)
    n = int(resp.getheader("Inference-Header-Content-Length") or len(data))
    if n == len(data):  # no binary part: JSON data
        return np.asarray(json.loads(data)["outputs"][0]["data"], np.float32)
    return np.frombuffer(data[n:], np.float32)


def infer(target: Target, texts: list[str], weight: float, timeout: float = 600) -> np.ndarray:
    """One request; the scores."""
    body, headers = body_for(target, texts, weight)
    conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    try:
        conn.request("POST", target.path, body, headers)
        resp = conn.getresponse()
        return parse_scores(target, resp, resp.read())
    finally:
        conn.close()


# ---- one worker process: `threads` clients ---------------------------------------------------


def _client(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    batch: int,
    measure_from: float,
    measure_to: float,
    out: list[tuple[float, float]],
    errors: list[str],
) -> None:
    """Send requests back to back until measure_to; record (completion time, latency) of those
    completing after measure_from. Everything before that is warm-up (at least one request)."""
    conn = http.client.HTTPConnection(target.host, target.port, timeout=600)
    try:
        first = True
        while first or time.time() < measure_to:
            t0 = time.perf_counter()
            conn.request("POST", target.path, body, headers)
            resp = conn.getresponse()
            data = resp.read()
            latency = time.perf_counter() - t0
            if first:
                scores = parse_scores(target, resp, data)
                if scores.shape[0] != batch:
                    raise RuntimeError(f"expected {batch} scores, got {scores.shape}")
                first = False
            elif resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {data[:300]!r}")
            now = time.time()
            if now >= measure_from:
                out.append((now, latency))
    except Exception as e:
        errors.append(repr(e))
    finally:
        conn.close()


def _worker(args: tuple[Any, ...]) -> tuple[list[tuple[float, float]], list[str]]:
    target, texts, weight, threads, measure_from, measure_to = args
    body, headers = body_for(target, texts, weight)
    done: list[tuple[float, float]] = []
    errors: list[str] = []
    ts = [
        threading.Thread(
            target=_client,
            args=(target, body, headers, len(texts), measure_from, measure_to, done, errors),
        )
        for _ in range(threads)
    ]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return done, errors


class LoadGenerator:
    """A pool of worker processes, started once and reused for every point."""

    def __init__(self, processes: int = 8) -> None:
        self.processes = processes
        self.pool = mp.get_context("spawn").Pool(processes)

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()

    def measure(
        self,
        target: Target,
        texts: list[str],
        concurrency: int,
        warmup_s: float,
        window_s: float,
        reps: int,
        weight: float = 0.5,
    ) -> dict[str, Any]:
        """`reps` consecutive windows of `window_s` after `warmup_s`: in each, the completions
        (samples/s = completions x batch / window) and the latencies of those completions."""
        procs = min(self.processes, concurrency)
        threads = [concurrency // procs + (i < concurrency % procs) for i in range(procs)]
        measure_from = time.time() + 0.2 + warmup_s
        measure_to = measure_from + reps * window_s
        jobs = [(target, texts, weight, n, measure_from, measure_to) for n in threads]
        results = self.pool.map(_worker, jobs)
        errors = [e for _, errs in results for e in errs]
        done = [x for d, _ in results for x in d]
        batch = len(texts)
        reps_out = []
        for rep in range(reps):
            lo, hi = measure_from + rep * window_s, measure_from + (rep + 1) * window_s
            lat = np.array([lt for end, lt in done if lo <= end < hi]) * 1e3
            if lat.size == 0:
                continue
            reps_out.append(
                {
                    "requests": int(lat.size),
                    "samples_per_s": lat.size * batch / window_s,
                    "p50_ms": float(np.percentile(lat, 50)),
                    "p95_ms": float(np.percentile(lat, 95)),
                    "mean_ms": float(lat.mean()),
                }
            )
        summary: dict[str, Any] = {
            "batch": batch,
            "concurrency": concurrency,
            "window_s": window_s,
            "warmup_s": warmup_s,
            "reps": reps_out,
            "errors": errors[:5],
        }
        for key in ("samples_per_s", "p50_ms", "p95_ms"):
            vals = [r[key] for r in reps_out]
            summary[key] = float(np.median(vals)) if vals else None
            summary[f"{key}_range"] = [min(vals), max(vals)] if vals else None
        return summary
