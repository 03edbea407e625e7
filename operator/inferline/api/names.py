"""The names and labels of everything derived from a pipeline: one home for the rules and the
functions.

The operator names the objects it creates for an InferencePipeline `p` after it, and `render`
names Triton models after it, so the pipeline's name is restricted to what every one of those
names accepts, with room for suffixes:

- a Service name is a DNS-1035 label: lowercase letters, digits and '-', starting with a
  letter, ending with a letter or digit, at most 63 characters (the strictest of them all);
- the label `inferline.dev/pipeline: p` that selects and prunes the children: a label value is
  at most 63 characters;
- names with a suffix: the render ConfigMap `p-render-<hash>` and the ResourceClaimTemplate
  `p-gpu` (DNS subdomains, up to 253), KEDA's HPA `keda-hpa-p`; SUFFIX_ROOM (10) characters stay
  free under 63 so that a derived Service or label value such as `p-metrics` also fits.

So a pipeline name is a DNS-1035 label of at most MAX_PIPELINE_NAME (53) characters, and every
function below returns a name Kubernetes accepts for its kind. Triton models: the ensemble is
served as the pipeline's `servedName` (default: its name); each step is the model
`<pipeline>-<step>`, which Triton accepts for any pipeline and step name (DNS labels).
"""

from __future__ import annotations

import re

from .common import words_for

# A DNS-1035 label (RFC 1035): what a Service name must be.
DNS1035_LABEL = words_for(
    r"^[a-z]([-a-z0-9]*[a-z0-9])?$",
    "lowercase letters, digits and '-', starting with a letter and ending with a letter or digit",
)
MAX_LABEL_VALUE = 63
# The longest suffix appended to a pipeline name in a 63-character name ("-render-99"; KEDA's
# "keda-hpa-" prefix is 9).
SUFFIX_ROOM = 10
MAX_PIPELINE_NAME = MAX_LABEL_VALUE - SUFFIX_ROOM

# The label every child carries: selects the pods, and prunes what is no longer rendered.
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

# What Triton accepts as a served model name here: letters, digits, '_', '-' and '.', not
# starting with '.' or '-' (it is a directory name and a URL path segment).
SERVED_NAME = words_for(
    r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
    "letters, digits, '_', '-' and '.', starting with a letter, digit or '_'",
)
MAX_SERVED_NAME = 128

_DNS1035 = re.compile(DNS1035_LABEL)

# The CEL rule on InferencePipeline.metadata.name (the CRD), and its message.
PIPELINE_NAME_RULE = (
    f"self.metadata.name.matches('{DNS1035_LABEL}') && "
    f"size(self.metadata.name) <= {MAX_PIPELINE_NAME}"
)
PIPELINE_NAME_MESSAGE = (
    "metadata.name of a pipeline must be lowercase letters, digits and '-', start with a "
    f"letter, end with a letter or digit, and be at most {MAX_PIPELINE_NAME} characters: its "
    "Service and the other objects named after it need a DNS-1035 label, with room for suffixes"
)


def pipeline_name_ok(name: str) -> bool:
    """The Python twin of PIPELINE_NAME_RULE."""
    return len(name) <= MAX_PIPELINE_NAME and _DNS1035.match(name) is not None


def deployment(pipeline: str) -> str:
    return pipeline


def service(pipeline: str) -> str:
    return pipeline


def render_config_map(pipeline: str, digest: str) -> str:
    """The immutable ConfigMap holding one render manifest; a new render gets a new name, so
    pods of the previous rollout keep theirs until they are gone."""
    return f"{pipeline}-render-{digest[:RENDER_HASH_LENGTH]}"


def pod_disruption_budget(pipeline: str) -> str:
    return pipeline


def service_monitor(pipeline: str) -> str:
    return pipeline


def pod_monitor(pipeline: str) -> str:
    return pipeline


def horizontal_pod_autoscaler(pipeline: str) -> str:
    return pipeline


def scaled_object(pipeline: str) -> str:
    """The KEDA ScaledObject (KEDA names its own HPA `keda-hpa-<this>`)."""
    return pipeline


def resource_claim_template(pipeline: str, digest: str) -> str:
    """The ResourceClaimTemplate of a pipeline's GPU request (DRA). A template's spec is
    immutable, so a changed request gets a new name, as render ConfigMaps do."""
    return f"{pipeline}-gpu-{digest[:RENDER_HASH_LENGTH]}"


def pipeline_labels(pipeline: str) -> dict[str, str]:
    """The labels that select a pipeline's pods and mark its children for pruning."""
    return {LABEL_PIPELINE: pipeline}


def step_model(pipeline: str, step: str) -> str:
    """The Triton model name of a step: unique per pipeline, readable in metrics."""
    return f"{pipeline}-{step}"


def ensemble_model(pipeline: str, served_name: str | None = None) -> str:
    """The Triton model name clients call: the pipeline's servedName, else its name."""
    return served_name or pipeline


def kubernetes_names(pipeline: str) -> dict[str, str]:
    """Every Kubernetes object name derived from `pipeline`, by kind (for checks and docs)."""
    return {
        "Deployment": deployment(pipeline),
        "Service": service(pipeline),
        "ConfigMap": render_config_map(pipeline, "f" * 64),
        "PodDisruptionBudget": pod_disruption_budget(pipeline),
        "ServiceMonitor": service_monitor(pipeline),
        "PodMonitor": pod_monitor(pipeline),
        "HorizontalPodAutoscaler": horizontal_pod_autoscaler(pipeline),
        "ScaledObject": scaled_object(pipeline),
        "HorizontalPodAutoscaler (KEDA's)": f"keda-hpa-{scaled_object(pipeline)}",
        "ResourceClaimTemplate": resource_claim_template(pipeline, "f" * 64),
    }
