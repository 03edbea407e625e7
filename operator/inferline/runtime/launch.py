"""Run tritonserver in the foreground: forward signals, return its exit status."""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType

from .tritonserver import TritonProcess


def serve_until_stopped(
    server: TritonProcess, on_ready: Callable[[], None] | None = None, ready_timeout_s: float = 600
) -> int:
    """Start `server`, call `on_ready`, wait until it exits or we are told to stop.

    SIGINT/SIGTERM stop the server gracefully (tritonserver's own exit timeout applies) and
    the return value is its exit status, so a pod or a shell sees what tritonserver said.
    """
    stopping = False

    def _stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        server.wait_ready(ready_timeout_s)
        if on_ready:
            on_ready()
        assert server.proc is not None
        return server.proc.wait()
    except KeyboardInterrupt:
        if not stopping:
            raise
        code = server.stop()
        return 0 if code in (None, -signal.SIGTERM) else code
    finally:
        server.stop()
        for s, h in previous.items():
            signal.signal(s, h)
