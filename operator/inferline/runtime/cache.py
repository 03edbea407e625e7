"""A content-addressed artifact cache shared by restarts, replicas and local serves.

Layout under the cache root:

    blobs/sha256/<hex>     verified content, read-only; hard-linked (or copied) into repositories
    refs/<key>             "<hex>\\n": which blob a URI at a given ETag holds (no sha256 given)
    partial/<key>          an interrupted download, resumed by the next attempt or pod
    locks/<key>.lock       flock()ed by the one process downloading <key>

A download happens under the artifact's lock, so two replicas starting together download once:
the second waits, then finds the blob. Blobs enter by rename after their sha256 is checked, so
a reader never sees a partial blob. flock() works across pods on one node and, on NFSv4, across
nodes (a ReadWriteMany claim).

Eviction: when a size cap is set, blobs not used by the current run, nor in the last ten
minutes, go oldest-first (a hit refreshes a blob's mtime) until the cache fits. Removing the
whole directory is always safe: repositories hold hard links or copies, never references into
the cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

log = logging.getLogger("inferline.runtime")


def default_local_cache() -> Path:
    """Where `inferline serve` caches artifacts: ~/.cache/inferline/artifacts (XDG aware)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inferline" / "artifacts"


def parse_size(text: str) -> int:
    """Bytes from `123`, `500M`, `20Gi`, `1.5G` (K/M/G/T powers of 1000, Ki/Mi/Gi/Ti of 1024)."""
    units = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    units |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    t = text.strip().removesuffix("B")
    for suffix in sorted(units, key=len, reverse=True):
        if suffix and t.endswith(suffix):
            number, factor = t[: -len(suffix)], units[suffix]
            break
    else:
        number, factor = t, 1
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (e.g. 50Gi, 500M, 1000000)") from None
    if value < 0:
        raise ValueError(f"not a size: {text!r} (negative)")
    return int(value * factor)


def ref_key(uri: str, validator: str) -> str:
    """The cache key of `uri` as it was when the store answered `validator` (its ETag)."""
    return hashlib.sha256(f"{uri}\n{validator}".encode()).hexdigest()


@dataclass
class ArtifactCache:
    root: Path
    max_bytes: int | None = None
    # Blobs touched this recently are never evicted: another replica sharing the cache may be
    # about to link the blob it just inserted.
    min_age_s: float = 600.0

    def __post_init__(self) -> None:
        try:
            for d in ("blobs/sha256", "refs", "partial", "locks"):
                (self.root / d).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"artifact cache {self.root}: {e.strerror or e}") from None

    def blob(self, sha256: str) -> Path:
        return self.root / "blobs" / "sha256" / sha256

    def partial(self, key: str) -> Path:
        return self.root / "partial" / key

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the download lock of `key` (blocks while another process holds it)."""
        with open(self.root / "locks" / f"{key}.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def lookup(self, sha256: str, size: int | None = None) -> Path | None:
        """The blob with this content, if cached (and of the expected size); refreshes its age."""
        blob = self.blob(sha256)
        try:
            st = blob.stat()
        except FileNotFoundError:
            return None
        if size is not None and st.st_size != size:
            log.warning("cache: %s has %d bytes, expected %d; dropping it", blob, st.st_size, size)
            blob.unlink(missing_ok=True)
            return None
        with contextlib.suppress(OSError):
            os.utime(blob)
        return blob

    def resolve_ref(self, key: str) -> str | None:
        """The sha256 a ref points to, if both the ref and its blob are there."""
        try:
            sha = (self.root / "refs" / key).read_text().strip()
        except FileNotFoundError:
            return None
        return sha if self.blob(sha).exists() else None

    def add_ref(self, key: str, sha256: str) -> None:
        _atomic_write(self.root / "refs" / key, f"{sha256}\n")

    def insert(self, partial: Path, sha256: str) -> Path:
        """Move a verified download into the cache (atomically); return the blob."""
        blob = self.blob(sha256)
        partial.chmod(0o444)
        os.replace(partial, blob)
        return blob

    def evict(self, keep: set[str]) -> None:
        """Drop least recently used blobs (not in `keep`) until the cache fits its cap."""
        if self.max_bytes is None:
            return
        with self.lock("evict"):
            blobs = []
            for b in (self.root / "blobs" / "sha256").iterdir():
                with contextlib.suppress(FileNotFoundError):
                    st = b.stat()
                    blobs.append((st.st_mtime, st.st_size, b))
            total = sum(size for _, size, _ in blobs)
            recent = time.time() - self.min_age_s
            for mtime, size, b in sorted(blobs):
                if total <= self.max_bytes:
                    break
                if b.name in keep or mtime > recent:
                    continue
                b.unlink(missing_ok=True)
                total -= size
                log.info("cache: evicted %s (%.1f MB)", b.name[:12], size / 1e6)
            if total > self.max_bytes:
                log.warning(
                    "cache: %.1f MB in use exceeds the cap of %.1f MB (this run needs it all)",
                    total / 1e6,
                    self.max_bytes / 1e6,
                )


def materialize(blob: Path, dest: Path) -> None:
    """Put a cached blob at `dest`: a hard link when on the same filesystem, else a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    try:
        os.link(blob, dest)
    except OSError:
        tmp = dest.with_name(dest.name + ".partial")
        shutil.copyfile(blob, tmp)
        os.replace(tmp, dest)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
