"""What the operator mounts into a runtime pod, and where the runtime looks for it.

This module is the contract between the two sides: the operator renders ports, volumes and env
from it, the runtime (`inferline.runtime`) reads the same names. Locally, `inferline serve`
reads the same environment variables, so a directory laid out like a pod's mounts works there
too.

- The render manifest comes from the pipeline's ConfigMap at RENDERED_DIR; the repository is
  assembled in REPOSITORY_DIR; SCRATCH_DIR is HOME and the caches of the runtime images (the
  root filesystem is read-only).

- Credentials: every Secret a Model names in `credentialsSecret` is mounted read-only at
  `$INFERLINE_SECRETS_ROOT/<secret name>/` (one file per key, as Kubernetes mounts Secrets).
  Keys the runtime reads:

  - s3://: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`; optional `AWS_SESSION_TOKEN`,
    `AWS_ENDPOINT_URL`, `AWS_REGION`
  - gs://: `service-account.json` (a GCP service-account key file)
  - http(s)://: `header.<Name>`, sent as header `<Name>` (`header.Authorization: Bearer ...`)

- `pvc://CLAIM/path`: the claim mounted read-only at `$INFERLINE_PVC_ROOT/CLAIM/`.
- `configmap://NAME/KEY`: the ConfigMap mounted at `$INFERLINE_CONFIGMAP_ROOT/NAME/`.
- The artifact cache: a writable directory at `$INFERLINE_CACHE_DIR` (the pipeline's cache PVC,
  else an emptyDir, which still survives container restarts), capped at
  `$INFERLINE_CACHE_MAX_BYTES` bytes (least recently used blobs go first).
"""

from __future__ import annotations

import hashlib
import re

HTTP_PORT = 8000
GRPC_PORT = 8001
METRICS_PORT = 8002

RENDERED_DIR = "/etc/inferline/rendered"
REPOSITORY_DIR = "/models"
SCRATCH_DIR = "/tmp"

# URI schemes an artifact may use inside a cluster (file:// names a file on someone's laptop).
CLUSTER_SCHEMES = ("s3", "gs", "http", "https", "pvc", "configmap")

SECRETS_ROOT_ENV = "INFERLINE_SECRETS_ROOT"
SECRETS_ROOT = "/var/run/inferline/secrets"
PVC_ROOT_ENV = "INFERLINE_PVC_ROOT"
PVC_ROOT = "/var/run/inferline/pvc"
CONFIGMAP_ROOT_ENV = "INFERLINE_CONFIGMAP_ROOT"
CONFIGMAP_ROOT = "/var/run/inferline/configmaps"
CACHE_DIR_ENV = "INFERLINE_CACHE_DIR"
CACHE_DIR = "/var/cache/inferline/artifacts"
CACHE_MAX_BYTES_ENV = "INFERLINE_CACHE_MAX_BYTES"

# Secret keys, by the storage they unlock. The AWS names are the AWS CLI's environment
# variables, so a Secret made for other tools (`kubectl create secret generic --from-env-file`)
# works unchanged.
AWS_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
AWS_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
AWS_SESSION_TOKEN = "AWS_SESSION_TOKEN"
AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
AWS_REGION = "AWS_REGION"
GCS_SERVICE_ACCOUNT_KEY = "service-account.json"
HTTP_HEADER_PREFIX = "header."

S3_KEYS = (
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN,
    AWS_ENDPOINT_URL,
    AWS_REGION,
)


def secret_mount_path(secret: str) -> str:
    """Where the operator mounts Secret `secret` in a runtime pod."""
    return f"{SECRETS_ROOT}/{secret}"


def secret_volume_name(secret: str) -> str:
    """A pod volume name (a DNS label) for Secret `secret`; Secret names may be longer and
    contain dots, so long names keep a readable prefix and a hash."""
    label = re.sub(r"[^a-z0-9-]", "-", secret.lower())
    name = f"secret-{label}"
    if len(name) <= 63 and name == f"secret-{secret}":
        return name
    return f"{name[:52].rstrip('-')}-{hashlib.sha256(secret.encode()).hexdigest()[:10]}"
