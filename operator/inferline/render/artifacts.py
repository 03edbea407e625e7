"""Artifact URIs: make manifest-relative paths absolute (pure string and path arithmetic)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit

REMOTE_SCHEMES = ("s3", "gs", "http", "https", "pvc", "configmap")


def resolve_uri(uri: str, base: PurePosixPath | Path | None = None) -> str:
    """An absolute URI for `uri`, resolving relative files against the manifest directory.

    `file:///abs/path` stays; `file://rel/path` and a bare `rel/path` are relative to `base`
    (the directory of the manifest that named them); remote schemes pass through unchanged.
    """
    scheme = urlsplit(uri).scheme
    if scheme in REMOTE_SCHEMES:
        return uri
    path = uri.removeprefix("file://") if scheme == "file" else uri
    p = PurePosixPath(unquote(path))
    if not p.is_absolute() and base is not None:
        p = PurePosixPath(str(base)) / p
    return f"file://{quote(str(p))}"


def local_path(uri: str) -> str:
    """The filesystem path of a file:// URI."""
    if urlsplit(uri).scheme != "file":
        raise ValueError(f"not a file:// URI: {uri}")
    return unquote(uri.removeprefix("file://"))
