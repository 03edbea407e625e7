"""An independent model of admission, for the parity tests: the generated CRD judged as the
apiserver judges it, without the pydantic models.

For one object (as kubectl --server-side sends it): apiVersion and kind, ObjectMeta, status
dropped, schema defaults applied (to absent and null fields; other nulls are kept), unknown
fields rejected (kubectl's strict field validation), the OpenAPI schema through a JSON-schema
validator, list-map keys unique, and every x-kubernetes-validations CEL rule evaluated with
cel-python (RE2 regexes, as Kubernetes). The verdict is the list of reasons it is rejected.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

import celpy
import jsonschema

from inferline.api.crd import all_crds

API_VERSION = "inferline.dev/v1alpha1"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_META_FIELDS = {
    "name": str,
    "generateName": str,
    "namespace": str,
    "selfLink": str,
    "uid": str,
    "resourceVersion": str,
    "generation": int,
    "creationTimestamp": str,
    "deletionTimestamp": str,
    "deletionGracePeriodSeconds": int,
    "labels": dict,
    "annotations": dict,
    "ownerReferences": list,
    "finalizers": list,
    "managedFields": list,
}


@cache
def schemas() -> dict[str, dict[str, Any]]:
    """kind -> the openAPIV3Schema of its CRD."""
    return {
        c["spec"]["names"]["kind"]: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for c in all_crds().values()
    }


@cache
def _program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def cel_holds(rule: str, value: Any) -> bool:
    """A CRD's CEL rule on `value` (self), as the apiserver evaluates it."""
    result = _program(rule).evaluate({"self": celpy.json_to_cel(value)})
    if isinstance(result, Exception):
        raise result
    return bool(result)


def _key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if "/" in prefix or (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))):
        return False
    return bool(name) and len(name) <= 63 and _QUALIFIED.match(name) is not None


def _metadata(meta: Any) -> list[str]:
    if not isinstance(meta, dict):
        return ["metadata: not an object"]
    bad = [f"metadata.{k}: unknown field" for k in meta if k not in _META_FIELDS]
    for k, t in _META_FIELDS.items():
        v = meta.get(k)
        if v is not None and (not isinstance(v, t) or isinstance(v, bool)):
            bad.append(f"metadata.{k}: wrong type")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        bad.append("metadata.name: required")
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        bad.append("metadata.name: not a DNS subdomain")
    ns = meta.get("namespace")
    if isinstance(ns, str) and (len(ns) > 63 or not _DNS_LABEL.match(ns)):
        bad.append("metadata.namespace: not a DNS label")
    for field in ("labels", "annotations"):
        m = meta.get(field)
        if not isinstance(m, dict):
            continue
        for k, v in m.items():
            if v is None:
                continue
            if not isinstance(v, str):
                bad.append(f"metadata.{field}.{k}: not a string")
            elif not _key_ok(k):
                bad.append(f"metadata.{field}: bad key {k!r}")
            elif field == "labels" and (len(v) > 63 or not _LABEL_VALUE.match(v)):
                bad.append(f"metadata.labels.{k}: bad value")
    return bad


def _prune_and_default(value: Any, schema: dict[str, Any]) -> Any:
    """apiextensions under server-side apply: defaults fill absent fields and null ones; any
    other null is kept as written and fails validation, field or map entry alike (kubectl
    --server-side --dry-run=server says so: a create would prune it, an apply does not)."""
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        out = {}
        for k, v in value.items():
            sub = props.get(k) if props is not None else extra
            if v is None and props is not None and isinstance(sub, dict) and "default" in sub:
                v = copy.deepcopy(sub["default"])
            out[k] = _prune_and_default(v, sub) if isinstance(sub, dict) and v is not None else v
        for k, sub in (props or {}).items():
            if k not in out and "default" in sub:
                out[k] = _prune_and_default(copy.deepcopy(sub["default"]), sub)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune_and_default(v, schema["items"]) for v in value]
    return value


def _structure(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Unknown fields, list-map keys and CEL rules (the JSON-schema validator does the rest)."""
    bad: list[str] = []
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            sub = props.get(k) if props is not None else extra
            if sub is None:
                if props is not None:
                    bad.append(f"{path}.{k}: unknown field")
                continue
            if isinstance(sub, dict):
                bad += _structure(v, sub, f"{path}.{k}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        if schema.get("x-kubernetes-list-type") == "map":
            keys = schema["x-kubernetes-list-map-keys"]
            seen = set()
            for item in value:
                if isinstance(item, dict):
                    key = tuple(repr(item.get(k)) for k in keys)
                    if key in seen:
                        bad.append(f"{path}: duplicate entries for key {key}")
                    seen.add(key)
        for i, item in enumerate(value):
            bad += _structure(item, schema["items"], f"{path}[{i}]")
    if not bad:
        for rule in schema.get("x-kubernetes-validations", []):
            try:
                ok = cel_holds(rule["rule"], value)
            except Exception as e:  # a rule the apiserver could not evaluate rejects too
                bad.append(f"{path}: CEL error in {rule['rule']!r}: {e}")
                continue
            if not ok:
                bad.append(f"{path}: {rule['message']}")
    return bad


def rejections(obj: Any) -> list[str]:
    """Why the apiserver rejects `obj` (empty when it admits it)."""
    if not isinstance(obj, dict):
        return ["not an object"]
    if obj.get("apiVersion") != API_VERSION:
        return [f"apiVersion {obj.get('apiVersion')!r}"]
    kind = obj.get("kind")
    schema = schemas().get(kind) if isinstance(kind, str) else None
    if schema is None:
        return [f"no such kind {obj.get('kind')!r}"]
    bad = _metadata(obj.get("metadata"))
    if bad:
        return bad
    body = {k: v for k, v in obj.items() if k != "status"}
    body = _prune_and_default(body, schema)
    validator = jsonschema.Draft4Validator(schema)
    bad = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]
    if bad:
        return bad
    return _structure(body, schema, "")
