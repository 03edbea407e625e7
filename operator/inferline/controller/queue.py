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
    def __init__(self, backoff: Backoff | None = None) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}  # key -> when it is due (the earliest wins)
        self._active: set[K] = set()
        self._again: dict[K, float] = {}  # enqueued while active: due time for after
        self._counter = itertools.count()
        self._wakeup = asyncio.Event()
        self.backoff = backoff or Backoff()

    def __len__(self) -> int:
        return len(self._due) + len(self._again)

    def add(self, key: K, delay_s: float = 0.0) -> None:
        due = time.monotonic() + delay_s
        if key in self._active:
            self._again[key] = min(due, self._again.get(key, due))
            return
        if key in self._due and self._due[key] <= due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, next(self._counter), key))
        self._wakeup.set()

    def retry(self, key: K) -> float:
        """Enqueue `key` again after its next backoff delay; returns the delay."""
        delay = self.backoff.next_delay(key)
        self.add(key, delay)
        return delay

    def forget(self, key: K) -> None:
        self.backoff.forget(key)

    async def get(self) -> K:
        while True:
            now = time.monotonic()
            while self._heap:
                due, _, key = self._heap[0]
                if self._due.get(key) != due:  # superseded by an earlier add
                    heapq.heappop(self._heap)
                    continue
                if due > now:
                    break
                heapq.heappop(self._heap)
                del self._due[key]
                self._active.add(key)
                return key
            timeout = self._heap[0][0] - now if self._heap else None
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    def done(self, key: K) -> None:
        self._active.discard(key)
        if key in self._again:
            due = self._again.pop(key)
            self.add(key, max(0.0, due - time.monotonic()))


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
