"""kwok's pod stages for the e2e cluster: kwok's defaults, minus the pods the runner runs.

kwok 0.7 plays its built-in stages only when its configuration has none for a kind; so the
cluster passes these pod stages with --config and keeps kwok's default node stages. Each stage
is kwok's own default (kustomize/stage/pod/fast: pod-ready, pod-complete, pod-delete) plus one
selector: the pod does not use an Inferline runtime image (e2e/runner/images.py, the runner's
criterion, as a jq expression). kwok thus never writes a runtime pod's status, assigns it an IP
or deletes it; the runner does all three, and the two never fight over a pod.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from e2e.runner.images import RUNTIME_POD_JQ

NOT_A_RUNTIME_POD = {"key": RUNTIME_POD_JQ, "operator": "NotIn", "values": ["true"]}

_POD_READY_STATUS = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: ContainersReady
{{ range .spec.readinessGates }}
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: {{ .conditionType | Quote }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  {{ if eq .restartPolicy "Always" }}
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
  {{ else }}
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
  {{ end }}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
phase: Running
startTime: {{ $now | Quote }}
"""

_POD_COMPLETE_STATUS = """\
{{ $now := Now }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
{{ end }}
phase: Succeeded
"""


def _stage(name: str, expressions: list[dict[str, Any]], nxt: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": [*expressions, NOT_A_RUNTIME_POD]},
            "next": nxt,
        },
    }


def pod_stages() -> list[dict[str, Any]]:
    not_deleted = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
    return [
        _stage(
            "pod-ready",
            [not_deleted, {"key": ".status.podIP", "operator": "DoesNotExist"}],
            {"statusTemplate": _POD_READY_STATUS},
        ),
        _stage(
            "pod-complete",
            [
                not_deleted,
                {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                {"key": ".metadata.ownerReferences.[].kind", "operator": "In", "values": ["Job"]},
            ],
            {"statusTemplate": _POD_COMPLETE_STATUS},
        ),
        _stage(
            "pod-delete",
            [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}],
            {"finalizers": {"empty": True}, "delete": True},
        ),
    ]


def write_config(path: Path) -> Path:
    """The kwok --config file: the pod stages (node stages stay kwok's defaults)."""
    path.write_text(yaml.safe_dump_all(pod_stages(), sort_keys=False))
    return path
