"""Turn a rendered directory into a servable repository: copy configs, fetch artifacts."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..errors import UserError
from .fetch import Progress, fetch

RENDER_JSON = "render.json"
MODEL_REPOSITORY = "model_repository"


def prepare_repository(rendered: Path, repository: Path, progress: Progress | None = None) -> dict:
    """Assemble `repository` from `rendered` (an `inferline render` output); return render.json.

    Work happens in a staging directory next to `repository`, swapped in only when every
    artifact arrived and verified.
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
        for a in summary.get("artifacts", []):
            fetch(a["source"], staging / a["path"], sha256=a.get("sha256"), progress=progress)
        if repository.exists():
            shutil.rmtree(repository)
        staging.rename(repository)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary
