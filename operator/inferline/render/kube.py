"""Render a pipeline's Kubernetes objects (pure: plain dicts in, plain dicts out, no I/O).

For one InferencePipeline: an immutable ConfigMap with its render manifest, a Deployment of the
backend's image running the runtime entrypoint, a Service, a PodDisruptionBudget, a
ServiceMonitor when the cluster has the Prometheus Operator, and with Dynamic Resource Allocation
a ResourceClaimTemplate from which each pod gets its GPU claim. The controller applies them with
server-side apply and prunes what is no longer rendered.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..api import names
from ..api.backend import BackendSpec
from ..api.common import API_VERSION
from ..api.pipeline import InferencePipeline
from ..gpu.placement import DeviceClaim
from . import mounts
from .autoscalers import render_autoscaler
from .manifest import MANIFEST_FILE, RenderManifest

Obj = dict[str, Any]

# ConfigMaps hold at most 1 MiB of data; keep room for metadata and the manifest's growth.
CONFIGMAP_LIMIT_BYTES = 1024 * 1024 - 16 * 1024
RUNTIME_UID = 1000  # the runtime images' user
TERMINATION_LOG = "/dev/termination-log"
# The pod's resourceClaims entry and the claim's one device request (DRA).
GPU_CLAIM = "gpu"


@dataclass(frozen=True)
class PodPlacement:
    """Where the runtime pods go and what accelerators they get (decided by gpu.placement)."""

    limits: dict[str, str] = field(default_factory=dict)  # e.g. {"nvidia.com/gpu": "1"}
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[Obj] = field(default_factory=list)
    affinity: Obj | None = None
    claim: DeviceClaim | None = None  # DRA: what each pod's ResourceClaim requests


@dataclass(frozen=True)
class RuntimeSettings:
    """Operator-wide knobs for runtime pods (chart values)."""

    shm_size: str = "256Mi"  # /dev/shm for the python backend's tensors between processes
    scratch_size: str = "1Gi"  # /tmp: HOME, caches
    repository_size: str | None = None  # /models emptyDir limit (None: node's ephemeral storage)
    cache_size: str = "50Gi"  # the artifact-cache emptyDir, when the pipeline names no claim
    termination_grace_seconds: int = 60
    drain_seconds: int = 5  # keep serving after removal from endpoints (preStop sleep)
    exit_timeout_seconds: int = 30  # tritonserver's own unload timeout on SIGTERM
    startup_timeout_seconds: int = 1800  # model downloads and loads may take long
    image_pull_policy: str = "IfNotPresent"
    service_monitor: bool = False  # the Prometheus Operator's CRDs exist


class TooLarge(ValueError):
    """The render manifest does not fit in a ConfigMap."""


def labels(pipeline: str) -> dict[str, str]:
    return {
        names.LABEL_PIPELINE: pipeline,
        names.LABEL_NAME: "inferline-runtime",
        names.LABEL_INSTANCE: pipeline,
        names.LABEL_COMPONENT: "inference-pipeline",
        names.LABEL_MANAGED_BY: names.MANAGER,
        names.LABEL_PART_OF: "inferline",
    }


def selector(pipeline: str) -> dict[str, str]:
    """The pod selector (immutable in a Deployment: never add to it)."""
    return {names.LABEL_PIPELINE: pipeline}


def selector_string(pipeline: str) -> str:
    return ",".join(f"{k}={v}" for k, v in selector(pipeline).items())


def owner_reference(pipe: InferencePipeline) -> Obj:
    assert pipe.metadata.uid, "a pipeline read from the apiserver has a uid"
    return {
        "apiVersion": API_VERSION,
        "kind": "InferencePipeline",
        "name": pipe.metadata.name,
        "uid": pipe.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _meta(pipe: InferencePipeline, name: str, **extra: Any) -> Obj:
    return {
        "name": name,
        "namespace": pipe.metadata.namespace or "default",
        "labels": labels(pipe.metadata.name),
        "ownerReferences": [owner_reference(pipe)],
        **extra,
    }


def not_servable_in_cluster(manifest: RenderManifest) -> list[str]:
    """Artifact sources a pod cannot reach (file:// means a file on the machine that rendered)."""
    return sorted(
        {
            f.source
            for f in manifest.artifacts
            if f.source and urlsplit(f.source).scheme not in mounts.CLUSTER_SCHEMES
        }
    )


def render_config_map(pipe: InferencePipeline, manifest: RenderManifest) -> Obj:
    data = manifest.to_json()
    size = len(data.encode())
    if size > CONFIGMAP_LIMIT_BYTES:
        raise TooLarge(
            f"the compiled pipeline is {size / 1024:.0f} KiB, over the "
            f"{CONFIGMAP_LIMIT_BYTES // 1024} KiB a ConfigMap holds; move large python code or "
            "files into a Model's storageUri (they are fetched, not inlined)"
        )
    digest = manifest.digest()
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(
            pipe,
            names.render_config_map(pipe.metadata.name, digest),
            annotations={names.ANNOTATION_RENDER_HASH: digest},
        ),
        "immutable": True,
        "data": {MANIFEST_FILE: data},
    }


