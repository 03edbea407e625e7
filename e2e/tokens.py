"""Credentials of a ServiceAccount, the way a pod gets them: a token from the TokenRequest API,
written into a kubeconfig, so a process here acts exactly as that ServiceAccount."""

from __future__ import annotations

from pathlib import Path

import yaml

from e2e.cluster import Cluster


def request_token(cluster: Cluster, namespace: str, name: str, duration: str = "1h") -> str:
    """A bound token for ServiceAccount `namespace/name` (`kubectl create token` is a
    TokenRequest: POST serviceaccounts/<name>/token)."""
    proc = cluster.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def service_account_kubeconfig(cluster: Cluster, namespace: str, name: str, path: Path) -> Path:
    """A kubeconfig for the cluster that authenticates as ServiceAccount `namespace/name`."""
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    user = f"system:serviceaccount:{namespace}:{name}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],  # the same server and CA
        "users": [{"name": user, "user": {"token": request_token(cluster, namespace, name)}}],
        "contexts": [
            {"name": user, "context": {"cluster": admin["clusters"][0]["name"], "user": user}}
        ],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
