"""What the operator knows of the cluster, kept current by watch events (never listed per
reconcile): pipelines, the Models and Backends they reference, the GPU inventory (Nodes, and
NVIDIA's ResourceSlices and DeviceClasses for DRA), and each pipeline's children, pods and GPU
claims, reduced to what reconcile and status read.

Every `on_*` method takes one watch event and returns the pipelines it concerns, which the
handlers enqueue. All of it runs on the event loop, so reconcile reads a consistent view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api import names
from ..api.backend import BUILTIN_BACKENDS, BackendSpec
from ..api.kinds import Resource
from ..api.load import ObjectKey, object_key, parse_resource
from ..api.model import Model
from ..api.resolve import Catalog
from ..gpu.inventory import Host, node_host
from ..gpu.slices import CLASSES, DraInventory, SliceView, slice_view
from .status import ClaimView, DeploymentView, PodView

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name) of a pipeline
Ident = ObjectKey  # (kind, namespace or "", name) of any object the state knows

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


def without_status(body: Obj) -> Obj:
    """What a reconcile reads of a pipeline, less status and the fields every write changes."""
    meta = {
        k: v
        for k, v in (body.get("metadata") or {}).items()
        if k not in ("resourceVersion", "managedFields")
    }
    return {k: v for k, v in body.items() if k != "status"} | {"metadata": meta}


def labelled_key(body: Obj) -> Key | None:
    """The pipeline an object is labelled with (children, pods, claims, EndpointSlices)."""
    meta = body.get("metadata") or {}
    pipeline = (meta.get("labels") or {}).get(names.LABEL_PIPELINE)
    return (str(meta.get("namespace") or "default"), pipeline) if pipeline else None


def routed_pods(endpoint_slice: Obj) -> frozenset[str]:
    """The pods an EndpointSlice marks ready: what the Service sends traffic to (an unset
    `ready` means ready, as the API says; a terminating pod is never ready)."""
    return frozenset(
        str(ref["name"])
        for ep in endpoint_slice.get("endpoints") or []
        if (ep.get("conditions") or {}).get("ready") is not False
        and (ref := ep.get("targetRef") or {}).get("kind") == "Pod"
        and ref.get("name")
    )


def fingerprint(body: Obj) -> str:
    """Changes when someone else changes what we applied (status updates do not count)."""
    meta = body.get("metadata") or {}
    if body.get("kind") in (
        "Deployment",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ScaledObject",
    ):
        return f"g{meta.get('generation')}"
    return f"rv{meta.get('resourceVersion')}"


@dataclass
class PodRef:
    view: PodView
    config_maps: frozenset[str]  # ConfigMaps its volumes use (render ConfigMaps stay for them)
    claim_templates: frozenset[str] = frozenset()  # ResourceClaimTemplates it claims from


@dataclass
class ClusterState:
    node_view: Callable[[Obj], Any | None]  # Node -> its GPU view (None: no GPUs)
    pipelines: dict[Key, Obj] = field(default_factory=dict)
    models: dict[tuple[str, str], Model] = field(default_factory=dict)
    backends: dict[tuple[str, str], BackendSpec] = field(default_factory=dict)
    cluster_backends: dict[str, BackendSpec] = field(default_factory=dict)
    invalid: set[ObjectKey] = field(default_factory=set)
    nodes: dict[str, Any] = field(default_factory=dict)
    # DRA: every node's scheduling facts (DRA nodes advertise no GPU resources), NVIDIA's slices
    # by name, and which of its DeviceClasses exist.
    hosts: dict[str, Host] = field(default_factory=dict)
    slices: dict[str, SliceView] = field(default_factory=dict)
    device_classes: set[str] = field(default_factory=set)
    children: dict[Key, dict[tuple[str, str], ChildRef]] = field(default_factory=dict)
    deployments: dict[Key, DeploymentView] = field(default_factory=dict)
    pods: dict[Key, dict[str, PodRef]] = field(default_factory=dict)
    # Per pipeline, per EndpointSlice of its Service: the pods it marks ready (routes to).
    endpoints: dict[Key, dict[str, frozenset[str]]] = field(default_factory=dict)
    claims: dict[Key, dict[str, ClaimView]] = field(default_factory=dict)
    _dra: DraInventory | None = field(default=None, repr=False)  # built on demand, until it changes
    # Moves whenever something a pipeline's plan reads besides the pipeline itself changes (a
    # Model, a Backend, what the nodes or DRA offer): a plan made at another epoch is stale.
    epoch: int = 0
    # While a relist runs (see `sweep`): the labelled objects an event came for meanwhile.
    touched: set[Ident] | None = None

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
        self._touch("InferencePipeline", *key)
        if event == DELETED:
            self.pipelines.pop(key, None)
            return set()
        old = self.pipelines.get(key)
        self.pipelines[key] = body
        if old is not None and without_status(old) == without_status(body):
            return set()  # our own status write (or the autoscaler's) coming back: no news
        return {key}

    def awaits_spec(self, key: Key) -> bool:
        """The pipeline's status does not yet answer its current spec (new, or changed)."""
        body = self.pipelines.get(key)
        if body is None:
            return False
        generation = (body.get("metadata") or {}).get("generation")
        return generation != (body.get("status") or {}).get("observedGeneration")

    def on_model(self, event: str | None, body: Obj) -> set[Key]:
        ns, name = key_of(body)
        self._touch("Model", ns, name)
        self.models.pop((ns, name), None)
        if event == DELETED:
            self.invalid.discard(("Model", ns, name))
        elif isinstance(model := self._parse(body), Model):
            self.models[(ns, name)] = model
        return self._using(ns, lambda spec: _refs_model(spec, name))

    def on_backend(self, event: str | None, body: Obj) -> set[Key]:
        ns, name = key_of(body)
        self._touch("Backend", ns, name)
        self.backends.pop((ns, name), None)
        if event == DELETED:
            self.invalid.discard(("Backend", ns, name))
        elif (backend := self._parse(body)) is not None:
            self.backends[(ns, name)] = backend.spec  # type: ignore[assignment]
        return self._using(ns, lambda spec: _refs_backend(spec, "Backend", name))

    def on_cluster_backend(self, event: str | None, body: Obj) -> set[Key]:
        name = str((body.get("metadata") or {}).get("name"))
        self._touch("ClusterBackend", "", name)
        self.cluster_backends.pop(name, None)
        if event == DELETED:
            self.invalid.discard(("ClusterBackend", "", name))
        elif (backend := self._parse(body)) is not None:
            self.cluster_backends[name] = backend.spec  # type: ignore[assignment]
        return self._using(None, lambda spec: _refs_backend(spec, "ClusterBackend", name))

    def on_node(self, event: str | None, body: Obj) -> set[Key]:
        """GPU pipelines are placed again when what a node offers changes (not on heartbeats),
        or when a node with DRA devices changes its labels, taints or readiness."""
        name = str((body.get("metadata") or {}).get("name"))
        self._touch("Node", "", name)
        before = self.nodes.get(name)
        view = None if event == DELETED else self.node_view(body)
        if view is None:
            self.nodes.pop(name, None)
        else:
            self.nodes[name] = view
        host_before = self.hosts.get(name)
        host = None if event == DELETED else node_host(body)
        if host is None:
            self.hosts.pop(name, None)
        else:
            self.hosts[name] = host
        dra_node = host != host_before and any(s.node == name for s in self.slices.values())
        if dra_node:
            self._dra = None
        if view == before and not dra_node:
            return set()
        return self._using(None, _wants_gpu)

    def on_resource_slice(self, event: str | None, body: Obj) -> set[Key]:
        """NVIDIA's DRA driver published, changed or withdrew devices: place GPU pipelines
        again (other drivers' slices are ignored)."""
        name = str((body.get("metadata") or {}).get("name"))
        self._touch("ResourceSlice", "", name)
        before = self.slices.get(name)
        view = None if event == DELETED else slice_view(body)
        if view is None:
            self.slices.pop(name, None)
        else:
            self.slices[name] = view
        if view == before:
            return set()
        self._dra = None
        return self._using(None, _wants_gpu)

    def on_device_class(self, event: str | None, body: Obj) -> set[Key]:
        name = str((body.get("metadata") or {}).get("name"))
        self._touch("DeviceClass", "", name)
        if name not in CLASSES:
            return set()
        present = name in self.device_classes
        if event == DELETED:
            self.device_classes.discard(name)
        else:
            self.device_classes.add(name)
        if present == (name in self.device_classes):
            return set()
        self._dra = None
        return self._using(None, _wants_gpu)

    def dra_inventory(self) -> DraInventory:
        """The DRA inventory, rebuilt only after a slice, a DeviceClass or a DRA node changed
        (every GPU reconcile reads it)."""
        if self._dra is None:
            self._dra = DraInventory.of(self.slices.values(), self.device_classes, self.hosts)
        return self._dra

    def _using(self, namespace: str | None, uses: Callable[[Obj], bool]) -> set[Key]:
        """The pipelines a change of a plan input concerns (every caller is such a change)."""
        self.epoch += 1
        return {
            k
            for k, body in self.pipelines.items()
            if (namespace is None or k[0] == namespace) and uses(body.get("spec") or {})
        }

    # -- what each pipeline owns ----------------------------------------------------------------

    def on_child(self, event: str | None, body: Obj) -> set[Key]:
        key = self._labelled_event(body)
        if key is None:
            return set()
        ref = ChildRef.from_body(body)
        owned = self.children.setdefault(key, {})
        if event == DELETED:
            owned.pop((ref.kind, ref.name), None)
            if ref.kind == "Deployment":
                self.deployments.pop(key, None)
        else:
            # Our own apply coming back (recorded from its response), or a status update the
            # fingerprint ignores (a PodDisruptionBudget's): no news, unless a Deployment's
            # status (which status reads) moved.
            news = owned.get((ref.kind, ref.name)) != ref
            if ref.kind == "Deployment":
                view = DeploymentView.from_deployment(body)
                known = self.deployments.get(key)
                # A watch event from before our own apply's response (a lower generation of the
                # same object) is old news: it would bring back the previous rollout, which
                # reads as rolled out, and a fingerprint that asks for a re-apply.
                if (
                    known is not None
                    and known.uid == view.uid
                    and view.generation < known.generation
                ):
                    return set()
                news = news or known != view
                self.deployments[key] = view
            owned[(ref.kind, ref.name)] = ref
            if not news:
                return set()
        return {key} if key in self.pipelines else set()

    def on_endpoint_slice(self, event: str | None, body: Obj) -> set[Key]:
        key = self._labelled_event(body)
        if key is None:
            return set()
        slices = self.endpoints.setdefault(key, {})
        name = str((body.get("metadata") or {}).get("name"))
        before = slices.get(name)
        if event == DELETED:
            slices.pop(name, None)
            if not slices:
                del self.endpoints[key]
        else:
            slices[name] = routed_pods(body)
            if slices[name] == before:
                return set()
        return {key} if key in self.pipelines else set()

    def routed(self, key: Key) -> frozenset[str] | None:
        """The pods the pipeline's Service routes to; None before any slice of it is seen."""
        slices = self.endpoints.get(key)
        return frozenset().union(*slices.values()) if slices else None

    def on_pod(self, event: str | None, body: Obj) -> set[Key]:
        key = self._labelled_event(body)
        if key is None:
            return set()
        pods = self.pods.setdefault(key, {})
        name = str((body.get("metadata") or {}).get("name"))
        if event == DELETED:
            pods.pop(name, None)
        else:
            spec = body.get("spec") or {}
            cms = frozenset(
                str(v["configMap"]["name"])
                for v in spec.get("volumes") or []
                if v.get("configMap", {}).get("name")
            )
            templates = frozenset(
                str(c["resourceClaimTemplateName"])
                for c in spec.get("resourceClaims") or []
                if c.get("resourceClaimTemplateName")
            )
            new = PodRef(PodView.from_pod(body), cms, templates)
            if pods.get(name) == new:
                return set()  # nothing status reads has changed
            pods[name] = new
        return {key} if key in self.pipelines else set()

    def on_claim(self, event: str | None, body: Obj) -> set[Key]:
        """A pod's ResourceClaim, made from the pipeline's template (whose labels it carries)."""
        key = self._labelled_event(body)
        if key is None:
            return set()
        claims = self.claims.setdefault(key, {})
        name = str((body.get("metadata") or {}).get("name"))
        if event == DELETED:
            if claims.pop(name, None) is None:
                return set()
        else:
            view = ClaimView.from_claim(body)
            if claims.get(name) == view:
                return set()
            claims[name] = view
        return {key} if key in self.pipelines else set()

    # -- forgetting what no watch said was deleted ------------------------------------------------

    def _touch(self, kind: str, namespace: str, name: str) -> None:
        if self.touched is not None:
            self.touched.add((kind, namespace, name))

    def _labelled_event(self, body: Obj) -> Key | None:
        key = labelled_key(body)
        if key is not None:
            self._touch(
                str(body.get("kind")), key[0], str((body.get("metadata") or {}).get("name"))
            )
        return key

    def known(self) -> Iterator[tuple[Ident, Obj]]:
        """Every object the state knows of, with the body its handler takes as its deletion."""
        named: list[tuple[str, Iterable[tuple[str, str]]]] = [
            ("InferencePipeline", self.pipelines),
            ("Model", self.models),
            ("Backend", self.backends),
            ("ClusterBackend", (("", n) for n in self.cluster_backends)),
            ("Node", (("", n) for n in set(self.nodes) | set(self.hosts))),
            ("ResourceSlice", (("", n) for n in self.slices)),
            ("DeviceClass", (("", n) for n in self.device_classes)),
        ]
        idents = {(kind, ns, name) for kind, keys in named for ns, name in keys} | self.invalid
        for kind, ns, name in idents:
            meta = {"name": name, "namespace": ns} if ns else {"name": name}
            yield (kind, ns, name), {"kind": kind, "metadata": meta}
        tables: list[tuple[str, Mapping[Key, Iterable[Any]]]] = [
            ("Pod", self.pods),
            ("EndpointSlice", self.endpoints),
            ("ResourceClaim", self.claims),
        ]
        for key, owned in self.children.items():
            for kind, name in owned:
                yield (kind, key[0], name), _labelled_body(kind, key, name)
        for kind, table in tables:
            for key, names_ in table.items():
                for name in names_:
                    yield (kind, key[0], name), _labelled_body(kind, key, name)

    def sweep(
        self, kinds: set[str], listed: set[Ident], touched: set[Ident]
    ) -> tuple[int, set[Key]]:
        """Forget the objects of `kinds` that a relist did not return and no event mentioned
        while it ran: deleted, but no watch said so. kopf's watches start from their own
        listing, after the operator's first one; what is deleted in between (pods, in a
        rollout) is in neither listing's events, and would stay known for good: a pod that is
        gone would keep its render ConfigMap from being pruned. A watch that restarts on "410
        Gone" lists again and loses deletions of any kind the same way. Returns how many were
        forgotten, and the pipelines to reconcile again."""
        current = listed | touched
        gone = [(i, body) for i, body in self.known() if i[0] in kinds and i not in current]
        handlers = {
            "InferencePipeline": self.on_pipeline,
            "Model": self.on_model,
            "Backend": self.on_backend,
            "ClusterBackend": self.on_cluster_backend,
            "Node": self.on_node,
            "ResourceSlice": self.on_resource_slice,
            "DeviceClass": self.on_device_class,
            "Pod": self.on_pod,
            "EndpointSlice": self.on_endpoint_slice,
            "ResourceClaim": self.on_claim,
        }
        keys: set[Key] = set()
        for (kind, _, _), body in gone:
            keys |= handlers.get(kind, self.on_child)(DELETED, body)
        return len(gone), keys & set(self.pipelines)


def _labelled_body(kind: str, key: Key, name: str) -> Obj:
    meta = {"name": name, "namespace": key[0], "labels": {names.LABEL_PIPELINE: key[1]}}
    return {"kind": kind, "metadata": meta}


def _refs_model(spec: Obj, name: str) -> bool:
    return any((s.get("modelRef") or {}).get("name") == name for s in spec.get("steps") or [])


def _refs_backend(spec: Obj, kind: str, name: str) -> bool:
    ref = spec.get("backend") or {}
    return str(ref.get("kind", "ClusterBackend")) == kind and ref.get("name", "triton") == name


def _wants_gpu(spec: Obj) -> bool:
    placement = spec.get("placement") or {}
    steps = spec.get("steps") or []
    return placement.get("device", "GPU") == "GPU" or any(s.get("device") == "GPU" for s in steps)