def _mounted_sources(manifest: RenderManifest) -> tuple[list[str], list[str], list[str]]:
    """PVC claims, ConfigMaps and credential Secrets the pod must mount, sorted."""
    claims, config_maps, secrets = set(), set(), set()
    for f in manifest.artifacts:
        assert f.source is not None
        parts = urlsplit(f.source)
        if parts.scheme == "pvc":
            claims.add(parts.netloc)
        elif parts.scheme == "configmap":
            config_maps.add(parts.netloc)
        if f.credentials_secret:
            secrets.add(f.credentials_secret)
    return sorted(claims), sorted(config_maps), sorted(secrets)


def render_claim_template(pipe: InferencePipeline, claim: DeviceClaim) -> Obj:
    """The ResourceClaimTemplate each pod's GPU claim is made from (DRA).

    The claims the resource-claim controller makes from it carry the pipeline's labels (the
    template's `spec.metadata`), which is how the operator finds them for status.
    """
    request: Obj = {"deviceClassName": claim.device_class, "count": claim.count}
    if claim.selectors:
        request["selectors"] = [{"cel": {"expression": e}} for e in claim.selectors]
    devices: Obj = {"requests": [{"name": GPU_CLAIM, "exactly": request}]}
    if claim.match_attribute:
        devices["constraints"] = [
            {"requests": [GPU_CLAIM], "matchAttribute": claim.match_attribute}
        ]
    spec = {"devices": devices}
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": _meta(pipe, names.resource_claim_template(pipe.metadata.name, _hash(spec))),
        "spec": {"metadata": {"labels": labels(pipe.metadata.name)}, "spec": spec},
    }


