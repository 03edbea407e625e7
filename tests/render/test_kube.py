"""The Kubernetes objects rendered for a pipeline, field by field that matters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferline.api.load import load_text
from inferline.api.resolve import ResolvedPipeline
from inferline.compile import check_loaded, render_manifest
from inferline.gpu.placement import DeviceClaim
from inferline.render import kube, mounts
from inferline.render.manifest import MANIFEST_FILE, RenderManifest

from ..conftest import EXAMPLES

PIPELINE = """
apiVersion: inferline.dev/v1alpha1
kind: Model
metadata: {name: trees, namespace: ml}
spec:
  format: fil
  storageUri: %(uri)s
  credentialsSecret: bucket-reader
  tree: {modelType: xgboost_json}
  maxBatchSize: 8
  inputs: [{name: input__0, dtype: FP32, dims: [4]}]
  outputs: [{name: output__0, dtype: FP32, dims: [1]}]
---
apiVersion: inferline.dev/v1alpha1
kind: InferencePipeline
metadata: {name: scorer, namespace: ml, uid: 1234-uid, generation: 3}
spec:
  replicas: 2
  maxBatchSize: 8
  inputs: [{name: X, dtype: FP32, dims: [4]}]
  outputs: [{name: "Y", dtype: FP32, dims: [1]}]
  steps:
    - name: code
      model:
        format: python
        python: {configMap: {name: scorer-code}, key: model.py}
        maxBatchSize: 8
        inputs: [{name: I, dtype: FP32, dims: [4]}]
        outputs: [{name: O, dtype: FP32, dims: [4]}]
      inputMap: {I: X}
      outputMap: {O: mid}
    - name: trees
      modelRef: {name: trees}
      inputMap: {input__0: mid}
      outputMap: {output__0: "Y"}
"""


def resolved(uri: str = "s3://bucket/trees.json") -> ResolvedPipeline:
    checked = check_loaded(load_text(PIPELINE % {"uri": uri}, Path("/m/p.yaml")), require_refs=True)
    assert checked.ok, checked.errors
    return checked.pipelines[0]


PLACED = kube.PodPlacement(
    limits={"nvidia.com/mig-1g.10gb": "1"},
    node_selector={"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
    tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
)


def children(
    rp: ResolvedPipeline | None = None,
    placement: kube.PodPlacement = PLACED,
    settings: kube.RuntimeSettings | None = None,
) -> tuple[kube.Children, RenderManifest]:
    rp = rp or resolved()
    manifest = render_manifest([rp])
    out = kube.render_children(
        rp.pipeline, rp.backend, manifest, placement, settings or kube.RuntimeSettings()
    )
    return out, manifest


def by_kind(c: kube.Children) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in c.all}


def test_every_child_is_owned_labelled_and_in_the_pipeline_namespace() -> None:
    c, _ = children()
    assert [o["kind"] for o in c.all] == [
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ]
    for o in c.all:
        meta = o["metadata"]
        assert meta["namespace"] == "ml"
        assert meta["labels"]["inferline.dev/pipeline"] == "scorer"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "inferline"
        (owner,) = meta["ownerReferences"]
        assert owner == {
            "apiVersion": "inferline.dev/v1alpha1",
            "kind": "InferencePipeline",
            "name": "scorer",
            "uid": "1234-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }


MIG = "'profile' in device.attributes['gpu.nvidia.com'] && device.attributes['gpu.nvidia.com']"
CLAIMED = kube.PodPlacement(
    tolerations=PLACED.tolerations,
    claim=DeviceClaim("mig.nvidia.com", 1, (f"{MIG}.profile == '1g.35gb'",)),
)


def test_with_dra_the_claim_template_is_an_owned_labelled_child_applied_first() -> None:
    c, _ = children(placement=CLAIMED)
    assert [o["kind"] for o in c.first] == ["ConfigMap", "ResourceClaimTemplate"]
    assert [o["kind"] for o in c.all] == [
        "ConfigMap",
        "ResourceClaimTemplate",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ]
    rct = c.claim_template
    assert rct is not None
    assert rct["apiVersion"] == "resource.k8s.io/v1"
    meta = rct["metadata"]
    assert (meta["namespace"], meta["labels"]["inferline.dev/pipeline"]) == ("ml", "scorer")
    assert meta["ownerReferences"][0]["uid"] == "1234-uid"
    # The claims made from it carry the pipeline's labels: that is how status finds them.
    assert rct["spec"]["metadata"]["labels"]["inferline.dev/pipeline"] == "scorer"


def test_the_claim_template_requests_the_class_count_and_selectors() -> None:
    c, _ = children(placement=CLAIMED)
    assert c.claim_template is not None
    assert c.claim_template["spec"]["spec"] == {
        "devices": {
            "requests": [
                {
                    "name": "gpu",
                    "exactly": {
                        "deviceClassName": "mig.nvidia.com",
                        "count": 1,
                        "selectors": [{"cel": {"expression": f"{MIG}.profile == '1g.35gb'"}}],
                    },
                }
            ]
        }
    }
    whole = kube.PodPlacement(claim=DeviceClaim("gpu.nvidia.com", 4, ()))
    c, _ = children(placement=whole)
    assert c.claim_template is not None
    assert c.claim_template["spec"]["spec"]["devices"]["requests"][0]["exactly"] == {
        "deviceClassName": "gpu.nvidia.com",
        "count": 4,
    }


def test_slices_of_one_parent_are_a_match_attribute_constraint() -> None:
    claim = DeviceClaim("mig.nvidia.com", 2, (), "gpu.nvidia.com/parentUUID")
    c, _ = children(placement=kube.PodPlacement(claim=claim))
    assert c.claim_template is not None
    assert c.claim_template["spec"]["spec"]["devices"]["constraints"] == [
        {"requests": ["gpu"], "matchAttribute": "gpu.nvidia.com/parentUUID"}
    ]


def test_with_dra_the_pod_claims_from_the_template_and_has_no_gpu_limits() -> None:
    c, _ = children(placement=CLAIMED)
    assert c.claim_template is not None
    pod = by_kind(c)["Deployment"]["spec"]["template"]["spec"]
    assert pod["resourceClaims"] == [
        {"name": "gpu", "resourceClaimTemplateName": c.claim_template["metadata"]["name"]}
    ]
    (ctr,) = pod["containers"]
    assert ctr["resources"]["claims"] == [{"name": "gpu"}]
    assert not [k for k in ctr["resources"].get("limits", {}) if k.startswith("nvidia.com/")]
    assert pod["tolerations"] == CLAIMED.tolerations


def test_a_changed_claim_is_a_new_template_and_rolls_the_pods() -> None:
    """A template's spec is immutable: a changed request gets a new name, so the pods roll."""
    c1, _ = children(placement=CLAIMED)
    other = kube.PodPlacement(claim=DeviceClaim("mig.nvidia.com", 1, (f"{MIG}.profile == 'x'",)))
    c2, _ = children(placement=other)
    assert c1.claim_template and c2.claim_template
    n1, n2 = (c.claim_template["metadata"]["name"] for c in (c1, c2))  # type: ignore[index]
    assert n1.startswith("scorer-gpu-") and n1 != n2
    assert n1 == children(placement=CLAIMED)[0].claim_template["metadata"]["name"]  # type: ignore[index]

    def pod_hash(c: kube.Children) -> str:
        return str(
            by_kind(c)["Deployment"]["spec"]["template"]["metadata"]["annotations"][
                "inferline.dev/config-hash"
            ]
        )

    assert pod_hash(c1) != pod_hash(c2)
    assert pod_hash(c1) != pod_hash(children()[0])  # switching allocation rolls too


