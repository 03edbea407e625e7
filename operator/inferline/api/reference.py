"""Generate the resource reference (docs/reference.md) from the CRD schemas.

    python -m inferline.api.reference > docs/reference.md

A test fails when the committed file differs, so the reference cannot drift from the models.
"""

from __future__ import annotations

import sys
from typing import Any

from .common import PATTERN_WORDS
from .crd import crd_for
from .kinds import KINDS


def _type(node: dict[str, Any]) -> str:
    t = node.get("type", "object")
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if t == "array":
        return f"list of {_type(node.get('items', {}))}"
    if t == "object" and "additionalProperties" in node:
        return f"map of {_type(node['additionalProperties'])}"
    return t


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("minimum", ">="),
        ("maximum", "<="),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("maxLength", "max length"),
        ("pattern", "pattern"),
    ):
        if key in node:
            value = node[key]
            if key == "minimum" and node.get("exclusiveMinimum"):
                label = ">"
            if key == "pattern" and value in PATTERN_WORDS:
                parts.append(f"{PATTERN_WORDS[value]} (pattern `{value}`)")
                continue
            parts.append(f"{label} `{value}`")
    if "default" in node:
        parts.append(f"default `{node['default']}`")
    return ", ".join(parts)


def _rows(node: dict[str, Any], prefix: str, required: set[str]) -> list[str]:
    rows = []
    for name, child in node.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        desc = (child.get("description") or "").replace("\n", " ").replace("|", "\\|")
        req = "yes" if name in required else ""
        rows.append(f"| `{path}` | {_type(child)} | {req} | {_constraints(child)} | {desc} |")
        for rule in child.get("x-kubernetes-validations", []):
            rows.append(f"| | | | rule | {rule['message']} |")
        target = child.get("items", child) if child.get("type") == "array" else child
        if target.get("properties"):
            sub = f"{path}[]" if child.get("type") == "array" else path
            rows += _rows(target, sub, set(target.get("required", [])))
    return rows


def reference() -> str:
    out = [
        "# Resource reference",
        "",
        "Generated from the API models by `python -m inferline.api.reference`; do not edit.",
        "Group `inferline.dev`, version `v1alpha1`.",
        "",
    ]
    for info in KINDS.values():
        crd = crd_for(info)
        names = crd["spec"]["names"]
        top = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        schema = top["properties"]["spec"]
        out += [
            f"## {info.kind}",
            "",
            f"{info.scope}; short names: {', '.join(f'`{n}`' for n in names['shortNames'])}; "
            f"category `inferline`.",
            "",
            "| field (under `spec`) | type | required | constraints | description |",
            "|---|---|---|---|---|",
        ]
        out += _rows(schema, "", set(schema.get("required", [])))
        out.append("")
        for rule in top.get("x-kubernetes-validations", []):
            out += [f"Rule on the whole object: {rule['message']}.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(reference())
