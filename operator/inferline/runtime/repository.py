"""Write a rendered repository to disk: configs, inline files, fetched artifacts.

The repository is assembled in a sibling temporary directory and swapped in at the end, so a
failed fetch never leaves a half-written repository where a server might load it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..render.triton import RenderedRepository, RepoFile
from .fetch import Progress, fetch


def write_repository(
    repos: list[RenderedRepository],
    root: Path,
    *,
    fetch_artifacts: bool = True,
    progress: Progress | None = None,
) -> list[RepoFile]:
    """Write every model of `repos` under `root`; return the artifacts left unfetched."""
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    unfetched: list[RepoFile] = []
    try:
        for repo in repos:
            for model in repo.models:
                mdir = staging / model.name
                mdir.mkdir(parents=True, exist_ok=True)
                (mdir / "config.pbtxt").write_text(model.config_text)
                for f in model.files:
                    dest = staging / f.path
                    if f.text is not None:
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        dest.write_text(f.text)
                    elif fetch_artifacts:
                        assert f.source is not None
                        fetch(f.source, dest, sha256=f.sha256, progress=progress)
                    else:
                        unfetched.append(f)
        if root.exists():
            old = root.with_name(f".{root.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            root.rename(old)
            staging.rename(root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return unfetched
