"""The kopf wiring, and nothing else: every watch event updates the cluster state and enqueues
the pipelines it concerns; workers run `Reconciler.reconcile`.

Handlers are `on.event` (level-triggered, like controller-runtime), not kopf's change-detecting
create/update handlers: reconcile compares the whole desired state with the whole observed
state every time, so no diff bases or progress annotations are written onto users' objects,
and a restart (even kill -9) needs nothing but the watches' initial listing to carry on.
Handlers return nothing (kopf would store return values in status).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import kopf

from ..api import names
from .state import ClusterState, Key

log = logging.getLogger("inferline.controller")

GROUP, VERSION = "inferline.dev", "v1alpha1"
# The children the operator writes, watched with a server-side label selector.
CHILD_RESOURCES = [
    ("", "v1", "configmaps"),
    ("", "v1", "services"),
    ("apps", "v1", "deployments"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("monitoring.coreos.com", "v1", "servicemonitors"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("keda.sh", "v1alpha1", "scaledobjects"),
    ("resource.k8s.io", "v1", "resourceclaimtemplates"),
]
# The slices of the pipelines' Services (labelled: the EndpointSlice controller copies the
# Service's labels): Ready waits until they route to exactly the current ready pods.
ENDPOINT_SLICES = ("discovery.k8s.io", "v1", "endpointslices")
# Dynamic Resource Allocation: NVIDIA's slices and classes (the GPU inventory), and the claims
# made for the pipelines' pods (labelled from the template). Watched unless --no-dra.
DRA_RESOURCES = [
    ("resource.k8s.io", "v1", "resourceslices"),
    ("resource.k8s.io", "v1", "deviceclasses"),
    ("resource.k8s.io", "v1", "resourceclaims"),
]


class Controller(Protocol):
    """What the handlers need of the operator (controller/main.py's Controller)."""

    state: ClusterState

    @property
    def namespaced(self) -> bool: ...
    @property
    def dra(self) -> bool: ...
    def connection_info(self) -> kopf.ConnectionInfo: ...
    def enqueue(self, keys: Iterable[Key]) -> None: ...
    def on_pipeline(self, event: str | None, body: dict[str, Any]) -> set[Key]: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: kopf builds one (a deep copy of the body, less system fields) for every
    event of every watched object, for change-detecting handlers (on.create, on.update, ...).
    The operator has none, only on.event (it reconciles level-triggered), and that copy was a
    seventh of its CPU in a profile with 500 pipelines. A change-detecting handler would need a
    real storage again (tests/controller/test_handlers.py holds the registry to event handlers
    only)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> Any:
        return None

    def fetch(self, *, body: kopf.Body) -> None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        pass


def register(registry: kopf.OperatorRegistry, ctl: Controller) -> None:
    def on(
        group: str, version: str, plural: str, update: Callable[[str | None, dict[str, Any]], Any]
    ) -> None:
        # async: kopf runs sync handlers in threads, and the state must only change on the
        # event loop, where reconcile reads it.
        @kopf.on.event(group, version, plural, registry=registry)  # type: ignore[arg-type]
        async def _event(event: dict[str, Any], body: kopf.Body, **_: Any) -> None:
            ctl.enqueue(update(event.get("type"), dict(body)))

    @kopf.on.login(registry=registry)
    def _login(**_: Any) -> kopf.ConnectionInfo:
        return ctl.connection_info()

    @kopf.on.startup(registry=registry)
    async def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings, namespaced=ctl.namespaced)
        await ctl.start()

    @kopf.on.cleanup(registry=registry)
    async def _cleanup(**_: Any) -> None:
        await ctl.stop()

    state = ctl.state
    on(GROUP, VERSION, "inferencepipelines", ctl.on_pipeline)
    on(GROUP, VERSION, "models", state.on_model)
    on(GROUP, VERSION, "backends", state.on_backend)
    on(GROUP, VERSION, "clusterbackends", state.on_cluster_backend)
    on("", "v1", "nodes", state.on_node)
    on("", "v1", "pods", state.on_pod)
    on(*ENDPOINT_SLICES, state.on_endpoint_slice)
    for group, version, plural in child_resources(ctl.dra):
        on(group, version, plural, state.on_child)
    if ctl.dra:
        slices, classes, claims = DRA_RESOURCES
        on(*slices, state.on_resource_slice)
        on(*classes, state.on_device_class)
        on(*claims, state.on_claim)


def child_resources(dra: bool) -> list[tuple[str, str, str]]:
    return [r for r in CHILD_RESOURCES if dra or r[2] != "resourceclaimtemplates"]


def configure(settings: kopf.OperatorSettings, *, namespaced: bool = False) -> None:
    selector = names.LABEL_PIPELINE
    labelled = [
        *CHILD_RESOURCES,
        ("", "v1", "pods"),
        ENDPOINT_SLICES,
        ("resource.k8s.io", "v1", "resourceclaims"),
    ]
    for group, version, plural in labelled:
        settings.watching.label_selectors[group, version, plural] = selector
    # Our own prefix for anything kopf stores on objects (with on.event handlers it stores
    # nothing, but a future change-detecting handler must not write zalando annotations).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.persistence.finalizer = f"{GROUP}/kopf-finalizer"
    # Events are ours (condition transitions), not one per kopf log line.
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    # Watching named namespaces only (the chart's namespaced mode): kopf would otherwise list
    # Namespaces and watch CRDs cluster-wide, which namespaced RBAC does not grant (it retries
    # for about a minute before falling back). Without scanning it takes the namespaces as given
    # and the kinds the API serves at start.
    settings.scanning.disabled = namespaced
