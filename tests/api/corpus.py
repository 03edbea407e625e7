"""The manifests the parity tests judge twice (by `validate` and by admission), and the
mutations they apply to them. Shared by tests/api/test_parity.py and e2e/test_parity.py."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

from inferline.api.yamlparse import parse_stream

REPO = Path(__file__).resolve().parents[2]


def corpus() -> list[Path]:
    files = [
        *(REPO / "tests/data/invalid").glob("*.yaml"),
        *(REPO / "tests/data/invalid-admission").glob("*.yaml"),
        *(REPO / "tests/data/pipelines").rglob("*.yaml"),
        *(REPO / "tests/data/valid").rglob("*.yaml"),
        *(p for p in (REPO / "examples").rglob("*.yaml") if "artifacts" not in p.parts),
    ]
    return sorted(files)


def valid_documents() -> list[dict[str, Any]]:
    """Every document of the valid corpus (examples, tests/data/pipelines, tests/data/valid)."""
    docs = []
    for f in corpus():
        if "invalid" in f.parts[-2]:
            continue
        docs += [raw.data for raw in parse_stream(f.read_text())]
    return docs


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and index below the root, as paths."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((*prefix, i))
            out += paths(v, (*prefix, i))
    return out


def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


REPLACEMENTS: list[Any] = [
    "1",
    "8",
    1.5,
    2.0,
    True,
    False,
    "true",
    None,
    [],
    {},
    0,
    -1,
    64,
    1 << 21,
    "x" * 70,
    "UPPER",
    "a.b",
    "GPU",
    "python",
    "s3://bucket/x",
    [1, 0],
    {"name": "m"},
    2,
    "9lives",
    {"EXECUTION_ENV_PATH": "s3://bucket/env.tar.gz"},
    {"EXECUTION_ENV_PATH": "$$TRITON_MODEL_DIRECTORY/env.tar.gz"},
    "resnet50-preprocess",
    "readability-bert",
    "10Gi",
]


OPS = ("rename", "drop", "retype")


def mutate(doc: dict[str, Any], path: tuple[Any, ...], op: str, choice: int) -> dict[str, Any]:
    """A copy of `doc` with one mutation at `path`: rename the key, drop it, or give it
    REPLACEMENTS[choice] (rename picks among four spellings by `choice`)."""
    doc = copy.deepcopy(doc)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if op == "retype":
        parent[last] = copy.deepcopy(REPLACEMENTS[choice % len(REPLACEMENTS)])
    elif op == "drop":
        del parent[last]
    elif isinstance(parent, dict):
        names = [snake(last), last + "x", last.upper(), "name"]
        parent[names[choice % len(names)]] = parent.pop(last)
    return doc


def random_mutations(n: int, seed: int) -> list[dict[str, Any]]:
    """n documents of the valid corpus, each mutated once or twice (deterministic)."""
    rng = random.Random(seed)
    valid = valid_documents()
    out = []
    for _ in range(n):
        doc = rng.choice(valid)
        for _ in range(rng.randint(1, 2)):
            where = paths(doc)
            if not where:
                break
            doc = mutate(doc, rng.choice(where), rng.choice(OPS), rng.randrange(1000))
        out.append(doc)
    return out