def test_without_dra_there_is_no_claim() -> None:
    c, _ = children()
    assert c.claim_template is None
    pod = by_kind(c)["Deployment"]["spec"]["template"]["spec"]
    assert "resourceClaims" not in pod
    assert "claims" not in pod["containers"][0]["resources"]


def test_the_config_map_holds_the_manifest_under_a_name_that_changes_with_it() -> None:
    c, manifest = children()
    cm = c.config_map
    assert cm["immutable"] is True
    assert RenderManifest.from_json(cm["data"][MANIFEST_FILE]) == manifest
    assert cm["metadata"]["name"] == f"scorer-render-{manifest.digest()[:10]}"
    other, m2 = children(resolved("s3://bucket/other.json"))
    assert m2.digest() != manifest.digest()
    assert other.config_map["metadata"]["name"] != cm["metadata"]["name"]


def test_deployment_runs_the_runtime_on_the_placement_it_was_given() -> None:
    c, _ = children()
    d = by_kind(c)["Deployment"]
    spec = d["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert spec["selector"] == {"matchLabels": {"inferline.dev/pipeline": "scorer"}}
    pod = spec["template"]["spec"]
    (ctr,) = pod["containers"]
    assert ctr["image"] == "ghcr.io/inferline/runtime-gpu:0.1.0"  # the triton ClusterBackend
    assert f"--rendered={mounts.RENDERED_DIR}" in ctr["args"]
    assert "--address=0.0.0.0" in ctr["args"]
    assert ctr["resources"]["limits"] == {"nvidia.com/mig-1g.10gb": "1"}
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert pod["tolerations"] == PLACED.tolerations
    assert {p["name"]: p["containerPort"] for p in ctr["ports"]} == {
        "http": 8000,
        "grpc": 8001,
        "metrics": 8002,
    }
    assert ctr["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert ctr["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    startup = ctr["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800  # big model loads


def test_pods_pass_the_restricted_pod_security_standard() -> None:
    c, _ = children()
    pod = by_kind(c)["Deployment"]["spec"]["template"]["spec"]
    (ctr,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctr["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["automountServiceAccountToken"] is False
    for v in pod["volumes"]:
        assert not {"hostPath", "hostNetwork"} & set(v)


def test_writable_places_are_volumes_and_shm_is_memory_backed() -> None:
    c, _ = children(settings=kube.RuntimeSettings(shm_size="1Gi"))
    pod = by_kind(c)["Deployment"]["spec"]["template"]["spec"]
    by_path = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[by_path["/dev/shm"]["name"]]["emptyDir"] == {
        "medium": "Memory",
        "sizeLimit": "1Gi",
    }
    assert "emptyDir" in volumes[by_path[mounts.REPOSITORY_DIR]["name"]]
    assert "emptyDir" in volumes[by_path["/tmp"]["name"]]
    cache = volumes[by_path[mounts.CACHE_DIR]["name"]]
    assert "emptyDir" in cache  # no artifactCache claim: at least survives container restarts
    rendered = volumes[by_path[mounts.RENDERED_DIR]["name"]]
    assert rendered["configMap"]["name"] == c.config_map["metadata"]["name"]
    assert by_path[mounts.RENDERED_DIR]["readOnly"] is True


def test_credentials_and_code_are_mounted_never_inlined() -> None:
    c, _ = children()
    pod = by_kind(c)["Deployment"]["spec"]["template"]["spec"]
    ctr = pod["containers"][0]
    by_path = {m["mountPath"]: m for m in ctr["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    secret = volumes[by_path[mounts.secret_mount_path("bucket-reader")]["name"]]
    assert secret["secret"]["secretName"] == "bucket-reader"
    code = volumes[by_path[f"{mounts.CONFIGMAP_ROOT}/scorer-code"]["name"]]
    assert code["configMap"] == {"name": "scorer-code"}
    env = {e["name"]: e["value"] for e in ctr["env"]}
    assert env[mounts.SECRETS_ROOT_ENV] == mounts.SECRETS_ROOT
    assert env[mounts.CONFIGMAP_ROOT_ENV] == mounts.CONFIGMAP_ROOT
    assert "bucket-reader" not in str(env.values())  # a name to mount, not a value in env
    assert not [e for e in ctr["env"] if "valueFrom" in e]


def test_pvc_uris_mount_their_claim_read_only() -> None:
    c, _ = children(resolved("pvc://models/trees/xgboost.json"))
    pod = by_kind(c)["Deployment"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = next(v for v in volumes.values() if "persistentVolumeClaim" in v)
    assert claim["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}


def test_a_changed_manifest_changes_the_pod_template() -> None:
    a, _ = children()
    b, _ = children(resolved("s3://bucket/other.json"))
    ta = by_kind(a)["Deployment"]["spec"]["template"]
    tb = by_kind(b)["Deployment"]["spec"]["template"]
    assert ta["metadata"]["annotations"] != tb["metadata"]["annotations"]
    same, _ = children()
    assert by_kind(same)["Deployment"] == by_kind(a)["Deployment"]  # deterministic


def test_service_and_pdb() -> None:
    c, _ = children()
    svc = by_kind(c)["Service"]
    assert svc["spec"]["selector"] == {"inferline.dev/pipeline": "scorer"}
    assert [p["name"] for p in svc["spec"]["ports"]] == ["http", "grpc", "metrics"]
    pdb = by_kind(c)["PodDisruptionBudget"]
    # maxUnavailable: a single replica must not block node drains forever.
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"inferline.dev/pipeline": "scorer"}},
    }


def test_service_monitor_only_where_the_prometheus_operator_is() -> None:
    plain, _ = children()
    assert "ServiceMonitor" not in by_kind(plain)
    c, _ = children(settings=kube.RuntimeSettings(service_monitor=True))
    sm = by_kind(c)["ServiceMonitor"]
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]


def test_local_files_are_reported_as_not_servable_in_a_cluster() -> None:
    checked = check_loaded(
        load_text(
            (EXAMPLES / "minimal" / "pipeline.yaml").read_text(), EXAMPLES / "minimal" / "p.yaml"
        ),
        require_refs=True,
    )
    manifest = render_manifest(checked.pipelines)
    assert kube.not_servable_in_cluster(manifest) == [f"file://{EXAMPLES}/minimal/scale.py"]
    assert kube.not_servable_in_cluster(render_manifest([resolved()])) == []


def test_a_manifest_too_big_for_a_config_map_is_refused_with_its_size() -> None:
    rp = resolved()
    manifest = render_manifest([rp])
    big = manifest.model_copy(
        update={
            "files": [
                *manifest.files,
                manifest.files[0].model_copy(update={"path": "x", "text": "x" * (1 << 20)}),
            ]
        }
    )
    with pytest.raises(kube.TooLarge, match=r"KiB, over the \d+ KiB a ConfigMap holds"):
        kube.render_config_map(rp.pipeline, big)


def test_endpoints_are_the_service_dns_names() -> None:
    rp = resolved()
    e = kube.endpoints(rp.pipeline, "scorer")
    assert e["http"] == "http://scorer.ml.svc:8000/v2/models/scorer/infer"
    assert e["grpc"] == "scorer.ml.svc:8001"
