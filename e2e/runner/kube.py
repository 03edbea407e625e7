"""The runner's few calls to the apiserver, on plain dicts (the kubernetes client, undecoded)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

SMP = "application/strategic-merge-patch+json"
_TIMEOUT = 15  # seconds for every call but the watch: a hung apiserver must not hang a pod


class Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


class Kube:
    def __init__(self, kubeconfig: str) -> None:
        self.api_client = config.new_client_from_config(config_file=kubeconfig)
        self.v1 = client.CoreV1Api(self.api_client)

    @staticmethod
    def _json(resp: Any) -> Any:
        return json.loads(resp.data)

    def nodes(self) -> list[dict[str, Any]]:
        return list(
            self._json(self.v1.list_node(_preload_content=False, _request_timeout=_TIMEOUT))[
                "items"
            ]
        )

    def list_pods(self) -> tuple[list[dict[str, Any]], str]:
        # Bound pods only: an unscheduled pod is nobody's yet.
        data = self._json(
            self.v1.list_pod_for_all_namespaces(
                field_selector="spec.nodeName!=", _preload_content=False, _request_timeout=_TIMEOUT
            )
        )
        return data["items"], data["metadata"]["resourceVersion"]

    def watch_pods(
        self, resource_version: str, timeout: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, pod) events after `resource_version`; BOOKMARKs carry only the new version."""
        resp: Any = self.v1.list_pod_for_all_namespaces(
            field_selector="spec.nodeName!=",
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout,
            _preload_content=False,
            _request_timeout=(10, timeout + 10),
        )
        try:
            for line in resp:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event["type"] == "ERROR":
                    if event["object"].get("code") == 410:
                        raise Gone(event["object"].get("message", ""))
                    raise ApiException(status=event["object"].get("code"), reason=str(event))
                yield event["type"], event["object"]
        finally:
            resp.release_conn()

    def patch_status(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.v1.patch_namespaced_pod_status(
            name,
            namespace,
            body,
            _content_type=SMP,
            _preload_content=False,
            _request_timeout=_TIMEOUT,
        )
        return dict(self._json(resp))

    def delete_pod_now(self, namespace: str, name: str, uid: str) -> None:
        """Remove the pod object (grace 0): what the kubelet does once its containers stopped."""
        body = client.V1DeleteOptions(
            grace_period_seconds=0, preconditions=client.V1Preconditions(uid=uid)
        )
        try:
            self.v1.delete_namespaced_pod(
                name, namespace, body=body, _preload_content=False, _request_timeout=_TIMEOUT
            )
        except ApiException as e:
            if e.status not in (404, 409):  # gone already, or a new pod of the same name
                raise

    def _get(self, fn: Any, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            resp = fn(name, namespace, _preload_content=False, _request_timeout=_TIMEOUT)
            return dict(self._json(resp))
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(self.v1.read_namespaced_config_map, namespace, name)

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(self.v1.read_namespaced_secret, namespace, name)

    def token(
        self, namespace: str, service_account: str, audience: str | None, seconds: int
    ) -> str:
        spec = client.V1TokenRequestSpec(
            audiences=[audience] if audience else [], expiration_seconds=max(seconds, 600)
        )
        resp = self.v1.create_namespaced_service_account_token(
            service_account,
            namespace,
            client.AuthenticationV1TokenRequest(spec=spec),
            _preload_content=False,
            _request_timeout=_TIMEOUT,
        )
        return str(self._json(resp)["status"]["token"])

    def event(
        self, pod: dict[str, Any], container: str, kind: str, reason: str, message: str
    ) -> None:
        m = pod["metadata"]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        body: Any = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{m['name']}.", "namespace": m["namespace"]},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": m["name"],
                "namespace": m["namespace"],
                "uid": m["uid"],
                "fieldPath": f"spec.containers{{{container}}}",
            },
            "type": kind,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "e2e-pod-runner", "host": pod["spec"].get("nodeName", "")},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self.v1.create_namespaced_event(
            m["namespace"], body, _preload_content=False, _request_timeout=_TIMEOUT
        )

    def close(self) -> None:
        self.api_client.close()
