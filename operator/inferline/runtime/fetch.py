"""Fetch model artifacts (fsspec) into the repository, verifying what arrives.

Schemes: file:// (and plain paths), http(s)://, s3:// and gs:// (with the `cloud` extra),
pvc://CLAIM/path (the claim mounted under $INFERLINE_PVC_ROOT/CLAIM, as the operator mounts it),
configmap://NAME/KEY (mounted under $INFERLINE_CONFIGMAP_ROOT/NAME/KEY).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import fsspec

from ..errors import UserError
from ..render.artifacts import local_path
from ..render.contract import CONFIGMAP_ROOT_ENV, PVC_ROOT_ENV

Progress = Callable[[str, int, int | None], None]  # (uri, bytes so far, total or None)

_CHUNK = 1 << 20


class FetchError(UserError):
    """An artifact could not be fetched or failed verification."""


def _mounted(uri: str, env: str, what: str) -> str:
    root = os.environ.get(env)
    if not root:
        raise FetchError(
            f"{uri}: {what} URIs need the object mounted (in a cluster the operator "
            f"mounts it; locally set {env})"
        )
    parts = urlsplit(uri)
    return str(Path(root) / parts.netloc / parts.path.lstrip("/"))


def to_fsspec_url(uri: str) -> str:
    """The URL fsspec opens for an artifact URI."""
    scheme = urlsplit(uri).scheme
    if scheme in ("", "file"):
        return local_path(uri) if scheme else uri
    if scheme == "pvc":
        return _mounted(uri, PVC_ROOT_ENV, "pvc://")
    if scheme == "configmap":
        return _mounted(uri, CONFIGMAP_ROOT_ENV, "configmap://")
    return uri


def fetch(
    uri: str,
    dest: Path,
    *,
    sha256: str | None = None,
    progress: Progress | None = None,
    into: bool = False,
) -> None:
    """Copy `uri` to `dest` (a file), or its contents into `dest` (a directory) if it is one.

    `into`: `dest` is a directory either way; a single file lands in it under its own name.
    """
    url = to_fsspec_url(uri)
    try:
        fs, path = fsspec.core.url_to_fs(url)
        # info() rather than exists(): exists() reports an unreachable host as "not found".
        try:
            info = fs.info(path)
        except FileNotFoundError as e:
            # fsspec's HTTP filesystem wraps connection errors in FileNotFoundError too.
            cause = e.__cause__ or e.__context__
            if cause is not None and getattr(cause, "status", None) != 404:
                raise FetchError(
                    f"{uri}: cannot fetch: {type(cause).__name__}: {_reason(cause)}"
                ) from e
            raise FetchError(f"{uri}: not found") from None
        if info.get("type") == "directory":
            if sha256:
                raise FetchError(f"{uri}: is a directory; sha256 applies to a single file")
            _fetch_dir(fs, path, dest, uri, progress)
        else:
            target = dest / Path(path).name if into else dest
            _fetch_file(fs, path, target, uri, sha256, progress)
    except FetchError:
        raise
    except ImportError as e:
        raise FetchError(
            f"{uri}: this scheme needs an extra package ({e.name}); install inferline[cloud]"
        ) from e
    except (OSError, ValueError) as e:  # aiohttp/fsspec errors derive from these
        raise FetchError(f"{uri}: cannot fetch: {_reason(e)}") from e
    except Exception as e:
        raise FetchError(f"{uri}: cannot fetch: {type(e).__name__}: {_reason(e)}") from e


def _reason(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:300]


def _fetch_file(
    fs: fsspec.AbstractFileSystem,
    path: str,
    dest: Path,
    uri: str,
    sha256: str | None,
    progress: Progress | None,
) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        total = fs.size(path)
    except Exception:
        total = None
    digest = hashlib.sha256()
    done = 0
    partial = dest.with_name(dest.name + ".partial")
    with fs.open(path, "rb") as src, open(partial, "wb") as out:
        while chunk := src.read(_CHUNK):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(uri, done, total)
    if done == 0:
        partial.unlink()
        raise FetchError(f"{uri}: is empty (0 bytes)")
    if total is not None and done != total:
        partial.unlink()
        raise FetchError(f"{uri}: size mismatch: got {done} bytes, expected {total}")
    if sha256 and digest.hexdigest() != sha256:
        partial.unlink()
        raise FetchError(
            f"{uri}: sha256 mismatch: got {digest.hexdigest()}, the Model says {sha256}"
        )
    partial.replace(dest)


def _fetch_dir(
    fs: fsspec.AbstractFileSystem, path: str, dest: Path, uri: str, progress: Progress | None
) -> None:
    if fs.protocol in ("file", ("file", "local")) or "file" in fs.protocol:
        shutil.copytree(path, dest, dirs_exist_ok=True)
        return
    root = path.rstrip("/")
    for f in fs.find(root):
        rel = f[len(root) :].lstrip("/")
        _fetch_file(fs, f, dest / rel, f"{uri.rstrip('/')}/{rel}", None, progress)
