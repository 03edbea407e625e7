"""Baselines (b) and (c): the benchmark pipeline served the way a team would write it by hand.

    python bench/dataplane/handmade.py monolith --port P [--device cuda]
    python bench/dataplane/handmade.py step NAME --port P [--device cuda]   (NAME: preprocess,
                                                                          encoder, trees, post)
    python bench/dataplane/handmade.py router --port P --steps HOST:PORT,... (in NAME order)

(b) `monolith`: one Python process behind a threading HTTP server; each request runs the whole
    pipeline on its own (tokenize + features, the encoder in eager PyTorch FP16, XGBoost's own
    predict, the blend). No batching across requests.
(c) `step` x 4 + `router`: each model its own server; the router calls preprocess, then the
    encoder and the trees in parallel, then the blend, over HTTP: the shape of KServe's
    InferenceGraph. Steps exchange raw numpy (npz) bodies, the cheapest encoding a router could
    use; client and router speak JSON.

Client protocol: POST /infer {"texts": [...], "bert_weight": [...]} -> {"score": [...]}.
The same tokenizer, features, weights and forest as the served pipeline (artifacts/).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
PIPELINE = HERE / "pipeline"
ARTIFACTS = PIPELINE / "artifacts"
sys.path[:0] = [str(HERE), str(PIPELINE), str(HERE.parent.parent / "examples" / "readability")]

from textfeatures import N_FEATURES, all_features  # noqa: E402

SEQ = 128
STEPS = ("preprocess", "encoder", "trees", "post")


# ---- the pipeline's steps, in plain Python ---------------------------------------------------


class Steps:
    """Tokenizer, encoder, forest and blend, loaded once: what each baseline server calls."""

    def __init__(self, device: str, artifacts: Path = ARTIFACTS, load: tuple[str, ...] = STEPS):
        self.device = device
        if "preprocess" in load:
            from tokenizers import Tokenizer

            self.tokenizer = Tokenizer.from_file(str(artifacts / "tokenizer" / "tokenizer.json"))
            self.tokenizer.enable_truncation(SEQ)
            pad = self.tokenizer.token_to_id("[PAD]")
            self.tokenizer.enable_padding(length=SEQ, pad_id=pad, pad_token="[PAD]")
        if "encoder" in load:
            self.encoder = load_eager_encoder(artifacts, device)
        if "trees" in load:
            import xgboost

            self.booster = xgboost.Booster()
            self.booster.load_model(str(artifacts / "forest.json"))

    def preprocess(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64).reshape(len(texts), SEQ)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64).reshape(len(texts), SEQ)
        feats = np.array([all_features(t) for t in texts], dtype=np.float32)
        return ids, mask, feats.reshape(len(texts), N_FEATURES)

    def encode(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.encoder(
                torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device)
            )
            return out.float().cpu().numpy()

    def trees(self, feats: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(feats), np.float32).reshape(-1, 1)

    @staticmethod
    def post(bert: np.ndarray, tree: np.ndarray, weight: np.ndarray) -> np.ndarray:
        return weight * bert + (1 - weight) * tree

    def pipeline(self, texts: list[str], weight: np.ndarray) -> np.ndarray:
        ids, mask, feats = self.preprocess(texts)
        return self.post(self.encode(ids, mask), self.trees(feats), weight)


def load_eager_encoder(artifacts: Path, device: str) -> Any:
    """The eager nn.Module with the weights of the served TorchScript: FP16 on a GPU, FP32 on
    a CPU."""
    import encoder
    import torch

    shape = json.loads((artifacts / "build.json").read_text())["shape"]
    model = encoder.build(shape)
    model.load_state_dict(torch.jit.load(str(artifacts / "encoder-fp32.pt")).state_dict())
    if device.startswith("cuda"):
        model = model.half()
    return model.to(device).eval()


# ---- bodies ----------------------------------------------------------------------------------


def npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def unnpz(body: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(body)) as f:
        return {k: f[k] for k in f.files}


def json_request(body: bytes) -> tuple[list[str], np.ndarray]:
    req = json.loads(body)
    texts = req["texts"]
    weight = np.asarray(req["bert_weight"], dtype=np.float32).reshape(len(texts), 1)
    return texts, weight


def json_response(score: np.ndarray) -> bytes:
    return json.dumps({"score": score.reshape(-1).tolist()}).encode()


# ---- a minimal keep-alive HTTP server --------------------------------------------------------


def serve(port: int, handle: Any) -> None:
    """POST /infer -> handle(body) (bytes); GET /health -> 200. Threads, one per connection."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply(200, b"ok")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                self._reply(200, handle(body))
            except Exception as e:  # a benchmark server: report, keep serving
                self._reply(500, repr(e).encode())

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 1024
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"[handmade] listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


class StepClient:
    """One keep-alive connection per thread and step, as a router's HTTP client pool keeps."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = dict(zip(STEPS, addresses, strict=True))
        self.local = threading.local()

    def call(self, step: str, body: bytes) -> bytes:
        conns = self.local.__dict__.setdefault("conns", {})
        if step not in conns:
            host, port = self.addresses[step].rsplit(":", 1)
            conns[step] = http.client.HTTPConnection(host, int(port))
        conn = conns[step]
        conn.request("POST", "/infer", body)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{step}: HTTP {resp.status}: {data[:200]!r}")
        return data


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("role", choices=["monolith", "step", "router"])
    p.add_argument("name", nargs="?", choices=STEPS)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--device", default=None, help="default: cuda when there is a GPU")
    p.add_argument("--steps", default="", help="router: HOST:PORT of each step, in order")
    p.add_argument("--artifacts", type=Path, default=ARTIFACTS)
    args = p.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"

    if args.role == "monolith":
        steps = Steps(args.device, args.artifacts)

        def monolith(body: bytes) -> bytes:
            texts, weight = json_request(body)
            return json_response(steps.pipeline(texts, weight))

        serve(args.port, monolith)
    elif args.role == "step":
        step = Steps(args.device, args.artifacts, load=(args.name,))

        def one_step(body: bytes) -> bytes:
            if args.name == "preprocess":
                ids, mask, feats = step.preprocess(json.loads(body)["texts"])
                return npz(ids=ids, mask=mask, feats=feats)
            x = unnpz(body)
            if args.name == "encoder":
                return npz(score=step.encode(x["ids"], x["mask"]))
            if args.name == "trees":
                return npz(score=step.trees(x["feats"]))
            return npz(score=Steps.post(x["bert"], x["tree"], x["weight"]))

        serve(args.port, one_step)
    else:
        client = StepClient(args.steps.split(","))
        pool = ThreadPoolExecutor(max_workers=256)

        def route(body: bytes) -> bytes:
            texts, weight = json_request(body)
            pre = unnpz(client.call("preprocess", json.dumps({"texts": texts}).encode()))
            bert = pool.submit(client.call, "encoder", npz(ids=pre["ids"], mask=pre["mask"]))
            tree = pool.submit(client.call, "trees", npz(feats=pre["feats"]))
            scores = npz(
                bert=unnpz(bert.result())["score"],
                tree=unnpz(tree.result())["score"],
                weight=weight,
            )
            return json_response(unnpz(client.call("post", scores))["score"])

        serve(args.port, route)


if __name__ == "__main__":
    main()
