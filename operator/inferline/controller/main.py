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
from typing import Any

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
from .state import DELETED, ClusterState, Key, key_of

log = logging.getLogger("inferline.controller")


@dataclass(frozen=True)
class OperatorOptions:
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    kubeconfig: Path | None = None  # None: in-cluster, else ~/.kube/config or $KUBECONFIG
    context: str | None = None
    workers: int = 4
    resync_seconds: float = 600
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
            key = key_of(body)
            self.metrics.forget(key)
            self.queue.forget(key)
        return keys

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

    def _list(
        self, api_version: str, plural: str, *, namespaced: bool, selector: str = ""
    ) -> list[dict[str, Any]]:
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        query = [("labelSelector", selector)] if selector else []
        if namespaced and self.opts.namespaces:
            paths = [f"{prefix}/namespaces/{ns}/{plural}" for ns in self.opts.namespaces]
        else:
            paths = [f"{prefix}/{plural}"]
        items: list[dict[str, Any]] = []
        for path in paths:
            try:
                items += self.kube.request("GET", path, query=query).get("items", [])
            except ApiException as e:
                if e.status != 404:  # an optional API (ServiceMonitor) may be absent
                    raise
        return items

    def _prefill(self) -> None:
        s = self.state
        label = names.LABEL_PIPELINE
        sources = [
            ("inferline.dev/v1alpha1", "models", True, "", s.on_model),
            ("inferline.dev/v1alpha1", "backends", True, "", s.on_backend),
            ("inferline.dev/v1alpha1", "clusterbackends", False, "", s.on_cluster_backend),
            ("v1", "nodes", False, "", s.on_node),
            ("v1", "configmaps", True, label, s.on_child),
            ("v1", "services", True, label, s.on_child),
            ("apps/v1", "deployments", True, label, s.on_child),
            ("policy/v1", "poddisruptionbudgets", True, label, s.on_child),
            ("autoscaling/v2", "horizontalpodautoscalers", True, label, s.on_child),
            ("keda.sh/v1alpha1", "scaledobjects", True, label, s.on_child),
            ("v1", "pods", True, label, s.on_pod),
            ("discovery.k8s.io/v1", "endpointslices", True, label, s.on_endpoint_slice),
        ]
        if self.opts.dra:
            sources += [
                ("resource.k8s.io/v1", "resourceslices", False, "", s.on_resource_slice),
                ("resource.k8s.io/v1", "deviceclasses", False, "", s.on_device_class),
                ("resource.k8s.io/v1", "resourceclaimtemplates", True, label, s.on_child),
                ("resource.k8s.io/v1", "resourceclaims", True, label, s.on_claim),
            ]
        kinds = {
            "models": "Model",
            "backends": "Backend",
            "clusterbackends": "ClusterBackend",
            "nodes": "Node",
            "configmaps": "ConfigMap",
            "services": "Service",
            "deployments": "Deployment",
            "poddisruptionbudgets": "PodDisruptionBudget",
            "horizontalpodautoscalers": "HorizontalPodAutoscaler",
            "scaledobjects": "ScaledObject",
            "pods": "Pod",
            "endpointslices": "EndpointSlice",
            "resourceslices": "ResourceSlice",
            "deviceclasses": "DeviceClass",
            "resourceclaimtemplates": "ResourceClaimTemplate",
            "resourceclaims": "ResourceClaim",
        }
        for api_version, plural, namespaced, selector, update in sources:
            for item in self._list(api_version, plural, namespaced=namespaced, selector=selector):
                # A list's items carry no apiVersion/kind; the state reads them.
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kinds[plural])
                update(None, item)
        self._refresh_optional_apis()

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
        """Re-apply every pipeline now and then: heals edits our watches cannot attribute."""
        while True:
            await asyncio.sleep(self.opts.resync_seconds)
            await asyncio.to_thread(self._refresh_optional_apis)
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
