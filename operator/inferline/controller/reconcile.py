"""One idempotent reconcile per pipeline: resolve -> render -> apply -> status.

Create, update, restart, a Model or Backend edit, a child edited or deleted by hand, a node
change: all end here, with the pipeline's key. What is desired is computed from the cluster
state the watches keep (no listing), applied with server-side apply under one field manager,
and what is no longer rendered is pruned. A spec that cannot be served leaves the last good
children untouched: only status and an Event say why.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from kubernetes.client.exceptions import ApiException

from ..api import names
from ..api.common import API_VERSION
from ..api.pipeline import InferencePipeline
from ..api.problems import MISSING_REFERENCE, Problem
from ..api.status import Endpoints, GpuResourceStatus, InferencePipelineStatus, Reason, now_rfc3339
from ..compile import check_cluster_object, render_manifest
from ..errors import UserError
from ..render import kube as render
from .kube import Kube, api_error
from .metrics import Metrics
from .state import ClusterState, Key, fingerprint, without_status
from .status import StatusResult, Transition, Verdict, compute_status

log = logging.getLogger("inferline.controller")
Obj = dict[str, Any]
T = TypeVar("T")

STATUS_MANAGER = "inferline"  # the autoscaler writes its status fields as inferline-autoscaler
MAX_MESSAGE = 1000


@dataclass(frozen=True)
class PlacementOutcome:
    reason: Reason  # PLACED or NO_CAPACITY
    message: str
    pod: render.PodPlacement
    gpu: GpuResourceStatus | None = None


Place = Callable[[InferencePipeline, ClusterState], PlacementOutcome]
Blocking = Callable[[Callable[[], T]], Awaitable[T]]


async def _to_thread(fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(fn)


@dataclass
class Plan:
    verdict: Verdict
    children: render.Children | None = None  # None: leave the children as they are
    pipeline: InferencePipeline | None = None


@dataclass(frozen=True)
class Planned:
    """What the last applied plan concluded, without what it rendered (holding every
    pipeline's rendered children costs too much memory): while nothing the plan read has
    changed and every child is as it was applied, a reconcile reuses this instead of compiling
    again (most reconciles are pods and rollouts moving on, which only status reads)."""

    inputs: str  # digest of the pipeline (less status), the state's epoch, the settings
    verdict: Verdict
    desired: frozenset[tuple[str, str]]  # (kind, name) of the children it rendered
    owner_uid: str


class Reconciler:
    def __init__(
        self,
        state: ClusterState,
        kube: Kube,
        place: Place,
        settings: render.RuntimeSettings,
        metrics: Metrics,
        *,
        blocking: Blocking[Any] = _to_thread,
        component: str = "inferline-operator",
    ) -> None:
        self.state = state
        self.kube = kube
        self.place = place
        self.settings = settings
        self.metrics = metrics
        self.blocking = blocking
        self.component = component
        # What we last applied per pipeline: the desired hash and each child's fingerprint.
        self._applied: dict[Key, tuple[str, dict[tuple[str, str], str]]] = {}
        self._planned: dict[Key, Planned] = {}

    # -- the loop body ------------------------------------------------------------------------

    async def reconcile(self, key: Key, *, force: bool = False) -> bool:
        """Bring one pipeline's children and status to what its spec asks.

        Returns True when it should be tried again later, with backoff (a missing reference
        may appear, a refused apply may pass). `force` re-applies even unchanged children.
        """
        body = self.state.pipelines.get(key)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            self._applied.pop(key, None)
            self._planned.pop(key, None)
            return False  # deleted: the garbage collector removes the children
        started = time.monotonic()
        inputs = self._inputs(body)
        planned = self._planned.pop(key, None)
        try:
            if not force and planned and planned.inputs == inputs and self._intact(key):
                verdict = planned.verdict
                await self._prune(key, planned.owner_uid, planned.desired)
                self._planned[key] = planned
            else:
                plan = self.plan(body)
                verdict = plan.verdict
                if plan.children is not None and plan.pipeline is not None:
                    uid = str(plan.pipeline.metadata.uid)
                    desired = frozenset(
                        (o["kind"], o["metadata"]["name"]) for o in plan.children.all
                    )
                    await self._apply(key, plan.pipeline, plan.children, force=force)
                    await self._prune(key, uid, desired)
                    verdict = replace(verdict, applied=True)
                    self._planned[key] = Planned(inputs, verdict, desired, uid)
        except ApiException as e:
            message = f"applying the pipeline's objects failed: {api_error(e)}"
            log.warning("%s/%s: %s", *key, message)
            verdict = replace(verdict, reason=Reason.APPLY_FAILED, message=message)
        result = self._status(body, verdict)
        await self._write_status(key, body, result)
        took = time.monotonic() - started
        self.metrics.reconciled(key, result.status, took, verdict.reason)
        log.debug("%s/%s: reconciled (%s) in %.0f ms", *key, verdict.reason.value, took * 1000)
        return verdict.retrying

    # -- deciding -------------------------------------------------------------------------------

    def _inputs(self, body: Obj) -> str:
        """A digest of everything plan() reads: the pipeline less its status, the state's
        epoch (Models, Backends, nodes, DRA) and the operator's settings."""
        doc = [without_status(body), self.state.epoch, repr(self.settings)]
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()

    def _intact(self, key: Key) -> bool:
        """Every child we last applied is still there as we applied it."""
        _, last = self._applied.get(key, ("", {}))
        observed = self.state.children.get(key, {})
        return bool(last) and all(
            (ref := observed.get(k)) is not None and ref.fingerprint == f for k, f in last.items()
        )

    def plan(self, body: Obj) -> Plan:
        """What the spec asks for, from the state at hand (pure but for reading the state)."""
        problems, rp = check_cluster_object(body, self.state.catalog())
        errors = [p for p in problems if p.is_error]
        if rp is None or errors:
            reason = (
                Reason.MISSING_REFERENCE
                if errors and all(p.code == MISSING_REFERENCE for p in errors)
                else Reason.INVALID_SPEC
            )
            return Plan(Verdict(reason, _summary(errors or problems)))
        pipe = rp.pipeline
        try:
            manifest = render_manifest([rp])
        except UserError as e:
            return Plan(Verdict(Reason.INVALID_SPEC, str(e)))
        entry = manifest.pipelines[0]
        local = render.not_servable_in_cluster(manifest)
        if local:
            return Plan(
                Verdict(
                    Reason.NOT_SERVABLE_IN_CLUSTER,
                    f"{local[0]} is a file on the machine that wrote the spec"
                    + (f" (and {len(local) - 1} more)" if len(local) > 1 else "")
                    + "; in a cluster use pvc://, configmap://, s3://, gs:// or http(s)://, "
                    "or python.configMap for code",
                    pipeline=entry,
                )
            )
        placement = self.place(pipe, self.state)
        endpoints = Endpoints(**render.endpoints(pipe, entry.served_name))
        verdict = Verdict(
            placement_reason=placement.reason,
            placement_message=placement.message,
            gpu=placement.gpu,
            pipeline=entry,
            endpoints=endpoints,
        )
        if placement.reason is Reason.NO_CAPACITY:
            return Plan(verdict)
        try:
            children = render.render_children(
                pipe, rp.backend, manifest, placement.pod, self.settings
            )
        except render.TooLarge as e:
            return Plan(replace(verdict, reason=Reason.TOO_LARGE, message=str(e)))
        return Plan(verdict, children, pipe)

    # -- applying -------------------------------------------------------------------------------

    async def _apply(
        self, key: Key, pipe: InferencePipeline, children: render.Children, *, force: bool
    ) -> None:
        """Apply the children that changed since our last apply, or that someone else changed
        (their fingerprint moved), or all of them on a forced resync. The ConfigMap and the claim
        template go first: the Deployment's pods use them."""
        desired = _digest(children.all)
        observed = self.state.children.get(key, {})
        last_digest, last = self._applied.get(key, ("", {}))
        same = not force and last_digest == desired

        def unchanged(o: Obj) -> bool:
            k = (o["kind"], o["metadata"]["name"])
            ref = observed.get(k)
            return same and ref is not None and ref.fingerprint == last.get(k)

        todo = [o for o in children.all if not unchanged(o)]
        if not todo:
            return
        fingerprints = dict(last) if same else {}

        async def one(obj: Obj) -> None:
            applied = await self.blocking(lambda: self.kube.apply(obj, names.MANAGER))
            self.metrics.applied(obj["kind"])
            fingerprints[(obj["kind"], obj["metadata"]["name"])] = fingerprint(applied)
            # Status is computed next, maybe before the watch brings this write: from the old
            # Deployment a changed spec would read as already rolled out.
            self.state.on_child(None, applied)

        # What the pods use (the ConfigMap, the claim template) exists before the Deployment
        # that makes them.
        first = [o for o in todo if any(o is f for f in children.first)]
        await asyncio.gather(*(one(o) for o in first))
        await asyncio.gather(*(one(o) for o in todo if not any(o is f for f in first)))
        self._applied[key] = (desired, fingerprints)

    async def _prune(self, key: Key, owner_uid: str, desired: frozenset[tuple[str, str]]) -> None:
        """Delete what this pipeline owns but no longer renders (render ConfigMaps and claim
        templates only once no pod of the pipeline uses them: a pod of the previous rollout
        that is recreated still needs them)."""
        pods = self.state.pods.get(key, {}).values()
        in_use = {("ConfigMap", cm) for pod in pods for cm in pod.config_maps}
        in_use |= {("ResourceClaimTemplate", t) for pod in pods for t in pod.claim_templates}
        for (kind, name), ref in list(self.state.children.get(key, {}).items()):
            if (kind, name) in desired or ref.owner_uid != owner_uid:
                continue
            if (kind, name) in in_use:
                continue
            await self.blocking(
                lambda ref=ref: self.kube.delete(  # type: ignore[misc]
                    ref.api_version, ref.kind, key[0], ref.name, ref.uid
                )
            )
            log.info("%s/%s: pruned %s %s", *key, kind, name)

    # -- status ---------------------------------------------------------------------------------

    def _status(self, body: Obj, verdict: Verdict) -> StatusResult:
        key = (body["metadata"].get("namespace") or "default", body["metadata"]["name"])
        previous = None
        if isinstance(body.get("status"), dict):
            try:
                previous = InferencePipelineStatus.model_validate(body["status"])
            except ValueError:
                previous = None  # someone wrote garbage into status: start over
        pods = [p.view for p in self.state.pods.get(key, {}).values()]
        return compute_status(
            generation=int(body["metadata"].get("generation") or 0),
            desired=int((body.get("spec") or {}).get("replicas", 1)),
            selector=render.selector_string(body["metadata"]["name"]),
            verdict=verdict,
            deployment=self.state.deployments.get(key),
            pods=pods,
            routed=self.state.routed(key),
            previous=previous,
            now=now_rfc3339(),
            claims=list(self.state.claims.get(key, {}).values()),
        )

    async def _write_status(self, key: Key, body: Obj, result: StatusResult) -> None:
        wire = result.status.to_wire()
        current = dict(body.get("status") or {})
        current.pop("lastAutoscalingDecision", None)  # the autoscaler's
        if wire != current:
            patch = {
                "apiVersion": API_VERSION,
                "kind": "InferencePipeline",
                "metadata": {"name": key[1], "namespace": key[0]},
                "status": wire,
            }
            try:
                await self.blocking(
                    lambda: self.kube.apply(patch, STATUS_MANAGER, subresource="status")
                )
            except ApiException as e:
                if e.status != 404:  # deleted meanwhile
                    raise
        for t in result.events:
            await self._event(body, t)

    async def _event(self, body: Obj, t: Transition) -> None:
        meta = body["metadata"]
        now = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": "InferencePipeline",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": t.type,
            "reason": t.reason,
            "message": t.message[:MAX_MESSAGE],
            "source": {"component": self.component},
            "reportingComponent": "inferline.dev/operator",
            "reportingInstance": self.component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.blocking(lambda: self.kube.create_event(meta["namespace"], event))
        except ApiException as e:  # an Event is worth a log line, not a failed reconcile
            log.warning("cannot post event %s: %s", t.reason, api_error(e))


def _summary(problems: list[Problem]) -> str:
    if not problems:
        return "invalid"
    first = problems[0]
    text = f"{first.path}: {first.message}" if first.path else first.message
    if len(problems) > 1:
        text += f" (and {len(problems) - 1} more problem{'s' * (len(problems) > 2)})"
    return text[:MAX_MESSAGE]


def _digest(objs: list[Obj]) -> str:
    return hashlib.sha256(json.dumps(objs, sort_keys=True).encode()).hexdigest()
