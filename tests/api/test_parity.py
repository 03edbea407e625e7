"""`validate` and admission agree: on every manifest of the corpora, and on mutations of them.

Admission is modelled independently of the pydantic models (tests/api/admission.py: the
generated CRD through a JSON-schema validator, structural defaulting, list-map keys, and every
CEL rule evaluated by cel-python). `validate`'s admission-class problems (Check.YAML, SCHEMA,
SIZE) must appear exactly for the documents admission rejects. Everything else `validate`
reports is one of the semantic checks only it can make, listed in SEMANTIC_ONLY below; e2e's
test_parity.py holds the same corpus against a real apiserver (`kubectl apply --dry-run=server`).
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferline.api.common import ApiModel
from inferline.api.crd import all_crds
from inferline.api.load import load_text, parse_resource
from inferline.api.problems import ADMISSION_CHECKS, Check
from inferline.api.yamlparse import YamlProblem, parse_stream
from inferline.compile import check_paths

from .admission import rejections, schemas
from .corpus import OPS, REPO, corpus, mutate, paths, valid_documents

# The semantic checks only `validate` (and the operator) can make: they need other objects, or
# knowledge no schema has. A corpus file may fail `validate` through these while admission
# accepts it.
SEMANTIC_ONLY = {
    Check.YAML11_KEY: "a bare y/n/on/off key, which kubectl silently renames to true/false",
    Check.DUPLICATE_KEY: "a key written twice in one mapping, which kubectl silently collapses",
    Check.DUPLICATE_OBJECT: "the same object twice among the files",
    Check.REFERENCES: "a Model or Backend that is missing or invalid",
    Check.BACKEND: "a step the backend cannot serve (device, format, no adapter)",
    Check.PLACEMENT: "a GPU/MIG request that no known GPU offers",
    Check.DATAFLOW: "tensors produced once, consumed with the dtype and dims produced",
    Check.DAG: "a cycle among the steps",
    Check.BATCHING: "the ensemble's maxBatchSize against its steps'",
    Check.MODEL_NAMES: "two pipelines served together render the same Triton model",
}


def admitted_by_validate(data: Any) -> bool:
    """Does `validate` pass this object's admission-class checks?"""
    return not isinstance(parse_resource(data, "t.yaml:1"), list)


def test_every_check_is_admission_or_listed() -> None:
    assert set(Check) == set(ADMISSION_CHECKS) | set(SEMANTIC_ONLY)


def test_the_corpus_has_both_verdicts() -> None:
    verdicts = set()
    for f in corpus():
        for raw in parse_stream_or_empty(f.read_text()):
            verdicts.add(not rejections(raw.data))
    assert verdicts == {True, False}


def parse_stream_or_empty(text: str) -> list[Any]:
    try:
        return parse_stream(text)
    except YamlProblem:
        return []


@pytest.mark.parametrize("path", corpus(), ids=lambda p: str(p.relative_to(REPO)))
def test_validate_agrees_with_admission(path: Path) -> None:
    text = path.read_text()
    checked = check_paths([path])
    kinds = {p.check for p in checked.errors}
    try:
        docs = parse_stream(text)
    except YamlProblem:
        # kubectl cannot read it either (e2e's parity test sends it to the real kubectl).
        assert kinds == {Check.YAML}, checked.errors
        return
    for raw in docs:
        admission = rejections(raw.data)
        ours = parse_resource(raw.data, f"{path}:{raw.line}")
        ours_errors = ours if isinstance(ours, list) else []
        assert bool(admission) == bool(ours_errors), (
            f"{path}:{raw.line}: admission says {admission or 'admitted'}; validate says "
            f"{[str(p) for p in ours_errors] or 'admitted'}"
        )
    # What validate adds on top of admission is one of the listed semantic checks.
    semantic = {p.check for p in checked.errors if p.check not in ADMISSION_CHECKS}
    assert semantic <= set(SEMANTIC_ONLY)
    if path.is_relative_to(REPO / "tests/data/invalid") or path.is_relative_to(
        REPO / "tests/data/invalid-admission"
    ):
        assert checked.errors, f"{path} is a broken manifest, but validate passed it"
    if path.is_relative_to(REPO / "tests/data/invalid-admission"):
        assert any(rejections(raw.data) for raw in docs), f"admission would accept {path}"


# ---- mutations ----------------------------------------------------------------------------


VALID = [d for d in valid_documents() if not rejections(d)]


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    doc = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 2))):
        where = paths(doc)
        if not where:
            break
        doc = mutate(
            doc, draw(st.sampled_from(where)), draw(st.sampled_from(OPS)), draw(st.integers(0, 999))
        )
    return doc


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated())
def test_mutations_get_the_same_verdict(doc: dict[str, Any]) -> None:
    # Through text, as a user would write it: JSON is YAML, and quotes every string.
    (raw,) = parse_stream(json.dumps(doc))
    admission = rejections(raw.data)
    ours = parse_resource(raw.data, "t.yaml:1")
    ours_errors = [str(p) for p in ours] if isinstance(ours, list) else []
    assert bool(admission) == bool(ours_errors), (admission, ours_errors)


# ---- every CEL rule, exercised ------------------------------------------------------------


