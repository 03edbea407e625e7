"""`inferline operator`: settings, credentials, the work queue, probes and metrics around kopf.

One replica (a Deployment with the Recreate strategy): kopf has no leader election, and the
reconcile is idempotent, so a restarted operator simply picks up from the watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import kopf
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from prometheus_client import start_http_server

from ..api import names
from ..autoscale.export import AutoscalerMetrics
from ..gpu.inventory import node_gpus
from ..render.kube import RuntimeSettings
from . import handlers
from .autoscaler import Autoscaler
from .kube import Kube, api_error
from .metrics import Metrics
from .placement import place_pipeline
from .queue import WorkQueue, run_workers
from .reconcile import Reconciler
from .state import DELETED, ClusterState, Ident, Key, key_of

Obj = dict[str, Any]


@dataclass(frozen=True)
class Source:
    """A kind the state is filled from at start. Labelled kinds (what pipelines own, their
    pods, slices and claims) are listed by the pipeline label, and swept (see `_sweep`)."""

    api_version: str
    plural: str
    kind: str
    handler: str  # the ClusterState method its objects go to
    scope: Literal["cluster", "namespaced", "labelled"] = "cluster"  # labelled: by the label
    # Pipelines come from kopf's listing alone: known beforehand, their first events would be
    # no news, and nothing would reconcile them at start. They are swept like the rest.
    prefill: bool = True


SOURCES = [
    Source(
        "inferline.dev/v1alpha1",
        "inferencepipelines",
        "InferencePipeline",
        "on_pipeline",
        "namespaced",
        prefill=False,
    ),
    Source("inferline.dev/v1alpha1", "models", "Model", "on_model", "namespaced"),
    Source("inferline.dev/v1alpha1", "backends", "Backend", "on_backend", "namespaced"),
    Source("inferline.dev/v1alpha1", "clusterbackends", "ClusterBackend", "on_cluster_backend"),
    Source("v1", "nodes", "Node", "on_node"),
    Source("v1", "configmaps", "ConfigMap", "on_child", "labelled"),
    Source("v1", "services", "Service", "on_child", "labelled"),
    Source("apps/v1", "deployments", "Deployment", "on_child", "labelled"),
    Source("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", "on_child", "labelled"),
    Source(
        "autoscaling/v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        "on_child",
        "labelled",
    ),
    Source("keda.sh/v1alpha1", "scaledobjects", "ScaledObject", "on_child", "labelled"),
    Source("monitoring.coreos.com/v1", "servicemonitors", "ServiceMonitor", "on_child", "labelled"),
    Source("v1", "pods", "Pod", "on_pod", "labelled"),
    Source(
        "discovery.k8s.io/v1", "endpointslices", "EndpointSlice", "on_endpoint_slice", "labelled"
    ),
]
DRA_SOURCES = [
    Source("resource.k8s.io/v1", "resourceslices", "ResourceSlice", "on_resource_slice"),
    Source("resource.k8s.io/v1", "deviceclasses", "DeviceClass", "on_device_class"),
    Source(
        "resource.k8s.io/v1",
        "resourceclaimtemplates",
        "ResourceClaimTemplate",
        "on_child",
        "labelled",
    ),
    Source("resource.k8s.io/v1", "resourceclaims", "ResourceClaim", "on_claim", "labelled"),
]


log = logging.getLogger("inferline.controller")
# A sweep needs names only: the apiserver sends each object's metadata alone (no spec, no
# status), so relisting a large cluster's pods stays small.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


@dataclass(frozen=True)
class OperatorOptions:
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    kubeconfig: Path | None = None  # None: in-cluster, else ~/.kube/config or $KUBECONFIG
    context: str | None = None
    workers: int = 4
    resync_seconds: float = 600
    sweep_after_start_seconds: float = 10
    metrics_port: int = 8080  # 0: no metrics server
    health_port: int = 8081  # kopf's liveness endpoint; 0: none
    bind_address: str = "0.0.0.0"
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    # Watch NVIDIA's ResourceSlices and DeviceClasses and the pods' ResourceClaims, and place
    # through Dynamic Resource Allocation where they exist (needs RBAC on resource.k8s.io).
    dra: bool = True


def load_client_config(opts: OperatorOptions) -> k8s.Configuration:
    """The cluster's address and credentials: a kubeconfig when given or present, else the pod's
    service account."""
    configuration = k8s.Configuration()
    if opts.kubeconfig is not None:
        k8s_config.load_kube_config(
            config_file=str(opts.kubeconfig),
            context=opts.context,
            client_configuration=configuration,
        )
        return configuration
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(context=opts.context, client_configuration=configuration)
    return configuration


class Controller:
    def __init__(self, opts: OperatorOptions, configuration: k8s.Configuration) -> None:
        self.opts = opts
        self.configuration = configuration
        self.kube = Kube(k8s.ApiClient(configuration))
        self.metrics = Metrics()
        self.state = ClusterState(node_view=node_gpus)
        self.queue: WorkQueue[Key] = WorkQueue()
        self.reconciler = Reconciler(
            self.state, self.kube, place_pipeline, opts.runtime, self.metrics
        )
        self.autoscaler = Autoscaler(
            self.state, self.kube, AutoscalerMetrics(self.metrics.registry)
        )
        self._force: set[Key] = set()
        self._tasks: list[asyncio.Task[None]] = []

    # -- kopf's side ----------------------------------------------------------------------------

    @property
    def dra(self) -> bool:
        """Watching DRA objects (ResourceSlices, DeviceClasses, claims) and placing with them."""
        return self.opts.dra

    @property
    def namespaced(self) -> bool:
        """Watching named namespaces only (no cluster-wide scans, which RBAC may not allow)."""
        return bool(self.opts.namespaces)

    def connection_info(self) -> kopf.ConnectionInfo:
        """kopf talks to the apiserver with the same credentials as our client."""
        c = self.configuration
        header = c.get_api_key_with_prefix("BearerToken") or c.get_api_key_with_prefix(
            "authorization"
        )
        parts = header.split(" ", 1) if header else []
        scheme, token = (parts[0], parts[1]) if len(parts) == 2 else (None, header or None)
        return kopf.ConnectionInfo(
            server=c.host,
            ca_path=c.ssl_ca_cert,
            insecure=not c.verify_ssl,
            scheme=scheme,
            token=token,
            certificate_path=c.cert_file,
            private_key_path=c.key_file,
        )

    def on_pipeline(self, event: str | None, body: dict[str, Any]) -> set[Key]:
        keys = self.state.on_pipeline(event, body)
        if event == DELETED:
            self._forget(key_of(body))
        return keys

    def _forget(self, key: Key) -> None:
        """A deleted pipeline: no more gauges, no backoff kept."""
        self.metrics.forget(key)
        self.queue.forget(key)

    def enqueue(self, keys: Iterable[Key]) -> None:
        for k in keys:
            self.queue.add(k, urgent=self.state.awaits_spec(k))

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Fill the state from one listing (so the first reconciles see every dependency and
        every child), then start the workers and the periodic resync."""
        # API calls run in threads; enough of them for every worker's concurrent applies.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=max(8, self.opts.workers * 4))
        )
        await asyncio.to_thread(self._prefill)
        self._tasks = [
            asyncio.create_task(run_workers(self.queue, self._work, self.opts.workers)),
            asyncio.create_task(self._resync()),
            asyncio.create_task(self.autoscaler.run()),
        ]
        log.info(
            "operator started: %d pipelines, %d models, %d GPU nodes known%s",
            len(self.state.pipelines),
            len(self.state.models),
            len(self.state.nodes),
            f", {len(self.state.dra_inventory().nodes)} with DRA devices" if self.opts.dra else "",
        )

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []

    def _sources(self) -> list[Source]:
        return SOURCES + DRA_SOURCES if self.opts.dra else SOURCES

    def _list_source(self, source: Source, *, metadata_only: bool = False) -> list[Obj]:
        """Every object of a source in the watched namespaces (an API not served: none)."""
        prefix = "/api/v1" if source.api_version == "v1" else f"/apis/{source.api_version}"
        query = [("labelSelector", names.LABEL_PIPELINE)] if source.scope == "labelled" else []
        if source.scope != "cluster" and self.opts.namespaces:
            paths = [f"{prefix}/namespaces/{ns}/{source.plural}" for ns in self.opts.namespaces]
        else:
            paths = [f"{prefix}/{source.plural}"]
        accept = METADATA_ONLY if metadata_only else "application/json"
        items: list[Obj] = []
        for path in paths:
            try:
                answer = self.kube.request("GET", path, query=query, accept=accept)
                items += answer.get("items") or []  # null in an empty metadata-only list
            except ApiException as e:
                if e.status != 404:  # an optional API (ServiceMonitor) may be absent
                    raise
        for item in items:
            # A list's items carry no apiVersion/kind; the state reads them.
            item.setdefault("apiVersion", source.api_version)
            item.setdefault("kind", source.kind)
        return items

    def _prefill(self) -> None:
        for source in self._sources():
            if not source.prefill:
                continue
            update = getattr(self.state, source.handler)
            for item in self._list_source(source):
                update(None, item)
        self._refresh_optional_apis()

    async def _sweep(self) -> None:
        """List every kind again and forget what is known but no longer exists (see
        ClusterState.sweep): the pipelines concerned are reconciled again."""
        try:
            forgotten = await self._sweep_once()
        except Exception:  # the next resync tries again; the loop must not die
            log.exception("cannot list the cluster's objects to forget deleted ones")
            self.metrics.swept(None)
            return
        self.metrics.swept(forgotten)

    async def _sweep_once(self) -> int:
        self.state.touched = set()
        try:
            kinds: set[str] = set()
            listed: set[Ident] = set()
            for source in self._sources():
                items = await asyncio.to_thread(self._list_source, source, metadata_only=True)
                kinds.add(source.kind)
                listed |= {
                    (source.kind, str(m.get("namespace") or ""), str(m.get("name")))
                    for m in (i.get("metadata") or {} for i in items)
                }
            touched = self.state.touched
        finally:
            self.state.touched = None
        pipelines = set(self.state.pipelines)
        forgotten, again = self.state.sweep(kinds, listed, touched)
        for key in pipelines - set(self.state.pipelines):  # deleted unseen
            self._forget(key)
        if forgotten:
            log.info(
                "forgot %d objects deleted unseen by the watches; %d pipelines concerned",
                forgotten,
                len(again),
            )
        self.enqueue(again)
        return forgotten

    def _refresh_optional_apis(self) -> None:
        """Render ServiceMonitors only where the Prometheus Operator's CRDs exist."""
        try:
            self.kube.request("GET", "/apis/monitoring.coreos.com/v1")
            present = True
        except ApiException as e:
            if e.status != 404:
                log.warning("cannot tell if ServiceMonitors exist: %s", api_error(e))
                return
            present = False
        settings = self.reconciler.settings
        if settings.service_monitor != present:
            self.reconciler.settings = replace(settings, service_monitor=present)
            self.enqueue(self.state.pipelines)

    async def _resync(self) -> None:
        """Re-apply every pipeline now and then: heals edits our watches cannot attribute. A
        sweep first, shortly after start (once kopf's watches have listed: deletions between
        our listing and theirs are seen by neither), then with every resync."""
        await asyncio.sleep(self.opts.sweep_after_start_seconds)
        await self._sweep()
        while True:
            await asyncio.sleep(self.opts.resync_seconds)
            await asyncio.to_thread(self._refresh_optional_apis)
            await self._sweep()
            self._force |= set(self.state.pipelines)
            self.enqueue(self.state.pipelines)

    async def _work(self, key: Key) -> None:
        force = key in self._force
        self._force.discard(key)
        try:
            again = await self.reconciler.reconcile(key, force=force)
        except Exception:
            self.metrics.failed()
            wait = self.queue.retry(key)
            log.exception("%s/%s: reconcile failed; retrying in %.0fs", *key, wait)
            return
        if again:
            self.queue.retry(key)
        else:
            self.queue.forget(key)


def run(opts: OperatorOptions, *, log_format: str = "text", verbose: bool = False) -> None:
    """Run the operator until SIGINT/SIGTERM."""
    kopf.configure(
        verbose=verbose,
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
    )
    # kopf logs every handled event at INFO: keep that for --verbose.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("inferline").setLevel(logging.DEBUG if verbose else logging.INFO)
    configuration = load_client_config(opts)
    ctl = Controller(opts, configuration)
    registry = kopf.OperatorRegistry()
    handlers.register(registry, ctl)
    if opts.metrics_port:
        start_http_server(opts.metrics_port, opts.bind_address, registry=ctl.metrics.registry)
    liveness = (
        f"http://{opts.bind_address}:{opts.health_port}/healthz" if opts.health_port else None
    )
    asyncio.run(
        kopf.operator(
            registry=registry,
            clusterwide=not opts.namespaces,
            namespaces=list(opts.namespaces),
            liveness_endpoint=liveness,
            standalone=True,
        )
    )
