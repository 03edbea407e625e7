"""Materialise a pod's volumes as directories, as the kubelet's volume plugins would.

Supported: configMap and secret (all keys, or `items` mapping keys to nested paths; optional;
defaultMode/mode), emptyDir, downwardAPI, projected (configMap, secret, downwardAPI and
serviceAccountToken sources: every pod gets the projected `kube-api-access-*` volume). Anything
else (persistentVolumeClaim, hostPath, ...) is a CreateContainerConfigError with the reason.
Volumes are written once, when the pod starts; later ConfigMap changes are not propagated.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from e2e.runner.spec import ConfigError, field_ref, resource_field_ref

DEFAULT_MODE = 0o644
_TOKEN_DEFAULT_EXPIRATION = 3600


class Source(Protocol):
    """Where volume contents come from (the apiserver, for the runner)."""

    def configmap(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def token(
        self, namespace: str, service_account: str, audience: str | None, seconds: int
    ) -> str: ...


def object_files(obj: dict[str, Any], kind: str) -> dict[str, bytes]:
    """Key -> bytes of a ConfigMap (data + binaryData) or a Secret (base64 data)."""
    files: dict[str, bytes] = {}
    if kind == "secret":
        for k, v in (obj.get("data") or {}).items():
            files[k] = base64.b64decode(v)
        for k, v in (obj.get("stringData") or {}).items():
            files[k] = v.encode()
        return files
    for k, v in (obj.get("data") or {}).items():
        files[k] = v.encode()
    for k, v in (obj.get("binaryData") or {}).items():
        files[k] = base64.b64decode(v)
    return files


@dataclass
class _Writer:
    root: Path

    def write(self, rel: str, data: bytes, mode: int) -> None:
        parts = PurePosixPath(rel).parts
        if not parts or rel.startswith("/") or ".." in parts:
            raise ConfigError(f"volume path {rel!r} must be relative and not contain '..'")
        dest = self.root.joinpath(*parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        os.chmod(dest, mode)


def _select(
    files: dict[str, bytes], items: list[dict[str, Any]] | None, what: str, optional: bool
) -> list[tuple[str, bytes, int | None]]:
    """(path, data, mode) for each key; with `items`, only those keys at their paths."""
    if items is None:
        return [(k, v, None) for k, v in files.items()]
    out = []
    for item in items:
        if item["key"] not in files:
            if optional:
                continue
            raise ConfigError(f"{what}: key {item['key']!r} not found")
        out.append((item["path"], files[item["key"]], item.get("mode")))
    return out


def _object_source(
    src: Source, pod: dict[str, Any], vs: dict[str, Any], kind: str
) -> list[tuple[str, bytes, int | None]]:
    ns = pod["metadata"]["namespace"]
    name = vs.get("name") if kind == "configmap" else vs.get("secretName", vs.get("name"))
    name = name or ""
    obj = src.configmap(ns, name) if kind == "configmap" else src.secret(ns, name)
    label = f'{"configmap" if kind == "configmap" else "secret"} "{name}"'
    if obj is None:
        if vs.get("optional"):
            return []
        raise ConfigError(f"{label} not found")
    return _select(object_files(obj, kind), vs.get("items"), label, bool(vs.get("optional")))


def _downward_source(
    pod: dict[str, Any], vs: dict[str, Any], pod_ip: str, host_ip: str, alloc: Mapping[str, str]
) -> list[tuple[str, bytes, int | None]]:
    out: list[tuple[str, bytes, int | None]] = []
    containers = {c["name"]: c for c in pod["spec"].get("containers", [])}
    for item in vs.get("items", []):
        if "fieldRef" in item:
            value = field_ref(pod, item["fieldRef"]["fieldPath"], pod_ip, host_ip)
        else:
            ref = item["resourceFieldRef"]
            container = containers.get(ref.get("containerName", ""), {})
            value = resource_field_ref(container, ref, alloc)
        out.append((item["path"], value.encode(), item.get("mode")))
    return out


def materialise(
    pod: dict[str, Any],
    root: Path,
    src: Source,
    *,
    pod_ip: str,
    host_ip: str,
    allocatable: Mapping[str, str],
) -> dict[str, Path]:
    """Write every volume of `pod` under `root/<name>`; return volume name -> directory."""
    dirs: dict[str, Path] = {}
    for vol in pod["spec"].get("volumes", []):
        name = vol["name"]
        target = root / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        writer = _Writer(target)
        files: list[tuple[str, bytes, int | None]]
        default_mode = DEFAULT_MODE
        if "emptyDir" in vol:
            files = []
        elif "configMap" in vol or "secret" in vol:
            kind = "configmap" if "configMap" in vol else "secret"
            vs = vol["configMap"] if kind == "configmap" else vol["secret"]
            default_mode = vs.get("defaultMode", DEFAULT_MODE)
            files = _object_source(src, pod, vs, kind)
        elif "downwardAPI" in vol:
            vs = vol["downwardAPI"]
            default_mode = vs.get("defaultMode", DEFAULT_MODE)
            files = _downward_source(pod, vs, pod_ip, host_ip, allocatable)
        elif "projected" in vol:
            vs = vol["projected"]
            default_mode = vs.get("defaultMode", DEFAULT_MODE)
            files = []
            for s in vs.get("sources", []):
                if "configMap" in s:
                    files += _object_source(src, pod, s["configMap"], "configmap")
                elif "secret" in s:
                    files += _object_source(src, pod, s["secret"], "secret")
                elif "downwardAPI" in s:
                    files += _downward_source(pod, s["downwardAPI"], pod_ip, host_ip, allocatable)
                elif "serviceAccountToken" in s:
                    t = s["serviceAccountToken"]
                    token = src.token(
                        pod["metadata"]["namespace"],
                        pod["spec"].get("serviceAccountName", "default"),
                        t.get("audience"),
                        int(t.get("expirationSeconds", _TOKEN_DEFAULT_EXPIRATION)),
                    )
                    files.append((t["path"], token.encode(), None))
                else:
                    raise ConfigError(f"volume {name!r}: unsupported projected source {sorted(s)}")
        else:
            kinds = sorted(k for k in vol if k != "name")
            raise ConfigError(
                f"volume {name!r}: {', '.join(kinds)} volumes are not supported by the e2e pod "
                "runner (configMap, secret, emptyDir, downwardAPI and projected are)"
            )
        for path, data, mode in files:
            writer.write(path, data, mode if mode is not None else default_mode)
        dirs[name] = target
    return dirs
