"""What the operator knows of the cluster, kept current by watch events (never listed per
reconcile): pipelines, the Models and Backends they reference, the GPU inventory, and each
pipeline's children and pods, reduced to what reconcile and status read.

Every `on_*` method takes one watch event and returns the pipelines it concerns, which the
handlers enqueue. All of it runs on the event loop, so reconcile reads a consistent view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..api import names
from ..api.backend import BUILTIN_BACKENDS, BackendSpec
from ..api.kinds import Resource
from ..api.load import ObjectKey, object_key, parse_resource
from ..api.model import Model
from ..api.resolve import Catalog
from .status import DeploymentView, PodView

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name) of a pipeline

DELETED = "DELETED"


def key_of(body: Obj) -> Key:
    meta = body.get("metadata") or {}
    return (str(meta.get("namespace") or "default"), str(meta.get("name")))


@dataclass(frozen=True)
class ChildRef:
    """An object labelled with a pipeline: enough to prune it, or to skip re-applying it."""

    api_version: str
    kind: str
    name: str
    uid: str
    fingerprint: str  # generation for objects with a spec/status split, else resourceVersion
    owner_uid: str | None
    render_hash: str | None = None  # render ConfigMaps: the manifest digest they hold

    @classmethod
    def from_body(cls, body: Obj) -> ChildRef:
        meta = body.get("metadata") or {}
        owner = next(
            (
                o.get("uid")
                for o in meta.get("ownerReferences") or []
                if o.get("kind") == "InferencePipeline" and o.get("controller")
            ),
            None,
        )
        return cls(
            api_version=str(body.get("apiVersion")),
            kind=str(body.get("kind")),
            name=str(meta.get("name")),
            uid=str(meta.get("uid")),
            fingerprint=fingerprint(body),
            owner_uid=owner,
            render_hash=(meta.get("annotations") or {}).get(names.ANNOTATION_RENDER_HASH),
        )


def fingerprint(body: Obj) -> str:
    """Changes when someone else changes what we applied (status updates do not count)."""
    meta = body.get("metadata") or {}
    if body.get("kind") in ("Deployment", "PodDisruptionBudget"):
        return f"g{meta.get('generation')}"
    return f"rv{meta.get('resourceVersion')}"


@dataclass
class PodRef:
    view: PodView
    config_maps: frozenset[str]  # ConfigMaps its volumes use (render ConfigMaps stay for them)


@dataclass
class ClusterState:
    node_view: Callable[[Obj], Any | None]  # Node -> its GPU view (None: no GPUs)
    pipelines: dict[Key, Obj] = field(default_factory=dict)
    models: dict[tuple[str, str], Model] = field(default_factory=dict)
    backends: dict[tuple[str, str], BackendSpec] = field(default_factory=dict)
    cluster_backends: dict[str, BackendSpec] = field(default_factory=dict)
    invalid: set[ObjectKey] = field(default_factory=set)
    nodes: dict[str, Any] = field(default_factory=dict)
    children: dict[Key, dict[tuple[str, str], ChildRef]] = field(default_factory=dict)
    deployments: dict[Key, DeploymentView] = field(default_factory=dict)
    pods: dict[Key, dict[str, PodRef]] = field(default_factory=dict)

    # -- the objects pipelines reference --------------------------------------------------------

    def catalog(self) -> Catalog:
        return Catalog(
            models=self.models,
            backends=self.backends,
            cluster_backends={**BUILTIN_BACKENDS, **self.cluster_backends},
            invalid=self.invalid,
        )

    def _parse(self, body: Obj) -> Resource | None:
        parsed = parse_resource(body, "")
        key = object_key(body)
        if isinstance(parsed, list):
            if key is not None:
                self.invalid.add(key)
            return None
        if key is not None:
            self.invalid.discard(key)
        return parsed

    def on_pipeline(self, event: str | None, body: Obj) -> set[Key]:
        key = key_of(body)
        if event == DELETED:
            self.pipelines.pop(key, None)
            return set()
        self.pipelines[key] = body
        return {key}

    def on_model(self, event: str | None, body: Obj) -> set[Key]:
        ns, name = key_of(body)
        self.models.pop((ns, name), None)
        if event == DELETED:
            self.invalid.discard(("Model", ns, name))
        elif isinstance(model := self._parse(body), Model):
            self.models[(ns, name)] = model
        return self._using(ns, lambda spec: _refs_model(spec, name))

    def on_backend(self, event: str | None, body: Obj) -> set[Key]:
        ns, name = key_of(body)
        self.backends.pop((ns, name), None)
        if event == DELETED:
            self.invalid.discard(("Backend", ns, name))
        elif (backend := self._parse(body)) is not None:
            self.backends[(ns, name)] = backend.spec  # type: ignore[assignment]
        return self._using(ns, lambda spec: _refs_backend(spec, "Backend", name))

    def on_cluster_backend(self, event: str | None, body: Obj) -> set[Key]:
        name = str((body.get("metadata") or {}).get("name"))
        self.cluster_backends.pop(name, None)
        if event == DELETED:
            self.invalid.discard(("ClusterBackend", "", name))
        elif (backend := self._parse(body)) is not None:
            self.cluster_backends[name] = backend.spec  # type: ignore[assignment]
        return self._using(None, lambda spec: _refs_backend(spec, "ClusterBackend", name))

    def on_node(self, event: str | None, body: Obj) -> set[Key]:
        """GPU pipelines are placed again when what a node offers changes (not on heartbeats)."""
        name = str((body.get("metadata") or {}).get("name"))
        before = self.nodes.get(name)
        view = None if event == DELETED else self.node_view(body)
        if view is None:
            self.nodes.pop(name, None)
        else:
            self.nodes[name] = view
        if view == before:
            return set()
        return self._using(None, _wants_gpu)

    def _using(self, namespace: str | None, uses: Callable[[Obj], bool]) -> set[Key]:
        return {
            k
            for k, body in self.pipelines.items()
            if (namespace is None or k[0] == namespace) and uses(body.get("spec") or {})
        }

    # -- what each pipeline owns ----------------------------------------------------------------

    def on_child(self, event: str | None, body: Obj) -> set[Key]:
        meta = body.get("metadata") or {}
        pipeline = (meta.get("labels") or {}).get(names.LABEL_PIPELINE)
        if not pipeline:
            return set()
        key = (str(meta.get("namespace") or "default"), pipeline)
        ref = ChildRef.from_body(body)
        owned = self.children.setdefault(key, {})
        if event == DELETED:
            owned.pop((ref.kind, ref.name), None)
            if ref.kind == "Deployment":
                self.deployments.pop(key, None)
        else:
            owned[(ref.kind, ref.name)] = ref
            if ref.kind == "Deployment":
                self.deployments[key] = DeploymentView.from_deployment(body)
        return {key} if key in self.pipelines else set()

    def on_pod(self, event: str | None, body: Obj) -> set[Key]:
        meta = body.get("metadata") or {}
        pipeline = (meta.get("labels") or {}).get(names.LABEL_PIPELINE)
        if not pipeline:
            return set()
        key = (str(meta.get("namespace") or "default"), pipeline)
        pods = self.pods.setdefault(key, {})
        name = str(meta.get("name"))
        if event == DELETED:
            pods.pop(name, None)
        else:
            volumes = (body.get("spec") or {}).get("volumes") or []
            cms = frozenset(
                str(v["configMap"]["name"]) for v in volumes if v.get("configMap", {}).get("name")
            )
            new = PodRef(PodView.from_pod(body), cms)
            if pods.get(name) == new:
                return set()  # nothing status reads has changed
            pods[name] = new
        return {key} if key in self.pipelines else set()

    def forget(self, key: Key) -> None:
        """Drop what is known of a deleted pipeline's children (GC deletes them)."""
        for table in (self.children, self.deployments, self.pods):
            table.pop(key, None)


def _refs_model(spec: Obj, name: str) -> bool:
    return any((s.get("modelRef") or {}).get("name") == name for s in spec.get("steps") or [])


def _refs_backend(spec: Obj, kind: str, name: str) -> bool:
    ref = spec.get("backend") or {}
    return str(ref.get("kind", "ClusterBackend")) == kind and ref.get("name", "triton") == name


def _wants_gpu(spec: Obj) -> bool:
    placement = spec.get("placement") or {}
    steps = spec.get("steps") or []
    return placement.get("device", "GPU") == "GPU" or any(s.get("device") == "GPU" for s in steps)
