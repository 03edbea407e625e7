"""Download one object to a file, resuming after cut connections, verifying size and sha256."""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import obstore
from obstore.exceptions import NotSupportedError, PreconditionError

from .stores import FetchError, Location, explain, is_permanent

if TYPE_CHECKING:
    from obstore import GetOptions

log = logging.getLogger("inferline.runtime")

Progress = Callable[[str, int, int | None], None]  # (uri, bytes so far, total or None)
CHUNK = 1 << 20  # what a cut can lose: obstore buffers up to this much


class Cancelled(Exception):
    """Another artifact failed: stop this download (its partial file stays for a resume)."""


@dataclass(frozen=True)
class Retry:
    """Attempts at a download whose connection breaks mid-body (requests themselves are also
    retried inside obstore), with exponential backoff and jitter between them."""

    attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 20.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_backoff_s, self.backoff_s * 2**attempt) * random.uniform(0.5, 1))


@dataclass
class Downloaded:
    sha256: str
    size: int
    fetched: int  # bytes that came over the network this time (not those of a resumed partial)


def download(
    loc: Location,
    partial: Path,
    *,
    size: int | None,
    etag: str | None,
    progress: Progress | None = None,
    retry: Retry = Retry(),
    cancel: threading.Event | None = None,
) -> Downloaded:
    """Fetch `loc` into `partial`, continuing whatever `partial` already holds.

    A cut connection resumes with a ranged GET from the bytes on disk (If-Match the ETag, so a
    changed object restarts from zero); a server that ignores ranges gets a restart.
    """
    partial.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    done = _rehash(partial, digest, size)
    received = 0  # bytes over the network this time
    if done:
        log.info("resuming %s at %.1f MB", loc.uri, done / 1e6)
    use_range = True
    failures = 0
    while True:
        if done and not use_range:  # no ranges here: every attempt starts from zero
            digest, done = hashlib.sha256(), 0
            partial.write_bytes(b"")
        opts: GetOptions = {}
        if done:
            opts["range"] = {"offset": done}
        if etag:
            opts["if_match"] = etag
        try:
            result = obstore.get(loc.store, loc.path, options=opts)
            with open(partial, "ab") as out:
                for chunk in result.stream(min_chunk_size=CHUNK):
                    if cancel is not None and cancel.is_set():
                        raise Cancelled
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    received += len(chunk)
                    if progress:
                        progress(loc.uri, done, size)
            break
        except Cancelled:
            raise
        except (NotSupportedError, PreconditionError) as e:
            # No ranges here, or the object changed since we looked: start over.
            why = "the server ignores ranges" if isinstance(e, NotSupportedError) else "it changed"
            log.warning("%s: restarting the download (%s)", loc.uri, why)
            if isinstance(e, NotSupportedError):
                use_range = False
            else:
                etag = None
            digest, done = hashlib.sha256(), 0
            partial.write_bytes(b"")
            failures += 1
        except Exception as e:
            if is_permanent(e):
                raise explain(e, loc) from None
            failures += 1
            if failures >= retry.attempts:
                raise FetchError(
                    f"{explain(e, loc)} (gave up after {failures} attempts; "
                    f"{done / 1e6:.1f} MB kept for the next start)"
                ) from None
            delay = retry.delay(failures - 1)
            log.warning(
                "%s: interrupted at %.1f MB (%s); retrying in %.1fs",
                loc.uri,
                done / 1e6,
                _short(e),
                delay,
            )
            time.sleep(delay)
        if failures >= retry.attempts:
            raise FetchError(f"{loc.uri}: cannot fetch: gave up after {failures} attempts")
    if size is not None and done != size:
        partial.unlink(missing_ok=True)
        raise FetchError(f"{loc.uri}: size mismatch: got {done} bytes, the store says {size}")
    return Downloaded(digest.hexdigest(), done, received)


def _rehash(partial: Path, digest: Any, size: int | None) -> int:
    """Feed an existing partial file into `digest`; return its length (0 if unusable)."""
    try:
        have = partial.stat().st_size
    except FileNotFoundError:
        return 0
    if size is not None and have > size:
        partial.write_bytes(b"")
        return 0
    with open(partial, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return have


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:160]