def render_deployment(
    pipe: InferencePipeline,
    backend: BackendSpec,
    config_map: Obj,
    placement: PodPlacement,
    manifest: RenderManifest,
    settings: RuntimeSettings,
    claim_template: Obj | None = None,
) -> Obj:
    name = pipe.metadata.name
    s = settings
    claims, config_maps, secrets = _mounted_sources(manifest)
    volumes: list[Obj] = [
        {"name": "rendered", "configMap": {"name": config_map["metadata"]["name"]}},
        {
            "name": "models",
            "emptyDir": {"sizeLimit": s.repository_size} if s.repository_size else {},
        },
        {"name": "scratch", "emptyDir": {"sizeLimit": s.scratch_size}},
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": s.shm_size}},
    ]
    volume_mounts: list[Obj] = [
        {"name": "rendered", "mountPath": mounts.RENDERED_DIR, "readOnly": True},
        {"name": "models", "mountPath": mounts.REPOSITORY_DIR},
        {"name": "scratch", "mountPath": mounts.SCRATCH_DIR},
        {"name": "shm", "mountPath": "/dev/shm"},
    ]
    env: list[Obj] = [{"name": e.name, "value": e.value} for e in backend.env]
    for i, claim in enumerate(claims):
        volumes.append(
            {"name": f"pvc-{i}", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        )
        volume_mounts.append(
            {"name": f"pvc-{i}", "mountPath": f"{mounts.PVC_ROOT}/{claim}", "readOnly": True}
        )
    for i, cm in enumerate(config_maps):
        volumes.append({"name": f"cm-{i}", "configMap": {"name": cm}})
        volume_mounts.append(
            {"name": f"cm-{i}", "mountPath": f"{mounts.CONFIGMAP_ROOT}/{cm}", "readOnly": True}
        )
    for secret in secrets:
        volumes.append(
            {
                "name": mounts.secret_volume_name(secret),
                "secret": {"secretName": secret, "defaultMode": 0o440},
            }
        )
        volume_mounts.append(
            {
                "name": mounts.secret_volume_name(secret),
                "mountPath": mounts.secret_mount_path(secret),
                "readOnly": True,
            }
        )
    # The artifact cache: the pipeline's claim, shared by its replicas (and their restarts), or
    # an emptyDir that at least survives container restarts.
    cache = pipe.spec.artifact_cache
    if cache is not None:
        volumes.append(
            {"name": "artifact-cache", "persistentVolumeClaim": {"claimName": cache.claim_name}}
        )
    else:
        volumes.append({"name": "artifact-cache", "emptyDir": {"sizeLimit": s.cache_size}})
    volume_mounts.append({"name": "artifact-cache", "mountPath": mounts.CACHE_DIR})
    env.append({"name": mounts.CACHE_DIR_ENV, "value": mounts.CACHE_DIR})
    if cache is not None and cache.max_size:
        env.append({"name": mounts.CACHE_MAX_BYTES_ENV, "value": cache.max_size})
    if claims:
        env.append({"name": mounts.PVC_ROOT_ENV, "value": mounts.PVC_ROOT})
    if config_maps:
        env.append({"name": mounts.CONFIGMAP_ROOT_ENV, "value": mounts.CONFIGMAP_ROOT})
    if secrets:
        env.append({"name": mounts.SECRETS_ROOT_ENV, "value": mounts.SECRETS_ROOT})

    resources: Obj = {}
    if backend.resources is not None:
        resources = backend.resources.to_wire()
    if placement.limits:
        resources.setdefault("limits", {}).update(placement.limits)
    if claim_template is not None:
        resources["claims"] = [{"name": GPU_CLAIM}]

    container: Obj = {
        "name": "runtime",
        "image": backend.image,
        "imagePullPolicy": s.image_pull_policy,
        # The images' entrypoint is `python -m inferline.runtime`.
        "args": [
            f"--rendered={mounts.RENDERED_DIR}",
            f"--repository={mounts.REPOSITORY_DIR}",
            "--address=0.0.0.0",
            f"--http-port={mounts.HTTP_PORT}",
            f"--grpc-port={mounts.GRPC_PORT}",
            f"--metrics-port={mounts.METRICS_PORT}",
            f"--exit-timeout={s.exit_timeout_seconds}",
            f"--termination-log={TERMINATION_LOG}",
            *(f"--server-arg={a}" for a in backend.args),
        ],
        "ports": [
            {"name": "http", "containerPort": mounts.HTTP_PORT, "protocol": "TCP"},
            {"name": "grpc", "containerPort": mounts.GRPC_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": mounts.METRICS_PORT, "protocol": "TCP"},
        ],
        "env": env,
        "resources": resources,
        "volumeMounts": volume_mounts,
        # Artifacts download and models load before tritonserver listens: the startup probe
        # allows for that; liveness then catches a hung server, readiness a not-yet-loaded one.
        "startupProbe": _probe("/v2/health/live", 10, max(1, s.startup_timeout_seconds // 10)),
        "livenessProbe": _probe("/v2/health/live", 10, 3),
        "readinessProbe": _probe("/v2/health/ready", 5, 2),
        # Endpoints drop the pod first; the sleep lets load balancers notice before SIGTERM.
        "lifecycle": {"preStop": {"sleep": {"seconds": s.drain_seconds}}},
        # The runtime's last line (e.g. "model 'x' failed to load: ...") is the reason shown.
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod_spec: Obj = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": s.termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNTIME_UID,
            "runAsGroup": RUNTIME_UID,
            "fsGroup": RUNTIME_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    if placement.node_selector:
        pod_spec["nodeSelector"] = dict(sorted(placement.node_selector.items()))
    if placement.tolerations:
        pod_spec["tolerations"] = placement.tolerations
    if placement.affinity:
        pod_spec["affinity"] = placement.affinity
    if claim_template is not None:
        pod_spec["resourceClaims"] = [
            {
                "name": GPU_CLAIM,
                "resourceClaimTemplateName": claim_template["metadata"]["name"],
            }
        ]
    template_labels = labels(name)
    template = {
        "metadata": {
            "labels": template_labels,
            "annotations": {
                # The ConfigMap's name carries the render hash already; this one also covers
                # what a pod is started with beyond the manifest.
                names.ANNOTATION_CONFIG_HASH: _hash(
                    {"manifest": manifest.digest(), "pod": pod_spec}
                ),
            },
        },
        "spec": pod_spec,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(pipe, names.deployment(name)),
        "spec": {
            "replicas": pipe.spec.replicas,
            "selector": {"matchLabels": selector(name)},
            # A changed pipeline never takes a serving replica away before its successor is
            # ready.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": s.startup_timeout_seconds + 120,
            "template": template,
        },
    }


def _probe(path: str, period: int, failures: int) -> Obj:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def render_service(pipe: InferencePipeline) -> Obj:
    name = pipe.metadata.name
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(pipe, names.service(name)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(name),
            "ports": [
                {"name": "http", "port": mounts.HTTP_PORT, "targetPort": "http"},
                {"name": "grpc", "port": mounts.GRPC_PORT, "targetPort": "grpc"},
                {"name": "metrics", "port": mounts.METRICS_PORT, "targetPort": "metrics"},
            ],
        },
    }


def render_pdb(pipe: InferencePipeline) -> Obj:
    # maxUnavailable 1 (not minAvailable): a one-replica pipeline must not block node drains.
    name = pipe.metadata.name
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(pipe, names.pod_disruption_budget(name)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(name)}},
    }


def render_service_monitor(pipe: InferencePipeline) -> Obj:
    name = pipe.metadata.name
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _meta(pipe, names.service_monitor(name)),
        "spec": {
            "selector": {"matchLabels": {names.LABEL_PIPELINE: name}},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}],
        },
    }


