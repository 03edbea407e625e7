"""Write a model repository from a render manifest: configs, inline files, fetched artifacts.

The repository is assembled in a sibling staging directory and swapped in only when every file
arrived and verified, so a failed fetch never leaves a half-written repository where a server
might load it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..errors import UserError
from ..render.manifest import MANIFEST_FILE, RenderManifest, RepoFile
from .fetch import Progress, fetch

MODEL_REPOSITORY = "model_repository"


def write_repository(
    manifest: RenderManifest,
    root: Path,
    *,
    fetch_artifacts: bool = True,
    progress: Progress | None = None,
) -> list[RepoFile]:
    """Write every file of `manifest` under `root`; return the artifacts left unfetched."""
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    unfetched: list[RepoFile] = []
    try:
        for f in manifest.files:
            dest = staging / f.path
            if f.text is not None:
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(f.text)
            elif fetch_artifacts:
                assert f.source is not None
                # A path ending in "/" is a directory: a directory source is copied into it, a
                # single file lands in it under its own name.
                fetch(f.source, dest, sha256=f.sha256, progress=progress, into=f.path.endswith("/"))
            else:
                unfetched.append(f)
        _swap_in(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return unfetched


def _swap_in(staging: Path, root: Path) -> None:
    if root.exists():
        old = root.with_name(f".{root.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        root.rename(old)
        staging.rename(root)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(root)


def write_rendered(
    manifest: RenderManifest, output: Path, *, fetch_artifacts: bool = False
) -> None:
    """What `inferline render -o OUTPUT` writes: OUTPUT/render.json and OUTPUT/model_repository
    (artifacts fetched into it only when asked; the runtime fetches them from the manifest)."""
    write_repository(manifest, output / MODEL_REPOSITORY, fetch_artifacts=fetch_artifacts)
    (output / MANIFEST_FILE).write_text(manifest.to_json())


def read_manifest(rendered: Path) -> RenderManifest:
    """The manifest of a rendered pipeline: DIR/render.json, or the file itself."""
    path = rendered / MANIFEST_FILE if rendered.is_dir() else rendered
    if not path.is_file():
        raise UserError(
            f"{rendered}: not a rendered pipeline (expected {MANIFEST_FILE}; create one with "
            "`inferline render -o DIR`)"
        )
    return RenderManifest.from_json(path.read_text(errors="replace"), str(path))
