"""Helm and the chart, for the chart's unit tests: render it like `helm template` does."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from e2e import build

from ..conftest import REPO

CHART = REPO / "charts" / "inferline"
SCENARIOS = sorted(
    p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml")
)
RELEASE, NAMESPACE = "il", "inferline-system"

Obj = dict[str, Any]


@cache
def helm_binary() -> Path:
    """The helm the e2e toolchain builds (pinned; built on first use, never skipped)."""
    return build.ensure_built(quiet=True) / "helm"


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run helm offline, with its homes in a throwaway place (no repositories, no cluster)."""
    home = Path(os.environ.get("TMPDIR", "/tmp")) / f"inferline-chart-tests-{os.getuid()}"
    env = os.environ | {
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": os.devnull,
    }
    proc = subprocess.run(
        [str(helm_binary()), *args], capture_output=True, text=True, env=env, timeout=120
    )
    if check:
        assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc


@dataclass
class Rendered:
    docs: list[Obj]

    def of(self, kind: str) -> list[Obj]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str) -> Obj:
        found = self.of(kind)
        assert len(found) == 1, f"{len(found)} {kind}s rendered"
        return found[0]


def values_file(scenario: str) -> Path:
    return CHART / "ci" / f"{scenario}-values.yaml"


def render(*args: str, scenario: str = "default", crds: bool = False) -> Rendered:
    """`helm template` of the chart with a ci/ scenario and extra args, parsed (each distinct
    rendering runs helm once per session; callers must not modify the documents)."""
    return Rendered(list(_render(args, scenario, crds)))


@cache
def _render(args: tuple[str, ...], scenario: str, crds: bool) -> tuple[Obj, ...]:
    out = helm(
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--values",
        str(values_file(scenario)),
        *(["--include-crds"] if crds else []),
        *args,
    ).stdout
    return tuple(d for d in yaml.safe_load_all(out) if d)


def generator() -> ModuleType:
    """charts/generate.py (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("chart_generate", REPO / "charts" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