def _rule_sites(
    node: Any, schema: dict[str, Any], path: tuple[Any, ...]
) -> list[tuple[tuple[Any, ...], dict[str, str]]]:
    """(path, rule) for every CEL rule of the schema that applies to a node of `node`."""
    out = [(path, r) for r in schema.get("x-kubernetes-validations", [])]
    if isinstance(node, dict):
        for k, v in node.items():
            sub = (schema.get("properties") or {}).get(k)
            if isinstance(sub, dict):
                out += _rule_sites(v, sub, (*path, k))
    elif isinstance(node, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(node):
            out += _rule_sites(v, schema["items"], (*path, i))
    return out


@cache
def _donors() -> dict[str, list[Any]]:
    """Every value each field name takes somewhere in the valid corpus."""
    found: dict[str, list[Any]] = {}
    for doc in VALID:
        for path in paths(doc):
            if isinstance(path[-1], str):
                v = doc
                for part in path:
                    v = v[part]
                if v not in found.setdefault(path[-1], []):
                    found[path[-1]].append(v)
    return found


def _rule_mutations(doc: dict[str, Any], site: tuple[Any, ...], rule: str) -> list[dict[str, Any]]:
    """The document with each field the rule reads dropped, or set to another value."""
    donors = _donors()
    out = []
    refs = set()
    for m in re.finditer(r"self((?:\.[A-Za-z_]\w*)+)(\()?", rule):
        fields = m.group(1).split(".")[1:]
        refs.add(tuple(fields[:-1] if m.group(2) else fields))  # .exists(...) is a method
    for fields in sorted(refs):
        for value in [_DROP, *donors.get(fields[-1], [])[:6], *RULE_VALUES]:
            mutated = copy.deepcopy(doc)
            parent = mutated
            try:
                for part in site + tuple(fields[:-1]):
                    parent = parent[part]
            except (KeyError, IndexError, TypeError):
                continue
            if not isinstance(parent, dict):
                continue
            if value is _DROP:
                if fields[-1] not in parent:
                    continue
                del parent[fields[-1]]
            else:
                parent[fields[-1]] = copy.deepcopy(value)
            out.append(mutated)
    return out


_DROP = object()
# Values that change what a CEL rule decides (wrong types are the mutation test's business).
RULE_VALUES: list[Any] = [
    0,
    2,
    64,
    True,
    [1, 0],
    {"name": "m"},
    "9lives",
    "x" * 70,
    "10Gi",
    {"EXECUTION_ENV_PATH": "s3://bucket/env.tar.gz"},
    {"EXECUTION_ENV_PATH": "$$TRITON_MODEL_DIRECTORY/env.tar.gz"},
    "resnet50-preprocess",
    "readability-bert",
    "Prometheus",  # autoscaling.metrics.source: the value that needs prometheus.url
    "keda",  # autoscaling.engine: the engine that needs prometheus.url
]


def _all_rules() -> list[dict[str, str]]:
    rules: list[dict[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for r in node.get("x-kubernetes-validations", []):
                if r not in rules:
                    rules.append(r)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(all_crds())
    return rules


def test_every_cel_rule_has_a_python_twin_with_its_message() -> None:
    twins = {(r.rule, r.message) for cls in _api_models() for r in cls.cel_rules}
    rules = _all_rules()
    assert len(rules) >= 14
    for r in rules:
        assert (r["rule"], r["message"]) in twins, r


def _api_models() -> list[type[ApiModel]]:
    seen, stack = [], list(ApiModel.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls not in seen:
            seen.append(cls)
            stack += cls.__subclasses__()
    return seen


@pytest.mark.parametrize("rule", _all_rules(), ids=lambda r: r["message"][:50])
def test_each_cel_rule_is_exercised_and_its_twin_agrees(rule: dict[str, str]) -> None:
    violated = 0
    sites = [
        (doc, site)
        for doc in sorted(VALID, key=lambda d: len(json.dumps(d)))  # small documents: fast
        for site, r in _rule_sites(doc, _schema_of(doc), ())
        if r == rule
    ]
    assert sites, f"no document of the valid corpus has a node this rule applies to: {rule}"
    for doc, site in sites:
        for mutated in _rule_mutations(doc, site, rule["rule"]):
            (raw,) = parse_stream(json.dumps(mutated))
            admission = rejections(raw.data)
            ours = parse_resource(raw.data, "t.yaml:1")
            messages = [p.message for p in ours] if isinstance(ours, list) else []
            assert bool(admission) == bool(messages), (admission, messages)
            if any(a.endswith(rule["message"]) for a in admission):
                violated += 1
                assert any(rule["message"] in m for m in messages), (rule, messages)
    assert violated, f"no mutation violated {rule['rule']!r}: the test proves nothing for it"


def _schema_of(doc: dict[str, Any]) -> dict[str, Any]:
    return schemas()[doc["kind"]]


def _with_duplicate(doc: dict[str, Any], path: tuple[Any, ...]) -> str:
    """The document as JSON text, with the key at `path` written twice."""

    def emit(node: Any, here: tuple[Any, ...]) -> str:
        if isinstance(node, dict):
            items = []
            for k, v in node.items():
                items.append(f"{json.dumps(k)}: {emit(v, (*here, k))}")
                if (*here, k) == path:
                    items.append(f"{json.dumps(k)}: {emit(v, (*here, k))}")
            return "{" + ",\n".join(items) + "}"
        if isinstance(node, list):
            return "[" + ",\n".join(emit(v, (*here, i)) for i, v in enumerate(node)) + "]"
        return json.dumps(node)

    return emit(doc, ())


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_duplicated_key_is_an_error_naming_both_lines(data: st.DataObject) -> None:
    doc = data.draw(st.sampled_from(VALID))
    keys = [p for p in paths(doc) if isinstance(p[-1], str)]
    path = data.draw(st.sampled_from(keys))
    loaded = load_text(_with_duplicate(doc, path), Path("dup.yaml"))
    (problem,) = [p for p in loaded.problems if p.check is Check.DUPLICATE_KEY]
    assert f"duplicate key {path[-1]!r}: also set on line" in problem.message
    first = int(problem.message.split("also set on line ", 1)[1].split(";")[0])
    second = int(problem.where.split(":")[1])
    assert first < second
