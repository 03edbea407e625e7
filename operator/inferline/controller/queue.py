"""A work queue of pipeline keys, as controller-runtime has: deduplicated, one worker per key at
a time, delayed retries with exponential backoff.

Watch events only enqueue; workers reconcile. A key enqueued while it is being reconciled runs
once more afterwards (it may have missed the change), never twice at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K")


@dataclass
class Backoff:
    base_s: float = 1.0
    cap_s: float = 300.0
    failures: dict[object, int] = field(default_factory=dict)

    def next_delay(self, key: object) -> float:
        n = self.failures.get(key, 0)
        self.failures[key] = n + 1
        return float(min(self.cap_s, self.base_s * 2**n))

    def forget(self, key: object) -> None:
        self.failures.pop(key, None)


class WorkQueue(Generic[K]):
    """Keys come out when due, urgent ones first: a pipeline whose spec the operator has not yet
    acted on goes before a status refresh, so a burst of new pipelines is not held up by the
    child and pod events of those already applied (which pile up, deduplicated, meanwhile)."""

    def __init__(self, backoff: Backoff | None = None) -> None:
        # One heap per rank (0 urgent, 1 not): (due, counter, key).
        self._heaps: tuple[list[tuple[float, int, K]], ...] = ([], [])
        self._due: dict[K, tuple[float, int]] = {}  # key -> (due, rank): the earliest wins
        self._active: set[K] = set()
        self._again: dict[K, tuple[float, int]] = {}  # enqueued while active: for after
        self._counter = itertools.count()
        self._wakeup = asyncio.Event()
        self.backoff = backoff or Backoff()

    def __len__(self) -> int:
        return len(self._due) + len(self._again)

    def add(self, key: K, delay_s: float = 0.0, *, urgent: bool = False) -> None:
        due, rank = time.monotonic() + delay_s, 0 if urgent else 1
        if key in self._active:
            d, r = self._again.get(key, (due, rank))
            self._again[key] = (min(d, due), min(r, rank))
            return
        if key in self._due:
            d, r = self._due[key]
            if d <= due and r <= rank:
                return
            due, rank = min(d, due), min(r, rank)
        self._due[key] = (due, rank)
        heapq.heappush(self._heaps[rank], (due, next(self._counter), key))
        self._wakeup.set()

    def retry(self, key: K) -> float:
        """Enqueue `key` again after its next backoff delay; returns the delay."""
        delay = self.backoff.next_delay(key)
        self.add(key, delay)
        return delay

    def forget(self, key: K) -> None:
        self.backoff.forget(key)

    def _head(self, rank: int) -> tuple[float, K] | None:
        """The rank's earliest entry that is still current (a later add supersedes)."""
        heap = self._heaps[rank]
        while heap:
            due, _, key = heap[0]
            if self._due.get(key) == (due, rank):
                return due, key
            heapq.heappop(heap)
        return None

    async def get(self) -> K:
        while True:
            now = time.monotonic()
            heads = [(rank, h) for rank in (0, 1) if (h := self._head(rank)) is not None]
            for rank, (due, key) in heads:
                if due <= now:
                    heapq.heappop(self._heaps[rank])
                    del self._due[key]
                    self._active.add(key)
                    return key
            timeout = min(due for _, (due, _) in heads) - now if heads else None
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    def done(self, key: K) -> None:
        self._active.discard(key)
        if key in self._again:
            due, rank = self._again.pop(key)
            self.add(key, max(0.0, due - time.monotonic()), urgent=rank == 0)


async def run_workers(
    queue: WorkQueue[K], work: Callable[[K], Awaitable[None]], count: int
) -> None:
    """Run `count` workers until cancelled; `work` handles its own errors and retries."""

    async def worker() -> None:
        while True:
            key = await queue.get()
            try:
                await work(key)
            finally:
                queue.done(key)

    await asyncio.gather(*(worker() for _ in range(count)))
