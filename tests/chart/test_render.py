"""The chart renders valid, least-privilege, restricted-Pod-Security manifests in every scenario."""

from __future__ import annotations

import tarfile
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from inferline.api.crd import all_crds

from ..conftest import REPO
from .helm import CHART, NAMESPACE, RELEASE, SCENARIOS, Obj, helm, render, values_file

# Kinds kubernetes-validate cannot know: ours (checked against our CRD schemas) and the
# Prometheus Operator's (checked by hand below).
CUSTOM = {"ClusterBackend", "ServiceMonitor"}


def test_scenarios_exist() -> None:
    assert {"default", "namespaced", "with-servicemonitor"} <= set(SCENARIOS)


def test_lint_is_clean() -> None:
    out = helm("lint", "--strict", str(CHART)).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out, out


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lint_scenario(scenario: str) -> None:
    helm("lint", "--strict", str(CHART), "--values", str(values_file(scenario)))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_manifest_passes_the_kubernetes_schemas(scenario: str) -> None:
    docs = render(scenario=scenario, crds=True).docs
    version = kubernetes_validate.latest_version()
    crd_schemas = {
        c["spec"]["names"]["kind"]: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for c in all_crds().values()
    }
    assert docs
    for doc in docs:
        where = f"{scenario}: {doc['kind']}/{doc['metadata']['name']}"
        try:
            if doc["kind"] in crd_schemas:
                jsonschema.Draft4Validator(crd_schemas[doc["kind"]]).validate(doc)
            elif doc["kind"] not in CUSTOM:
                kubernetes_validate.validate(doc, version, strict=True)
        except jsonschema.ValidationError as e:
            pytest.fail(f"{where}: {e.message} at {list(e.absolute_path)}")


def test_every_object_is_labelled_and_namespaced_objects_are_in_the_release_namespace() -> None:
    for scenario in SCENARIOS:
        for doc in render(scenario=scenario).docs:
            labels = doc["metadata"]["labels"]
            assert labels["app.kubernetes.io/instance"] == RELEASE
            assert labels["app.kubernetes.io/part-of"] == "inferline"
            if doc["kind"] in ("Role", "RoleBinding"):
                continue  # in the watched namespaces
            if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding", "ClusterBackend"):
                assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]


# -- RBAC -----------------------------------------------------------------------------------------

Rule = tuple[str, str, str]  # (apiGroup, resource, verb)


def _rules(obj: Obj) -> set[Rule]:
    out = set()
    for r in obj["rules"]:
        assert set(r) == {"apiGroups", "resources", "verbs"}, r  # no resourceNames/URLs games
        out |= {(g, res, v) for g in r["apiGroups"] for res in r["resources"] for v in r["verbs"]}
    return out


def _expand(group: str, resources: list[str], verbs: list[str]) -> set[Rule]:
    return {(group, r, v) for r in resources for v in verbs}


WRITE = ["list", "watch", "create", "patch", "delete"]
# What the operator does in a namespace it watches (see templates/_helpers.tpl for the why).
NAMESPACED = (
    _expand("inferline.dev", ["inferencepipelines", "models", "backends"], ["list", "watch"])
    | _expand("inferline.dev", ["inferencepipelines/status"], ["patch"])
    | _expand("inferline.dev", ["inferencepipelines/finalizers"], ["update"])
    | _expand("", ["configmaps", "services"], WRITE)
    | _expand("apps", ["deployments"], WRITE)
    | _expand("policy", ["poddisruptionbudgets"], WRITE)
    | _expand("monitoring.coreos.com", ["servicemonitors"], WRITE)
    | _expand("inferline.dev", ["inferencepipelines/scale"], ["patch"])
    | _expand("autoscaling", ["horizontalpodautoscalers"], WRITE)
    | _expand("keda.sh", ["scaledobjects"], WRITE)
    | _expand("", ["pods"], ["list", "watch"])
    | _expand("discovery.k8s.io", ["endpointslices"], ["list", "watch"])
    | _expand("", ["events"], ["create"])
)
CLUSTER_READS = _expand("", ["nodes"], ["list", "watch"]) | _expand(
    "inferline.dev", ["clusterbackends"], ["list", "watch"]
)
DRA_NAMESPACED = _expand("resource.k8s.io", ["resourceclaimtemplates"], WRITE) | _expand(
    "resource.k8s.io", ["resourceclaims"], ["list", "watch"]
)
DRA_CLUSTER = _expand("resource.k8s.io", ["resourceslices", "deviceclasses"], ["list", "watch"])
KOPF_DISCOVERY = _expand("apiextensions.k8s.io", ["customresourcedefinitions"], ["list", "watch"])


