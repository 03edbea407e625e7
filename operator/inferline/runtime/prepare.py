"""Turn a rendered directory into a servable repository: copy configs, fetch artifacts."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..api.model import StorageOptions
from ..errors import UserError
from .fetch import Artifact, FetchOptions, Progress, fetch_all, local_options

log = logging.getLogger("inferline.runtime")

RENDER_JSON = "render.json"
MODEL_REPOSITORY = "model_repository"


def prepare_repository(
    rendered: Path,
    repository: Path,
    progress: Progress | None = None,
    options: FetchOptions | None = None,
) -> dict:
    """Assemble `repository` from `rendered` (an `inferline render` output); return render.json.

    Work happens in a staging directory next to `repository`, swapped in only when every
    artifact arrived and verified. `options` default to local use (`inferline serve`): ambient
    credentials and the local artifact cache; the pod entrypoint passes its own.
    """
    summary_path = rendered / RENDER_JSON
    src = rendered / MODEL_REPOSITORY
    if not summary_path.is_file() or not src.is_dir():
        raise UserError(
            f"{rendered}: not a rendered pipeline (expected {RENDER_JSON} and "
            f"{MODEL_REPOSITORY}/; create one with `inferline render -o DIR`)"
        )
    summary = json.loads(summary_path.read_text())
    repository.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{repository.name}.", dir=repository.parent))
    try:
        shutil.copytree(src, staging, dirs_exist_ok=True)
        opts = options or local_options()
        if progress is not None:
            opts = dataclasses.replace(opts, progress=progress)
        artifacts = [artifact(a, staging) for a in summary.get("artifacts", [])]
        stats = fetch_all(artifacts, opts)
        if artifacts:
            log.info("artifacts: %s", stats.summary())
        if repository.exists():
            shutil.rmtree(repository)
        staging.rename(repository)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary


def artifact(entry: dict[str, Any], staging: Path) -> Artifact:
    """An artifact of render.json, with its destination inside the staging repository."""
    return Artifact(
        uri=entry["source"],
        dest=staging / entry["path"],
        sha256=entry.get("sha256"),
        credentials_secret=entry.get("credentials_secret"),
        storage=StorageOptions.model_validate(entry.get("storage") or {}),
        into_dir=entry["path"].endswith("/"),
    )
