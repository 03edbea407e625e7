"""Fetch a pipeline's model artifacts into a repository: verified, cached, in parallel.

Sources: s3:// and gs:// (obstore; credentials from the Model's credentialsSecret, see
`inferline.render.mounts`), http(s)://, file:// (and plain paths), pvc://CLAIM/path and
configmap://NAME/KEY (read from where the operator mounts them). A remote URI naming a prefix
(or ending in "/") is a directory: every object under it is fetched.

Every file is checked against the size the store reports and, when the Model gives one, its
sha256; a failure leaves nothing at the destination. Remote files go through the artifact cache
when there is one (see cache.py), keyed by sha256, or by URI + ETag when no sha256 is given.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import NotFoundError

from ..api.model import StorageOptions
from ..render import mounts
from ..render.artifacts import local_path
from .cache import ArtifactCache, default_local_cache, materialize, parse_size, ref_key
from .credentials import CredentialSource
from .download import CHUNK, Cancelled, Downloaded, Progress, Retry, download
from .stores import REMOTE_SCHEMES, FetchError, Location, explain, locate

if TYPE_CHECKING:
    from obstore import ObjectMeta

__all__ = ["Artifact", "FetchError", "FetchOptions", "FetchStats", "Progress", "fetch", "fetch_all"]

log = logging.getLogger("inferline.runtime")


@dataclass(frozen=True)
class Artifact:
    """One entry of a rendered pipeline's artifact list, resolved against the repository."""

    uri: str
    dest: Path
    sha256: str | None = None
    credentials_secret: str | None = None
    storage: StorageOptions = field(default_factory=StorageOptions)
    into_dir: bool = False  # dest is a directory: a single file lands inside it


@dataclass
class FetchOptions:
    credentials: CredentialSource = field(default_factory=CredentialSource.for_local)
    cache: ArtifactCache | None = None
    parallel: int = 4
    retry: Retry = field(default_factory=Retry)
    progress: Progress | None = None


@dataclass
class FetchStats:
    files: int = 0
    downloaded_bytes: int = 0
    cached_files: int = 0
    cached_bytes: int = 0
    copied_bytes: int = 0
    seconds: float = 0.0
    blobs: set[str] = field(default_factory=set, repr=False)  # cache blobs this run used
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for k, v in counts.items():
                setattr(self, k, getattr(self, k) + v)

    def summary(self) -> str:
        return (
            f"{self.files} files: {human(self.downloaded_bytes)} downloaded, "
            f"{self.cached_files} from the cache ({human(self.cached_bytes)}), "
            f"{human(self.copied_bytes)} copied from local paths, in {self.seconds:.1f}s"
        )


def human(n: float) -> str:
    """A byte count for people: 532 B, 11.7 kB, 25.2 MB, 1.3 GB."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def to_local_path(uri: str) -> str | None:
    """The filesystem path of a local artifact URI (file, pvc, configmap); None if remote."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        return local_path(uri) if parts.scheme else uri
    for scheme, env, default in (
        ("pvc", mounts.PVC_ROOT_ENV, None),
        ("configmap", mounts.CONFIGMAP_ROOT_ENV, None),
    ):
        if parts.scheme == scheme:
            root = os.environ.get(env, default)
            if not root:
                raise FetchError(
                    f"{uri}: {scheme}:// URIs need the object mounted (in a cluster the "
                    f"operator mounts it; locally set {env})"
                )
            return str(Path(root) / parts.netloc / parts.path.lstrip("/"))
    if parts.scheme in REMOTE_SCHEMES:
        return None
    raise FetchError(f"{uri}: unsupported scheme {parts.scheme!r}")


def fetch(
    uri: str,
    dest: Path,
    *,
    sha256: str | None = None,
    progress: Progress | None = None,
    options: FetchOptions | None = None,
) -> FetchStats:
    """Copy `uri` to `dest` (a file), or its contents into `dest` (a directory) if it is one."""
    opts = options or FetchOptions()
    if progress is not None:
        opts = dataclasses.replace(opts, progress=progress)
    return fetch_all([Artifact(uri, dest, sha256)], opts)


