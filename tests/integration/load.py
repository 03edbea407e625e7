"""Closed-loop load on a served pipeline: N clients sending requests back to back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import tritonclient.http as thttp

from inferline.runtime.tritonserver import TritonProcess


@contextmanager
def clients(
    server: TritonProcess, n: int, model: str = "slow", tensor: str = "X"
) -> Iterator[threading.Event]:
    """Run `n` clients until the block ends or the yielded event is set."""
    stop = threading.Event()

    def client() -> None:
        c = thttp.InferenceServerClient(server.url)
        x = thttp.InferInput(tensor, [1, 4], "FP32")
        x.set_data_from_numpy(np.ones((1, 4), np.float32))
        while not stop.is_set():
            c.infer(model, [x])

    threads = [threading.Thread(target=client, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    try:
        yield stop
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
