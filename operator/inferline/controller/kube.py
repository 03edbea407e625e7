"""The few Kubernetes API calls the controller makes, on the official client's transport.

Server-side apply (one field manager per writer), delete with a uid precondition, and Events.
Paths come from a small table of the kinds the operator writes, so no discovery round trips
are needed. Calls are synchronous; the controller runs them in worker threads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]


@dataclass(frozen=True)
class KindPath:
    api_version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        parts = [prefix]
        if self.namespaced:
            assert namespace, f"{self.plural} are namespaced"
            parts += ["namespaces", namespace]
        parts.append(self.plural)
        if name:
            parts.append(name)
        if sub:
            parts.append(sub)
        return "/".join(parts)


# (apiVersion, kind) of everything the operator writes.
KINDS: dict[tuple[str, str], KindPath] = {
    ("v1", "ConfigMap"): KindPath("v1", "configmaps"),
    ("v1", "Service"): KindPath("v1", "services"),
    ("v1", "Event"): KindPath("v1", "events"),
    ("apps/v1", "Deployment"): KindPath("apps/v1", "deployments"),
    ("policy/v1", "PodDisruptionBudget"): KindPath("policy/v1", "poddisruptionbudgets"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): KindPath(
        "monitoring.coreos.com/v1", "servicemonitors"
    ),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): KindPath(
        "autoscaling/v2", "horizontalpodautoscalers"
    ),
    ("keda.sh/v1alpha1", "ScaledObject"): KindPath("keda.sh/v1alpha1", "scaledobjects"),
    ("resource.k8s.io/v1", "ResourceClaimTemplate"): KindPath(
        "resource.k8s.io/v1", "resourceclaimtemplates"
    ),
    ("inferline.dev/v1alpha1", "InferencePipeline"): KindPath(
        "inferline.dev/v1alpha1", "inferencepipelines"
    ),
}


def kind_path(obj_or_kind: Obj | tuple[str, str]) -> KindPath:
    key = (
        obj_or_kind
        if isinstance(obj_or_kind, tuple)
        else (obj_or_kind["apiVersion"], obj_or_kind["kind"])
    )
    return KINDS[key]


class Kube:
    def __init__(self, api: ApiClient, timeout_s: float = 30) -> None:
        self.api = api
        self.timeout_s = timeout_s

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Obj:
        request = self.api.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params={"Accept": accept, "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request, _request_timeout=self.timeout_s)
        data = response.read()
        if not 200 <= response.status <= 299:
            raise ApiException(http_resp=response)
        return json.loads(data) if data else {}

    def apply(self, obj: Obj, manager: str, *, subresource: str | None = None) -> Obj:
        """Server-side apply `obj` as `manager`, taking over fields others set (force)."""
        meta = obj["metadata"]
        path = kind_path(obj).path(meta.get("namespace"), meta["name"], subresource)
        return self.request(
            "PATCH",
            path,
            body=obj,
            query=[("fieldManager", manager), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def scale(self, namespace: str, name: str, replicas: int, manager: str) -> Obj:
        """Set a pipeline's replicas through its scale subresource (what HPA and KEDA use)."""
        path = KINDS[("inferline.dev/v1alpha1", "InferencePipeline")].path(namespace, name, "scale")
        return self.request(
            "PATCH",
            path,
            body={"spec": {"replicas": replicas}},
            query=[("fieldManager", manager)],
            content_type="application/merge-patch+json",
        )

    def delete(self, api_version: str, kind: str, namespace: str, name: str, uid: str) -> None:
        """Delete one object, only if it is still the one we saw (uid); gone is fine."""
        path = kind_path((api_version, kind)).path(namespace, name)
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"uid": uid},
            "propagationPolicy": "Background",
        }
        try:
            self.request("DELETE", path, body=body)
        except ApiException as e:
            if e.status not in (404, 409):  # gone already, or replaced by a new object
                raise

    def create_event(self, namespace: str, event: Obj) -> None:
        self.request("POST", kind_path(("v1", "Event")).path(namespace), body=event)


def api_error(e: ApiException) -> str:
    """One line from an API error: the apiserver's own message when it gave one."""
    try:
        body = json.loads(e.body or "{}")
        message = body.get("message")
    except ValueError:
        message = None
    return f"{e.status} {message or e.reason}"
