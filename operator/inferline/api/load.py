"""Parse multi-document YAML into typed resources, turning every mistake into a Problem."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .common import API_VERSION, GROUP
from .kinds import KINDS, Resource
from .problems import Problem


@dataclass(frozen=True)
class Document:
    """A parsed resource and where it came from (for messages and relative file paths)."""

    resource: Resource
    where: str  # "path/file.yaml:12", or "namespace/name" for an object read from a cluster
    # Relative file:// URIs in the object resolve against this directory (the manifest's, made
    # absolute); None for objects from a cluster, where local files mean nothing.
    base_dir: Path | None = None

    @property
    def ref(self) -> str:
        return f"{self.resource.kind}/{self.resource.metadata.name}"


ObjectKey = tuple[str, str, str]  # (kind, namespace or "", name)


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Objects that were there but did not parse: references to them are "invalid", not "missing".
    invalid: set[ObjectKey] = field(default_factory=set)
    # Objects of other APIs (a ConfigMap beside a pipeline): Kubernetes' to check, not ours.
    others: int = 0

    def extend(self, other: LoadResult) -> None:
        self.documents += other.documents
        self.problems += other.problems
        self.invalid |= other.invalid
        self.others += other.others


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
        result.extend(load_text(text, f))
    return result


def load_text(text: str, source: Path) -> LoadResult:
    """Every document of one YAML text; `source` names it in messages and anchors its paths."""
    result = LoadResult()
    base_dir = Path(source).absolute().parent
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
        if _other_api(data):
            result.others += 1
            continue
        parsed = parse_resource(data, where)
        if isinstance(parsed, list):
            result.problems += parsed
            if (key := object_key(data)) is not None:
                result.invalid.add(key)
        else:
            result.documents.append(Document(parsed, where, base_dir))
    return result


def _other_api(data: Any) -> bool:
    """An object of another API group (v1 ConfigMap, apps/v1 Deployment...), kind unknown to us.

    A misspelt version of ours (inferline.dev/v1) or one of our kinds under another group is
    still reported: those are mistakes, not someone else's objects.
    """
    if not isinstance(data, dict) or not isinstance(data.get("apiVersion"), str):
        return False
    group = data["apiVersion"].rpartition("/")[0]
    return group != GROUP and data.get("kind") not in KINDS


def object_key(data: Any) -> ObjectKey | None:
    """(kind, namespace, name) of plain object data, when it says them."""
    if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
        return None
    meta = data["metadata"]
    kind, name, ns = data.get("kind"), meta.get("name"), meta.get("namespace")
    if not isinstance(kind, str) or not isinstance(name, str):
        return None
    info = KINDS.get(kind)
    namespaced = info.namespaced if info else True
    return (kind, (ns if isinstance(ns, str) else "default") if namespaced else "", name)


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


def load_object(data: Any, where: str) -> LoadResult:
    """One object as read from a cluster (no file: relative paths in it mean nothing)."""
    result = LoadResult()
    parsed = parse_resource(data, where)
    if isinstance(parsed, list):
        result.problems += parsed
        if (key := object_key(data)) is not None:
            result.invalid.add(key)
    else:
        result.documents.append(Document(parsed, where))
    return result


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
    info = KINDS.get(str(kind))
    if info is None:
        return [
            Problem(
                where,
                f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}",
                obj,
                "kind",
            )
        ]
    try:
        return info.resource.model_validate(data)  # type: ignore[return-value]
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