@dataclass(frozen=True)
class Children:
    """Everything rendered for one pipeline: what the pods use (the ConfigMap, the claim
    template), to apply before the Deployment that makes them, and the rest."""

    config_map: Obj
    objects: list[Obj]
    claim_template: Obj | None = None

    @property
    def first(self) -> list[Obj]:
        return [self.config_map] + ([self.claim_template] if self.claim_template else [])

    @property
    def all(self) -> list[Obj]:
        return [*self.first, *self.objects]


def render_children(
    pipe: InferencePipeline,
    backend: BackendSpec,
    manifest: RenderManifest,
    placement: PodPlacement,
    settings: RuntimeSettings,
) -> Children:
    """The pipeline's children; raises TooLarge when the manifest does not fit a ConfigMap."""
    cm = render_config_map(pipe, manifest)
    template = render_claim_template(pipe, placement.claim) if placement.claim else None
    objects = [
        render_deployment(pipe, backend, cm, placement, manifest, settings, template),
        render_service(pipe),
        render_pdb(pipe),
    ]
    if settings.service_monitor:
        objects.append(render_service_monitor(pipe))
    served = manifest.pipelines[0].served_name
    scaler = render_autoscaler(pipe, served, labels(pipe.metadata.name), owner_reference(pipe))
    if scaler is not None:
        objects.append(scaler)
    return Children(cm, objects, template)


def endpoints(pipe: InferencePipeline, served_name: str) -> dict[str, str]:
    """In-cluster addresses clients use (the Service's DNS name)."""
    host = f"{names.service(pipe.metadata.name)}.{pipe.metadata.namespace or 'default'}.svc"
    return {
        "http": f"http://{host}:{mounts.HTTP_PORT}/v2/models/{served_name}/infer",
        "grpc": f"{host}:{mounts.GRPC_PORT}",
        "metrics": f"http://{host}:{mounts.METRICS_PORT}/metrics",
    }
