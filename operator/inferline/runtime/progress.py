"""Download progress: a progress bar for people, periodic log lines for pods."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("inferline.runtime")


class LogProgress:
    """Log a line per artifact at most every `interval_s` seconds, and when it completes."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self._last: dict[str, float] = {}

    def __call__(self, uri: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - self._last.get(uri, 0.0) < self.interval_s:
            return
        self._last[uri] = now
        pct = f" ({100 * done / total:.0f}%)" if total else ""
        size = f"/{total / 1e6:.1f} MB" if total else " MB"
        log.info("fetching %s: %.1f%s%s", uri, done / 1e6, size, pct)


class RichProgress:
    """A rich progress bar per artifact (local `inferline serve`)."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            transient=True,
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, uri: str, done: int, total: int | None) -> None:
        if uri not in self.tasks:
            name = uri.rsplit("/", 1)[-1] or uri
            self.tasks[uri] = self.progress.add_task(f"fetch {name}", total=total)
        self.progress.update(self.tasks[uri], completed=done)  # type: ignore[arg-type]
