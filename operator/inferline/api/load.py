"""Parse multi-document YAML into typed resources, turning every mistake into a Problem."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .backend import Backend, ClusterBackend
from .common import API_VERSION
from .model import Model
from .pipeline import InferencePipeline

Resource = Backend | ClusterBackend | Model | InferencePipeline

KINDS: dict[str, type[BaseModel]] = {
    "Backend": Backend,
    "ClusterBackend": ClusterBackend,
    "Model": Model,
    "InferencePipeline": InferencePipeline,
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (file, object, field path) and what."""

    where: str  # "file.yaml" or "file.yaml:12" (line of the document)
    message: str
    obj: str = ""  # "InferencePipeline/readability"
    path: str = ""  # "spec.steps[1].inputMap.INPUT_IDS"
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        parts = [self.where]
        if self.obj:
            parts.append(self.obj)
        head = ": ".join(parts)
        field_path = f"{self.path}: " if self.path else ""
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{head}: {prefix}{field_path}{self.message}"


@dataclass
class Document:
    """A parsed resource and where it came from (for messages and relative file paths)."""

    resource: Resource
    source: Path
    line: int

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def ref(self) -> str:
        return f"{self.resource.kind}/{self.resource.metadata.name}"


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def expand_paths(paths: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """Files as given; directories walked (recursively) for *.yaml / *.yml."""
    files: list[Path] = []
    problems: list[Problem] = []
    for p in paths:
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file())
            if not found:
                problems.append(Problem(str(p), "no .yaml or .yml files in this directory"))
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            problems.append(Problem(str(p), "no such file or directory"))
    return files, problems


def load_paths(paths: Iterable[Path]) -> LoadResult:
    files, problems = expand_paths(paths)
    result = LoadResult(problems=problems)
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            result.problems.append(Problem(str(f), f"cannot read file: {e}"))
            continue
        sub = load_text(text, f)
        result.documents += sub.documents
        result.problems += sub.problems
    return result


def load_text(text: str, source: Path) -> LoadResult:
    result = LoadResult()
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as e:
        result.problems.append(Problem(_yaml_where(source, e), f"invalid YAML: {_yaml_reason(e)}"))
        return result
    for node in nodes:
        if node is None:
            continue
        result.problems += _yaml11_booleans(node, source)
        line = node.start_mark.line + 1
        where = f"{source}:{line}"
        try:
            data = yaml.SafeLoader(yaml.serialize(node)).get_single_data()
        except yaml.YAMLError as e:  # e.g. a bad tag; composing succeeded but loading did not
            result.problems.append(Problem(where, f"invalid YAML: {_yaml_reason(e)}"))
            continue
        parsed = parse_resource(data, where)
        if isinstance(parsed, list):
            result.problems += parsed
        else:
            result.documents.append(Document(parsed, source, line))
    return result


# kubectl and the apiserver parse YAML 1.1 (go-yaml v2), where a plain y/Y/n/N is a boolean;
# PyYAML keeps them strings. Catch them here, or `validate` would pass what `apply` rejects.
_YAML11_ONLY_BOOLEANS = {"y", "Y", "n", "N"}


def _yaml11_booleans(node: yaml.Node, source: Path) -> list[Problem]:
    found = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.ScalarNode):
            if n.style is None and n.value in _YAML11_ONLY_BOOLEANS:
                where = f"{source}:{n.start_mark.line + 1}:{n.start_mark.column + 1}"
                found.append(
                    Problem(
                        where,
                        f"a bare {n.value} is the boolean "
                        f"{str(n.value in 'yY').lower()} to kubectl (YAML 1.1); "
                        f'quote it: "{n.value}"',
                    )
                )
        elif isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                stack += [k, v]
        elif isinstance(n, yaml.SequenceNode):
            stack += n.value
    return found


def parse_resource(data: Any, where: str) -> Resource | list[Problem]:
    """One resource from plain data, or the problems that stop it from being one."""
    if not isinstance(data, dict):
        return [Problem(where, f"expected a mapping (a Kubernetes object), got {_kind_of(data)}")]
    kind = data.get("kind")
    name = (
        (data.get("metadata") or {}).get("name", "?")
        if isinstance(data.get("metadata"), dict)
        else "?"
    )
    obj = f"{kind}/{name}"
    if data.get("apiVersion") != API_VERSION:
        return [
            Problem(
                where,
                f"apiVersion must be {API_VERSION}, got {data.get('apiVersion')!r}",
                obj,
                "apiVersion",
            )
        ]
    cls = KINDS.get(str(kind))
    if cls is None:
        return [
            Problem(
                where,
                f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}",
                obj,
                "kind",
            )
        ]
    try:
        return cls.model_validate(data)  # type: ignore[return-value]
    except ValidationError as e:
        return [Problem(where, msg, obj, path) for path, msg in explain_validation_error(e)]


def explain_validation_error(e: ValidationError) -> list[tuple[str, str]]:
    """pydantic errors as (field path in wire names, message a user can act on)."""
    out = []
    for err in e.errors(include_url=False):
        loc = err["loc"]
        path = ""
        for part in loc:
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                path += ("." if path else "") + str(part)
        out.append((path, _message(err)))
    return out


def _message(err: Any) -> str:
    t, msg, ctx = err["type"], err["msg"], err.get("ctx") or {}
    if t == "extra_forbidden":
        return "unknown field (check its spelling and indentation)"
    if t == "missing":
        return "required field is missing"
    if t == "string_pattern_mismatch":
        return f"{err['input']!r} does not match {ctx.get('pattern')}"
    if t == "enum":
        return f"{err['input']!r} is not one of {ctx.get('expected')}"
    if t == "literal_error":
        return f"{err['input']!r} is not allowed; expected {ctx.get('expected')}"
    if t == "value_error":
        return str(msg).removeprefix("Value error, ")
    return str(msg)


def _yaml_where(source: Path, e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    return f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else str(source)


def _yaml_reason(e: yaml.YAMLError) -> str:
    problem = getattr(e, "problem", None)
    context = getattr(e, "context", None)
    if problem:
        return f"{problem} ({context})" if context else str(problem)
    return str(e).splitlines()[0]


def _kind_of(data: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(data), type(data).__name__
    )
