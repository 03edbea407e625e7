"""Which pods the runner owns, and what their images would contain.

The criterion is the image: a pod belongs to the runner when one of its containers uses an
Inferline runtime image (ghcr.io/inferline/runtime-cpu or runtime-gpu, any tag or digest) and
it asks for no GPU (this machine has none: kwok pretends to run those). The
same rule, as a jq expression, keeps kwok's stages off those pods (e2e/kwok_stages.py), so
exactly one of the two drives each pod.

An image here is a recipe for running its entrypoint on this machine instead of a filesystem:
its ENTRYPOINT/CMD, the ENV it sets, its WORKDIR and the directories a container may write
without a volume (runtime-images/*/Dockerfile). `python -m inferline.runtime` runs with this
machine's Python (the virtualenv the runner runs in), so the CPU tritonserver from the
nvidia-pytriton wheel serves for both images.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNTIME_REPOSITORIES = ("ghcr.io/inferline/runtime-cpu", "ghcr.io/inferline/runtime-gpu")
_IMAGE_RE = "^(" + "|".join(re.escape(r) for r in RUNTIME_REPOSITORIES) + ")([:@].*)?$"
# kwok evaluates stage selectors with gojq: true when any container uses a runtime image and
# the pod asks for no GPU (nvidia.com/* resources or DRA claims): this machine has none, so the
# runtime pods of GPU pipelines stay with kwok, which only pretends to run them.
RUNTIME_POD_JQ = (
    f"([.spec.containers[].image | test({json.dumps(_IMAGE_RE)})] | any)"
    " and ([.spec.containers[] | ((.resources.limits // {}) + (.resources.requests // {}))"
    ' | keys[] | startswith("nvidia.com/")] | any | not)'
    " and ((.spec.resourceClaims // []) | length == 0)"
)

# The interpreters the images put first on PATH or name in their entrypoint; all of them are
# this machine's Python here (it has inferline[runtime] installed).
_PYTHONS = {
    "python",
    "python3",
    "/opt/inferline/venv/bin/python",
    "/opt/inferline/venv/bin/python3",
    "/opt/inferline/runtime/bin/python",
    "/opt/inferline/runtime/bin/python3",
}
# NVIDIA's entrypoint only prints a banner and execs its arguments.
_WRAPPERS = {"/opt/nvidia/nvidia_entrypoint.sh"}


@dataclass(frozen=True)
class Image:
    repository: str
    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str]
    workdir: str
    # Where the image lets a container write without a volume (its writable layer, and its
    # VOLUMEs): each maps to a per-container directory unless a volume is mounted there.
    writable: tuple[str, ...] = ("/tmp", "/models")


_COMMON_ENV = {
    "HOME": "/tmp",
    "XDG_CACHE_HOME": "/tmp/.cache",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}
IMAGES = {
    "ghcr.io/inferline/runtime-cpu": Image(
        "ghcr.io/inferline/runtime-cpu",
        entrypoint=["python", "-m", "inferline.runtime"],
        cmd=["--help"],
        env={"VIRTUAL_ENV": "/opt/inferline/venv", **_COMMON_ENV},
        workdir="/tmp",
    ),
    "ghcr.io/inferline/runtime-gpu": Image(
        "ghcr.io/inferline/runtime-gpu",
        entrypoint=[
            "/opt/nvidia/nvidia_entrypoint.sh",
            "/opt/inferline/runtime/bin/python",
            "-m",
            "inferline.runtime",
        ],
        cmd=["--help"],
        env=dict(_COMMON_ENV),
        workdir="/tmp",
    ),
}


def repository_of(image: str) -> str:
    """`ghcr.io/inferline/runtime-cpu:0.1.0@sha256:...` -> `ghcr.io/inferline/runtime-cpu`."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name.rsplit(":", 1)[0]
    return name


def image_of(container: dict[str, Any]) -> Image | None:
    return IMAGES.get(repository_of(container.get("image", "")))


def is_runtime_pod(pod: dict[str, Any]) -> bool:
    """The Python twin of RUNTIME_POD_JQ."""
    spec = pod.get("spec", {})
    containers = spec.get("containers", [])
    asks_gpu = any(
        k.startswith("nvidia.com/")
        for c in containers
        for part in ("limits", "requests")
        for k in ((c.get("resources") or {}).get(part) or {})
    )
    return (
        any(re.match(_IMAGE_RE, c.get("image", "")) for c in containers)
        and not asks_gpu
        and not spec.get("resourceClaims")
    )


class UnsupportedCommand(ValueError):
    """The container asks for a program the runner cannot run on this machine."""


def host_argv(argv: list[str]) -> list[str]:
    """Map an image's command line onto this machine: its Pythons become sys.executable.

    Only the runtime's own programs can run here; anything else is refused with a message that
    ends up in the container's status, as a missing binary would in a real container.
    """
    args = list(argv)
    while args and args[0] in _WRAPPERS:
        args = args[1:]
    if not args:
        raise UnsupportedCommand("empty command")
    if args[0] in _PYTHONS:
        return [sys.executable, *args[1:]]
    raise UnsupportedCommand(
        f"{args[0]!r}: the e2e pod runner runs only the images' Python "
        f"({', '.join(sorted(p for p in _PYTHONS if '/' not in p))})"
    )


def python_bin_dir() -> Path:
    return Path(sys.executable).parent


def runs_runtime(host_argv: list[str]) -> bool:
    """Whether a host command line (after host_argv) is `python -m inferline.runtime`."""
    return host_argv[:3] == [sys.executable, "-m", "inferline.runtime"]