def _all_rbac(scenario: str) -> list[Obj]:
    r = render(scenario=scenario)
    return r.of("ClusterRole") + r.of("Role")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_wildcards_and_no_secrets(scenario: str) -> None:
    for obj in _all_rbac(scenario):
        for group, resource, verb in _rules(obj):
            assert "*" not in (group, resource, verb), (obj["kind"], group, resource, verb)
            assert resource not in ("secrets", "clusterroles", "roles", "rolebindings")
            assert verb not in ("escalate", "bind", "impersonate", "deletecollection"), verb


def test_cluster_wide_rules_are_exactly_what_the_operator_uses() -> None:
    r = render()
    role = r.one("ClusterRole")
    assert _rules(role) == NAMESPACED | CLUSTER_READS | KOPF_DISCOVERY
    assert r.of("Role") == [] and r.of("RoleBinding") == []
    binding = r.one("ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    sa = r.one("ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}
    ]


def test_dra_rights_only_when_dra_is_enabled() -> None:
    off = render()
    args = off.one("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--no-dra" in args
    on = render("--set", "dra.enabled=true")
    role = on.one("ClusterRole")
    assert (
        _rules(role) == NAMESPACED | DRA_NAMESPACED | CLUSTER_READS | DRA_CLUSTER | KOPF_DISCOVERY
    )
    args = on.one("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--no-dra" not in args


def test_namespaced_mode_reads_only_nodes_and_clusterbackends_cluster_wide() -> None:
    r = render(scenario="namespaced")
    assert _rules(r.one("ClusterRole")) == CLUSTER_READS
    roles = {o["metadata"]["namespace"]: o for o in r.of("Role")}
    bindings = {o["metadata"]["namespace"]: o for o in r.of("RoleBinding")}
    assert set(roles) == set(bindings) == {"team-a", "team-b"}
    sa = r.one("ServiceAccount")["metadata"]["name"]
    for ns, role in roles.items():
        assert _rules(role) == NAMESPACED, ns
        assert bindings[ns]["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
        assert bindings[ns]["subjects"][0]["name"] == sa
        assert bindings[ns]["subjects"][0]["namespace"] == NAMESPACE
    args = _container(r.one("Deployment"))["args"]
    assert [a for a in args if a.startswith("--namespace")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]


def test_rbac_and_serviceaccount_can_be_managed_elsewhere() -> None:
    r = render(scenario="existing-serviceaccount")
    assert not (r.of("ClusterRole") or r.of("Role") or r.of("ServiceAccount"))
    spec = r.one("Deployment")["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "inferline-operator"


def test_an_existing_serviceaccount_needs_a_name() -> None:
    proc = helm(
        "template", RELEASE, str(CHART), "--set", "serviceAccount.create=false", check=False
    )
    assert proc.returncode != 0
    assert "serviceAccount.name: the name of an existing ServiceAccount is required" in (
        proc.stderr
    )


def test_two_releases_in_two_namespaces_do_not_share_cluster_scoped_names() -> None:
    a = render()
    b = render("--namespace", "other")
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        assert a.one(kind)["metadata"]["name"] != b.one(kind)["metadata"]["name"]


# -- the operator's Deployment --------------------------------------------------------------------


def _container(deploy: Obj) -> Obj:
    containers = deploy["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_operator_pod_meets_the_restricted_pod_security_standard(scenario: str) -> None:
    deploy = render(scenario=scenario).one("Deployment")
    pod = deploy["spec"]["template"]["spec"]
    c = _container(deploy)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 1000  # the image's user
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in sc and "hostNetwork" not in pod and "hostPID" not in pod
    assert all("hostPath" not in v for v in pod.get("volumes", []))
    # The read-only root needs a writable /tmp (HOME, the client's temporary CA files).
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]


def test_one_replica_recreated_never_rolled() -> None:
    spec = render().one("Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_the_container_runs_the_operator_with_probes_ports_and_resources() -> None:
    c = _container(render().one("Deployment"))
    assert c["image"] == "ghcr.io/inferline/operator:0.1.0"  # the chart's appVersion
    assert "command" not in c  # the image's entrypoint: inferline operator
    assert c["args"] == [
        "--metrics-port=8080",
        "--health-port=8081",
        "--bind-address=0.0.0.0",
        "--workers=4",
        "--resync=600",
        "--log-format=json",
        "--shm-size=256Mi",
        "--no-dra",
    ]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"metrics": 8080, "health": 8081}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}, probe
    assert c["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}
    assert c["resources"]["limits"] == {"memory": "512Mi"}


def test_the_operator_accepts_the_args_the_chart_renders() -> None:
    from typer.testing import CliRunner

    from inferline.cli.app import app

    for scenario in SCENARIOS:
        args = _container(render(scenario=scenario).one("Deployment"))["args"]
        # --help after the args: typer parses (and rejects unknown) options, then stops.
        result = CliRunner().invoke(app, ["operator", *args, "--help"])
        assert result.exit_code == 0, f"{scenario}: {result.output}"


def test_image_digest_pins_the_image() -> None:
    c = _container(render(scenario="custom-images").one("Deployment"))
    assert c["image"] == ("registry.example.com/mirror/inferline-operator:0.1.0@sha256:" + "0" * 64)
    assert c["imagePullPolicy"] == "Always"


def test_metrics_service_and_optional_servicemonitor() -> None:
    r = render()
    svc = r.one("Service")
    deploy = r.one("Deployment")
    assert svc["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert r.of("ServiceMonitor") == []

    sm = render(scenario="with-servicemonitor").one("ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    assert sm["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert sm["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]


def test_crds_come_from_crds_dir_and_can_be_skipped() -> None:
    with_crds = render(crds=True).of("CustomResourceDefinition")
    assert sorted(c["metadata"]["name"] for c in with_crds) == sorted(
        c["metadata"]["name"] for c in all_crds().values()
    )
    assert render().of("CustomResourceDefinition") == []  # helm template omits crds/ by default
    assert render("--skip-crds", crds=False).of("CustomResourceDefinition") == []


def test_the_deployment_matches_the_operator_image() -> None:
    """Ports, user and entrypoint as runtime-images/operator/Dockerfile builds them."""
    dockerfile = (REPO / "runtime-images" / "operator" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["inferline", "operator"]' in dockerfile  # so the chart sets only args
    assert "USER 1000:1000" in dockerfile
    exposed = {
        int(p)
        for line in dockerfile.splitlines()
        if line.startswith("EXPOSE")
        for p in line.split()[1:]
    }
    deploy = render().one("Deployment")
    c = _container(deploy)
    assert {p["containerPort"] for p in c["ports"]} == exposed
    pod = deploy["spec"]["template"]["spec"]["securityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"]) == (1000, 1000)


def test_the_packaged_chart_carries_its_crds_schema_and_health_check(tmp_path: Path) -> None:
    helm("package", str(CHART), "--destination", str(tmp_path))
    (package,) = tmp_path.glob("inferline-*.tgz")
    with tarfile.open(package) as tar:
        names = set(tar.getnames())
    for f in ("values.schema.json", "files/argocd-health-inferencepipeline.lua", "README.md"):
        assert f"inferline/{f}" in names, f
    shown = [d for d in yaml.safe_load_all(helm("show", "crds", str(package)).stdout) if d]
    assert sorted(d["metadata"]["name"] for d in shown) == sorted(
        c["metadata"]["name"] for c in all_crds().values()
    )
