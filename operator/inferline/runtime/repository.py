"""Write a model repository from a render manifest: configs, inline files, fetched artifacts.

The repository is assembled in a sibling staging directory and swapped in only when every file
arrived and verified, so a failed fetch never leaves a half-written repository where a server
might load it.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from pathlib import Path

from ..errors import UserError
from ..render.manifest import MANIFEST_FILE, RenderManifest, RepoFile
from .fetch import Artifact, FetchOptions, Progress, fetch_all, local_options

MODEL_REPOSITORY = "model_repository"
log = logging.getLogger("inferline.runtime")


def write_repository(
    manifest: RenderManifest,
    root: Path,
    *,
    fetch_artifacts: bool = True,
    progress: Progress | None = None,
    options: FetchOptions | None = None,
) -> list[RepoFile]:
    """Write every file of `manifest` under `root`; return the artifacts left unfetched.

    `options` default to local use (`inferline serve`): ambient credentials and the local
    artifact cache; the pod entrypoint passes its own.
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        for f in manifest.files:
            if f.text is not None:
                dest = staging / f.path
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(f.text)
        if fetch_artifacts and manifest.artifacts:
            opts = options or local_options()
            if progress is not None:
                opts = dataclasses.replace(opts, progress=progress)
            stats = fetch_all([artifact(f, staging) for f in manifest.artifacts], opts)
            log.info("artifacts: %s", stats.summary())
        _swap_in(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [] if fetch_artifacts else manifest.artifacts


def artifact(f: RepoFile, staging: Path) -> Artifact:
    """A manifest's artifact, with its destination inside the staging repository.

    A path ending in "/" is a directory: a directory source is copied into it, a single file
    lands in it under its own name.
    """
    assert f.source is not None
    extra = {"storage": f.storage} if f.storage is not None else {}
    return Artifact(
        uri=f.source,
        dest=staging / f.path,
        sha256=f.sha256,
        credentials_secret=f.credentials_secret,
        into_dir=f.path.endswith("/"),
        **extra,
    )


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
