"""The built-in autoscaler's loop: for each pipeline with `autoscaling.engine: builtin`, every
`metrics.intervalSeconds` read its ready pods' metrics, decide (autoscale/decide.py, pure) and
apply the decision through the pipeline's scale subresource, as an HPA would.

It writes under its own field manager (`inferline-autoscaler`): `spec.replicas` through the
scale subresource, and `status.lastAutoscalingDecision` with server-side apply, so it never
clobbers what the operator writes. A decision that changes the replicas is also an Event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes.client.exceptions import ApiException

from ..api.common import API_VERSION
from ..api.load import parse_resource
from ..api.names import ensemble_model
from ..api.pipeline import AutoscalingEngine, AutoscalingMetrics, InferencePipeline
from ..api.status import now_rfc3339
from ..autoscale.decide import Decision, Policy, State, decide
from ..autoscale.export import AutoscalerMetrics
from ..autoscale.metrics import Observer, PipelineModels, PodTarget
from ..autoscale.sources import source_for
from ..render import mounts
from .kube import Kube, api_error
from .state import ClusterState, Key

log = logging.getLogger("inferline.autoscaler")
MANAGER = "inferline-autoscaler"
T = TypeVar("T")
Blocking = Callable[[Callable[[], T]], Awaitable[T]]


async def _to_thread(fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(fn)


@dataclass
class _Scaled:
    """What the loop keeps per pipeline between decisions."""

    generation: int
    policy: Policy
    metrics: AutoscalingMetrics  # where the observer reads (kept across spec edits if equal)
    observer: Observer
    state: State
    next_at: float = 0.0
    written: tuple[int, str] | None = None  # (replicas, reason) last written to status


class Autoscaler:
    def __init__(
        self,
        state: ClusterState,
        kube: Kube,
        metrics: AutoscalerMetrics,
        *,
        blocking: Blocking[Any] = _to_thread,
        concurrency: int = 8,
    ) -> None:
        self.state = state
        self.kube = kube
        self.metrics = metrics
        self.blocking = blocking
        self.scaled: dict[Key, _Scaled] = {}
        self._slots = asyncio.Semaphore(concurrency)

    async def run(self, tick_s: float = 0.5) -> None:
        while True:
            await self.tick_all(time.time())
            await asyncio.sleep(tick_s)

    async def tick_all(self, now: float) -> None:
        wanted = {k: p for k, body in self.state.pipelines.items() if (p := _autoscaled(body))}
        for key in set(self.scaled) - set(wanted):
            del self.scaled[key]
            self.metrics.forget(*key)
        due = []
        for key, pipe in wanted.items():
            s = self._tracked(key, pipe, now)
            if now >= s.next_at:
                s.next_at = now + s.policy.interval_s
                due.append((key, pipe, s))
        await asyncio.gather(*(self._guarded(key, pipe, s) for key, pipe, s in due))

    def _tracked(self, key: Key, pipe: InferencePipeline, now: float) -> _Scaled:
        s = self.scaled.get(key)
        generation = pipe.metadata.generation or 0
        if s is not None and s.generation == generation:
            return s
        auto = pipe.spec.autoscaling
        assert auto is not None
        models = PipelineModels(ensemble_model(pipe.metadata.name, pipe.spec.served_name))
        observer = Observer(source_for(auto.metrics, pipe.metadata.namespace or "default"), models)
        if s is None:
            # A (re)started operator has no history: let the current replicas stand for the
            # scale-down window, so a restart never scales down at once.
            current = pipe.spec.replicas
            state = State(recommendations=((now, current, current),))
        else:
            state, observer = s.state, (s.observer if s.metrics == auto.metrics else observer)
        s = _Scaled(generation, Policy.from_spec(auto), auto.metrics, observer, state)
        self.scaled[key] = s
        return s

    async def _guarded(self, key: Key, pipe: InferencePipeline, s: _Scaled) -> None:
        async with self._slots:
            try:
                await self.tick(key, pipe, s)
            except Exception:  # one pipeline's trouble must not stop the others' scaling
                log.exception("%s/%s: autoscaling failed", *key)

    async def tick(self, key: Key, pipe: InferencePipeline, s: _Scaled) -> Decision:
        targets = [
            PodTarget(name, f"http://{ref.view.ip}:{mounts.METRICS_PORT}/metrics")
            for name, ref in sorted(self.state.pods.get(key, {}).items())
            if ref.view.ready and not ref.view.terminating and ref.view.ip
        ]
        obs = await self.blocking(lambda: s.observer.observe(targets, time.time()))
        current = pipe.spec.replicas
        d = decide(s.policy, s.state, obs, current, time.time())
        s.state = d.state
        self.metrics.record(*key, d)
        if d.changed:
            log.info("%s/%s: %d -> %d replicas: %s", *key, current, d.replicas, d.message)
            try:
                await self.blocking(lambda: self.kube.scale(*key, d.replicas, MANAGER))
            except ApiException as e:
                log.warning("%s/%s: cannot scale: %s", *key, api_error(e))
                return d
            await self._event(pipe, d)
        if d.changed or s.written != (d.replicas, d.reason.value):
            await self._write(key, d)
            s.written = (d.replicas, d.reason.value)
        return d

    async def _write(self, key: Key, d: Decision) -> None:
        patch = {
            "apiVersion": API_VERSION,
            "kind": "InferencePipeline",
            "metadata": {"name": key[1], "namespace": key[0]},
            "status": {"lastAutoscalingDecision": d.status(now_rfc3339()).to_wire()},
        }
        try:
            await self.blocking(lambda: self.kube.apply(patch, MANAGER, subresource="status"))
        except ApiException as e:
            log.warning("%s/%s: cannot record the decision: %s", *key, api_error(e))

    async def _event(self, pipe: InferencePipeline, d: Decision) -> None:
        meta = pipe.metadata
        now = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.name}.", "namespace": meta.namespace},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": "InferencePipeline",
                "name": meta.name,
                "namespace": meta.namespace,
                "uid": meta.uid,
            },
            "type": "Normal",
            "reason": f"Scaled{'Up' if d.replicas > d.current else 'Down'}",
            "message": f"{d.current} -> {d.replicas} replicas ({d.reason.value}): {d.message}"[
                :1000
            ],
            "source": {"component": MANAGER},
            "reportingComponent": "inferline.dev/autoscaler",
            "reportingInstance": MANAGER,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.blocking(lambda: self.kube.create_event(meta.namespace or "default", event))
        except ApiException as e:
            log.warning("cannot post the scaling event: %s", api_error(e))


def _autoscaled(body: dict[str, Any]) -> InferencePipeline | None:
    """The pipeline, when the built-in engine scales it and its spec parses."""
    auto = (body.get("spec") or {}).get("autoscaling")
    if not auto or auto.get("engine", AutoscalingEngine.BUILTIN.value) != "builtin":
        return None
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return None
    parsed = parse_resource(body, "")
    return parsed if isinstance(parsed, InferencePipeline) else None
