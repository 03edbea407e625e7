"""The names and labels of everything the operator derives from a pipeline: one home.

Every child is named after its pipeline, so the pipeline's name must be valid for each of them
(validate checks it against these rules, the operator renders with these functions).
"""

from __future__ import annotations

LABEL_PIPELINE = "inferline.dev/pipeline"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_PART_OF = "app.kubernetes.io/part-of"
MANAGER = "inferline"  # app.kubernetes.io/managed-by, and the server-side apply field manager

ANNOTATION_CONFIG_HASH = "inferline.dev/config-hash"
ANNOTATION_RENDER_HASH = "inferline.dev/render-hash"

RENDER_HASH_LENGTH = 10


def deployment(pipeline: str) -> str:
    return pipeline


def service(pipeline: str) -> str:
    return pipeline


def pod_disruption_budget(pipeline: str) -> str:
    return pipeline


def service_monitor(pipeline: str) -> str:
    return pipeline


def render_config_map(pipeline: str, digest: str) -> str:
    """The immutable ConfigMap holding one render manifest; a new render gets a new name, so
    pods of the previous rollout keep theirs until they are gone."""
    return f"{pipeline}-render-{digest[:RENDER_HASH_LENGTH]}"


def resource_claim_template(pipeline: str, digest: str) -> str:
    """The ResourceClaimTemplate of a pipeline's GPU request (DRA). A template's spec is
    immutable, so a changed request gets a new name, as render ConfigMaps do."""
    return f"{pipeline}-gpu-{digest[:RENDER_HASH_LENGTH]}"