def fetch_all(artifacts: Sequence[Artifact], options: FetchOptions) -> FetchStats:
    """Fetch every artifact, `options.parallel` files at a time; raise the first failure."""
    stats = FetchStats()
    start = time.monotonic()
    cancel = threading.Event()
    with ThreadPoolExecutor(max_workers=max(1, options.parallel)) as pool:
        # Directories expand into their files first, so files of one model download in parallel.
        plans = _run_all(pool, [functools.partial(_plan, a, options) for a in artifacts], cancel)
        jobs = [job for plan in plans for job in plan]
        _run_all(pool, [functools.partial(j, options, stats, cancel) for j in jobs], cancel)
    stats.seconds = time.monotonic() - start
    if options.cache is not None:
        options.cache.evict(keep=stats.blobs)
    return stats


T = TypeVar("T")


def _run_all(
    pool: ThreadPoolExecutor, calls: list[Callable[[], T]], cancel: threading.Event
) -> list[T]:
    futures: list[Future[T]] = [pool.submit(c) for c in calls]
    _, pending = wait(futures, return_when=FIRST_EXCEPTION)
    failed = [f for f in futures if f.done() and not f.cancelled() and f.exception()]
    if failed:
        cancel.set()
        for f in pending:
            f.cancel()
        wait(pending)
        error = next(
            (f.exception() for f in failed if not isinstance(f.exception(), Cancelled)),
            failed[0].exception(),
        )
        assert error is not None
        raise error
    return [f.result() for f in futures]


Job = Callable[[FetchOptions, FetchStats, threading.Event], None]


def _plan(a: Artifact, options: FetchOptions) -> list[Job]:
    """The file copies/downloads an artifact amounts to."""
    path = to_local_path(a.uri)
    if path is not None:
        return [functools.partial(_copy_local, a, Path(path))]
    loc = locate(a.uri, a.credentials_secret, a.storage, options.credentials)
    if options.cache is not None and a.sha256 and options.cache.lookup(a.sha256) is not None:
        # Known content: no request at all.
        dest = a.dest / _basename(a.uri) if a.into_dir else a.dest
        return [functools.partial(_remote_file, loc, dest, a.sha256, None)]
    meta: ObjectMeta | None = None
    missing: Exception | None = None
    if not a.uri.endswith("/"):
        try:
            meta = obstore.head(loc.store, loc.path)
        except (NotFoundError, FileNotFoundError) as e:
            if not loc.path:  # http(s): no listing, so no directories
                raise explain(e, loc) from None
            missing = e  # perhaps a prefix: list it below
        except Exception as e:
            raise _explain_head(e, loc) from None
    if meta is not None:
        dest = a.dest / _basename(a.uri) if a.into_dir else a.dest
        return [functools.partial(_remote_file, loc, dest, a.sha256, meta)]
    # A prefix: a directory of objects.
    if a.sha256:
        raise FetchError(f"{a.uri}: is a directory; sha256 applies to a single file")
    prefix = loc.path.rstrip("/") + "/"
    try:
        objects = [m for batch in obstore.list(loc.store, prefix) for m in batch]
    except Exception as e:
        raise explain(e, loc) from None
    objects = [m for m in objects if not m["path"].endswith("/")]
    if not objects:
        if missing is not None:
            raise explain(missing, loc)
        raise FetchError(f"{a.uri}: not found (no objects under this prefix)")
    jobs: list[Job] = []
    for m in objects:
        rel = m["path"][len(prefix) :]
        sub = Location(loc.store, m["path"], f"{a.uri.rstrip('/')}/{rel}", loc.secret)
        jobs.append(functools.partial(_remote_file, sub, a.dest / rel, None, m))
    return jobs


def _explain_head(e: Exception, loc: Location) -> FetchError:
    """HEAD answers carry no body, so no error code: ask again with a GET to learn it."""
    try:
        obstore.get(loc.store, loc.path, options={"range": (0, 1)})
    except Exception as again:
        return explain(again, loc)
    return explain(e, loc)


def _basename(uri: str) -> str:
    return urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1] or "artifact"


def _validator(meta: ObjectMeta) -> str:
    """What identifies this version of an object: its ETag, else modification time and size."""
    return meta.get("e_tag") or f"{meta['last_modified'].isoformat()}/{meta['size']}"


