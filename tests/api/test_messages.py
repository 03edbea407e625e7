"""Messages say what is wrong in words: no raw regex, no pydantic phrasing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferline.api.common import PATTERN_WORDS
from inferline.api.crd import all_crds
from inferline.api.load import load_text


def _patterns(node: Any) -> set[str]:
    found = set()
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            found.add(node["pattern"])
        for v in node.values():
            found |= _patterns(v)
    elif isinstance(node, list):
        for v in node:
            found |= _patterns(v)
    return found


def test_every_pattern_in_the_crds_is_described_in_words() -> None:
    patterns = _patterns(all_crds())
    assert len(patterns) >= 8
    assert patterns <= set(PATTERN_WORDS), patterns - set(PATTERN_WORDS)


MODEL = """apiVersion: inferline.dev/v1alpha1
kind: Model
metadata: {name: m}
spec:
  format: python
  python: {file: m.py}
  inputs: [{name: IN, dtype: FP32, dims: [4]}]
  outputs: [{name: OUT, dtype: FP32, dims: [4]}]
"""


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("metadata: {name: m}", "metadata: {name: M_1}"),
            "metadata.name: must be lowercase letters, digits, '-' and '.', starting and "
            "ending with a letter or digit; got 'M_1'",
        ),
        (
            ("format: python", "format: jax"),
            "spec.format: must be one of 'python', 'pytorch', "
            "'onnx', 'tensorrt', 'tensorflow' or 'fil'; got the string 'jax'",
        ),
        (
            ("dims: [4]}]\n  outputs", "dims: [4.5]}]\n  outputs"),
            "spec.inputs[0].dims[0]: must be an integer; got the number 4.5",
        ),
        (
            ("format: python", "format: python\n  instances: 0"),
            "spec.instances: must be at least 1; got 0",
        ),
        (
            ("format: python", "format: python\n  maxBatchSize: true"),
            "spec.maxBatchSize: must be an integer; got the boolean true",
        ),
        (
            ("format: python", "format: python\n  max_batch_size: 8"),
            "spec.max_batch_size: unknown field (check its spelling and indentation); did you "
            "mean maxBatchSize?",
        ),
        (
            ("{name: OUT,", "{name: N,"),
            "spec.outputs[0].name: a bare N is the boolean false to kubectl (YAML 1.1); quote "
            'it: "N"',
        ),
        (
            ("  inputs: [{name: IN, dtype: FP32, dims: [4]}]\n", ""),
            "spec.inputs: required field is missing",
        ),
    ],
)
def test_messages_in_words(change: tuple[str, str], expected: str) -> None:
    text = MODEL.replace(*change)
    assert text != MODEL
    problems = [f"{p.path}: {p.message}" for p in load_text(text, Path("m.yaml")).problems]
    assert problems == [expected]
