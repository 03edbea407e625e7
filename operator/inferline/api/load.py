"""Parse multi-document YAML into typed resources, turning every mistake into a Problem.

A document is read as kubectl reads it (`yamlparse`), and judged as the apiserver judges it:
wire (camelCase) names only, no type coercion (a quoted number is a string), null fields
dropped, the size etcd stores at most. `validate` therefore accepts what
`kubectl apply` accepts, and the other way round; the parity tests hold it to that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .common import API_VERSION, GROUP, MANIFEST
from .kinds import KINDS, Resource
from .messages import explain
from .problems import Check, Problem
from .yamlparse import RawDocument, YamlProblem, parse_stream

# The largest object the apiserver stores: etcd's default --max-request-bytes (1.5 MiB). The
# apiserver's own request-body limit (3 MiB) is larger, so this is the one a real `kubectl
# apply` hits ("etcdserver: request is too large"); a server-side dry run never writes to etcd
# and misses it. Measured on the object's compact JSON, which is what kubectl sends; the
# managedFields the apiserver adds on top make the stored object larger still.
MAX_OBJECT_BYTES = 1536 * 1024
# A file larger than this is refused unread: no set of manifests is that large.
MAX_FILE_BYTES = 64 << 20


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
            size = f.stat().st_size
            if size > MAX_FILE_BYTES:
                result.problems.append(
                    Problem(
                        str(f),
                        f"file is {size} bytes; manifests larger than {MAX_FILE_BYTES >> 20} MiB "
                        "are not read",
                        check=Check.SIZE,
                    )
                )
                continue
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            result.problems.append(Problem(str(f), f"cannot read file: {e}", check=Check.YAML))
            continue
        result.extend(load_text(text, f))
    return result


def load_text(text: str, source: Path) -> LoadResult:
    """Every document of one YAML text; `source` names it in messages and anchors its paths."""
    result = LoadResult()
    base_dir = Path(source).absolute().parent
    try:
        raw_docs = parse_stream(text)
    except YamlProblem as e:
        where = f"{source}:{e.line}:{e.column}" if e.line else str(source)
        result.problems.append(Problem(where, f"invalid YAML: {e.message}", check=Check.YAML))
        return result
    for raw in raw_docs:
        where = f"{source}:{raw.line}"
        for line, col, message in raw.duplicate_keys:
            result.problems.append(
                Problem(f"{source}:{line}:{col}", message, check=Check.DUPLICATE_KEY)
            )
        for line, col, message in raw.renamed_keys:
            result.problems.append(
                Problem(f"{source}:{line}:{col}", message, check=Check.YAML11_KEY)
            )
        if _other_api(raw.data):
            result.others += 1
            continue
        parsed = parse_resource(raw.data, where, raw=raw, source=str(source))
        if isinstance(parsed, list):
            result.problems += parsed
            if (key := object_key(raw.data)) is not None:
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


def parse_resource(
    data: Any,
    where: str,
    *,
    raw: RawDocument | None = None,
    source: str | None = None,
) -> Resource | list[Problem]:
    """One resource from plain (JSON-like) data, or the problems that stop it from being one.

    `raw` (with `source`) is the YAML document the data came from: messages then point at the
    line of each field. A `status` in a manifest is checked too: server-side apply types it
    before it drops it.
    """
    if isinstance(data, Mapping) and not isinstance(data, dict):
        data = dict(data)
    if not isinstance(data, dict):
        return [Problem(where, f"expected a mapping (a Kubernetes object), got {_kind_of(data)}")]
    kind = data.get("kind")
    meta = data.get("metadata")
    name = meta.get("name", "?") if isinstance(meta, dict) else "?"
    obj = f"{kind}/{name}" if isinstance(kind, str) else ""
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
                where, f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}", obj, "kind"
            )
        ]
    try:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=_jsonable)
    except (TypeError, ValueError) as e:  # a value JSON cannot carry (NaN, an object)
        return [Problem(where, f"not a JSON object: {e}", obj)]
    size = len(text) if text.isascii() else len(text.encode())
    if size > MAX_OBJECT_BYTES:
        return [
            Problem(
                where,
                f"the object is {size} bytes as JSON; the apiserver stores objects of at most "
                f"{MAX_OBJECT_BYTES} bytes (1.5 MiB, etcd's default --max-request-bytes): split "
                "it (e.g. move inline models into Model objects)",
                obj,
                check=Check.SIZE,
            )
        ]
    try:
        # Wire names only, and JSON's types only (as the apiserver's structural schema).
        return info.resource.model_validate_json(  # type: ignore[return-value]
            text, strict=True, by_alias=True, by_name=False, context=MANIFEST
        )
    except ValidationError as e:
        problems = []
        for loc, path, msg in explain(e, raw.yaml11_word if raw is not None else None):
            here = where
            if raw is not None and source is not None:
                pos = raw.position(loc)
                if pos is not None:
                    here = f"{source}:{pos[0]}"
            problems.append(Problem(here, msg, obj, path))
        return problems


def _jsonable(value: Any) -> Any:
    """Mappings that are not dicts (a kopf Body) as dicts, for objects read from a cluster."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON")


def _kind_of(data: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(data), type(data).__name__
    )