def _remote_file(
    loc: Location,
    dest: Path,
    sha256: str | None,
    meta: ObjectMeta | None,
    options: FetchOptions,
    stats: FetchStats,
    cancel: threading.Event,
) -> None:
    cache = options.cache
    if cache is not None and sha256 and (blob := cache.lookup(sha256)) is not None:
        _from_cache(blob, dest, loc, stats)
        return
    if meta is None:  # a sha256 the cache lacked after all (evicted meanwhile)
        try:
            meta = obstore.head(loc.store, loc.path)
        except Exception as e:
            raise _explain_head(e, loc) from None
    size, etag = meta["size"], meta.get("e_tag")
    if size == 0:
        raise FetchError(f"{loc.uri}: is empty (0 bytes)")

    def download_checked(partial: Path) -> Downloaded:
        got = download(
            loc,
            partial,
            size=size,
            etag=etag,
            progress=options.progress,
            retry=options.retry,
            cancel=cancel,
        )
        _check_sha(loc.uri, got.sha256, sha256, partial)
        return got

    if cache is None:
        partial = dest.with_name(dest.name + ".partial")
        got = download_checked(partial)
        partial.replace(dest)
        stats.add(files=1, downloaded_bytes=got.fetched)
        return
    key = ref_key(loc.uri, _validator(meta))
    with cache.lock(key):
        # Another process may have fetched it while we waited for the lock.
        known = sha256 or cache.resolve_ref(key)
        if known and (blob := cache.lookup(known, size)) is not None:
            _from_cache(blob, dest, loc, stats)
            return
        partial = cache.partial(key)
        got = download_checked(partial)
        blob = cache.insert(partial, got.sha256)
        cache.add_ref(key, got.sha256)
    stats.blobs.add(got.sha256)
    materialize(blob, dest)
    stats.add(files=1, downloaded_bytes=got.fetched)


def _from_cache(blob: Path, dest: Path, loc: Location, stats: FetchStats) -> None:
    stats.blobs.add(blob.name)
    materialize(blob, dest)
    size = blob.stat().st_size
    stats.add(files=1, cached_files=1, cached_bytes=size)
    log.info("%s: from the cache (%s)", loc.uri, human(size))


def _check_sha(uri: str, got: str, want: str | None, partial: Path) -> None:
    if want and got != want:
        partial.unlink(missing_ok=True)
        raise FetchError(f"{uri}: sha256 mismatch: got {got}, the Model says {want}")


def _copy_local(
    a: Artifact, src: Path, options: FetchOptions, stats: FetchStats, cancel: threading.Event
) -> None:
    if src.is_dir():
        if a.sha256:
            raise FetchError(f"{a.uri}: is a directory; sha256 applies to a single file")
        shutil.copytree(src, a.dest, dirs_exist_ok=True)
        size = sum(f.stat().st_size for f in a.dest.rglob("*") if f.is_file())
        stats.add(files=1, copied_bytes=size)
        return
    if not src.exists():
        raise FetchError(f"{a.uri}: not found")
    dest = a.dest / src.name if a.into_dir else a.dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    total = src.stat().st_size
    if total == 0:
        raise FetchError(f"{a.uri}: is empty (0 bytes)")
    digest = hashlib.sha256()
    partial = dest.with_name(dest.name + ".partial")
    done = 0
    try:
        with open(src, "rb") as f, open(partial, "wb") as out:
            while chunk := f.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if options.progress:
                    options.progress(a.uri, done, total)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise FetchError(f"{a.uri}: cannot read: {e.strerror or e}") from None
    _check_sha(a.uri, digest.hexdigest(), a.sha256, partial)
    partial.replace(dest)
    stats.add(files=1, copied_bytes=done)


def local_options() -> FetchOptions:
    """`inferline serve`: ambient credentials and the user's cache ($INFERLINE_CACHE_DIR,
    else ~/.cache/inferline/artifacts; capped at $INFERLINE_CACHE_MAX_BYTES, else 50 GB)."""
    root = os.environ.get(mounts.CACHE_DIR_ENV)
    cap = os.environ.get(mounts.CACHE_MAX_BYTES_ENV, "50G")
    cache = ArtifactCache(Path(root) if root else default_local_cache(), _size(cap))
    return FetchOptions(credentials=CredentialSource.for_local(), cache=cache)


def pod_options(
    *, cache_dir: Path | None, cache_max: str | None, parallel: int, ambient: bool
) -> FetchOptions:
    """The pod entrypoint: credentials only from mounted Secrets (unless `ambient`), the cache
    the operator mounted (--cache-dir or $INFERLINE_CACHE_DIR), if any."""
    root = cache_dir or (Path(p) if (p := os.environ.get(mounts.CACHE_DIR_ENV)) else None)
    cap = cache_max or os.environ.get(mounts.CACHE_MAX_BYTES_ENV)
    cache = ArtifactCache(root, _size(cap) if cap else None) if root else None
    return FetchOptions(CredentialSource.for_pod(ambient), cache, parallel)


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise FetchError(f"artifact cache size: {e}") from None
