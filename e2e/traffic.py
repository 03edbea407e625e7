"""Steady inference traffic to a Service's ready endpoints, counting what fails.

    with Traffic(resolve, request, rate=20) as t:
        ...  # roll the Deployment, scale it, kill a pod
    report = t.report  # sent, ok, failed, errors by kind, requests per address

The client behaves as a headless-Service client: `resolve()` returns the current ready addresses
(e2e.dataplane.ready_addresses reads the EndpointSlices), refreshed every `refresh_s`; each
request goes to the next address in turn, is sent once (no retries) and counts as failed when
it raises (connection refused or reset, timeout, wrong answer) or when no address is ready.
This is how the operator's rolling-update guarantee is measured: zero failed requests.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType


@dataclass
class TrafficReport:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # "<address>: <error>" -> count
    per_address: Counter[str] = field(default_factory=Counter)
    no_endpoint: int = 0  # requests that found no ready address
    resolve_errors: int = 0
    seconds: float = 0.0
    # (seconds since start, ready addresses) each time the resolved set changed
    timeline: list[tuple[float, list[str]]] = field(default_factory=list)

    def summary(self) -> str:
        top = "; ".join(f"{n} x {e}" for e, n in self.errors.most_common(5))
        return (
            f"{self.sent} requests in {self.seconds:.1f}s to {len(self.per_address)} addresses: "
            f"{self.ok} ok, {self.failed} failed ({self.no_endpoint} with no ready endpoint)"
            + (f"; {top}" if top else "")
        )


class Traffic:
    def __init__(
        self,
        resolve: Callable[[], list[str]],
        request: Callable[[str], None],
        *,
        rate: float = 20.0,
        workers: int = 2,
        refresh_s: float = 0.2,
    ) -> None:
        self.resolve = resolve
        self.request = request
        self.interval = workers / rate
        self.workers = workers
        self.refresh_s = refresh_s
        self.report = TrafficReport()
        self._addresses: list[str] = []
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    def __enter__(self) -> Traffic:
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._refresh()
        self._started = time.monotonic()
        self._threads = [threading.Thread(target=self._resolver, daemon=True)]
        self._threads += [
            threading.Thread(target=self._worker, daemon=True) for _ in range(self.workers)
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> TrafficReport:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        self.report.seconds = time.monotonic() - self._started
        return self.report

    def addresses(self) -> list[str]:
        with self._lock:
            return list(self._addresses)

    def _refresh(self) -> None:
        try:
            found = self.resolve()
        except Exception:
            with self._lock:
                self.report.resolve_errors += 1
            return
        with self._lock:
            if found != self._addresses or not self.report.timeline:
                t = round(time.monotonic() - self._started, 2) if self._started else 0.0
                self.report.timeline.append((t, found))
            self._addresses = found

    def _resolver(self) -> None:
        while not self._stop.wait(self.refresh_s):
            self._refresh()

    def _pick(self) -> str | None:
        with self._lock:
            if not self._addresses:
                return None
            address = self._addresses[self._next % len(self._addresses)]
            self._next += 1
            return address

    def _record(self, address: str | None, error: str | None) -> None:
        with self._lock:
            r = self.report
            r.sent += 1
            if address is not None:
                r.per_address[address] += 1
            if error is None:
                r.ok += 1
                return
            r.failed += 1
            if address is None:
                r.no_endpoint += 1
            r.errors[f"{address or '-'}: {error}"[:200]] += 1

    def _worker(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            address = self._pick()
            if address is None:
                self._record(None, "no ready endpoint")
            else:
                try:
                    self.request(address)
                    self._record(address, None)
                except Exception as e:
                    self._record(address, f"{type(e).__name__}: {e}")
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
