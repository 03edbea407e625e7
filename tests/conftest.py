"""Shared helpers for the unit and integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
INVALID = REPO / "tests" / "data" / "invalid"
READABILITY = EXAMPLES / "readability"
READABILITY_ARTIFACTS = READABILITY / "artifacts"


def build_readability_artifacts(
    out: Path = READABILITY_ARTIFACTS,
) -> subprocess.CompletedProcess[str]:
    """Build the readability artifacts (a no-op when up to date).

    The default is where the manifest and `./dev serve` read them, so every test that needs
    them shares one build.
    """
    result = subprocess.run(
        [sys.executable, str(READABILITY / "build_artifacts.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def run_cli(
    *args: str, cwd: Path = REPO, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed `inferline` console script as a user would."""
    exe = Path(sys.executable).with_name("inferline")
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def expected_message(path: Path) -> str:
    """The `# expect: ...` line a broken manifest starts with."""
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path} must start with '# expect: '"
    return first.removeprefix("# expect: ")


@pytest.fixture
def repo() -> Path:
    return REPO
