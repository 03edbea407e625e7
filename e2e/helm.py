"""The helm the e2e toolchain builds, pointed at the e2e cluster (its homes in the run dir)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from e2e.cluster import Cluster

CHART = Path(__file__).resolve().parents[1] / "charts" / "inferline"


class Helm:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run helm; never raises on a non-zero exit."""
        return subprocess.run(
            [str(self.cluster.bin_dir / "helm"), *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.cluster.env(),
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, timeout: float = 300) -> str:
        proc = self(*args, timeout=timeout)
        assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
        return proc.stdout

    def status(self, release: str, namespace: str) -> dict[str, Any]:
        return dict(json.loads(self.ok("status", release, "-n", namespace, "-o", "json")))
