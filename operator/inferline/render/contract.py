"""What the operator's pod spec and the runtime entrypoint agree on: ports, paths, variables.

The operator renders a pod from these names and the runtime reads the same names, so the two
cannot drift. Locally (`inferline serve`) the runtime falls back to its own defaults.
"""

from __future__ import annotations

HTTP_PORT = 8000
GRPC_PORT = 8001
METRICS_PORT = 8002

# The render manifest, from the pipeline's ConfigMap, and the repository assembled from it.
RENDERED_DIR = "/etc/inferline/rendered"
REPOSITORY_DIR = "/models"
SCRATCH_DIR = "/tmp"  # HOME and XDG_CACHE_HOME of the runtime images (read-only root FS)

# pvc://CLAIM/path is read from $INFERLINE_PVC_ROOT/CLAIM/path (the claim mounted read-only).
PVC_ROOT_ENV = "INFERLINE_PVC_ROOT"
PVC_ROOT = "/mnt/inferline/pvc"
# configmap://NAME/KEY is read from $INFERLINE_CONFIGMAP_ROOT/NAME/KEY.
CONFIGMAP_ROOT_ENV = "INFERLINE_CONFIGMAP_ROOT"
CONFIGMAP_ROOT = "/etc/inferline/configmaps"
# A Model's credentialsSecret is mounted read-only at $INFERLINE_SECRETS_ROOT/<secret name>/.
SECRETS_ROOT_ENV = "INFERLINE_SECRETS_ROOT"
SECRETS_ROOT = "/var/run/inferline/secrets"

# URI schemes an artifact may use inside a cluster (file:// names a file on someone's laptop).
CLUSTER_SCHEMES = ("s3", "gs", "http", "https", "pvc", "configmap")
