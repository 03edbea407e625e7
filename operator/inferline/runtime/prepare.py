"""Turn a rendered pipeline into a servable repository: fetch and verify what it lists."""

from __future__ import annotations

from pathlib import Path

from ..render.manifest import RenderManifest
from .fetch import FetchOptions, Progress
from .repository import read_manifest, write_repository


def prepare_repository(
    rendered: Path,
    repository: Path,
    progress: Progress | None = None,
    options: FetchOptions | None = None,
) -> RenderManifest:
    """Assemble `repository` from `rendered` (a render.json, or a directory holding one).

    Work happens in a staging directory next to `repository`, swapped in only when every
    artifact arrived and verified.
    """
    manifest = read_manifest(rendered)
    write_repository(manifest, repository, fetch_artifacts=True, progress=progress, options=options)
    return manifest
