"""Pure: from a pod's container spec to the command line and environment of a host process.

A real kubelet hands the container runtime a command, an environment and mounts, and the
container sees its volumes at their mountPaths. Here there is no mount namespace: the runner
maps every container path it knows (volume mountPaths, the image's writable directories, the
termination-log path) to a host directory and rewrites those paths where the container could
name them — command, args, env values and workingDir. Paths written inside files the container
reads are not rewritten (render.json today names host file:// URIs, which need no rewrite).

The network namespace is the pod IP: `0.0.0.0` in args and env means the pod IP, and the
runtime's listen address is the pod IP unless the container names one.

Kubernetes semantics kept: env order and `$(VAR)` expansion (`$$` escapes, unknown references
stay as written), envFrom with prefixes, downward-API fieldRef/resourceFieldRef, optional
ConfigMap/Secret references, command/args overriding ENTRYPOINT/CMD.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from e2e.runner import images

# kind ("configmap" | "secret"), name -> its data (secrets decoded), or None when it is missing.
Lookup = Callable[[str, str], Mapping[str, str] | None]

DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
_BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ConfigError(ValueError):
    """The container cannot start as specified (kubelet's CreateContainerConfigError)."""


# -- $(VAR) expansion -------------------------------------------------------------------------

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined variables replaced, `$$` -> `$`, rest kept."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _REF.sub(sub, text)


# -- the downward API -------------------------------------------------------------------------

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_ref(pod: dict[str, Any], path: str, pod_ip: str, host_ip: str) -> str:
    meta = pod.get("metadata", {})
    spec = pod.get("spec", {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path])
    if m := _SUBSCRIPT.match(path):
        return str(meta.get(m.group(1), {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1], {})
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise ConfigError(f"fieldRef {path!r} is not supported by the downward API")


_SUFFIX = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^([0-9.]+(?:[eE][-+]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$")


def quantity(text: str) -> Decimal:
    m = _QUANTITY.match(str(text).strip())
    if not m:
        raise ConfigError(f"{text!r} is not a resource quantity")
    return Decimal(m.group(1)) * _SUFFIX[m.group(2)]


def resource_field_ref(
    container: dict[str, Any], ref: dict[str, Any], allocatable: Mapping[str, str]
) -> str:
    """limits.X / requests.X of the container, in units of `divisor` rounded up (as kubelet).

    An unset limit reads as the node's allocatable, as on a real node.
    """
    kind, _, resource = ref.get("resource", "").partition(".")
    if kind not in ("limits", "requests") or not resource:
        raise ConfigError(f"resourceFieldRef {ref.get('resource')!r} is not supported")
    value = container.get("resources", {}).get(kind, {}).get(resource)
    if value is None and kind == "requests":
        value = container.get("resources", {}).get("limits", {}).get(resource)
    if value is None:
        value = allocatable.get(resource, "0")
    divisor = quantity(ref.get("divisor", "1") or "1")
    return str(math.ceil(quantity(value) / divisor))


# -- paths ------------------------------------------------------------------------------------


@dataclass
class PathMap:
    """Container paths -> host paths; the longest container path wins."""

    entries: dict[str, Path] = field(default_factory=dict)

    def add(self, container_path: str, host: Path) -> None:
        self.entries[container_path.rstrip("/") or "/"] = host

    def covers(self, container_path: str) -> bool:
        return self.host_path(container_path) is not None

    def host_path(self, container_path: str) -> Path | None:
        for cpath in sorted(self.entries, key=len, reverse=True):
            if container_path == cpath or container_path.startswith(cpath + "/"):
                rest = container_path[len(cpath) :].lstrip("/")
                return self.entries[cpath] / rest if rest else self.entries[cpath]
        return None

    def rewrite(self, text: str) -> str:
        """Replace every container path in `text` that starts a word, a `--flag=` value, an
        element of a `:`/`,` list, or follows `file://`."""
        if not self.entries:
            return text
        # One pass, longest path first: a host path put in must not be rewritten again.
        alternatives = "|".join(re.escape(c) for c in sorted(self.entries, key=len, reverse=True))
        pattern = rf"(?:^|(?<=[=:,\s\"'])|(?<=file://))(?:{alternatives})(?=/|$|[:,\s\"'])"
        return re.sub(pattern, lambda m: str(self.entries[m.group(0)]), text)


# -- the container's process ------------------------------------------------------------------


@dataclass(frozen=True)
class PodContext:
    """What the runner set up for the pod: its network, its volumes, the node's capacity."""

    pod_ip: str
    host_ip: str
    volumes: Mapping[str, Path]  # volume name -> host directory
    allocatable: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerPlan:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    paths: PathMap
    termination_log: Path


def container_paths(
    container: dict[str, Any], ctx: PodContext, container_dir: Path, image: images.Image
) -> PathMap:
    paths = PathMap()
    for m in container.get("volumeMounts", []):
        vol = ctx.volumes.get(m["name"])
        if vol is None:
            raise ConfigError(f"volumeMount {m['name']!r}: the pod has no such volume")
        sub = m.get("subPath") or ""
        if ".." in Path(sub).parts or sub.startswith("/"):
            raise ConfigError(f"volumeMount {m['name']!r}: subPath {sub!r} must be relative")
        paths.add(m["mountPath"], vol / sub if sub else vol)
    for d in image.writable:
        if not paths.covers(d):
            paths.add(d, container_dir / "rootfs" / d.strip("/"))
    _parents_of_mounts(paths, container, container_dir / "rootfs")
    tlog = container.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH
    paths.add(tlog, container_dir / "termination-log")
    return paths


def _parents_of_mounts(paths: PathMap, container: dict[str, Any], rootfs: Path) -> None:
    """A directory that holds mounts (/var/run/inferline/configmaps holding one ConfigMap per
    subdirectory) is listed and named in env as a whole: give it a host directory whose entries
    link to the mounted volumes, as the container's filesystem would show them."""
    mounts = [m["mountPath"].rstrip("/") for m in container.get("volumeMounts", [])]
    for parent in sorted({str(Path(m).parent) for m in mounts}):
        if parent == "/" or paths.covers(parent):
            continue
        host = rootfs / parent.strip("/")
        host.mkdir(parents=True, exist_ok=True)
        for m in mounts:
            if str(Path(m).parent) == parent:
                link = host / Path(m).name
                target = paths.host_path(m)
                assert target is not None
                if not link.is_symlink():
                    link.symlink_to(target, target_is_directory=True)
        paths.add(parent, host)


def kube_env(
    pod: dict[str, Any], container: dict[str, Any], ctx: PodContext, lookup: Lookup
) -> dict[str, str]:
    """The variables the kubelet sets: envFrom, then env, each expanded over what came before."""
    env: dict[str, str] = {}
    for src in container.get("envFrom", []):
        kind, ref = (
            ("configmap", src["configMapRef"])
            if "configMapRef" in src
            else ("secret", src.get("secretRef", {}))
        )
        data = lookup(kind, ref.get("name", ""))
        if data is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{kind} "{ref.get("name")}" not found')
        for k, v in data.items():
            env[src.get("prefix", "") + k] = v
    for var in container.get("env", []):
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        vf = var["valueFrom"]
        if "fieldRef" in vf:
            env[name] = field_ref(pod, vf["fieldRef"]["fieldPath"], ctx.pod_ip, ctx.host_ip)
        elif "resourceFieldRef" in vf:
            env[name] = resource_field_ref(container, vf["resourceFieldRef"], ctx.allocatable)
        elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
            kind = "configmap" if "configMapKeyRef" in vf else "secret"
            ref = vf.get("configMapKeyRef") or vf["secretKeyRef"]
            data = lookup(kind, ref.get("name", ""))
            value = None if data is None else data.get(ref["key"])
            if value is None:
                if ref.get("optional"):
                    continue
                what = "ConfigMap" if kind == "configmap" else "Secret"
                raise ConfigError(
                    f"couldn't find key {ref['key']} in {what} "
                    f"{pod['metadata'].get('namespace')}/{ref.get('name')}"
                )
            env[name] = value
        else:
            raise ConfigError(f"env {name!r}: unsupported valueFrom {sorted(vf)}")
    return env


def _bind_to_pod_ip(text: str, pod_ip: str) -> str:
    return re.sub(r"(?:^|(?<=[=\s]))0\.0\.0\.0(?=$|[:\s])", pod_ip, text)


def plan(
    pod: dict[str, Any],
    container: dict[str, Any],
    ctx: PodContext,
    container_dir: Path,
    lookup: Lookup,
) -> ContainerPlan:
    """The host process for `container`; raises ConfigError or images.UnsupportedCommand."""
    image = images.image_of(container)
    if image is None:
        raise ConfigError(
            f"image {container.get('image')!r}: the e2e pod runner runs only "
            f"{', '.join(images.RUNTIME_REPOSITORIES)}"
        )
    paths = container_paths(container, ctx, container_dir, image)
    kenv = kube_env(pod, container, ctx, lookup)
    command = container.get("command")
    args = container.get("args")
    # As in Kubernetes: command replaces ENTRYPOINT and drops CMD; args replace CMD.
    argv = (
        [expand(a, kenv) for a in command] + [expand(a, kenv) for a in (args or [])]
        if command
        else image.entrypoint + ([expand(a, kenv) for a in args] if args else image.cmd)
    )
    # Container paths first, then the image's Python becomes this interpreter: a host venv that
    # lives under /tmp (a clone in /tmp) must not be taken for the container's /tmp volume.
    host_argv = images.host_argv([_bind_to_pod_ip(paths.rewrite(a), ctx.pod_ip) for a in argv])
    if images.runs_runtime(host_argv) and not any(
        a == "--address" or a.startswith("--address=") for a in host_argv
    ):
        host_argv.append(f"--address={ctx.pod_ip}")
    env = {"PATH": f"{images.python_bin_dir()}:{_BASE_PATH}", "HOSTNAME": pod["metadata"]["name"]}
    env |= {k: paths.rewrite(v) for k, v in image.env.items()}
    env |= {k: _bind_to_pod_ip(paths.rewrite(v), ctx.pod_ip) for k, v in kenv.items()}
    # Python's tempfile would otherwise use the host's /tmp; the container's /tmp is mapped.
    tmp = paths.host_path("/tmp")
    if tmp is not None:
        env.setdefault("TMPDIR", str(tmp))
    workdir = container.get("workingDir") or image.workdir
    cwd = paths.host_path(workdir) or container_dir / "rootfs" / workdir.strip("/")
    tlog = paths.host_path(
        container.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH
    )
    assert tlog is not None
    return ContainerPlan(host_argv, env, cwd, paths, tlog)
