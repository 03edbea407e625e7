"""Generate CustomResourceDefinitions from the pydantic models.

pydantic writes JSON Schema (with $refs, anyOf-null for optionals, titles); Kubernetes wants a
*structural* OpenAPI v3 schema: every node typed, no $ref, no nullable unions. This module turns
one into the other and adds what only Kubernetes knows: list-map keys (so duplicate step or
tensor names are rejected at admission), CEL rules, printer columns, short names, categories,
and the status and scale subresources.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .common import GROUP, VERSION
from .kinds import KINDS, KindInfo

_DROP_KEYS = {"title", "examples"}


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A structural OpenAPI v3 schema for a pydantic model (by alias, validation mode)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(raw, defs)


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        merged = {**target, **node}  # siblings of $ref (description, default) win
        return _structural(merged, defs)
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express union {options} structurally")
        rest = {k: v for k, v in node.items() if k != "default" or v is not None}
        return _structural({**options[0], **rest}, defs)
    if node.get("default", 0) is None:
        del node["default"]
    for bound, key in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        # JSON Schema 2020 writes a number; OpenAPI 3.0 (Kubernetes) a boolean beside min/max.
        if isinstance(node.get(bound), int | float) and not isinstance(node[bound], bool):
            node[key] = node.pop(bound)
            node[bound] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in _DROP_KEYS:
            continue
        if k == "additionalProperties" and v is False:
            # Forbidden in structural schemas; the apiserver prunes unknown fields, and
            # `kubectl apply` (strict field validation) rejects them with the field's name.
            continue
        if k == "properties":
            out[k] = {name: _structural(p, defs) for name, p in v.items()}
        elif k in ("items", "additionalProperties") and isinstance(v, dict):
            out[k] = _structural(v, defs)
        else:
            out[k] = v
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if out.get("type") == "number" and "format" not in out:
        out["format"] = "double"
    if out.get("type") == "integer" and "format" not in out:
        out["format"] = "int64"
    items = out.get("items")
    if (
        out.get("type") == "array"
        and "x-kubernetes-list-type" not in out
        and isinstance(items, dict)
        and items.get("type") == "object"
        and "name" in items.get("required", [])
    ):
        # Names must be unique in these lists (steps, tensors, env): say so at admission.
        out["x-kubernetes-list-type"] = "map"
        out["x-kubernetes-list-map-keys"] = ["name"]
    return out


def crd_for(info: KindInfo) -> dict[str, Any]:
    props: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": openapi_schema(info.spec),
    }
    if info.status is not None:
        status = openapi_schema(info.status)
        status.pop("required", None)
        props["status"] = status
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["spec"],
        "properties": props,
    }
    # Rules over the whole object (the pipeline's name, which its children are named after).
    rules = getattr(info.resource, "cel_rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [{"rule": r.rule, "message": r.message} for r in rules]
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "additionalPrinterColumns": info.columns,
    }
    if info.status is not None:
        subresources: dict[str, Any] = {"status": {}}
        if info.scale:
            subresources["scale"] = {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector",
            }
        version["subresources"] = subresources
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": info.crd_name,
            "labels": {"app.kubernetes.io/part-of": "inferline"},
        },
        "spec": {
            "group": GROUP,
            "scope": info.scope,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.kind.lower(),
                "shortNames": info.short_names,
                "categories": ["inferline"],
            },
            "versions": [version],
        },
    }


def all_crds() -> dict[str, dict[str, Any]]:
    """File name -> CRD object, for every kind."""
    return {
        f"{GROUP}_{i.plural}.yaml": crd_for(i)
        for i in sorted(KINDS.values(), key=lambda i: i.plural)
    }
